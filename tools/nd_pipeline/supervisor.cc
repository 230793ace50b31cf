#include "tools/nd_pipeline/supervisor.h"

#include <signal.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <optional>
#include <set>
#include <thread>
#include <vector>

#include "cache/activation_cache.h"
#include "cache/file_digest_memo.h"
#include "cache/pipeline_keys.h"
#include "common/base/atomic_file.h"
#include "common/base/descriptors.h"
#include "common/base/digest.h"
#include "common/base/file_identity.h"
#include "common/base/log.h"
#include "common/base/parallel.h"
#include "common/broden/broden_dataset.h"
#include "common/runtime/http_server.h"
#include "common/runtime/run_plan.h"
#include "common/runtime/zmq_channel.h"
#include "tools/nd_pipeline/metrics_board.h"
#include "tools/nd_pipeline/run_files.h"

namespace nd {
namespace {

namespace fs = std::filesystem;

// Ctrl-C (or SIGTERM) count: 1 = stop the stages cleanly, 2 = kill them at once.
volatile sig_atomic_t g_interrupts = 0;
void OnInterrupt(int) {
  if (g_interrupts < 2) g_interrupts = g_interrupts + 1;
}

// A stage gets this long (or run.heartbeat_timeout_s, when longer) to send its first snapshot:
// starting a LibTorch process on a loaded machine can take seconds before its publisher runs.
constexpr double kFirstHeartbeatAllowanceS = 60;

struct Child {
  std::string stage;
  pid_t pid = -1;
  bool exited = false;
  int exit_code = 0;  // 128 + signal when killed
  std::string error;
  double spawned_s = 0;
  double heard_s = -1;  // supervisor clock of the latest snapshot from this pid; -1 = none yet
  bool final_seen = false;
  bool done_reported = false;  // its "done" event arrived: it exits within milliseconds
};

StatusOr<pid_t> Spawn(const std::string& exe, const std::string& config_path,
                      const std::string& plan_path) {
  if (::access(exe.c_str(), X_OK) != 0) return NotFound(exe + ": stage executable not found");
  // The stage's environment is the supervisor's, with OMP_WAIT_POLICY=PASSIVE unless the user set
  // it: LibTorch's OpenMP threads (extract's forward pass) then wait for work sleeping rather than
  // spinning. The stages share the cores, and a thread that spins at a barrier while its partner
  // waits for a core that decode holds only delays both (ResNet-18 cold runs on 2 cores:
  // 12.0-14.3 s spinning, 12.1-12.2 s sleeping, up to 1.9 CPU-s less user time). libgomp reads it
  // when it is loaded, so it goes into the environment the stage is started with.
  std::vector<std::string> env;
  bool wait_policy_set = false;
  for (char** e = environ; *e != nullptr; ++e) {
    env.emplace_back(*e);
    wait_policy_set = wait_policy_set || env.back().rfind("OMP_WAIT_POLICY=", 0) == 0;
  }
  if (!wait_policy_set) env.emplace_back("OMP_WAIT_POLICY=PASSIVE");
  std::vector<char*> envp;
  for (std::string& e : env) envp.push_back(e.data());
  envp.push_back(nullptr);
  std::string arg_config = "--config", arg_plan = "--plan", config = config_path, plan = plan_path,
              program = exe;
  char* argv[] = {program.data(),  arg_config.data(), config.data(),
                  arg_plan.data(), plan.data(),       nullptr};
  pid_t parent = ::getpid();
  pid_t pid = ::fork();
  if (pid < 0) return IoError(std::string("fork: ") + std::strerror(errno));
  if (pid == 0) {
    // The stage dies with the supervisor, whatever kills it: no orphans.
    ::prctl(PR_SET_PDEATHSIG, SIGKILL);
    if (::getppid() != parent) ::_exit(1);
    ::signal(SIGINT, SIG_IGN);  // Ctrl-C reaches the supervisor, which stops stages in order
    CloseDescriptorsFrom(3);    // the stage holds only what it opens itself (descriptors.h)
    ::execve(exe.c_str(), argv, envp.data());
    std::fprintf(stderr, "nd-pipeline: exec %s: %s\n", exe.c_str(), std::strerror(errno));
    ::_exit(127);
  }
  return pid;
}

int ExitCodeOf(int status) {
  return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}

// SIGTERM to every live stage, up to `grace_ms` for them to exit, then SIGKILL; a second Ctrl-C
// cuts the grace period short. Reaps every child: no zombies, no orphans.
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
        c.exit_code = ExitCodeOf(status);
      } else {
        all = false;
      }
    }
    if (all) return;
    if (std::chrono::steady_clock::now() > deadline || g_interrupts >= 2) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(2));
  }
  for (auto& c : children)
    if (!c.exited) {
      ::kill(c.pid, SIGKILL);
      int status = 0;
      ::waitpid(c.pid, &status, 0);
      c.exited = true;
      c.exit_code = ExitCodeOf(status);
    }
}

