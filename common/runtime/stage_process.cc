#include "common/runtime/stage_process.h"

#include <pthread.h>
#include <signal.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include <algorithm>
#include <csignal>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <vector>

#include "common/base/args.h"
#include "common/base/log.h"
#include "common/runtime/run_plan.h"

namespace nd {
namespace {

volatile std::sig_atomic_t g_stop = 0;

void OnSignal(int) { g_stop = 1; }

double Seconds(std::chrono::steady_clock::duration d) {
  return std::chrono::duration<double>(d).count();
}

}  // namespace

uint64_t ResidentBytes() {
  std::ifstream statm("/proc/self/statm");
  uint64_t size = 0, resident = 0;
  if (!(statm >> size >> resident)) return 0;
  long page = ::sysconf(_SC_PAGESIZE);
  return resident * static_cast<uint64_t>(page > 0 ? page : 4096);
}

StageMetrics MetricsPublisher::Snapshot(const std::string& stage, const StageCounters& counters,
                                        std::chrono::steady_clock::time_point started) {
  StageMetrics m;
  m.stage = stage;
  m.pid = static_cast<uint64_t>(::getpid());
  m.items_in = counters.items_in.load();
  m.items_out = counters.items_out.load();
  m.items_total = counters.items_total.load();
  m.skipped = counters.skipped.load();
  m.errors = counters.errors.load();
  m.blocked_s = counters.blocked_us.live_us() / 1e6;
  m.waiting_s = counters.waiting_us.live_us() / 1e6;
  m.rss_bytes = ResidentBytes();
  m.uptime_s = Seconds(std::chrono::steady_clock::now() - started);
  m.rate_average = m.uptime_s > 0 ? m.items_out / m.uptime_s : 0;
  return m;
}

StatusOr<std::unique_ptr<MetricsPublisher>> MetricsPublisher::Start(
    zmq::context_t& context, const std::string& endpoint, const std::string& stage,
    const StageCounters& counters, std::chrono::steady_clock::time_point started, Options options) {
  try {
    zmq::socket_t socket(context, zmq::socket_type::xpub);
    // Long enough to flush the final snapshot when the process exits, short enough that a dead
    // supervisor never delays the exit by more than this.
    socket.set(zmq::sockopt::linger, 1000);
    socket.set(zmq::sockopt::sndhwm, 16);
    if (options.curve != nullptr) ApplyCurve(socket, *options.curve, /*bind=*/false);
    socket.connect(endpoint);
    std::unique_ptr<MetricsPublisher> p(
        new MetricsPublisher(std::move(socket), stage, counters, started, options));
    // The socket moves to the thread here; thread creation is the full memory barrier ZeroMQ
    // asks for when a socket changes threads.
    p->thread_ = std::thread([raw = p.get()] { raw->Loop(); });
    return p;
  } catch (const zmq::error_t& e) {
    return Unavailable("metrics: connect " + endpoint + ": " + e.what());
  } catch (const std::system_error& e) {
    return Internal(std::string("metrics: cannot start the publisher thread: ") + e.what());
  }
}

MetricsPublisher::MetricsPublisher(zmq::socket_t socket, const std::string& stage,
                                   const StageCounters& counters,
                                   std::chrono::steady_clock::time_point started, Options options)
    : socket_(std::move(socket)),
      stage_(stage),
      counters_(counters),
      started_(started),
      options_(options),
      wake_fd_(::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK)) {}

MetricsPublisher::~MetricsPublisher() {
  Stop();
  if (wake_fd_ >= 0) ::close(wake_fd_);
}

void MetricsPublisher::Stop() {
  stop_ = true;
  if (wake_fd_ >= 0) {
    const uint64_t one = 1;
    [[maybe_unused]] ssize_t w = ::write(wake_fd_, &one, sizeof one);
  }
  if (thread_.joinable()) thread_.join();
}

