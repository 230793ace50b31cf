// StageProcess: what every stage's main.cc shares. Parses `--config FILE [--plan FILE]
// [--set k=v ...]`, loads the configuration and the run plan (its endpoints, run_plan.h), sets the
// log component, installs SIGINT/SIGTERM handlers that request a stop, owns the process's one
// ZeroMQ context and its event channel to the supervisor, and publishes the stage's counters once
// per second on the `metrics` endpoint (MetricsPublisher).
//
// A stage main looks like:
//   auto process = StageProcess::Start("extract", argc, argv);
//   if (!process.ok()) return StageProcess::ExitCode(process.status());
//   Status s = Run(**process);          // the poll loop; checks stop_requested(), updates
//   counters() return (*process)->Finish(s);       // final metrics, reports done/error, exit code
#pragma once

#include <atomic>
#include <chrono>
#include <memory>
#include <optional>
#include <string>
#include <thread>
#include <zmq.hpp>

#include "common/base/config.h"
#include "common/base/status.h"
#include "common/runtime/curve.h"
#include "common/runtime/run_plan.h"
#include "common/runtime/wire.h"
#include "common/runtime/zmq_channel.h"

namespace nd {

// Time spent in one kind of wait (input, back-pressure), readable while a wait is in progress:
// a stage blocked for 30 s shows that in the next metrics snapshot, not only when the wait ends.
// ScopedMicros opens and closes spans. Thread-safe; with overlapping spans from several threads,
// only the latest open span is counted live, and every span is added in full when it closes.
class DurationCounter {
 public:
  // Microseconds of finished spans (the atomic<uint64_t> interface stages used before).
  uint64_t load() const { return total_us_.load(); }
  DurationCounter& operator+=(uint64_t us) {
    total_us_ += us;
    return *this;
  }
  // Finished spans plus the open one so far.
  uint64_t live_us() const {
    int64_t since = open_since_us_.load();
    uint64_t open =
        since > 0 && NowMicros() > since ? static_cast<uint64_t>(NowMicros() - since) : 0;
    return total_us_.load() + open;
  }
  void Open(int64_t now_us) { open_since_us_ = now_us; }
  void Close(int64_t opened_us, int64_t now_us) {
    total_us_ += static_cast<uint64_t>(now_us - opened_us);
    int64_t expected = opened_us;  // leave a newer span from another thread open
    open_since_us_.compare_exchange_strong(expected, 0);
  }
  // steady_clock in microseconds, never 0.
  static int64_t NowMicros() {
    return std::chrono::duration_cast<std::chrono::microseconds>(
               std::chrono::steady_clock::now().time_since_epoch())
               .count() +
           1;
  }

 private:
  std::atomic<uint64_t> total_us_{0};
  std::atomic<int64_t> open_since_us_{0};
};

// Counters a stage updates as it works; published once per second to the supervisor (metrics
// PUB channel) and readable by `nd-pipeline status/top` and GET /metrics. Thread-safe.
struct StageCounters {
  std::atomic<uint64_t> items_in{0};     // images received (or read, for decode)
  std::atomic<uint64_t> items_out{0};    // images passed on (or scored)
  std::atomic<uint64_t> items_total{0};  // images expected in this run (0 = unknown)
  std::atomic<uint64_t> skipped{0};      // images skipped for bad input
  std::atomic<uint64_t> errors{0};
  DurationCounter blocked_us;  // time spent waiting for a slow consumer (back-pressure)
  DurationCounter waiting_us;  // time spent waiting for input
};

// Adds the microseconds of its lifetime to a counter: `{ ScopedMicros t(c.blocked_us); Send(); }`.
class ScopedMicros {
 public:
  explicit ScopedMicros(DurationCounter& sink)
      : sink_(sink), opened_(DurationCounter::NowMicros()) {
    sink_.Open(opened_);
  }
  ~ScopedMicros() { sink_.Close(opened_, DurationCounter::NowMicros()); }
  ScopedMicros(const ScopedMicros&) = delete;
  ScopedMicros& operator=(const ScopedMicros&) = delete;

