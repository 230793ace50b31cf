// Supervisor: launches the stage processes of one pipeline run and watches them.
//
// `Run()` writes the effective configuration to <run dir>/config.toml (so every stage sees the
// same defaults, file and --set overrides), binds the event channel, starts nd-stage-decode,
// -extract, -calibrate and -score from `bin_dir`, prints progress, and waits for all of them.
//
// Supervision (README "Supervision and resume"):
// - Liveness, stage → supervisor: every stage's MetricsPublisher thread sends a StageMetrics
//   snapshot each second; these snapshots are the heartbeat. A live stage silent for
//   run.heartbeat_timeout_s (stopped, wedged; the first snapshot may take up to 60 s, for start-up)
//   is killed with SIGKILL and handled as a crash.
// - Liveness, supervisor → stage: each stage is started with PR_SET_PDEATHSIG = SIGKILL, so it
//   dies with the supervisor whatever kills it; as a second line, the stage's publisher thread
//   watches its parent pid and stops the stage (SIGTERM, SIGKILL 10 s later) when it changes.
// - Crash (killed by a signal: kill -9, OOM killer, SIGSEGV, abort; or exit code 130 from a
//   signal that did not come from the supervisor; or a lost heartbeat): messages in flight to and
//   from the dead process are lost and calibrate/score hold in-memory state, so the whole
//   pipeline *generation* is restarted: all stages stopped (SIGTERM, 5 s grace, SIGKILL), stale
//   ipc socket files removed, all started again on the same run directory and endpoints. The
//   cache is the only durable state: extract commits one LMDB transaction per batch and decode
//   sends only digests for images already cached, so committed batches are not forwarded again;
//   only the batch extract had in flight is redone. At most run.max_restarts restarts per `up`;
//   each logs one line: "<stage> killed by signal 9 (Killed); restarting all stages from the cache
//   (restart 1/3)". After the last one Run() fails with that reason and "gave up after N
//   restart(s)". status.json counts them ("restarts") and RunReport::restarts returns them.
// - Deterministic failure (the stage exits with a non-zero code other than 130 and its one-line
//   reason: bad config, unknown layer, bad model): not restarted. The others are stopped and Run()
//   returns "stage <name> failed: <reason>".
// - SIGINT/SIGTERM on the supervisor (Ctrl-C, `nd-pipeline down`): all stages are stopped
//   (SIGTERM, 5 s grace, then SIGKILL; a second Ctrl-C skips the grace) and reaped, and Run()
//   returns Cancelled with how far each stage got (`up` exits 130). What was committed stays in
//   the cache: the next `up` forwards only the images not yet cached.
// Every child is reaped before Run() returns: no zombies and no orphans.
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

#include "common/base/config.h"
#include "common/base/status.h"

namespace nd {

struct SupervisorOptions {
  std::string bin_dir;  // where the nd-stage-* executables are
  std::vector<std::string> stages{"decode", "extract", "calibrate", "score"};
  bool progress_on_terminal = true;  // a single updating line on a TTY, plain lines otherwise
};

struct RunReport {
  double wall_s = 0;
  std::vector<std::string> results;        // "result" events: per-layer output directories
  int restarts = 0;                        // pipeline generations restarted after a stage crash
  std::string model_digest;                // the model's identity the run used (run.model_digest)
  std::vector<std::string> model_digests;  // with [[models]]: each model's, in table order
};

class Supervisor {
 public:
  Supervisor(PipelineConfig config, SupervisorOptions options);
  // The run; Cancelled when interrupted (SIGINT/SIGTERM), Unavailable with the stage's reason on
  // a deterministic failure or once run.max_restarts restarts are used up.
  StatusOr<RunReport> Run();

 private:
  PipelineConfig config_;
  SupervisorOptions options_;
};

}  // namespace nd