// The stale ipc socket files of the endpoints the stages bind (a killed stage leaves its file
// behind); the supervisor's own events and metrics sockets stay.
void RemoveStaleStageSockets(const PipelineConfig& config, const Endpoints& endpoints) {
  if (config.run.transport != "ipc") return;
  for (const std::string& endpoint : {endpoints.images, endpoints.ready, endpoints.scored}) {
    const std::string prefix = "ipc://";
    if (endpoint.rfind(prefix, 0) != 0) continue;
    std::error_code ec;
    fs::remove(endpoint.substr(prefix.size()), ec);
  }
}

std::string SignalText(int signal) {
  const char* name = ::strsignal(signal);
  return "signal " + std::to_string(signal) + (name ? std::string(" (") + name + ")" : "");
}

// The metrics SUB socket: bound by the supervisor, subscribed to everything.
StatusOr<Channel> OpenMetrics(zmq::context_t& context, const std::string& endpoint,
                              const CurveKeys* curve) {
  ND_ASSIGN_OR_RETURN(Channel metrics, Channel::Open(context, zmq::socket_type::sub, endpoint,
                                                     /*bind=*/true, /*high_water_mark=*/1000,
                                                     /*linger_ms=*/0, curve));
  try {
    metrics.socket().set(zmq::sockopt::subscribe, "");
  } catch (const zmq::error_t& e) {
    return Unavailable("subscribe " + endpoint + ": " + e.what());
  }
  return metrics;
}

// Takes every metrics snapshot already queued (at most `limit`, so a flood cannot starve the
// event loop), or waits up to `wait_ms` for the first one. Only snapshots of the current
// `children` count (a killed generation's late ones are dropped); each is that child's heartbeat.
void DrainMetrics(Channel& metrics, MetricsBoard& board, std::vector<Child>& children, double now_s,
                  int wait_ms, int limit = 256) {
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
      bool ours = false;
      for (Child& c : children) {
        if (c.stage != m.stage || static_cast<uint64_t>(c.pid) != m.pid) continue;
        ours = true;
        c.heard_s = now_s;
        c.final_seen = c.final_seen || m.final;
        board.Update(m, now_s);
      }
      // Said once per process: a killed generation's late snapshots, or a process that is not a
      // stage of this run publishing to its endpoint.
      static std::set<uint64_t> told;
      if (!ours && told.insert(m.pid).second) {
        LogInfo("metrics: snapshots of " + m.stage + " pid " + std::to_string(m.pid) +
                " are not from a stage of this run; dropped");
      }
    } else {
      LogWarning("metrics: " + decoded.message());
    }
  }
}

// Takes one stage event (waiting up to `timeout_ms`): an error is kept on its stage's child, a
// result line is appended to *results.
void ReceiveEvent(Channel& events, int timeout_ms, std::vector<Child>& children,
                  std::vector<std::string>* results) {
  auto msg = events.Receive(timeout_ms);
  if (!msg.ok()) LogWarning(msg.status().message());
  if (!msg.ok() || !msg->has_value()) return;
  StageEvent ev;
  if (!Decode(**msg, &ev).ok()) return;
  for (auto& c : children) {
    if (c.stage != ev.stage) continue;
    if (ev.kind == "error") {
      c.error = ev.text;
    } else if (ev.kind == "done") {
      c.done_reported = true;
    } else if (ev.kind == "result" && results != nullptr) {
      results->push_back(ev.text);
    }
  }
}

