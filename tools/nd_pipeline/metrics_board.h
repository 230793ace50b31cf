// The supervisor's view of a running pipeline: the latest StageMetrics snapshot per stage, the
// stages' process states, and what follows from them (busy share, ETA, the bottleneck).
//
// MetricsBoard is the live, thread-safe holder the supervisor updates from its main loop and the
// HTTP thread reads. BoardSnapshot is a plain value taken from it; everything that renders a board
// (status.json, the Prometheus text of GET /metrics, the `up` progress line, the `status` table
// and the `top` view) is a pure function of a BoardSnapshot, so `status` and `top`, which read
// status.json from another process, render exactly what the supervisor would.
//
// status.json (written atomically, once per second, to <run dir>/status.json):
//   {"format": 1, "config": "/abs/pipeline.toml", "run_dir": "…", "supervisor_pid": 123,
//    "http_port": 0, "state": "running", "error": "", "uptime_s": 12.5,
//    "updated_unix_s": 1700000000.25, "eta_s": 3.5, "bottleneck": "extract", "restarts": 0,
//    "stages": {"decode": {"state": "running", "pid": 124, "exit_code": 0, "has_metrics": true,
//               "sequence": 11, "final": false, "items_in": 40, "items_out": 40,
//               "items_total": 40, "total": 40, "skipped": 0, "errors": 0, "rate_instant": 12.0,
//               "rate_average": 10.5, "rate_recent": 11.2, "blocked_s": 0.5, "waiting_s": 0,
//               "rss_bytes": 52428800, "uptime_s": 11.9, "busy_share": 0.95, "eta_s": 0,
//               "bottleneck": false}, …}}
// eta_s is -1 when unknown. Stages appear in pipeline order, from the start (zeros until their
// first snapshot arrives).
#pragma once

#include <deque>
#include <mutex>
#include <string>
#include <vector>

#include "common/base/atomic_file.h"  // WriteFileAtomically, for status.json
#include "common/base/status.h"
#include "common/runtime/http_server.h"
#include "common/runtime/wire.h"

namespace nd {

// One stage as the board sees it.
struct StageBoardRow {
  std::string stage;
  std::string state = "starting";  // "starting" | "running" | "done" | "failed" | "stopped"
  int64_t pid = 0;                 // from the process table (the snapshot's pid once known)
  int exit_code = 0;               // valid once state is done/failed/stopped
  bool has_metrics = false;        // false until the first snapshot arrived
  StageMetrics metrics;            // the latest snapshot (zeros until has_metrics)
  double rate_recent = 0;          // items_out/s over the last ~10 s of snapshots (for ETAs)
  double busy_share = 0;           // [0,1]: share of the last interval neither waiting for input
                                   // nor blocked on output
  double eta_s = -1;               // seconds until items_out reaches the total; -1 = unknown
  bool bottleneck = false;

  // metrics.items_total, or the pipeline's total when the stage does not know its own (extract).
  uint64_t total = 0;
};

// A board at one moment. Plain value; see the file comment for its JSON form.
struct BoardSnapshot {
  std::string config;  // the configuration file of the run
  std::string run_dir;
  int64_t supervisor_pid = 0;
  int http_port = 0;
  std::string state = "running";  // "running" | "done" | "failed" | "stopped"
  std::string error;              // the one-line reason when failed
  double uptime_s = 0;
  double updated_unix_s = 0;  // wall clock when taken; lets a reader see a stale file
  double eta_s = -1;          // of the whole run: the largest known stage ETA; -1 = unknown
  std::string bottleneck;     // stage name, "" when none stands out
  int restarts = 0;           // pipeline restarts after stage crashes so far (supervisor.h)
  std::vector<StageBoardRow> stages;

  const StageBoardRow* Find(const std::string& stage) const;
};

// The live board. Thread-safe: every method takes the one mutex.
class MetricsBoard {
 public:
  // `stages` in pipeline order; each starts in state "starting".
  MetricsBoard(std::vector<std::string> stages, std::string config, std::string run_dir,
               int64_t supervisor_pid, int http_port);

  // Folds in a snapshot received at `now_s` (supervisor clock, seconds). Snapshots of unknown
  // stages and older-than-latest ones from the same process (sequence) are ignored.
  void Update(const StageMetrics& metrics, double now_s);
  // "starting" with a pid other than the row's current one is a new process (a restart): its
  // counters start from zero until its first snapshot.
  void SetStageProcess(const std::string& stage, int64_t pid, const std::string& state,
                       int exit_code = 0);
  void SetRestarts(int restarts);
  void SetRunState(const std::string& state, const std::string& error = "");
  // True when every stage in `stages` has delivered its final snapshot.
  bool AllFinal() const;

  BoardSnapshot Snapshot(double now_s) const;

 private:
  struct Entry {
    StageBoardRow row;
    std::deque<StageMetrics> history;  // this process's snapshots of the last ~10 s
  };
  mutable std::mutex mu_;
  std::vector<Entry> entries_;
  BoardSnapshot run_;  // run-level fields only (stages empty)
};

// Fills the derived fields (total, busy_share, eta_s, bottleneck of rows and board) from the
// metrics; Snapshot() calls it, tests call it on hand-made boards.
void DeriveBoard(BoardSnapshot* board);

// status.json text (see the file comment), and back. Reading names the file in its errors.
std::string BoardToJson(const BoardSnapshot& board);
StatusOr<BoardSnapshot> BoardFromJson(const std::string& text, const std::string& what);

// The Prometheus text exposition format (version 0.0.4): for every metric a # HELP and # TYPE
// line, then one sample per stage, `name{stage="decode"} value`.
std::string BoardToPrometheus(const BoardSnapshot& board);

// GET /metrics → BoardToPrometheus, GET /status → BoardToJson, anything else 404; methods other
// than GET and HEAD get 405.
HttpResponse ServeBoard(const BoardSnapshot& board, const HttpRequest& request);

// Renderings for people.
// "[  12.3s] decode 100% 120/s | extract* 80% 25/s | … | ETA 0:02" (* marks the bottleneck)
std::string ProgressLine(const BoardSnapshot& board);
// A table, one line per stage: state, progress bar, done/total, rate, ETA, busy share, RSS.
std::string BoardTable(const BoardSnapshot& board);
// "1:05", "0:07", "2:03:00"; "-" for a negative (unknown) duration.
std::string FormatDuration(double seconds);

}  // namespace nd
