// nd-bench: measures a configured dissection the way a user runs it.
//
//   nd-bench -c pipeline.toml [--set k=v ...] [--work DIR] [--skip-bare] [--rescore]
//
// 1. the floor: bare decode + forward (as far as the captured layers, one plain call, no cache)
//    of every image of the dataset (batch by batch,
//    same preprocessing, decode on every core, LibTorch's threads on every core), once with
//    contiguous NCHW weights and input and once channels_last; the best of the two is the floor
//    the end-to-end ratio is computed against;
// 2. cold run: `nd-pipeline up` with a fresh cache and output under --work, timed end to end,
//    while every nd-stage-* process's peak RSS (VmHWM) is sampled from /proc;
// 3. with --rescore: `nd-pipeline up` again with a new quantile, then on an expanded concept set
//    made by `nd-make-broden --expand-from` (phase 2 only: no forward pass either time).
// It prints one table: per-stage images/s, bare forward time, end-to-end wall time and the ratio,
// score CPU per image, peak RSS per stage.
#include <dirent.h>
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

// Peak RSS (kB) of every running nd-stage-* process, merged into `peak` by stage name.
void SampleStageRss(std::map<std::string, long>* peak) {
  DIR* proc = ::opendir("/proc");
  if (!proc) return;
  while (dirent* e = ::readdir(proc)) {
    if (e->d_name[0] < '0' || e->d_name[0] > '9') continue;
    std::string base = std::string("/proc/") + e->d_name;
    // The executable's name from argv[0] (/proc/<pid>/comm is cut to 15 characters).
    std::string cmdline = Read(base + "/cmdline");
    std::string exe = cmdline.substr(0, cmdline.find('\0'));
    exe = exe.substr(exe.rfind('/') == std::string::npos ? 0 : exe.rfind('/') + 1);
    if (exe.rfind("nd-stage-", 0) != 0) continue;
    std::string comm = exe.substr(9);
    std::string status = Read(base + "/status");
    size_t at = status.find("VmHWM:");
    if (at == std::string::npos) continue;
    long kb = std::atol(status.c_str() + at + 6);
    long& slot = (*peak)[comm];
    slot = std::max(slot, kb);
  }
  ::closedir(proc);
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
  auto start = Clock::now();
  pid_t pid = ::fork();
  if (pid == 0) {
    std::vector<char*> argv;
    for (auto& a : args) argv.push_back(a.data());
    argv.push_back(nullptr);
    nd::CloseDescriptorsFrom(3);
    ::execv(argv[0], argv.data());
    ::_exit(127);
  }
  int status = 0;
  while (::waitpid(pid, &status, WNOHANG) == 0) {
    SampleStageRss(&r.peak_kb);
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  r.wall_s = std::chrono::duration<double>(Clock::now() - start).count();
  r.code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  return r;
}

}  // namespace

// The floor: the fastest bare decode + forward, in each memory format (weights and input), as a
// plain program would do it: decode a batch on every core, run `forward`, repeat. Returns the
// better of the two, in seconds.
nd::StatusOr<double> BareFloorSeconds(const nd::PipelineConfig& config,
                                      const nd::BrodenDataset& dataset) {
  const size_t images = dataset.images().size();
  double bare_s = 0;
  const int cores = static_cast<int>(std::thread::hardware_concurrency());
  torch::set_num_threads(std::max(1, cores));
  // As extract does: large blocks are reused instead of page-faulted in on every batch.
  nd::InstallReusingCpuAllocator();
  for (const bool channels_last : {false, true}) {
    // The model as far as the captured layers (what the pipeline runs: LibTorch drops the
    // layers after them, e.g. AlexNet's classifier), plain call, no cache, no processes.
    nd::ModelOptions mo;
    mo.path = config.model.path;
    mo.layers = config.model.layers;
    mo.device = "cpu";
    mo.channels_last = channels_last;
    auto runner = nd::ModelRunner::Load(mo);
    if (!runner.ok()) return runner.status();
    // Bare decode: read, decode and preprocess each batch on every core (common/maths, the
    // code decode runs), no hashing, no cache lookups.
    const int size = config.model.input_size;
    const size_t per_image = static_cast<size_t>(3) * size * size;
    const size_t batch = static_cast<size_t>(std::max(1, config.model.batch_size));
    std::vector<float> pixels(batch * per_image);
    torch::InferenceMode guard;
    double forward_s = 0;
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
      auto input = torch::from_blob(pixels.data(), {static_cast<int64_t>(n), 3, size, size},
                                    torch::kFloat32);
      const auto f0 = Clock::now();
      auto out = runner->Run(input);  // converts the input to the runner's memory format
      forward_s += std::chrono::duration<double>(Clock::now() - f0).count();
    }
    const double total_s = std::chrono::duration<double>(Clock::now() - t0).count();
    std::printf("bare decode + forward, %-13s %8.2f s (%.1f images/s; forward alone %.2f s)\n",
                channels_last ? "channels_last" : "contiguous", total_s, images / total_s,
                forward_s);
    if (bare_s == 0 || total_s < bare_s) bare_s = total_s;
  }
  return bare_s;
}