// Reaps the stages that exited. A crash (signal, kill -9, OOM killer, exit 130 from a signal
// that did not come from the supervisor) sets *crash: worth another try. A stage's own failure
// (bad config, unknown layer, bad model) sets *failure: deterministic, not restarted.
void ReapStages(Channel& events, std::vector<Child>& children, MetricsBoard& board, Status* failure,
                std::string* crash) {
  for (auto& c : children) {
    if (c.exited) continue;
    int status;
    if (::waitpid(c.pid, &status, WNOHANG) != c.pid) continue;
    c.exited = true;
    c.exit_code = ExitCodeOf(status);
    board.SetStageProcess(c.stage, c.pid, c.exit_code == 0 ? "done" : "failed", c.exit_code);
    if (c.exit_code == 0 || !failure->ok() || !crash->empty()) continue;
    if (WIFSIGNALED(status)) {
      *crash = "stage " + c.stage + " killed by " + SignalText(WTERMSIG(status));
      continue;
    }
    if (c.exit_code == 130) {
      *crash = "stage " + c.stage + " exited with code 130 (stopped by a signal)";
      continue;
    }
    // The stage's reason usually arrives just before the exit; drain events briefly.
    for (int i = 0; i < 5 && c.error.empty(); ++i) ReceiveEvent(events, 50, children, nullptr);
    std::string why = c.error.empty() ? "exited with code " + std::to_string(c.exit_code) : c.error;
    *failure = Unavailable("stage " + c.stage + " failed: " + why);
  }
}

// Kills the first live stage silent for longer than its heartbeat allowance and says why; "" when
// every stage was heard from in time.
std::string KillSilentStage(std::vector<Child>& children, MetricsBoard& board, double now_s,
                            double heartbeat_s) {
  for (auto& c : children) {
    if (c.exited || c.final_seen) continue;
    const bool heard = c.heard_s >= 0;
    const double silent_s = now_s - (heard ? c.heard_s : c.spawned_s);
    const double limit_s = heard ? heartbeat_s : std::max(heartbeat_s, kFirstHeartbeatAllowanceS);
    if (silent_s <= limit_s) continue;
    ::kill(c.pid, SIGKILL);
    int status = 0;
    ::waitpid(c.pid, &status, 0);
    c.exited = true;
    c.exit_code = ExitCodeOf(status);
    board.SetStageProcess(c.stage, c.pid, "failed", c.exit_code);
    char buf[160];
    std::snprintf(buf, sizeof(buf), "stage %s sent no heartbeat for %.1f s (killed)",
                  c.stage.c_str(), silent_s);
    return buf;
  }
  return "";
}

// The error of an interrupted run: how far it got, read before the counters are overwritten by
// the stopped stages.
Status InterruptedStatus(const BoardSnapshot& b) {
  std::string progress;
  for (const StageBoardRow& r : b.stages)
    progress += (progress.empty() ? "" : ", ") + r.stage + " " +
                std::to_string(r.metrics.items_out) + "/" + std::to_string(r.total);
  return Cancelled("interrupted: all stages stopped (images passed on: " + progress +
                   "); what was committed stays in the cache, and `nd-pipeline up` again "
                   "resumes from it");
}

// Stops every stage of a generation (SIGTERM, then SIGKILL after `grace_ms`) and records on the
// board how each that was still running ended.
void StopGeneration(std::vector<Child>& children, MetricsBoard& board, int grace_ms) {
  std::vector<bool> exited_before(children.size());
  for (size_t i = 0; i < children.size(); ++i) exited_before[i] = children[i].exited;
  StopAll(children, grace_ms);
  for (size_t i = 0; i < children.size(); ++i)
    if (!exited_before[i])
      board.SetStageProcess(children[i].stage, children[i].pid,
                            children[i].exit_code == 0 ? "done" : "stopped", children[i].exit_code);
}

// Starts one process per stage of `options` on the run's config file.
Status SpawnStages(const PipelineConfig& config, const SupervisorOptions& options,
                   const std::string& config_path, bool relay_extract, double now_s,
                   MetricsBoard& board, std::vector<Child>* children) {
  for (const std::string& stage : options.stages) {
    // score.device other than "cpu" needs the tensor engine, in its own executable: the CPU
    // scorer never loads LibTorch. Neither does extract's relay, started when every image is
    // cached already (stages/extract/relay_pool.h), nor decode's.
    std::string exe = "nd-stage-" + stage;
    if (stage == "score" && config.score.device != "cpu") exe = "nd-stage-score-tensor";
    if (stage == "extract" && relay_extract) exe = "nd-stage-extract-relay";
    // With the relay, decode only stats files and reads the cache: its build without the image
    // decoder starts without OpenCV's shared libraries.
    if (stage == "decode" && relay_extract) exe = "nd-stage-decode-relay";
    auto pid = Spawn((fs::path(options.bin_dir) / exe).string(), config_path, RunPlanPath(config));
    if (!pid.ok()) {
      StopAll(*children, 2000);
      return pid.status();
    }
    Child child;
    child.stage = stage;
    child.pid = *pid;
    child.spawned_s = now_s;
    children->push_back(child);
    board.SetStageProcess(stage, *pid, "starting");
  }
  return Status::Ok();
}