 private:
  DurationCounter& sink_;
  int64_t opened_;
};

// Publishes StageMetrics snapshots of a StageCounters on one endpoint, from its own thread, which
// is the only user of its socket (an XPUB connected to the supervisor's SUB; XPUB so that the
// thread sees when a subscriber is attached). These snapshots are also the stage's heartbeat: the
// supervisor declares a stage silent for run.heartbeat_timeout_s dead (supervisor.h). A snapshot
// goes out when the thread starts and then
// every `interval`; Stop() sends a last one marked `final`, waiting at most `final_wait` for a
// subscriber if none has attached yet, so that a short-lived stage's totals still arrive. Nothing
// here blocks the stage: a missing or slow supervisor only misses snapshots (PUB drops).
// REQUIRES: `context` and `counters` outlive the publisher. Start/Stop from one thread.
class MetricsPublisher {
 public:
  struct Options {
    std::chrono::milliseconds interval{1000};
    std::chrono::milliseconds final_wait{500};
    // When > 1: the pid of the supervisor that started this process. Should it go away without
    // PR_SET_PDEATHSIG having killed us (the stage was started by hand, or the signal was lost),
    // the thread notices within one interval, raises SIGTERM (the stage stops cleanly) and, if
    // the process still lives 10 s later, SIGKILL: a stage never outlives its supervisor for long.
    int64_t parent_pid = 0;
    const CurveKeys* curve = nullptr;  // the run's CURVE keys (curve.h), or none
  };
  // Connects the socket (errors are a Status naming the endpoint) and starts the thread.
  static StatusOr<std::unique_ptr<MetricsPublisher>> Start(
      zmq::context_t& context, const std::string& endpoint, const std::string& stage,
      const StageCounters& counters, std::chrono::steady_clock::time_point started,
      Options options);
  static StatusOr<std::unique_ptr<MetricsPublisher>> Start(
      zmq::context_t& context, const std::string& endpoint, const std::string& stage,
      const StageCounters& counters, std::chrono::steady_clock::time_point started) {
    return Start(context, endpoint, stage, counters, started, Options());
  }
  ~MetricsPublisher();  // Stop()
  MetricsPublisher(const MetricsPublisher&) = delete;
  MetricsPublisher& operator=(const MetricsPublisher&) = delete;

  // Sends the final snapshot and joins the thread. Idempotent.
  void Stop();

  // The snapshot the thread would send now, without rate_instant (it needs the previous one).
  static StageMetrics Snapshot(const std::string& stage, const StageCounters& counters,
                               std::chrono::steady_clock::time_point started);

 private:
  MetricsPublisher(zmq::socket_t socket, const std::string& stage, const StageCounters& counters,
                   std::chrono::steady_clock::time_point started, Options options);
  void Loop();

  zmq::socket_t socket_;  // used only by thread_ once it runs
  std::string stage_;
  const StageCounters& counters_;
  std::chrono::steady_clock::time_point started_;
  Options options_;
  std::atomic<bool> stop_{false};
  int wake_fd_ = -1;  // eventfd that Stop() writes: the thread's poll returns at once
  std::thread thread_;
};

// Resident set size of this process in bytes (from /proc/self/statm), 0 when unreadable.
uint64_t ResidentBytes();

class StageProcess {
 public:
  static StatusOr<std::unique_ptr<StageProcess>> Start(const std::string& stage, int argc,
                                                       char** argv);

  const PipelineConfig& config() const { return config_; }
  const Endpoints& endpoints() const { return endpoints_; }
  // The run's plan (run_plan.h) when started with --plan, as `nd-pipeline up` does.
  const std::optional<RunPlan>& plan() const { return plan_; }
  // The run's CURVE keys when the plan names them (curve.h), else null: pass to Channel::Open.
  const CurveKeys* curve() const { return curve_ ? &*curve_ : nullptr; }
  // Checks the stage's view of the dataset (its usable rows, index.csv's bytes) against the plan;
  // OK without a plan. Errors: FailedPrecondition naming index.csv (CheckDatasetAgainstPlan).
  [[nodiscard]] Status CheckDataset(uint64_t images) const;
  zmq::context_t& context() { return context_; }
  // Channel::Open on this process's context, with the run's CURVE keys when it has them.
  [[nodiscard]] StatusOr<Channel> OpenChannel(zmq::socket_type type, const std::string& endpoint,
                                              bool bind, int high_water_mark = 4,
                                              int linger_ms = 1000) {
    return Channel::Open(context_, type, endpoint, bind, high_water_mark, linger_ms, curve());
  }
  const std::string& stage() const { return stage_; }
  // Milliseconds a blocking send or receive waits before the peer is declared dead.
  int timeout_ms() const { return config_.run.timeout_s * 1000; }
  double elapsed_s() const;

  // True once SIGINT or SIGTERM arrived.
  static bool stop_requested();

  StageCounters& counters() { return counters_; }

  // Waits for the next message on `in`, the time counted as waiting (counters().waiting_us).
  // Errors: Cancelled ("<stage>: stopped by signal") once a stop was requested; Unavailable
  // ("<stage>: no notice from <from> for N s") after run.timeout_s without a message; the
  // channel's errors.
  [[nodiscard]] StatusOr<WireMessage> ReceiveFrom(Channel& in, const std::string& from);

  void Report(const std::string& kind, const std::string& text, uint64_t done = 0,
              uint64_t total = 0);
  // Logs and reports the outcome; returns the process exit code (0, or 1 with the reason).
  // Stops the metrics publisher first, so its final snapshot (errors += 1 on a failure other
  // than a stop request) reaches the supervisor before the "done"/"error" event.
  int Finish(const Status& status);
  static int ExitCode(const Status& status);

 private:
  StageProcess() = default;
  std::string stage_;
  PipelineConfig config_;
  Endpoints endpoints_;
  std::optional<RunPlan> plan_;
  std::optional<CurveKeys> curve_;
  zmq::context_t context_;
  std::unique_ptr<CurveAuthenticator> authenticator_;  // with curve_: admits only the run's key
  std::optional<Channel> events_;
  StageCounters counters_;
  std::chrono::steady_clock::time_point start_;
  std::unique_ptr<MetricsPublisher> metrics_;  // destroyed before context_
};

}  // namespace nd
