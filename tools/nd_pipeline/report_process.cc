#include "tools/nd_pipeline/report_process.h"

#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>

#include "common/base/descriptors.h"

namespace nd {

std::vector<std::string> ReportCommandLine(const std::string& exe, const PipelineConfig& config,
                                           const RunReportRequest& request) {
  std::vector<std::string> args = {exe, "--after-run", "--config", request.config_path};
  for (const std::string& o : request.overrides) args.insert(args.end(), {"--set", o});
  if (!config.run.model_digest.empty())
    args.insert(args.end(), {"--set", "run.model_digest=" + config.run.model_digest});
  for (const ModelEntry& m : config.models)
    if (!m.digest.empty()) args.insert(args.end(), {"--model-digest", m.name + "=" + m.digest});
  for (const std::string& d : request.cache_dirs) args.insert(args.end(), {"--cache-dir", d});
  if (request.study) args.push_back("--study");
  if (!request.note.empty()) args.insert(args.end(), {"--note", request.note});
  return args;
}

Status RunReportProcess(const std::string& bin_dir, const PipelineConfig& config,
                        const RunReportRequest& request) {
  const std::string exe = bin_dir + "/nd-report";
  if (::access(exe.c_str(), X_OK) != 0)
    return NotFound(exe + ": no such executable (build the nd-report target)");
  std::vector<std::string> args = ReportCommandLine(exe, config, request);
  std::vector<char*> argv;
  for (std::string& a : args) argv.push_back(a.data());
  argv.push_back(nullptr);
  // What this process printed comes before what the child prints, also into a pipe or a file.
  std::fflush(stdout);
  std::fflush(stderr);
  const pid_t pid = ::fork();
  if (pid < 0) return IoError(std::string("fork: ") + std::strerror(errno));
  if (pid == 0) {
    CloseDescriptorsFrom(3);
    ::execv(argv[0], argv.data());
    std::fprintf(stderr, "nd-pipeline: exec %s: %s\n", argv[0], std::strerror(errno));
    ::_exit(127);
  }
  int status = 0;
  while (::waitpid(pid, &status, 0) < 0) {
    if (errno != EINTR) return IoError(std::string("waitpid: ") + std::strerror(errno));
  }
  if (WIFEXITED(status) && WEXITSTATUS(status) == 0) return Status::Ok();
  if (WIFSIGNALED(status)) {
    const char* name = ::strsignal(WTERMSIG(status));
    return IoError(exe + " was stopped by signal " + std::to_string(WTERMSIG(status)) +
                   (name ? std::string(" (") + name + ")" : ""));
  }
  return IoError(exe + " exited with status " + std::to_string(WEXITSTATUS(status)));
}

}  // namespace nd
