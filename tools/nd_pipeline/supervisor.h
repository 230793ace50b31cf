// Supervisor: launches the stage processes of one pipeline run and watches them.
//
// `Run()` writes the effective configuration to <run dir>/config.toml (so every stage sees the
// same defaults, file and --set overrides), binds the event channel, starts nd-stage-decode,
// -extract, -calibrate and -score from `bin_dir` (each with PR_SET_PDEATHSIG so that no stage
// outlives the supervisor), prints progress, and waits for all of them. If a stage fails (exit
// code or an "error" event) the others are stopped (SIGTERM, then SIGKILL after a grace period)
// and Run() returns that stage's one-line reason. SIGINT/SIGTERM on the supervisor stop all stages
// cleanly; what they committed to the cache stays there for the next run.
//
// Monitoring: the supervisor binds SUB on the `metrics` endpoint and keeps the latest StageMetrics
// of every stage on a MetricsBoard (metrics_board.h). From it come the progress line (per-stage
// progress and rate, the bottleneck marked *, the ETA), <run dir>/status.json (rewritten
// atomically once per second and once more at the end, with the final counters), and, when
// run.http_port is not 0, GET /metrics (Prometheus) and GET /status (JSON) on 127.0.0.1 from an
// HttpServer thread. <run dir>/supervisor.pid holds the supervisor's pid while it runs (for
// `nd-pipeline status|top|down`); a second supervisor for the same run directory is refused while
// the first is alive.
#pragma once

#include <map>
#include <string>
#include <vector>

#include "common/config.h"
#include "common/status.h"

namespace nd {

struct SupervisorOptions {
  std::string bin_dir;  // where the nd-stage-* executables are
  std::vector<std::string> stages{"decode", "extract", "calibrate", "score"};
  bool progress_on_terminal = true;  // a single updating line on a TTY, plain lines otherwise
};

struct RunReport {
  double wall_s = 0;
  std::vector<std::string> results;  // "result" events: per-layer output directories
};

class Supervisor {
 public:
  Supervisor(PipelineConfig config, SupervisorOptions options);
  StatusOr<RunReport> Run();

 private:
  PipelineConfig config_;
  SupervisorOptions options_;
};

}  // namespace nd
