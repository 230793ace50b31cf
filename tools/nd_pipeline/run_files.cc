#include "tools/nd_pipeline/run_files.h"

#include <signal.h>
#include <unistd.h>

#include <cerrno>
#include <filesystem>
#include <fstream>
#include <sstream>

namespace nd {

namespace fs = std::filesystem;

std::string StatusFilePath(const PipelineConfig& config) {
  return (fs::path(RunDirectory(config)) / "status.json").string();
}

std::string SupervisorPidPath(const PipelineConfig& config) {
  return (fs::path(RunDirectory(config)) / "supervisor.pid").string();
}

StatusOr<int64_t> ReadPidFile(const std::string& path) {
  std::ifstream in(path);
  if (!in) return NotFound(path + ": no such file");
  int64_t pid = 0;
  if (!(in >> pid) || pid <= 0) return DataLoss(path + ": does not hold a pid");
  return pid;
}

bool SupervisorAlive(int64_t pid) {
  if (pid <= 0 || (::kill(static_cast<pid_t>(pid), 0) != 0 && errno != EPERM)) return false;
  const std::string proc = "/proc/" + std::to_string(pid);
  // A zombie (exited, not yet reaped by its parent) is not running.
  std::ifstream stat(proc + "/stat");
  std::string line;
  if (std::getline(stat, line)) {
    size_t paren = line.rfind(')');
    if (paren != std::string::npos && paren + 2 < line.size() && line[paren + 2] == 'Z')
      return false;
  }
  std::ifstream cmdline(proc + "/cmdline", std::ios::binary);
  std::stringstream text;
  text << cmdline.rdbuf();
  // Unreadable /proc (other namespaces, hardened mounts): trust kill().
  return !cmdline || text.str().empty() || text.str().find("nd-pipeline") != std::string::npos;
}

StatusOr<PidFile> PidFile::Create(const std::string& path) {
  auto existing = ReadPidFile(path);
  if (existing.ok() && *existing != ::getpid() && SupervisorAlive(*existing))
    return FailedPrecondition("a pipeline is already running with run directory " +
                              fs::path(path).parent_path().string() + " (supervisor pid " +
                              std::to_string(*existing) + "); `nd-pipeline down` stops it");
  const std::string tmp = path + ".tmp";
  {
    std::ofstream out(tmp, std::ios::trunc);
    out << ::getpid() << "\n";
    if (!out) return IoError(tmp + ": cannot write");
  }
  std::error_code ec;
  fs::rename(tmp, path, ec);
  if (ec) return IoError(path + ": cannot write: " + ec.message());
  return PidFile(path);
}

PidFile::~PidFile() {
  if (path_.empty()) return;
  auto pid = ReadPidFile(path_);
  std::error_code ignored;
  if (pid.ok() && *pid == ::getpid()) fs::remove(path_, ignored);
}

}  // namespace nd