// The stages' final snapshots were sent before they exited; takes them (bounded: a stage that was
// killed never sends one) so that status.json ends with the final counters, and sets the run's
// final state from `failure`.
template <typename Clock>
void FinishBoard(Channel& metrics, MetricsBoard& board, std::vector<Child>& children,
                 const Clock& seconds, const Status& failure) {
  auto drain_until = std::chrono::steady_clock::now() + std::chrono::seconds(1);
  while (!board.AllFinal() && std::chrono::steady_clock::now() < drain_until)
    DrainMetrics(metrics, board, children, seconds(), 50);
  DrainMetrics(metrics, board, children, seconds(), 0);
  if (failure.ok()) {
    board.SetRunState("done");
  } else {
    board.SetRunState(failure.code() == StatusCode::kCancelled ? "stopped" : "failed",
                      failure.message());
  }
}

// Whether every image of `dataset` has a current activation record of every configured layer:
// then no image needs the network (a rescore), and extract's LibTorch-free relay can stand in for
// it. An image the digest memo knows as unchanged costs a stat; one it does not know (new paths to
// the same bytes, as an expanded dataset's hard links) is hashed here and recorded in the memo, as
// decode would; false on the first image without activations (a cold run hashes one file), or
// with decode.rehash.
// *image_set: when true, the ImageSetDigest of every image (the run plan's image_set), else "".
StatusOr<bool> EveryImageCached(const PipelineConfig& config, const BrodenDataset& dataset,
                                std::string* image_set) {
  image_set->clear();
  if (config.decode.rehash || dataset.images().empty()) return false;
  std::vector<std::string> digests;
  ND_ASSIGN_OR_RETURN(const std::vector<LayerId> layers, ConfiguredLayers(config));
  ND_ASSIGN_OR_RETURN(ActivationCache cache, ActivationCache::Open(CacheOptionsFor(config)));
  FileDigestMemo memo(&cache);
  std::vector<std::string> prefixes;
  for (const LayerId& id : layers) prefixes.push_back(LayerKeyPrefix(id));
  // On every core, a chunk at a time: the first image without activations ends the check (a
  // cold run looks at one chunk), and files the memo does not know are hashed side by side.
  const size_t n = dataset.images().size();
  digests.resize(n);
  std::vector<FileDigestEntry> entries(n);
  const int threads = std::max(1, static_cast<int>(std::thread::hardware_concurrency()));
  constexpr size_t kChunk = 64;
  for (size_t begin = 0; begin < n; begin += kChunk) {
    const size_t end = std::min(n, begin + kChunk);
    std::atomic<bool> all_cached{true};
    const Status checked = ParallelFor(
        end - begin, threads,
        [&](size_t k) -> Status {
          if (!all_cached) return Status::Ok();
          const size_t i = begin + k;
          auto path = dataset.ResolveImagePath(dataset.images()[i].image);
          FileDigestEntry& e = entries[i];
          // The identity is read before the bytes (as decode does): a file changed after this
          // point gets a newer ctime, so a stale digest is never recorded under its new identity.
          e.stat_time_ns = WallClockNs();
          if (!path.ok() || !ReadFileIdentity(*path, &e.identity)) {
            all_cached = false;
            return Status::Ok();
          }
          std::string digest = memo.Lookup(*path, e.identity);
          if (digest.empty()) {
            auto sha = Sha256File(*path);
            if (!sha.ok()) {
              all_cached = false;
              return Status::Ok();
            }
            digest = *sha;
            e.path = *path;  // hashed here: recorded in the memo below
            e.digest = digest;
          }
          for (const std::string& prefix : prefixes) {
            auto current = cache.ContainsCurrentActivation(ActivationKey(prefix, digest));
            if (!current.ok() || !*current) all_cached = false;
          }
          digests[i] = std::move(digest);
          return Status::Ok();
        },
        "plan");
    if (!checked.ok() || !all_cached) return false;
  }
  std::vector<FileDigestEntry> hashed;  // for the memo
  for (FileDigestEntry& e : entries)
    if (!e.path.empty()) hashed.push_back(std::move(e));
  if (!hashed.empty()) {
    const Status recorded = memo.Record(hashed);
    if (!recorded.ok()) LogWarning("digest memo: " + recorded.message());
  }
  *image_set = ImageSetDigest(std::move(digests));
  return true;
}

