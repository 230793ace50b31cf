// StageProcess: what every stage's main.cc shares. Parses `--config FILE [--set k=v ...]`, loads
// the configuration, sets the log component, installs SIGINT/SIGTERM handlers that request a
// stop, owns the process's one ZeroMQ context and its event channel to the supervisor.
//
// A stage main looks like:
//   auto process = StageProcess::Start("extract", argc, argv);
//   if (!process.ok()) return StageProcess::ExitCode(process.status());
//   Status s = Run(**process);          // the poll loop; checks stop_requested()
//   return (*process)->Finish(s);       // reports done/error to the supervisor, exit code
#pragma once

#include <chrono>
#include <memory>
#include <optional>
#include <string>
#include <zmq.hpp>

#include "common/config.h"
#include "common/status.h"
#include "common/zmq_channel.h"

namespace nd {

class StageProcess {
 public:
  static StatusOr<std::unique_ptr<StageProcess>> Start(const std::string& stage, int argc,
                                                       char** argv);

  const PipelineConfig& config() const { return config_; }
  const Endpoints& endpoints() const { return endpoints_; }
  zmq::context_t& context() { return context_; }
  const std::string& stage() const { return stage_; }
  // Milliseconds a blocking send or receive waits before the peer is declared dead.
  int timeout_ms() const { return config_.run.timeout_s * 1000; }
  double elapsed_s() const;

  // True once SIGINT or SIGTERM arrived.
  static bool stop_requested();

  void Report(const std::string& kind, const std::string& text, uint64_t done = 0,
              uint64_t total = 0);
  // Logs and reports the outcome; returns the process exit code (0, or 1 with the reason).
  int Finish(const Status& status);
  static int ExitCode(const Status& status);

 private:
  StageProcess() = default;
  std::string stage_;
  PipelineConfig config_;
  Endpoints endpoints_;
  zmq::context_t context_;
  std::optional<Channel> events_;
  std::chrono::steady_clock::time_point start_;
};

}  // namespace nd
