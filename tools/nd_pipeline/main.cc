// nd-pipeline: the one command users run. Subcommands:
//   up        launch and supervise the stages for a config (phase 1 and 2)
//   rescore   phase 2 only, from the cache
//   validate  print the effective configuration or the first error
//   rate      the human-evaluation server of a layer (nd-rate, exec'd in this process's place);
//             rate --summary, its statistics
//   status, top, down, cache stats|verify|gc
// Exit code 0 on success; non-zero with one line "nd-pipeline: <reason>" on failure.
// The HTML report is written by the nd-report executable (report_process.h) and the rating server
// is nd-rate, both beside this one: nd-pipeline links no OpenCV.
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <ctime>
#include <filesystem>
#include <iostream>
#include <map>
#include <string>
#include <vector>

#include "cache/activation_cache.h"
#include "cache/pipeline_keys.h"
#include "common/base/args.h"
#include "common/base/atomic_file.h"
#include "common/base/config.h"
#include "common/base/log.h"
#include "common/base/status.h"
#include "tools/nd_pipeline/cache_command.h"
#include "tools/nd_pipeline/monitor_commands.h"
#include "tools/nd_pipeline/report_process.h"
#include "tools/nd_pipeline/slurm_backend.h"
#include "tools/nd_pipeline/supervisor.h"
#include "tools/rate/answers_file.h"
#include "tools/rate/rate_study.h"
#include "tools/rate/rate_summary.h"