void MetricsPublisher::Loop() {
  // Signals belong to the main thread: its blocking receives must see EINTR and stop_requested().
  sigset_t all;
  sigfillset(&all);
  pthread_sigmask(SIG_BLOCK, &all, nullptr);
  using Clock = std::chrono::steady_clock;
  constexpr auto kTick = std::chrono::milliseconds(50);  // how quickly Stop() is noticed
  uint64_t sequence = 0;
  bool subscribed = false;
  uint64_t last_out = 0;
  Clock::time_point last_at = started_;
  auto publish = [&](bool final) {
    StageMetrics m = Snapshot(stage_, counters_, started_);
    Clock::time_point now = Clock::now();
    double dt = Seconds(now - last_at);
    m.rate_instant = dt > 0 ? (m.items_out - last_out) / dt : 0;
    m.sequence = sequence++;
    m.final = final;
    last_out = m.items_out;
    last_at = now;
    WireMessage msg = Encode(m);
    try {
      // dontwait: a PUB socket drops rather than blocks; the counters are cumulative, so the
      // next snapshot carries whatever this one would have said.
      socket_.send(zmq::buffer(msg.frames[0]),
                   zmq::send_flags::sndmore | zmq::send_flags::dontwait);
      socket_.send(zmq::buffer(msg.frames[1]), zmq::send_flags::dontwait);
    } catch (const zmq::error_t&) {
      // Best effort by design; the stage's own work must never fail because of metrics.
    }
  };
  // Waits up to `d` for subscription messages; returns early when Stop() was called, unless
  // `to_the_end`.
  auto wait = [&](Clock::duration d, bool to_the_end = false) {
    Clock::time_point until = Clock::now() + d;
    while ((to_the_end || !stop_) && Clock::now() < until) {
      auto left = std::chrono::duration_cast<std::chrono::milliseconds>(until - Clock::now());
      try {
        // The wake eventfd ends a wait as soon as Stop() is called (a stage's exit is not
        // delayed by a tick); it stays readable afterwards, so the final wait leaves it out.
        zmq::pollitem_t items[2] = {{static_cast<void*>(socket_), 0, ZMQ_POLLIN, 0},
                                    {nullptr, wake_fd_, ZMQ_POLLIN, 0}};
        const size_t n = to_the_end || wake_fd_ < 0 ? 1 : 2;
        if (zmq::poll(items, n, std::min<std::chrono::milliseconds>(left, kTick)) > 0 &&
            (items[0].revents & ZMQ_POLLIN)) {
          zmq::message_t sub;
          while (socket_.recv(sub, zmq::recv_flags::dontwait)) {
            if (sub.size() > 0 && static_cast<const char*>(sub.data())[0] == 1) subscribed = true;
          }
        }
      } catch (const zmq::error_t&) {
        std::this_thread::sleep_for(kTick);
      }
    }
  };
  // The first subscription usually arrives within milliseconds; waiting a little for it keeps
  // the very first snapshot from being dropped by the PUB slow-joiner effect.
  Clock::time_point first_until = Clock::now() + std::chrono::milliseconds(200);
  while (!stop_ && !subscribed && Clock::now() < first_until) wait(kTick);
  // Parent watch (Options::parent_pid): SIGTERM once the parent is gone, SIGKILL 10 s later.
  bool parent_gone = false;
  Clock::time_point parent_gone_at;
  auto check_parent = [&] {
    if (options_.parent_pid <= 1 || ::getppid() == static_cast<pid_t>(options_.parent_pid)) return;
    if (!parent_gone) {
      parent_gone = true;
      parent_gone_at = Clock::now();
      LogWarning("the supervisor (pid " + std::to_string(options_.parent_pid) +
                 ") is gone; stopping");
      ::kill(::getpid(), SIGTERM);
    } else if (Clock::now() - parent_gone_at > std::chrono::seconds(10)) {
      ::kill(::getpid(), SIGKILL);
    }
  };
  Clock::time_point next = Clock::now();
  while (!stop_) {
    check_parent();
    publish(false);
    next = std::max(next + options_.interval, Clock::now());
    wait(next - Clock::now());
  }
  Clock::time_point until = Clock::now() + options_.final_wait;
  while (!subscribed && Clock::now() < until) wait(kTick, /*to_the_end=*/true);
  publish(true);
  try {
    socket_.close();  // queued snapshots still go out within the linger period
  } catch (const zmq::error_t&) {
  }
}

bool StageProcess::stop_requested() { return g_stop != 0; }

