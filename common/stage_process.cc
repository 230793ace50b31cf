#include "common/stage_process.h"

#include <csignal>
#include <cstdio>
#include <vector>

#include "common/log.h"

namespace nd {
namespace {

volatile std::sig_atomic_t g_stop = 0;

void OnSignal(int) { g_stop = 1; }

}  // namespace

bool StageProcess::stop_requested() { return g_stop != 0; }

StatusOr<std::unique_ptr<StageProcess>> StageProcess::Start(const std::string& stage, int argc,
                                                            char** argv) {
  SetLogComponent(stage);
  std::signal(SIGINT, OnSignal);
  std::signal(SIGTERM, OnSignal);
  std::signal(SIGPIPE, SIG_IGN);
  std::string config_path;
  std::vector<std::string> overrides;
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    if ((a == "-c" || a == "--config") && i + 1 < argc) {
      config_path = argv[++i];
    } else if (a == "--set" && i + 1 < argc) {
      overrides.push_back(argv[++i]);
    } else if (a == "-h" || a == "--help") {
      std::printf("usage: nd-stage-%s --config FILE [--set section.key=value ...]\n"
                  "Started by `nd-pipeline up`; see README.md.\n",
                  stage.c_str());
      return Cancelled("help");
    } else {
      return InvalidArgument("nd-stage-" + stage + ": unknown argument '" + a + "'");
    }
  }
  ND_ASSIGN_OR_RETURN(PipelineConfig config, LoadConfig(config_path, overrides));
  std::unique_ptr<StageProcess> p(new StageProcess());
  p->stage_ = stage;
  p->config_ = std::move(config);
  p->endpoints_ = MakeEndpoints(p->config_);
  p->start_ = std::chrono::steady_clock::now();
  auto events = Channel::Open(p->context_, zmq::socket_type::push, p->endpoints_.events, false, 1000);
  if (!events.ok()) return events.status();
  p->events_.emplace(std::move(events).value());
  p->Report("ready", "");
  return p;
}

double StageProcess::elapsed_s() const {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - start_).count();
}

void StageProcess::Report(const std::string& kind, const std::string& text, uint64_t done,
                          uint64_t total) {
  ReportEvent(events_ ? &*events_ : nullptr, StageEvent{stage_, kind, text, done, total});
}

int StageProcess::ExitCode(const Status& status) {
  if (status.ok()) return 0;
  if (status.code() == StatusCode::kCancelled && status.message() == "help") return 0;
  std::fprintf(stderr, "%s\n", status.message().c_str());
  return status.code() == StatusCode::kCancelled ? 130 : 1;
}

int StageProcess::Finish(const Status& status) {
  if (status.ok()) {
    LogInfo("done in " + std::to_string(elapsed_s()) + " s");
    Report("done", "");
    return 0;
  }
  LogError(status.message());
  Report("error", status.message());
  return status.code() == StatusCode::kCancelled ? 130 : 1;
}

}  // namespace nd
