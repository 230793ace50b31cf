#include "tools/nd_pipeline/supervisor.h"

#include <signal.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <thread>

#include "common/log.h"
#include "common/zmq_channel.h"
#include "tools/nd_pipeline/http_server.h"
#include "tools/nd_pipeline/metrics_board.h"
#include "tools/nd_pipeline/run_files.h"

namespace nd {
namespace {

namespace fs = std::filesystem;

volatile sig_atomic_t g_interrupted = 0;
void OnInterrupt(int) { g_interrupted = 1; }

struct Child {
  std::string stage;
  pid_t pid = -1;
  bool exited = false;
  int exit_code = 0;
  uint64_t done = 0, total = 0;
  std::string error;
};

StatusOr<pid_t> Spawn(const std::string& exe, const std::string& config_path) {
  if (::access(exe.c_str(), X_OK) != 0) return NotFound(exe + ": stage executable not found");
  pid_t parent = ::getpid();
  pid_t pid = ::fork();
  if (pid < 0) return IoError(std::string("fork: ") + std::strerror(errno));
  if (pid == 0) {
    // The stage dies with the supervisor, whatever kills it: no orphans.
    ::prctl(PR_SET_PDEATHSIG, SIGKILL);
    if (::getppid() != parent) ::_exit(1);
    ::signal(SIGINT, SIG_IGN);  // Ctrl-C reaches the supervisor, which stops stages in order
    ::execl(exe.c_str(), exe.c_str(), "--config", config_path.c_str(), static_cast<char*>(nullptr));
    std::fprintf(stderr, "nd-pipeline: exec %s: %s\n", exe.c_str(), std::strerror(errno));
    ::_exit(127);
  }
  return pid;
}

void StopAll(std::vector<Child>& children, int grace_ms) {
  for (auto& c : children)
    if (!c.exited) ::kill(c.pid, SIGTERM);
  auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(grace_ms);
  for (;;) {
    bool all = true;
    for (auto& c : children) {
      if (c.exited) continue;
      int status;
      if (::waitpid(c.pid, &status, WNOHANG) == c.pid) {
        c.exited = true;
        c.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
      } else {
        all = false;
      }
    }
    if (all) return;
    if (std::chrono::steady_clock::now() > deadline) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  for (auto& c : children)
    if (!c.exited) {
      ::kill(c.pid, SIGKILL);
      ::waitpid(c.pid, nullptr, 0);
      c.exited = true;
    }
}

// The metrics SUB socket: bound by the supervisor, subscribed to everything.
StatusOr<Channel> OpenMetrics(zmq::context_t& context, const std::string& endpoint) {
  ND_ASSIGN_OR_RETURN(Channel metrics, Channel::Open(context, zmq::socket_type::sub, endpoint,
                                                     /*bind=*/true, /*high_water_mark=*/1000,
                                                     /*linger_ms=*/0));
  try {
    metrics.socket().set(zmq::sockopt::subscribe, "");
  } catch (const zmq::error_t& e) {
    return Unavailable("subscribe " + endpoint + ": " + e.what());
  }
  return metrics;
}

// Takes every metrics snapshot already queued (at most `limit`, so a flood cannot starve the
// event loop), or waits up to `wait_ms` for the first one.
void DrainMetrics(Channel& metrics, MetricsBoard& board, double now_s, int wait_ms,
                  int limit = 256) {
  for (int i = 0; i < limit; ++i) {
    auto msg = metrics.Receive(i == 0 ? wait_ms : 0);
    if (!msg.ok()) {
      LogWarning(msg.status().message());
      continue;
    }
    if (!msg->has_value()) return;
    StageMetrics m;
    Status decoded = Decode(**msg, &m);
    if (decoded.ok()) {
      board.Update(m, now_s);
    } else {
      LogWarning("metrics: " + decoded.message());
    }
  }
}

std::string ExitState(const Child& c, bool stopped_by_us) {
  if (c.exit_code == 0) return "done";
  return stopped_by_us ? "stopped" : "failed";
}

}  // namespace

Supervisor::Supervisor(PipelineConfig config, SupervisorOptions options)
    : config_(std::move(config)), options_(std::move(options)) {}

StatusOr<RunReport> Supervisor::Run() {
  auto start = std::chrono::steady_clock::now();
  std::error_code ec;
  const std::string run_dir = RunDirectory(config_);
  for (const std::string& dir : {config_.output.dir, run_dir, config_.cache.dir}) {
    fs::create_directories(dir, ec);
    if (ec) return IoError(dir + ": cannot create directory: " + ec.message());
  }
  const std::string config_path = (fs::path(run_dir) / "config.toml").string();
  {
    std::ofstream out(config_path);
    out << "# written by nd-pipeline up: the effective configuration of this run\n"
        << ConfigToToml(config_);
    if (!out) return IoError(config_path + ": cannot write");
  }
  ND_ASSIGN_OR_RETURN(PidFile pid_file, PidFile::Create(SupervisorPidPath(config_)));
  zmq::context_t context;
  Endpoints endpoints = MakeEndpoints(config_);
  ND_ASSIGN_OR_RETURN(Channel events, Channel::Open(context, zmq::socket_type::pull,
                                                    endpoints.events, /*bind=*/true, 10000));
  ND_ASSIGN_OR_RETURN(Channel metrics, OpenMetrics(context, endpoints.metrics));
  auto seconds = [&] {
    return std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  };
  MetricsBoard board(options_.stages, config_.source, run_dir, ::getpid(), config_.run.http_port);
  std::unique_ptr<HttpServer> http;
  if (config_.run.http_port != 0) {
    // Started before any stage, so that a taken port fails the run before it costs anything.
    ND_ASSIGN_OR_RETURN(
        http,
        HttpServer::Start(config_.run.http_port, [&board, &seconds](const HttpRequest& request) {
          return ServeBoard(board.Snapshot(seconds()), request);
        }));
  }
  const std::string status_path = StatusFilePath(config_);
  bool status_write_failed = false;
  auto write_status = [&] {
    Status s = WriteFileAtomically(status_path, BoardToJson(board.Snapshot(seconds())));
    if (!s.ok() && !status_write_failed) LogWarning(s.message());
    status_write_failed = !s.ok();
  };
  struct sigaction sa {};
  sa.sa_handler = OnInterrupt;
  ::sigaction(SIGINT, &sa, nullptr);
  ::sigaction(SIGTERM, &sa, nullptr);

  std::vector<Child> children;
  for (const std::string& stage : options_.stages) {
    auto pid = Spawn((fs::path(options_.bin_dir) / ("nd-stage-" + stage)).string(), config_path);
    if (!pid.ok()) {
      StopAll(children, 2000);
      return pid.status();
    }
    Child child;
    child.stage = stage;
    child.pid = *pid;
    children.push_back(child);
    board.SetStageProcess(stage, *pid, "starting");
  }
  write_status();

  RunReport report;
  Status failure;
  const bool tty = options_.progress_on_terminal && ::isatty(2);
  auto last_print = std::chrono::steady_clock::now();
  auto last_status = last_print;
  for (;;) {
    if (g_interrupted) {
      failure = Cancelled("interrupted; stages stopped, committed batches stay in the cache");
      break;
    }
    auto msg = events.Receive(100);
    if (!msg.ok()) LogWarning(msg.status().message());
    if (msg.ok() && msg->has_value()) {
      StageEvent ev;
      if (Decode(**msg, &ev).ok()) {
        for (auto& c : children)
          if (c.stage == ev.stage) {
            if (ev.kind == "progress") {
              c.done = ev.done;
              c.total = ev.total;
            } else if (ev.kind == "error") {
              c.error = ev.text;
            } else if (ev.kind == "result") {
              report.results.push_back(ev.text);
            }
          }
      }
    }
    for (auto& c : children) {
      if (c.exited) continue;
      int status;
      if (::waitpid(c.pid, &status, WNOHANG) == c.pid) {
        c.exited = true;
        c.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
        board.SetStageProcess(c.stage, c.pid, ExitState(c, false), c.exit_code);
        if (c.exit_code != 0 && failure.ok()) {
          // Drain events briefly: the stage's own reason usually arrives just before it exits.
          for (int i = 0; i < 5 && c.error.empty(); ++i) {
            auto late = events.Receive(50);
            StageEvent ev;
            if (late.ok() && late->has_value() && Decode(**late, &ev).ok() && ev.kind == "error")
              for (auto& d : children)
                if (d.stage == ev.stage) d.error = ev.text;
          }
          std::string why =
              c.error.empty()
                  ? (WIFSIGNALED(status) ? "killed by signal " + std::to_string(WTERMSIG(status))
                                         : "exited with code " + std::to_string(c.exit_code))
                  : c.error;
          failure = Unavailable("stage " + c.stage + " failed: " + why);
        }
      }
    }
    if (!failure.ok()) break;
    // The run is complete when the last stage has finished: the producers before it wait for
    // their release after END_OF_STREAM (common/stage_release.h) and are stopped below.
    if (children.back().exited) break;
    DrainMetrics(metrics, board, seconds(), 0);
    auto now = std::chrono::steady_clock::now();
    if (now - last_status >= std::chrono::seconds(1)) {
      last_status = now;
      write_status();
    }
    if (now - last_print > std::chrono::milliseconds(tty ? 250 : 5000)) {
      last_print = now;
      std::string line = ProgressLine(board.Snapshot(seconds()));
      if (tty)
        std::fprintf(stderr, "\r%s\033[K", line.c_str());
      else
        LogInfo(line);
    }
  }
  if (tty) std::fprintf(stderr, "\r\033[K");
  std::vector<bool> exited_before(children.size());
  for (size_t i = 0; i < children.size(); ++i) exited_before[i] = children[i].exited;
  StopAll(children, 5000);
  for (size_t i = 0; i < children.size(); ++i)
    if (!exited_before[i])
      board.SetStageProcess(children[i].stage, children[i].pid, ExitState(children[i], true),
                            children[i].exit_code);
  // The stages' final snapshots were sent before they exited; take them (bounded: a stage that
  // was killed never sends one) so that status.json ends with the final counters.
  auto drain_until = std::chrono::steady_clock::now() + std::chrono::seconds(1);
  while (!board.AllFinal() && std::chrono::steady_clock::now() < drain_until)
    DrainMetrics(metrics, board, seconds(), 50);
  DrainMetrics(metrics, board, seconds(), 0);
  if (failure.ok()) {
    board.SetRunState("done");
  } else {
    board.SetRunState(failure.code() == StatusCode::kCancelled ? "stopped" : "failed",
                      failure.message());
  }
  write_status();
  if (http) http->Stop();
  report.wall_s = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  if (!failure.ok()) return failure;
  return report;
}

}  // namespace nd