StatusOr<std::unique_ptr<StageProcess>> StageProcess::Start(const std::string& stage, int argc,
                                                            char** argv) {
  SetLogComponent(stage);
  std::signal(SIGINT, OnSignal);
  std::signal(SIGTERM, OnSignal);
  std::signal(SIGPIPE, SIG_IGN);
  // Past RLIMIT_FSIZE a write fails with EFBIG instead of killing the process, so that a full
  // disk or a file-size limit is reported as an error naming the file (the cache: "disk full").
  std::signal(SIGXFSZ, SIG_IGN);
  std::string config_path, plan_path;
  std::vector<std::string> overrides;
  ArgParser parser;
  AddConfigOptions(&parser, &config_path, &overrides);
  parser.String("--plan", &plan_path);
  const Status parsed = parser.Parse(argc, argv);
  if (!parsed.ok()) return InvalidArgument("nd-stage-" + stage + ": " + parsed.message());
  if (parser.help()) {
    std::printf(
        "usage: nd-stage-%s --config FILE [--plan FILE] [--set section.key=value ...]\n"
        "Started by `nd-pipeline up`; see README.md.\n",
        stage.c_str());
    return Cancelled("help");
  }
  ND_ASSIGN_OR_RETURN(PipelineConfig config, LoadConfig(config_path, overrides));
  std::unique_ptr<StageProcess> p(new StageProcess());
  p->stage_ = stage;
  p->config_ = std::move(config);
  p->endpoints_ = MakeEndpoints(p->config_);
  if (!plan_path.empty()) {
    ND_ASSIGN_OR_RETURN(RunPlan plan, ReadRunPlan(plan_path));
    if (plan.model_digest != p->config_.run.model_digest) {
      return FailedPrecondition(plan_path +
                                ": model_digest differs from the run's config ("
                                "run.model_digest); `nd-pipeline up` again plans a new run");
    }
    p->endpoints_ = plan.endpoints;
    if (!plan.curve_keys.empty()) {
      ND_ASSIGN_OR_RETURN(CurveKeys keys, ReadCurveKeys(plan.curve_keys));
      // Before any socket binds: every CURVE handshake of this process asks the handler.
      ND_ASSIGN_OR_RETURN(p->authenticator_, CurveAuthenticator::Start(p->context_, keys, stage));
      p->curve_ = std::move(keys);
    }
    p->plan_ = std::move(plan);
  }
  p->start_ = std::chrono::steady_clock::now();
  auto events =
      Channel::Open(p->context_, zmq::socket_type::push, p->endpoints_.events, false, 1000,
                    /*linger_ms=*/1000, p->curve());
  if (!events.ok()) return events.status();
  p->events_.emplace(std::move(events).value());
  MetricsPublisher::Options metrics_options;
  metrics_options.parent_pid = ::getppid();
  metrics_options.curve = p->curve();
  ND_ASSIGN_OR_RETURN(
      p->metrics_, MetricsPublisher::Start(p->context_, p->endpoints_.metrics, stage, p->counters_,
                                           p->start_, metrics_options));
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
  if (!status.ok() && status.code() != StatusCode::kCancelled) ++counters_.errors;
  if (metrics_) metrics_->Stop();
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

namespace nd {

StatusOr<WireMessage> StageProcess::ReceiveFrom(Channel& in, const std::string& from) {
  if (stop_requested()) return Cancelled(stage_ + ": stopped by signal");
  StatusOr<std::optional<WireMessage>> received = std::optional<WireMessage>();
  {
    ScopedMicros waiting(counters_.waiting_us);
    received = in.Receive(timeout_ms());
  }
  ND_ASSIGN_OR_RETURN(std::optional<WireMessage> msg, std::move(received));
  if (!msg && stop_requested()) return Cancelled(stage_ + ": stopped by signal");
  if (!msg) {
    return Unavailable(stage_ + ": no notice from " + from + " for " +
                       std::to_string(config_.run.timeout_s) + " s");
  }
  return std::move(*msg);
}

Status StageProcess::CheckDataset(uint64_t images) const {
  if (!plan_) return Status::Ok();
  return CheckDatasetAgainstPlan(
      *plan_, (std::filesystem::path(config_.dataset.path) / "index.csv").string(), images);
}

}  // namespace nd
