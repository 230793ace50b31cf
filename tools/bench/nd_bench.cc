// nd-bench: measures a configured dissection the way a user runs it.
//
//   nd-bench -c pipeline.toml [--set k=v ...] [--work DIR] [--skip-bare] [--floor-only]
//            [--rescore] [--case 'k=v;k=v' ...] [--settle-ms MS] [--repeat N]
//
// 1. the floor: a bare program (a fresh process: LibTorch, model load, then decode + forward as far
//    as the captured layers, one plain call, no cache) over every image of the dataset (batch by
//    batch, same preprocessing, decode on every core, LibTorch's threads on every core), once with
//    contiguous NCHW weights and input and once channels_last, timed from start to exit like the
//    pipeline; the best of the two is the floor the end-to-end ratio is computed against (the
//    loop inside the program is printed too, with the ratio against it);
// 2. cold run: `nd-pipeline up` with a fresh cache and output under --work, timed end to end,
//    while every nd-stage-* process's peak RSS (VmHWM, and RssAnon without the mapped cache) is
//    sampled from /proc;
// 3. with --rescore: `nd-pipeline up` again with a new quantile, then on an expanded concept set
//    made by `nd-make-broden --expand-from` (phase 2 only: no forward pass either time).
// Each --case repeats 1-3 with its overrides added (another dataset, model, layer), in a folder
// of its own under --work, and a last table puts every case on one row.
// It prints one table: per-stage images/s, bare forward time, end-to-end wall time and the ratio,
// score CPU per image, peak RSS per stage.
//
// Every timed program (each floor program, the cold run, each rescore) starts after a pause of
// --settle-ms milliseconds (default 3000) with nothing running, so that each starts in the same
// state of the machine's memory. On a virtual machine that hands freed memory back to its host
// (virtio-balloon free page reporting, 2 s after it is freed; the development VM does), memory a
// process touches for the first time costs up to ~10 ms per MB when the host has taken it back
// and next to nothing when another process freed it a moment before: without the pause, each
// program ran in the memory the one before had just freed, and how much of it was left decided
// part of its time. --settle-ms 0 runs them back to back.
//
// --repeat N runs the floor programs and the cold run N times, interleaved (floors, cold, floors,
// cold, ...: a drift of the machine's speed reaches both sides), then the rescores N times (a
// quantile not scored before each time, the expanded dataset made afresh each time), and reports
// medians; each repetition's own cold / floor ratio is printed too.
#include <dirent.h>
#include <poll.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <torch/script.h>
#include <torch/torch.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <map>
#include <set>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "common/base/args.h"
#include "common/base/config.h"
#include "common/base/descriptors.h"
#include "common/base/parallel.h"
#include "common/broden/broden_dataset.h"
#include "common/preprocess/preprocess.h"
#include "common/results/result_files.h"
#include "common/torch/model_runner.h"
#include "common/torch/reusing_cpu_allocator.h"