// With --rescore: a new quantile, then an expanded concept set, both from the cache; prints the
// figures and returns the exit code.
int RunRescores(const nd::PipelineConfig& config, const std::string& config_path,
                const std::vector<std::string>& sets, const std::string& work,
                const RunResult& cold) {
  const std::string layer = config.model.layers.back();
  double q = config.threshold.quantiles.front() * 2;
  auto rescore_sets = sets;
  rescore_sets.push_back("threshold.quantile=" + std::to_string(q));
  RunResult again = RunUp(config_path, rescore_sets);
  const nd::LayerSummary s2 = Summary(nd::LayerResultDir(config.output.dir, layer, q, false));
  std::printf("\n%-34s %12.2f\n", "rescore (new quantile) wall, s", again.wall_s);
  std::printf("%-34s %12.0f\n", "rescore forward_images", static_cast<double>(s2.forward_images));
  std::printf("%-34s %12.3f\n", "rescore / cold", again.wall_s / cold.wall_s);

  // An expanded concept set: the same images with more labels (nd-make-broden --expand-from),
  // scored from the cache at the cold run's quantile. Making the dataset is the user's step
  // and timed apart.
  const std::string expanded = work + "/expanded";
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
  std::printf("%-34s %12.3f\n", "rescore / cold", wider.wall_s / cold.wall_s);
  if (again.code != 0 || wider.code != 0) {
    std::fprintf(stderr, "nd-bench: a rescore failed (exit %d, %d)\n", again.code, wider.code);
    return 1;
  }
  return 0;
}

int main(int argc, char** argv) {
  std::string config_path = "pipeline.toml", work = "bench-work";
  std::vector<std::string> sets;
  bool skip_bare = false, rescore = false, floor_only = false;
  nd::ArgParser parser;
  nd::AddConfigOptions(&parser, &config_path, &sets);
  parser.String("--work", &work)
      .Flag("--skip-bare", &skip_bare)
      .Flag("--rescore", &rescore)
      .Flag("--floor-only", &floor_only);
  const nd::Status parsed = parser.Parse(argc, argv);
  if (!parsed.ok() || parser.help()) {
    if (!parsed.ok()) std::fprintf(stderr, "nd-bench: %s\n", parsed.message().c_str());
    std::fprintf(parsed.ok() ? stdout : stderr,
                 "usage: nd-bench -c pipeline.toml [--set k=v ...] [--work DIR] [--skip-bare] "
                 "[--rescore]\n");
    return parsed.ok() ? 0 : 2;
  }
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
  std::printf("nd-bench: %s, layers %s, %zu images, batch %d, %u cores\n",
              config->model.path.c_str(), config->model.layers.front().c_str(), images,
              config->model.batch_size, std::thread::hardware_concurrency());

  // The floor (the end-to-end ratio is against it).
  double bare_s = 0;
  if (!skip_bare) {
    auto floor = BareFloorSeconds(*config, *dataset);
    if (!floor.ok()) {
      std::fprintf(stderr, "nd-bench: %s\n", floor.status().message().c_str());
      return 1;
    }
    bare_s = *floor;
  }
  if (floor_only) return 0;

  RunResult cold = RunUp(config_path, sets);
  if (cold.code != 0) {
    std::fprintf(stderr, "nd-bench: nd-pipeline up failed (exit %d)\n", cold.code);
    return 1;
  }
  const std::string layer = config->model.layers.back();
  const nd::LayerSummary summary =
      Summary(nd::LayerResultDir(config->output.dir, layer, config->threshold.quantiles.front(),
                                 config->threshold.quantiles.size() > 1));
  std::printf("\n%-34s %12s\n", "measure (cold run)", "value");
  for (const char* stage : {"decode", "extract", "calibrate", "score"}) {
    double s = StageSecondsOf(summary, stage);
    std::printf("%-34s %12.1f\n", (std::string(stage) + " images/s (stage wall)").c_str(),
                s > 0 ? images / s : 0.0);
  }
  double forward_in_pipeline = StageSecondsOf(summary, "forward");
  std::printf("%-34s %12.2f\n", "forward inside extract, s", forward_in_pipeline);
  if (!skip_bare) std::printf("%-34s %12.2f\n", "best bare decode + forward, s", bare_s);
  std::printf("%-34s %12.2f\n", "end-to-end nd-pipeline up, s", cold.wall_s);
  if (!skip_bare) std::printf("%-34s %12.3f\n", "end-to-end / best bare", cold.wall_s / bare_s);
  std::printf("%-34s %12.3f\n", "score CPU ms / image (last layer)",
              summary.score_cpu_ms_per_image);
  for (const auto& [stage, kb] : cold.peak_kb)
    std::printf("%-34s %12.1f\n", ("peak RSS " + stage + ", MB").c_str(), kb / 1024.0);

  if (rescore) return RunRescores(*config, config_path, sets, work, cold);
  return 0;
}
