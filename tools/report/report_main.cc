// nd-report: writes <output.dir>/report/index.html for a finished dissection, from the result
// files and the activation cache (no forward pass). See report_builder.h for what it reads and
// writes; with --study also study.html and the study CSV files (study_report.h). Exit code 0 on
// success; 2 with one line "nd-report: <reason>" for bad flags or configuration; 1 for other
// failures (missing results, unreadable cache, unwritable output).
#include <cstdio>
#include <string>
#include <vector>

#include "common/base/args.h"
#include "common/base/config.h"
#include "common/base/log.h"
#include "common/base/status.h"
#include "tools/report/report_builder.h"
#include "tools/report/study_report.h"

namespace {

constexpr char kUsage[] =
    "usage: nd-report [-c pipeline.toml] [--set section.key=value ...] [options]\n"
    "\n"
    "Writes a static HTML report of a finished dissection to <output.dir>/report/index.html:\n"
    "per layer the detector counts and charts, and one card per unit (1-based, as tally.csv)\n"
    "with its labels and the top images by max activation, dimmed outside the unit's mask.\n"
    "Reads tally.csv and thresholds.csv of every configured layer and the activation cache.\n"
    "\n"
    "options:\n"
    "  -c, --config FILE    configuration file (default: pipeline.toml)\n"
    "  --set KEY=VALUE      override one configuration key (as nd-pipeline)\n"
    "  --top K              images per unit (default 10)\n"
    "  --tile PX            tile size in pixels (default 112)\n"
    "  --jpeg-quality Q     1..100 (default 85)\n"
    "  --workers N          threads (default: all cores)\n"
    "  --out DIR            report directory (default: <output.dir>/report)\n"
    "  --study              also write study.html and study_*.csv: the models and views compared\n"
    "                       (unique detectors per category, over training iterations, over the\n"
    "                       alpha of rotation views, unit label transitions, every run)\n"
    "  --study-only         only the study (reads no cache; no example strips)\n"
    "  --compare A,B        a model pair (before, after) for the unit transitions; repeatable;\n"
    "                       pairs whose nd-train record names the other model (init_from) are\n"
    "                       found without it\n"
    "  -h, --help           this help\n";

struct Args {
  std::string config = "pipeline.toml";
  std::vector<std::string> overrides;
  nd::ReportOptions options;
  bool study = false, study_only = false;
  nd::StudyOptions study_options;
  bool help = false;
};

nd::StatusOr<Args> ParseArgs(int argc, char** argv) {
  Args args;
  nd::ArgParser parser;
  nd::AddConfigOptions(&parser, &args.config, &args.overrides);
  // The ranges of ReportOptions (report_builder.h), which BuildReport checks again for callers.
  parser.Int("--top", &args.options.top_images, 1, 100)
      .Int("--tile", &args.options.tile_size, 16, 512)
      .Int("--jpeg-quality", &args.options.jpeg_quality, 1, 100)
      .Int("--workers", &args.options.workers, 0, 1024)
      .String("--out", &args.options.out_dir)
      .Flag("--study", &args.study)
      .Flag("--study-only", &args.study_only)
      .Custom("--compare", [&args](const std::string& v) -> nd::Status {
        ND_ASSIGN_OR_RETURN(auto pair, nd::ParseComparePair(v));
        args.study_options.compare.push_back(pair);
        return nd::Status::Ok();
      });
  ND_RETURN_IF_ERROR(parser.Parse(argc, argv));
  if (args.study && args.study_only)
    return nd::InvalidArgument("--study and --study-only: give one");
  if (!args.study_options.compare.empty() && !args.study && !args.study_only)
    return nd::InvalidArgument("--compare applies to the study (--study or --study-only)");
  args.study_options.out_dir = args.options.out_dir;
  args.help = parser.help();
  return args;
}

int Fail(const nd::Status& s) {
  std::fprintf(stderr, "nd-report: %s\n", s.message().c_str());
  return s.code() == nd::StatusCode::kInvalidArgument ? 2 : 1;
}

int WriteStudy(const nd::PipelineConfig& config, const nd::StudyOptions& options) {
  auto study = nd::BuildStudyReport(config, options);
  if (!study.ok()) return Fail(study.status());
  std::printf("nd-report: wrote %s: %d result set(s), %d model pair(s)", study->study_path.c_str(),
              study->runs, study->pairs);
  if (!study->notes.empty()) std::printf("; %zu note(s) on the page", study->notes.size());
  std::printf("\n");
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  nd::SetLogComponent("report");
  auto args = ParseArgs(argc, argv);
  if (!args.ok()) return Fail(args.status());
  if (args->help) {
    std::fputs(kUsage, stdout);
    return 0;
  }
  auto config = nd::LoadConfig(args->config, args->overrides);
  if (!config.ok()) return Fail(config.status());
  if (args->study_only) return WriteStudy(*config, args->study_options);
  auto stats = nd::BuildReport(*config, args->options);
  if (!stats.ok()) return Fail(stats.status());
  std::printf("nd-report: wrote %s: %d section(s), %lld units, %lld strips, %.1f s",
              stats->index_path.c_str(), stats->sections, static_cast<long long>(stats->units),
              static_cast<long long>(stats->strips), stats->seconds);
  if (stats->images_missing > 0)
    std::printf("; %lld image(s) without cached activations left out",
                static_cast<long long>(stats->images_missing));
  if (stats->photos_unreadable > 0)
    std::printf("; %lld tile(s) of unreadable photos left grey",
                static_cast<long long>(stats->photos_unreadable));
  std::printf("\n");
  if (args->study) {
    args->study_options.link_strips = true;
    return WriteStudy(*config, args->study_options);
  }
  return 0;
}