namespace {

namespace fs = std::filesystem;
using Clock = std::chrono::steady_clock;

int g_settle_ms = 3000;  // --settle-ms: the pause before each timed program (see the top)

void Settle() { std::this_thread::sleep_for(std::chrono::milliseconds(g_settle_ms)); }

int g_repeat = 1;  // --repeat: how many times each timed program runs (medians are reported)

// The median of `v` (the mean of the two middle values for an even count); 0 when empty.
double Median(std::vector<double> v) {
  if (v.empty()) return 0;
  std::sort(v.begin(), v.end());
  const size_t m = v.size() / 2;
  return v.size() % 2 == 1 ? v[m] : (v[m - 1] + v[m]) / 2;
}

std::string BinDir() {
  std::error_code ec;
  auto exe = fs::read_symlink("/proc/self/exe", ec);
  return ec ? std::string(".") : exe.parent_path().string();
}

std::string Read(const fs::path& p) {
  std::ifstream in(p);
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

// summary.json of a layer (common/results); exits with one line when it cannot be read.
nd::LayerSummary Summary(const std::string& dir) {
  auto s = nd::ReadSummaryFile(dir + "/summary.json");
  if (!s.ok()) {
    std::fprintf(stderr, "nd-bench: %s\n", s.status().message().c_str());
    std::exit(1);
  }
  return *std::move(s);
}

// A stage's wall seconds from summary.json, 0 when absent.
double StageSecondsOf(const nd::LayerSummary& s, const std::string& stage) {
  for (const auto& [name, seconds] : s.stage_seconds)
    if (name == stage) return seconds;
  return 0;
}

// Peak RSS (kB) of every nd-stage-* process of a run, merged into `peak` by stage name: VmHWM (all
// resident pages, the activation cache's mapped file pages included), and under "<stage> anon"
// the largest RssAnon sampled (the process's own memory, without the page cache it maps). Light on
// purpose, as it runs beside the timed run: processes that were there before the run are never
// looked at again, a stage's executable name is read once per process.
class StageRssSampler {
 public:
  explicit StageRssSampler(std::map<std::string, long>* peak) : peak_(peak) {
    ForEachPid([&](int pid) { foreign_.insert(pid); });
  }

  void Sample() {
    ForEachPid([&](int pid) {
      if (foreign_.count(pid)) return;
      const std::string base = "/proc/" + std::to_string(pid);
      auto known = stages_.find(pid);
      if (known == stages_.end()) {
        // The executable's name from argv[0] (/proc/<pid>/comm is cut to 15 characters). Not
        // remembered when it is not a stage: a forked supervisor child shows nd-pipeline until
        // its exec.
        const std::string cmdline = Read(base + "/cmdline");
        std::string exe = cmdline.substr(0, cmdline.find('\0'));
        exe = exe.substr(exe.rfind('/') == std::string::npos ? 0 : exe.rfind('/') + 1);
        if (exe.rfind("nd-stage-", 0) != 0) return;
        known = stages_.emplace(pid, exe.substr(9)).first;
      }
      const std::string status = Read(base + "/status");
      for (const auto& [field, name] :
           {std::pair<std::string, std::string>{"VmHWM:", known->second},
            {"RssAnon:", known->second + " anon"}}) {
        const size_t at = status.find(field);
        if (at == std::string::npos) continue;
        long& slot = (*peak_)[name];
        slot = std::max(slot, std::atol(status.c_str() + at + field.size()));
      }
    });
  }

 private:
  template <typename Fn>
  static void ForEachPid(Fn&& fn) {
    DIR* proc = ::opendir("/proc");
    if (!proc) return;
    while (dirent* e = ::readdir(proc)) {
      if (e->d_name[0] < '0' || e->d_name[0] > '9') continue;
      fn(std::atoi(e->d_name));
    }
    ::closedir(proc);
  }

  std::map<std::string, long>* peak_;
  std::set<int> foreign_;
  std::map<int, std::string> stages_;
};

pid_t Start(std::vector<std::string> args, int stdout_fd) {
  const pid_t pid = ::fork();
  if (pid == 0) {
    if (stdout_fd >= 0) ::dup2(stdout_fd, 1);
    std::vector<char*> argv;
    for (auto& a : args) argv.push_back(a.data());
    argv.push_back(nullptr);
    nd::CloseDescriptorsFrom(3);
    ::execv(argv[0], argv.data());
    ::_exit(127);
  }
  return pid;
}

struct RunResult {
  int code = -1;
  double wall_s = 0;
  std::map<std::string, long> peak_kb;
};

RunResult RunUp(const std::string& config, const std::vector<std::string>& sets) {
  // The HTML report is not part of the dissection: it is timed by nd-report itself.
  std::vector<std::string> args = {BinDir() + "/nd-pipeline", "up", "--no-report", "-c", config};
  for (const auto& s : sets) {
    args.push_back("--set");
    args.push_back(s);
  }
  RunResult r;
  StageRssSampler sampler(&r.peak_kb);
  Settle();
  auto start = Clock::now();
  const pid_t pid = Start(args, -1);
  int status = 0;
  // /proc is sampled every 100 ms (VmHWM is the kernel's own high-water mark; RssAnon is
  // instantaneous); in between, the run's exit wakes nd-bench at once through a pidfd (where the
  // kernel has none, a 2 ms poll: a 100 ms one added up to 0.1 s to a 0.3 s rescore).
  const int pidfd = static_cast<int>(::syscall(SYS_pidfd_open, pid, 0));
  for (;;) {
    sampler.Sample();
    if (pidfd >= 0) {
      pollfd item{pidfd, POLLIN, 0};
      if (::poll(&item, 1, 100) > 0) break;  // exited
    } else {
      const auto until = Clock::now() + std::chrono::milliseconds(100);
      while (Clock::now() < until && ::waitpid(pid, &status, WNOHANG) == 0)
        std::this_thread::sleep_for(std::chrono::milliseconds(2));
      if (Clock::now() < until) break;
    }
  }
  r.wall_s = std::chrono::duration<double>(Clock::now() - start).count();
  if (pidfd >= 0) {
    ::waitpid(pid, &status, 0);
    ::close(pidfd);
  }
  r.code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  return r;
}

}  // namespace

// What one case measured, for the summary table.
struct CaseFigures {
  std::string name;
  size_t images = 0;
  double floor_contiguous_s = 0, floor_channels_last_s = 0, cold_s = 0;  // program wall
  double loop_contiguous_s = 0, loop_channels_last_s = 0;  // the loop inside the program
  double rescore_quantile_s = 0, rescore_expanded_s = 0;
  bool ok = false;
};

// What one bare program measured inside itself.
struct FloorLoop {
  double load_s = 0;     // ModelRunner::Load (TorchScript file, weights in the memory format)
  double loop_s = 0;     // decode + forward of every image, batch by batch
  double forward_s = 0;  // of which the forward calls
};

// The bare program's work, in this process: load the model as far as the captured layers (what
// the pipeline runs: LibTorch drops the layers after them, e.g. AlexNet's classifier), then per
// batch read, decode and preprocess the images on every core (common/maths, the code decode runs;
// no hashing, no cache lookups) and run `forward`, in one memory format (weights and input).
nd::StatusOr<FloorLoop> RunFloorLoop(const nd::PipelineConfig& config,
                                     const nd::BrodenDataset& dataset, bool channels_last) {
  const size_t images = dataset.images().size();
  const int cores = static_cast<int>(std::thread::hardware_concurrency());
  torch::set_num_threads(std::max(1, cores));
  // As extract does: large blocks are reused instead of page-faulted in on every batch.
  nd::InstallReusingCpuAllocator();
  FloorLoop r;
  nd::ModelOptions mo;
  mo.path = config.model.path;
  mo.layers = config.model.layers;
  mo.device = "cpu";
  mo.channels_last = channels_last;
  const auto l0 = Clock::now();
  auto runner = nd::ModelRunner::Load(mo);
  if (!runner.ok()) return runner.status();
  r.load_s = std::chrono::duration<double>(Clock::now() - l0).count();
  const int size = config.model.input_size;
  const size_t per_image = static_cast<size_t>(3) * size * size;
  const size_t batch = static_cast<size_t>(std::max(1, config.model.batch_size));
  std::vector<float> pixels(batch * per_image);
  torch::InferenceMode guard;
  const auto t0 = Clock::now();
  for (size_t begin = 0; begin < images; begin += batch) {
    const size_t n = std::min(batch, images - begin);
    nd::Status decoded = nd::ParallelFor(
        n, cores,
        [&](size_t i) -> nd::Status {
          auto path = dataset.ResolveImagePath(dataset.images()[begin + i].image);
          if (!path.ok()) return path.status();
          std::ifstream in(*path, std::ios::binary);
          const std::string bytes((std::istreambuf_iterator<char>(in)),
                                  std::istreambuf_iterator<char>());
          return nd::DecodeAndPreprocess(bytes, size, config.model.preprocess,
                                         pixels.data() + i * per_image)
              .WithContext(*path);
        },
        "nd-bench");
    if (!decoded.ok()) return decoded;
    auto input =
        torch::from_blob(pixels.data(), {static_cast<int64_t>(n), 3, size, size}, torch::kFloat32);
    const auto f0 = Clock::now();
    auto out = runner->Run(input);  // converts the input to the runner's memory format
    r.forward_s += std::chrono::duration<double>(Clock::now() - f0).count();
  }
  r.loop_s = std::chrono::duration<double>(Clock::now() - t0).count();
  return r;
}

// The floor: the fastest bare decode + forward, in each memory format, as a plain program does
// it and is timed: a fresh process (this executable with --floor-program) that loads LibTorch and
// the model, then decodes and forwards every image; its wall time from start to exit, which pays
// the same library and model loading as a cold pipeline run. The loop inside it is printed too.
// Returns the better program's wall seconds.
nd::StatusOr<double> BareFloorSeconds(const std::string& config_path,
                                      const std::vector<std::string>& sets, size_t images,
                                      CaseFigures* figures) {
  double bare_s = 0;
  for (const char* format : {"contiguous", "channels_last"}) {
    std::vector<std::string> args = {BinDir() + "/nd-bench", "--floor-program", format, "-c",
                                     config_path};
    for (const auto& s : sets) {
      args.push_back("--set");
      args.push_back(s);
    }
    int fds[2];
    if (::pipe(fds) != 0) return nd::Internal("nd-bench: pipe failed");
    Settle();
    const auto start = Clock::now();
    const pid_t pid = Start(args, fds[1]);
    ::close(fds[1]);
    std::string out;
    char buf[4096];
    for (ssize_t n; (n = ::read(fds[0], buf, sizeof buf)) > 0;) out.append(buf, n);
    ::close(fds[0]);
    int status = 0;
    struct rusage usage {};
    ::wait4(pid, &status, 0, &usage);
    const double wall_s = std::chrono::duration<double>(Clock::now() - start).count();
    FloorLoop loop;
    if (!WIFEXITED(status) || WEXITSTATUS(status) != 0 ||
        std::sscanf(out.c_str(), "floor-program %lf %lf %lf", &loop.load_s, &loop.loop_s,
                    &loop.forward_s) != 3)
      return nd::Internal(std::string("nd-bench: the ") + format + " floor program failed: " + out);
    std::printf(
        "bare program, %-13s %8.2f s wall (%.1f images/s; model load %.2f s, decode + forward "
        "loop %.2f s, forward alone %.2f s; peak RSS %.0f MB)\n",
        format, wall_s, images / wall_s, loop.load_s, loop.loop_s, loop.forward_s,
        usage.ru_maxrss / 1024.0);
    const bool channels_last = std::string(format) == "channels_last";
    (channels_last ? figures->floor_channels_last_s : figures->floor_contiguous_s) = wall_s;
    (channels_last ? figures->loop_channels_last_s : figures->loop_contiguous_s) = loop.loop_s;
    if (bare_s == 0 || wall_s < bare_s) bare_s = wall_s;
  }
  return bare_s;
}

// With --rescore: a new quantile, then an expanded concept set, both from the cache; prints the
// figures and returns the exit code.
int RunRescores(const nd::PipelineConfig& config, const std::string& config_path,
                const std::vector<std::string>& sets, const std::string& work, double cold_s,
                int repetition, CaseFigures* figures) {
  const std::string layer = config.model.layers.back();
  // A quantile no run has scored yet: 2 q, then 1.9 q, 1.8 q, ... for later repetitions.
  double q = config.threshold.quantiles.front() * (2.0 - 0.1 * repetition);
  auto rescore_sets = sets;
  rescore_sets.push_back("threshold.quantile=" + std::to_string(q));
  RunResult again = RunUp(config_path, rescore_sets);
  const nd::LayerSummary s2 = Summary(nd::LayerResultDir(config.output.dir, layer, q, false));
  std::printf("\n%-34s %12.2f\n", "rescore (new quantile) wall, s", again.wall_s);
  std::printf("%-34s %12.0f\n", "rescore forward_images", static_cast<double>(s2.forward_images));
  std::printf("%-34s %12.3f\n", "rescore / cold", again.wall_s / cold_s);
  figures->rescore_quantile_s = again.wall_s;  // this repetition's

  // An expanded concept set: the same images with more labels (nd-make-broden --expand-from),
  // scored from the cache at the cold run's quantile. Making the dataset is the user's step
  // and timed apart.
  const std::string expanded = work + "/expanded";
  fs::remove_all(expanded);  // made afresh each repetition: its files are new to the cache
  const std::string make = "'" + BinDir() + "/nd-make-broden' --expand-from '" +
                           config.dataset.path + "' --out '" + expanded + "' > '" + work +
                           "/expand.log' 2>&1";
  auto t0 = Clock::now();
  if (std::system(make.c_str()) != 0) {
    std::fprintf(stderr, "nd-bench: nd-make-broden --expand-from failed (see %s/expand.log)\n",
                 work.c_str());
    return 1;
  }
  const double make_s = std::chrono::duration<double>(Clock::now() - t0).count();
  auto expanded_sets = sets;
  expanded_sets.push_back("dataset.path=" + expanded);
  RunResult wider = RunUp(config_path, expanded_sets);
  const nd::LayerSummary s3 = Summary(
      nd::LayerResultDir(config.output.dir, layer, config.threshold.quantiles.front(), false));
  std::printf("%-34s %12.2f\n", "expand dataset (not a rescore), s", make_s);
  std::printf("%-34s %12.2f\n", "rescore (expanded concepts) wall, s", wider.wall_s);
  std::printf("%-34s %12.0f\n", "rescore forward_images", static_cast<double>(s3.forward_images));
  auto lines = [](const std::string& text) {
    return static_cast<long>(std::count(text.begin(), text.end(), '\n')) - 1;  // less header
  };
  std::printf("%-34s %5ld -> %4ld\n", "labels in label.csv",
              lines(Read(fs::path(config.dataset.path) / "label.csv")),
              lines(Read(fs::path(expanded) / "label.csv")));
  std::printf("%-34s %12.3f\n", "rescore / cold", wider.wall_s / cold_s);
  figures->rescore_expanded_s = wider.wall_s;
  if (again.code != 0 || wider.code != 0) {
    std::fprintf(stderr, "nd-bench: a rescore failed (exit %d, %d)\n", again.code, wider.code);
    return 1;
  }
  return 0;
}

// One case: the floor, a cold run in a fresh cache under `work`, the rescores. Returns the exit
// code; *figures gets what was measured.
int RunCase(const std::string& config_path, std::vector<std::string> sets, std::string work,
            bool skip_bare, bool floor_only, bool rescore, CaseFigures* figures) {
  work = fs::absolute(work).string();
  sets.push_back("cache.dir=" + work + "/cache");
  sets.push_back("output.dir=" + work + "/out");
  auto config = nd::LoadConfig(config_path, sets);
  if (!config.ok()) {
    std::fprintf(stderr, "nd-bench: %s\n", config.status().message().c_str());
    return 2;
  }
  fs::remove_all(work);
  fs::create_directories(work);
  auto dataset =
      nd::BrodenDataset::Open(config->dataset.path, nd::BrodenOptionsFor(config->dataset));
  if (!dataset.ok()) {
    std::fprintf(stderr, "nd-bench: %s\n", dataset.status().message().c_str());
    return 1;
  }
  const size_t images = dataset->images().size();
  figures->images = images;
  std::printf("nd-bench: %s, layers %s, %zu images, batch %d, %u cores\n",
              config->model.path.c_str(), config->model.layers.front().c_str(), images,
              config->model.batch_size, std::thread::hardware_concurrency());

  // Each repetition: the floor programs, then a cold run in a fresh cache (interleaved, so that a
  // drift of the machine's speed reaches both); the medians go into the figures.
  std::vector<double> contiguous, channels_last, loop_contiguous, loop_channels_last, colds;
  RunResult cold;
  nd::LayerSummary summary;
  const std::string layer = config->model.layers.back();
  for (int r = 0; r < g_repeat; ++r) {
    if (g_repeat > 1) std::printf("\n-- repetition %d of %d\n", r + 1, g_repeat);
    CaseFigures rep;
    if (!skip_bare) {
      auto floor = BareFloorSeconds(config_path, sets, images, &rep);
      if (!floor.ok()) {
        std::fprintf(stderr, "nd-bench: %s\n", floor.status().message().c_str());
        return 1;
      }
      contiguous.push_back(rep.floor_contiguous_s);
      channels_last.push_back(rep.floor_channels_last_s);
      loop_contiguous.push_back(rep.loop_contiguous_s);
      loop_channels_last.push_back(rep.loop_channels_last_s);
    }
    if (floor_only) continue;
    fs::remove_all(work + "/cache");
    fs::remove_all(work + "/out");
    cold = RunUp(config_path, sets);
    if (cold.code != 0) {
      std::fprintf(stderr, "nd-bench: nd-pipeline up failed (exit %d)\n", cold.code);
      return 1;
    }
    colds.push_back(cold.wall_s);
    if (g_repeat > 1) {
      std::printf("%-34s %12.2f", "end-to-end nd-pipeline up, s", cold.wall_s);
      if (!skip_bare)
        std::printf("  (%.3f x this repetition's best program)",
                    cold.wall_s / std::min(rep.floor_contiguous_s, rep.floor_channels_last_s));
      std::printf("\n");
    }
  }
  figures->floor_contiguous_s = Median(contiguous);
  figures->floor_channels_last_s = Median(channels_last);
  figures->loop_contiguous_s = Median(loop_contiguous);
  figures->loop_channels_last_s = Median(loop_channels_last);
  const double bare_s =
      skip_bare ? 0.0 : std::min(figures->floor_contiguous_s, figures->floor_channels_last_s);
  if (floor_only) {
    figures->ok = true;
    return 0;
  }
  figures->cold_s = Median(colds);
  summary =
      Summary(nd::LayerResultDir(config->output.dir, layer, config->threshold.quantiles.front(),
                                 config->threshold.quantiles.size() > 1));
  std::printf("\n%-34s %12s\n",
              g_repeat > 1 ? "measure (last cold run; medians)" : "measure (cold run)", "value");
  for (const char* stage : {"decode", "extract", "calibrate", "score"}) {
    double s = StageSecondsOf(summary, stage);
    std::printf("%-34s %12.1f\n", (std::string(stage) + " images/s (stage wall)").c_str(),
                s > 0 ? images / s : 0.0);
  }
  double forward_in_pipeline = StageSecondsOf(summary, "forward");
  std::printf("%-34s %12.2f\n", "forward inside extract, s", forward_in_pipeline);
  if (!skip_bare) std::printf("%-34s %12.2f\n", "best bare program, s", bare_s);
  std::printf("%-34s %12.2f\n", "end-to-end nd-pipeline up, s", figures->cold_s);
  if (!skip_bare) {
    std::printf("%-34s %12.3f\n", "end-to-end / best bare program", figures->cold_s / bare_s);
    const double loop = std::min(figures->loop_contiguous_s, figures->loop_channels_last_s);
    std::printf("%-34s %12.3f\n", "end-to-end / best bare loop", figures->cold_s / loop);
  }
  std::printf("%-34s %12.3f\n", "score CPU ms / image (last layer)",
              summary.score_cpu_ms_per_image);
  for (const auto& [stage, kb] : cold.peak_kb)
    std::printf("%-34s %12.1f\n", ("peak RSS " + stage + ", MB").c_str(), kb / 1024.0);
  if (!rescore) {
    figures->ok = true;
    return 0;
  }
  // The rescores, from the last cold run's cache, as many times.
  std::vector<double> quantile_s, expanded_s;
  for (int r = 0; r < g_repeat; ++r) {
    CaseFigures rep;
    if (RunRescores(*config, config_path, sets, work, figures->cold_s, r, &rep) != 0) return 1;
    quantile_s.push_back(rep.rescore_quantile_s);
    expanded_s.push_back(rep.rescore_expanded_s);
  }
  figures->rescore_quantile_s = Median(quantile_s);
  figures->rescore_expanded_s = Median(expanded_s);
  figures->ok = true;
  return 0;
}

// The summary of every case, one row each.
void PrintSummary(const std::vector<CaseFigures>& cases) {
  std::printf("\n%-28s %7s %10s %10s %8s %7s %7s %9s %7s %9s %7s\n", "case", "images", "prog NCHW",
              "prog NHWC", "cold", "ratio", "r.loop", "rescore q", "%cold", "expanded", "%cold");
  for (const CaseFigures& c : cases) {
    const double best = c.floor_channels_last_s > 0 && c.floor_contiguous_s > 0
                            ? std::min(c.floor_channels_last_s, c.floor_contiguous_s)
                            : std::max(c.floor_channels_last_s, c.floor_contiguous_s);
    const double loop = std::min(c.loop_contiguous_s, c.loop_channels_last_s);
    auto pct = [&](double s) { return c.cold_s > 0 ? 100.0 * s / c.cold_s : 0.0; };
    std::printf("%-28s %7zu %10.2f %10.2f %8.2f %7.3f %7.3f %9.2f %6.1f%% %9.2f %6.1f%%%s\n",
                c.name.substr(0, 28).c_str(), c.images, c.floor_contiguous_s,
                c.floor_channels_last_s, c.cold_s, best > 0 ? c.cold_s / best : 0.0,
                loop > 0 ? c.cold_s / loop : 0.0, c.rescore_quantile_s, pct(c.rescore_quantile_s),
                c.rescore_expanded_s, pct(c.rescore_expanded_s), c.ok ? "" : "  (failed)");
  }
}

int main(int argc, char** argv) {
  std::string config_path = "pipeline.toml", work = "bench-work";
  std::vector<std::string> sets, cases;
  bool skip_bare = false, rescore = false, floor_only = false;
  std::string floor_program;  // internal: run one bare program (BareFloorSeconds)
  nd::ArgParser parser;
  nd::AddConfigOptions(&parser, &config_path, &sets);
  parser.String("--work", &work)
      .Flag("--skip-bare", &skip_bare)
      .Flag("--rescore", &rescore)
      .Flag("--floor-only", &floor_only)
      .Strings("--case", &cases)
      .Int("--settle-ms", &g_settle_ms, 0, 60000)
      .Int("--repeat", &g_repeat, 1, 100)
      .String("--floor-program", &floor_program);
  const nd::Status parsed = parser.Parse(argc, argv);
  if (!parsed.ok() || parser.help()) {
    if (!parsed.ok()) std::fprintf(stderr, "nd-bench: %s\n", parsed.message().c_str());
    std::fprintf(
        parsed.ok() ? stdout : stderr,
        "usage: nd-bench -c pipeline.toml [--set k=v ...] [--work DIR] [--skip-bare] "
        "[--floor-only] [--rescore] [--case 'k=v;k=v' ...] [--settle-ms MS] [--repeat N]\n");
    return parsed.ok() ? 0 : 2;
  }
  if (!floor_program.empty()) {  // the child of BareFloorSeconds: one bare program, its figures
    auto config = nd::LoadConfig(config_path, sets);
    if (!config.ok()) {
      std::printf("%s\n", config.status().message().c_str());
      return 2;
    }
    auto dataset =
        nd::BrodenDataset::Open(config->dataset.path, nd::BrodenOptionsFor(config->dataset));
    if (!dataset.ok()) {
      std::printf("%s\n", dataset.status().message().c_str());
      return 1;
    }
    auto loop = RunFloorLoop(*config, *dataset, floor_program == "channels_last");
    if (!loop.ok()) {
      std::printf("%s\n", loop.status().message().c_str());
      return 1;
    }
    std::printf("floor-program %.6f %.6f %.6f\n", loop->load_s, loop->loop_s, loop->forward_s);
    return 0;
  }
  // The configuration as given is the first case; each --case adds its overrides to it.
  std::vector<std::vector<std::string>> case_sets = {sets};
  std::vector<std::string> names = {"base"};
  for (const std::string& c : cases) {
    std::vector<std::string> extra = sets;
    std::stringstream in(c);
    std::string item;
    while (std::getline(in, item, ';'))
      if (!item.empty()) extra.push_back(item);
    case_sets.push_back(extra);
    names.push_back(c);
  }
  std::vector<CaseFigures> figures(case_sets.size());
  int code = 0;
  for (size_t i = 0; i < case_sets.size(); ++i) {
    figures[i].name = names[i];
    if (i > 0) std::printf("\n==== case %zu: %s\n", i, names[i].c_str());
    const std::string dir = case_sets.size() == 1 ? work : work + "/case" + std::to_string(i);
    code = std::max(
        code, RunCase(config_path, case_sets[i], dir, skip_bare, floor_only, rescore, &figures[i]));
  }
  if (case_sets.size() > 1) PrintSummary(figures);
  return code;
}