// The run's plan: the model digest (hashed once, above), the dataset's usable rows and index.csv's
// digest, the endpoints, the layers' cache identities. *every_image_cached: EveryImageCached.
StatusOr<RunPlan> MakeRunPlan(const PipelineConfig& config, bool* every_image_cached) {
  RunPlan plan;
  plan.model_digest = config.run.model_digest;
  ND_ASSIGN_OR_RETURN(const BrodenDataset dataset,
                      BrodenDataset::Open(config.dataset.path, BrodenOptionsFor(config.dataset)));
  ND_ASSIGN_OR_RETURN(*every_image_cached, EveryImageCached(config, dataset, &plan.image_set));
  plan.images = dataset.images().size();
  ND_ASSIGN_OR_RETURN(plan.index_digest,
                      Sha256File((fs::path(config.dataset.path) / "index.csv").string()));
  plan.endpoints = MakeEndpoints(config);
  ND_ASSIGN_OR_RETURN(const std::vector<LayerId> layers, ConfiguredLayers(config));
  for (const LayerId& id : layers) plan.layers.push_back(PlannedLayer{id.layer, LayerHash(id)});
  return plan;
}

// The supervisor's side of a run's connections: with CURVE (run.curve; common/runtime/curve.h)
// the run's keys, written for the stages before any socket binds, and the handler that admits
// only them; the events and metrics channels it binds.
struct RunChannels {
  std::optional<CurveKeys> curve;
  std::string curve_path;  // absolute path of curve.keys; "" without CURVE
  std::unique_ptr<CurveAuthenticator> authenticator;
  std::optional<Channel> events, metrics;
};