namespace {

constexpr char kUsageHead[] =
    "usage: nd-pipeline <command> [-c pipeline.toml] [--set section.key=value ...]\n"
    "\n"
    "commands:\n"
    "  up         run the pipeline: decode -> extract -> calibrate -> score, as processes,\n"
    "             then write the HTML report (--no-report to skip it); with [[models]] or\n"
    "             [[view]] tables also the study report (report/study.html, study_*.csv)\n"
    "  rescore    the same as up: only what the cache lacks runs through the network\n"
    "  up|rescore --slurm [--wait]   a sharded run as Slurm jobs ([slurm] keys; the same as\n"
    "             run.backend = \"slurm\"); rescore submits no forward phase. --wait blocks\n"
    "             until the final merge job ends\n"
    "  shard-merge thresholds|results   the sharded run's reductions (run by its jobs)\n"
    "  cache stats|verify  inspect the activation cache (safe while a pipeline runs)\n"
    "  cache gc [--keep-model FILE]... [--older-than AGE]   drop other models' layers, or\n"
    "             layers not used for AGE (30d, 12h, 90m, 3600s)\n"
    "  validate   print the effective configuration (defaults, file, --set) or the error\n"
    "  rate [--layer L] [--port P]   serve the human-evaluation page of a dissected layer\n"
    "             ([rate] in the config; answers go to rate.answers)\n"
    "  rate --summary [--no-report]   print and write the human-evaluation statistics (CSV,\n"
    "             and the HTML report unless --no-report)\n";
constexpr char kUsage[] =
    "\n"
    "options:\n"
    "  -c, --config FILE   configuration file (default: pipeline.toml in the current directory)\n"
    "  --set KEY=VALUE     override one key, e.g. --set threshold.quantile=0.01\n"
    "  -h, --help          this help\n";

struct CommonArgs {
  std::string config = "pipeline.toml";
  std::vector<std::string> overrides;
  bool help = false;
  bool no_report = false;      // up/rescore/rate --summary: skip the HTML report
  bool slurm = false;          // up/rescore: run.backend = "slurm"
  bool wait = false;           // up/rescore --slurm: wait for the merge job
  bool with_forward = false;   // shard-merge results: the run had a forward phase
  std::string merge;           // shard-merge: "thresholds" | "results"
  nd::CacheCommandArgs cache;  // cache: the subcommand and gc's options
  std::string layer;           // rate: the layer to rate ("" = the first of model.layers)
  int port = -1;               // rate: overrides rate.port when >= 0
  bool summary = false;        // rate: the statistics instead of the server
};

// The options every command takes, plus those of `command` (up/rescore, cache).
nd::StatusOr<CommonArgs> ParseArgs(const std::string& command, int argc, char** argv, int first) {
  CommonArgs args;
  nd::ArgParser parser;
  nd::AddConfigOptions(&parser, &args.config, &args.overrides);
  std::vector<std::string> positionals;
  if (command == "up" || command == "rescore" || command == "rate" || command == "shard-merge") {
    parser.Flag("--no-report", &args.no_report);
  }
  if (command == "up" || command == "rescore")
    parser.Flag("--slurm", &args.slurm).Flag("--wait", &args.wait);
  if (command == "rate") {
    parser.String("--layer", &args.layer)
        .Int("--port", &args.port, 0, 65535)
        .Flag("--summary", &args.summary);
  }
  if (command == "shard-merge")
    parser.Flag("--with-forward", &args.with_forward).Positionals(&positionals);
  if (command == "cache") {
    parser.Strings("--keep-model", &args.cache.keep_models)
        .String("--older-than", &args.cache.older_than)
        .Positionals(&positionals);
  }
  ND_RETURN_IF_ERROR(parser.Parse(argc, argv, first));
  args.help = parser.help();
  if (command == "cache" && !args.help) {
    if (positionals.size() != 1) {
      return nd::InvalidArgument("usage: nd-pipeline cache stats|verify|gc (see --help)");
    }
    args.cache.subcommand = positionals[0];
  }
  if (command == "shard-merge" && !args.help) {
    if (positionals.size() != 1 || (positionals[0] != "thresholds" && positionals[0] != "results"))
      return nd::InvalidArgument("usage: nd-pipeline shard-merge thresholds|results (see --help)");
    args.merge = positionals[0];
  }
  return args;
}

int Fail(const nd::Status& s) {
  std::fprintf(stderr, "nd-pipeline: %s\n", s.message().c_str());
  return s.code() == nd::StatusCode::kInvalidArgument ? 2 : 1;
}

int Validate(const CommonArgs& args) {
  auto config = nd::LoadConfig(args.config, args.overrides);
  if (!config.ok()) return Fail(config.status());
  std::cout << "# effective configuration of " << config->source << "\n"
            << nd::ConfigToToml(*config);
  return 0;
}

std::string BinDir() {
  std::error_code ec;
  auto exe = std::filesystem::read_symlink("/proc/self/exe", ec);
  return ec ? std::string(".") : exe.parent_path().string();
}

// Renders the HTML report from the cache and the result files (no forward pass) with nd-report
// as a child process (report_process.h; no shell: any path is safe), which prints where it is,
// followed by `note`; up/rescore of several models or views (`study`) also write the study page.
// `config` is the command's (args.config and args.overrides) with the digests `up` computed. The
// results are complete already: a report failure is a warning, not a failed command.
void WriteReport(const CommonArgs& args, const nd::PipelineConfig& config, const std::string& note,
                 bool study = false, std::vector<std::string> cache_dirs = {}) {
  nd::RunReportRequest request;
  request.config_path = args.config;
  request.overrides = args.overrides;
  request.note = note;
  request.study = study;
  request.cache_dirs = std::move(cache_dirs);
  nd::Status written = nd::RunReportProcess(BinDir(), config, request);
  if (!written.ok())
    std::fprintf(stderr, "nd-pipeline: warning: the HTML report was not written: %s\n",
                 written.message().c_str());
}

int Up(const CommonArgs& args, bool rescore) {
  auto config = nd::LoadConfig(args.config, args.overrides);
  if (!config.ok()) return Fail(config.status());
  nd::SetLogComponent("nd-pipeline");
  if (args.slurm || config->run.backend == "slurm") {
    nd::SlurmSubmitOptions slurm;
    slurm.bin_dir = BinDir();
    slurm.rescore = rescore;
    slurm.wait = args.wait;
    nd::Status submitted = nd::SubmitSlurmRun(*config, slurm);
    return submitted.ok() ? 0 : Fail(submitted);
  }
  if (args.wait) return Fail(nd::InvalidArgument("--wait applies to a sharded run (--slurm)"));
  nd::SupervisorOptions options;
  options.bin_dir = BinDir();
  nd::Supervisor supervisor(*config, options);
  auto report = supervisor.Run();
  if (!report.ok() && report.status().code() == nd::StatusCode::kCancelled) {
    Fail(report.status());
    return 130;  // interrupted, as a shell reports Ctrl-C
  }
  if (!report.ok()) return Fail(report.status());
  config->run.model_digest = report->model_digest;  // computed once by the supervisor
  // Likewise every [[models]] digest: the cache bookkeeping, the report and the study below
  // would otherwise hash every model file of a series again.
  for (size_t m = 0; m < config->models.size() && m < report->model_digests.size(); ++m)
    config->models[m].digest = report->model_digests[m];
  {
    // The layers' last use, for `cache gc --older-than`. The results stand either way.
    auto cache = nd::ActivationCache::Open(nd::CacheOptionsFor(*config));
    nd::Status used =
        cache.ok() ? nd::RecordLayerUse(*config, *cache, std::time(nullptr)) : cache.status();
    if (!used.ok())
      std::fprintf(stderr, "nd-pipeline: warning: last use of the layers not recorded: %s\n",
                   used.message().c_str());
  }
  std::printf("nd-pipeline: done in %.1f s", report->wall_s);
  if (report->restarts > 0) std::printf(" (%d restart(s) after stage crashes)", report->restarts);
  std::printf("\n");
  for (const std::string& r : report->results) std::printf("results: %s\n", r.c_str());
  if (!args.no_report) {
    WriteReport(args, *config, "", /*study=*/true);
  }
  return 0;
}

// `rate --summary`: the statistics of the answers file, printed, as CSV and in the HTML report.
int RateSummary(const CommonArgs& args) {
  auto config = nd::LoadConfig(args.config, args.overrides);
  if (!config.ok()) return Fail(config.status());
  const std::string path = nd::RateAnswersPath(*config);
  auto records = nd::ReadAnswersFile(path);
  if (!records.ok()) return Fail(records.status());
  std::map<std::string, int64_t> study;
  for (const std::string& layer : nd::ResultSetNames(*config)) {
    auto tally = nd::ReadTallyFile(nd::RatedResultDir(*config, layer) + "/tally.csv");
    if (!tally.ok()) continue;
    study[layer] = nd::StudySize(*tally, config->rate, config->score.iou_threshold);
  }
  const auto layers = nd::SummarizeAnswers(*records, config->rate.min_catch_accuracy, study);
  std::printf("answers: %s (%zu)\n%s", path.c_str(), records->size(),
              nd::FormatHumanSummaryText(layers).c_str());
  const std::filesystem::path dir = std::filesystem::path(path).parent_path();
  std::error_code ec;
  std::filesystem::create_directories(dir, ec);
  nd::Status written =
      nd::WriteFileAtomically((dir / "summary.csv").string(), nd::FormatHumanSummaryCsv(layers));
  if (written.ok())
    written = nd::WriteFileAtomically((dir / "raters.csv").string(), nd::FormatRatersCsv(layers));
  if (!written.ok()) return Fail(written);
  std::printf("written: %s, %s\n", (dir / "summary.csv").c_str(), (dir / "raters.csv").c_str());
  if (!args.no_report) {
    WriteReport(args, *config, " (section \"Human evaluation\")");
  }
  return 0;
}

// `rate`: the rating server, nd-rate (tools/rate/rate_main.cc), exec'd in this process's place
// with the parsed configuration, layer and port: signals, output and exit code are the server's.
int Rate(const CommonArgs& args) {
  if (args.summary) return RateSummary(args);
  const std::string exe = BinDir() + "/nd-rate";
  std::vector<std::string> rate_args = {exe, "--config", args.config};
  for (const std::string& o : args.overrides) rate_args.insert(rate_args.end(), {"--set", o});
  if (!args.layer.empty()) rate_args.insert(rate_args.end(), {"--layer", args.layer});
  if (args.port >= 0) rate_args.insert(rate_args.end(), {"--port", std::to_string(args.port)});
  std::vector<char*> argv;
  for (std::string& a : rate_args) argv.push_back(a.data());
  argv.push_back(nullptr);
  ::execv(exe.c_str(), argv.data());
  if (errno == ENOENT)
    return Fail(nd::NotFound(exe + ": no such executable (build the nd-rate target)"));
  return Fail(nd::IoError("exec " + exe + ": " + std::strerror(errno)));
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 2 || !std::strcmp(argv[1], "-h") || !std::strcmp(argv[1], "--help")) {
    std::fputs(kUsageHead, argc < 2 ? stderr : stdout);
    std::fputs(nd::kMonitorUsage, argc < 2 ? stderr : stdout);
    std::fputs(kUsage, argc < 2 ? stderr : stdout);
    return argc < 2 ? 2 : 0;
  }
  std::string command = argv[1];
  if (command == "status" || command == "top" || command == "down")
    return nd::RunMonitorCommand(command, argc, argv, 2, [](const nd::PipelineConfig& config) {
      // A sharded run (jobs.txt in slurm.dir) is shown from Slurm and its shards' files.
      nd::Status shown = nd::PrintSlurmStatus(config, std::cout);
      if (shown.code() == nd::StatusCode::kNotFound) return -1;
      return shown.ok() ? 0 : Fail(shown);
    });
  auto args = ParseArgs(command, argc, argv, 2);
  if (!args.ok()) return Fail(args.status());
  if (args->help) {
    std::fputs(kUsageHead, stdout);
    std::fputs(nd::kMonitorUsage, stdout);
    std::fputs(kUsage, stdout);
    return 0;
  }
  if (command == "validate") return Validate(*args);
  if (command == "up" || command == "rescore") return Up(*args, command == "rescore");
  if (command == "rate") return Rate(*args);
  if (command == "shard-merge") {
    auto config = nd::LoadConfig(args->config, args->overrides);
    if (!config.ok()) return Fail(config.status());
    if (config->shard.count == 0)
      return Fail(nd::InvalidArgument("shard-merge: shard.count and shard.dir are required"));
    nd::SetLogComponent("nd-pipeline");
    nd::Status merged = args->merge == "thresholds"
                            ? nd::MergeShardThresholds(*config)
                            : nd::MergeShardResults(*config, args->with_forward);
    if (!merged.ok()) return Fail(merged);
    if (args->merge == "results" && !args->no_report)
      WriteReport(*args, *config, "", /*study=*/false, nd::ShardCacheDirs(*config));
    return 0;
  }
  if (command == "cache") {
    auto config = nd::LoadConfig(args->config, args->overrides);
    if (!config.ok()) return Fail(config.status());
    return nd::RunCacheCommand(*config, args->cache);
  }
  return Fail(nd::InvalidArgument("unknown command '" + command + "' (see --help)"));
}