StatusOr<RunChannels> OpenRunChannels(const PipelineConfig& config, zmq::context_t& context,
                                      const Endpoints& endpoints) {
  RunChannels c;
  if (CurveWanted(config)) {
    ND_ASSIGN_OR_RETURN(c.curve, GenerateCurveKeys());
    c.curve_path = fs::absolute(fs::path(RunDirectory(config)) / "curve.keys").string();
    ND_RETURN_IF_ERROR(WriteCurveKeys(c.curve_path, *c.curve));
    ND_ASSIGN_OR_RETURN(c.authenticator,
                        CurveAuthenticator::Start(context, *c.curve, "supervisor"));
  }
  const CurveKeys* keys = c.curve ? &*c.curve : nullptr;
  ND_ASSIGN_OR_RETURN(c.events, Channel::Open(context, zmq::socket_type::pull, endpoints.events,
                                              /*bind=*/true, 10000, /*linger_ms=*/1000, keys));
  ND_ASSIGN_OR_RETURN(c.metrics, OpenMetrics(context, endpoints.metrics, keys));
  return c;
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
  ND_ASSIGN_OR_RETURN(PidFile pid_file, PidFile::Create(SupervisorPidPath(config_)));
  zmq::context_t context;
  Endpoints endpoints = MakeEndpoints(config_);
  ND_ASSIGN_OR_RETURN(RunChannels channels, OpenRunChannels(config_, context, endpoints));
  Channel& events = *channels.events;
  Channel& metrics = *channels.metrics;
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
  write_status();
  // After the checks that refuse a second supervisor or a taken port (they cost nothing and must
  // not overwrite a running supervisor's config), and after a first status.json, so that
  // `nd-pipeline status` finds the run while the model is hashed. The model's identity, once for
  // the run and every restart (stages read it from the run's config instead of hashing the model
  // file each): a model file replaced mid-run cannot make two stages disagree about the cache key.
  // The cache handle is closed before any stage forks.
  // With [[models]], every model's digest is written into its table the same way.
  const bool need_digests = config_.models.empty()
                                ? config_.run.model_digest.empty()
                                : std::any_of(config_.models.begin(), config_.models.end(),
                                              [](const ModelEntry& m) { return m.digest.empty(); });
  if (need_digests) {
    ND_ASSIGN_OR_RETURN(ActivationCache memo_cache,
                        ActivationCache::Open(CacheOptionsFor(config_)));
    if (config_.models.empty()) {
      ND_ASSIGN_OR_RETURN(config_.run.model_digest, ModelDigest(config_, &memo_cache));
    }
    for (ModelEntry& model : config_.models) {
      ND_ASSIGN_OR_RETURN(model.digest, ModelEntryDigest(config_, model, &memo_cache));
    }
  }
  const std::string config_path = (fs::path(run_dir) / "config.toml").string();
  ND_RETURN_IF_ERROR(WriteFileAtomically(
      config_path, "# written by nd-pipeline up: the effective configuration of this run\n" +
                       ConfigToToml(config_)));
  // The run plan: the facts every stage checks its own view against (run_plan.h).
  // The cache handles it opens are closed again before any stage forks.
  bool every_image_cached = false;
  ND_ASSIGN_OR_RETURN(RunPlan plan, MakeRunPlan(config_, &every_image_cached));
  plan.curve_keys = channels.curve_path;
  ND_RETURN_IF_ERROR(WriteFileAtomically(RunPlanPath(config_), FormatRunPlan(plan)));
  g_interrupts = 0;
  struct sigaction sa {};
  sa.sa_handler = OnInterrupt;
  ::sigaction(SIGINT, &sa, nullptr);
  ::sigaction(SIGTERM, &sa, nullptr);

  RunReport report;
  report.model_digest = config_.run.model_digest;
  for (const ModelEntry& model : config_.models) report.model_digests.push_back(model.digest);
  Status failure;
  std::vector<Child> children;
  const bool tty = options_.progress_on_terminal && ::isatty(2);
  const double heartbeat_s = config_.run.heartbeat_timeout_s;
  // One pass of this loop is one generation of the pipeline: all stages started, watched until
  // the run completes, fails, is interrupted or loses a stage, then all stopped.
  for (int generation = 0;; ++generation) {
    RemoveStaleStageSockets(config_, endpoints);
    children.clear();
    report.results.clear();  // only the generation that completes reports its results
    ND_RETURN_IF_ERROR(SpawnStages(config_, options_, config_path, every_image_cached, seconds(),
                                   board, &children));
    write_status();

    std::string crash;  // why a stage died, when it may be restarted
    auto last_print = std::chrono::steady_clock::now();
    auto last_status = last_print;
    for (;;) {
      if (g_interrupts) {
        failure = Cancelled("interrupted");
        break;
      }
      // Once a stage has said "done", its exit is reaped within milliseconds rather than at the
      // next 100 ms tick (the last stage's exit ends the run).
      const bool exiting = std::any_of(children.begin(), children.end(),
                                       [](const Child& c) { return c.done_reported && !c.exited; });
      ReceiveEvent(events, exiting ? 2 : 100, children, &report.results);
      ReapStages(events, children, board, &failure, &crash);
      if (!failure.ok() || !crash.empty()) break;
      // The run is complete when the last stage has finished: the producers before it wait for
      // their release after END_OF_STREAM (common/runtime/stage_release.h) and are stopped below.
      if (children.back().exited) break;
      DrainMetrics(metrics, board, children, seconds(), 0);
      // Heartbeats: a live stage silent too long (stopped, wedged, swapping) counts as dead.
      crash = KillSilentStage(children, board, seconds(), heartbeat_s);
      if (!crash.empty()) break;
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
    if (!failure.ok() && failure.code() == StatusCode::kCancelled) {
      failure = InterruptedStatus(board.Snapshot(seconds()));
    }
    StopGeneration(children, board, g_interrupts >= 2 ? 0 : 5000);
    if (crash.empty()) break;
    if (g_interrupts) {
      failure = Cancelled(crash +
                          "; interrupted before the restart; `nd-pipeline up` again "
                          "resumes from the cache");
      break;
    }
    if (report.restarts >= config_.run.max_restarts) {
      failure = Unavailable(
          crash + "; gave up after " + std::to_string(report.restarts) +
          " restart(s) (run.max_restarts = " + std::to_string(config_.run.max_restarts) + ")");
      break;
    }
    ++report.restarts;
    board.SetRestarts(report.restarts);
    LogWarning(crash + "; restarting all stages from the cache (restart " +
               std::to_string(report.restarts) + "/" + std::to_string(config_.run.max_restarts) +
               ")");
    // Events of the stopped generation (its "stopped by signal" errors) must not be taken for
    // the next one's: every one of its processes is gone, so what is left arrives at once.
    for (int i = 0; i < 100; ++i) {
      auto stale = events.Receive(20);
      if (!stale.ok() || !stale->has_value()) break;
    }
  }
  FinishBoard(metrics, board, children, seconds, failure);
  write_status();
  if (http) http->Stop();
  report.wall_s = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  if (!failure.ok()) return failure;
  return report;
}

}  // namespace nd
