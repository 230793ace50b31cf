// nd-report: writes <output.dir>/report/index.html for a finished dissection, from the result
// files and the activation cache (no forward pass). See report_builder.h for what it reads and
// writes; with --study also study.html and the study CSV files (study_report.h). Exit code 0 on
// success; 2 with one line "nd-report: <reason>" for bad flags or configuration; 1 for other
// failures (missing results, unreadable cache, unwritable output). With --after-run, as nd-pipeline
// runs it at the end of a run (tools/nd_pipeline/report_process.h): nd-pipeline's lines and
// warnings, and exit code 0 also when the report or the study could not be written.
#include <cstdio>
#include <string>
#include <utility>
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
    "  --cache-dir DIR      read the activations from DIR instead of cache.dir; repeatable, the\n"
    "                       first cache holding an image's record wins (a sharded run's shards)\n"
    "  --model-digest NAME=SHA256   the digest of [[models]] NAME's file (not hashed again);\n"
    "                       repeatable (one model: --set run.model_digest=SHA256)\n"
    "  --after-run          as nd-pipeline runs it after up, rescore, shard-merge results and\n"
    "                       rate --summary: prints \"report: PATH\" (and \"study: PATH\"); a "
    "report\n"
    "                       or study not written is a warning and the exit code 0; --study then\n"
    "                       writes the study only for [[models]] or [[view]] tables, linking the\n"
    "                       strips only when the report was written\n"
    "  --note TEXT          with --after-run: appended to the \"report: PATH\" line\n"
    "  -h, --help           this help\n";

struct Args {
  std::string config = "pipeline.toml";
  std::vector<std::string> overrides;
  nd::ReportOptions options;
  bool study = false, study_only = false;
  nd::StudyOptions study_options;
  std::vector<std::pair<std::string, std::string>> model_digests;  // [[models]] name, SHA-256
  bool after_run = false;
  std::string note;
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
      .Custom("--compare",
              [&args](const std::string& v) -> nd::Status {
                ND_ASSIGN_OR_RETURN(auto pair, nd::ParseComparePair(v));
                args.study_options.compare.push_back(pair);
                return nd::Status::Ok();
              })
      .Strings("--cache-dir", &args.options.cache_dirs)
      .Custom("--model-digest",
              [&args](const std::string& v) -> nd::Status {
                const size_t eq = v.find('=');
                if (eq == std::string::npos || eq == 0)
                  return nd::InvalidArgument("expected NAME=SHA256, got \"" + v + "\"");
                args.model_digests.emplace_back(v.substr(0, eq), v.substr(eq + 1));
                return nd::Status::Ok();
              })
      .Flag("--after-run", &args.after_run)
      .String("--note", &args.note);
  ND_RETURN_IF_ERROR(parser.Parse(argc, argv));
  if (args.study && args.study_only)
    return nd::InvalidArgument("--study and --study-only: give one");
  if (!args.study_options.compare.empty() && !args.study && !args.study_only)
    return nd::InvalidArgument("--compare applies to the study (--study or --study-only)");
  if (args.after_run && args.study_only)
    return nd::InvalidArgument("--after-run and --study-only: give one");
  if (!args.note.empty() && !args.after_run)
    return nd::InvalidArgument("--note applies to --after-run");
  args.study_options.out_dir = args.options.out_dir;
  args.help = parser.help();
  return args;
}

int Fail(const nd::Status& s) {
  std::fprintf(stderr, "nd-report: %s\n", s.message().c_str());
  return s.code() == nd::StatusCode::kInvalidArgument ? 2 : 1;
}

// Fills in the [[models]] digests of --model-digest. Errors: InvalidArgument naming the option.
nd::Status ApplyModelDigests(const Args& args, nd::PipelineConfig* config) {
  for (const auto& [name, digest] : args.model_digests) {
    const bool hex =
        digest.size() == 64 && digest.find_first_not_of("0123456789abcdef") == std::string::npos;
    if (!hex)
      return nd::InvalidArgument("--model-digest " + name +
                                 ": expected 64 lowercase hex digits (SHA-256), got \"" + digest +
                                 "\"");
    bool found = false;
    for (nd::ModelEntry& m : config->models) {
      if (m.name != name) continue;
      m.digest = digest;
      found = true;
    }
    if (!found)
      return nd::InvalidArgument("--model-digest " + name + ": no [[models]] table of that name");
  }
  return nd::Status::Ok();
}

// --after-run: the report that `nd-pipeline up` (rescore, shard-merge results, rate --summary)
// writes through this program, with the lines and warnings of nd-pipeline, which the user ran.
// The results are complete already: a report failure is a warning, not a failed command.
int AfterRun(const nd::PipelineConfig& config, const Args& args) {
  auto built = nd::BuildReport(config, args.options);
  if (built.ok()) {
    std::printf("report: %s%s\n", built->index_path.c_str(), args.note.c_str());
  } else {
    std::fprintf(stderr, "nd-pipeline: warning: the HTML report was not written: %s\n",
                 built.status().message().c_str());
  }
  // up/rescore of several models or views also write the study page, linking the strips just
  // written.
  if (!args.study || !nd::WantsStudyReport(config)) return 0;
  nd::StudyOptions study_options = args.study_options;
  study_options.link_strips = built.ok();
  auto written = nd::BuildStudyReport(config, study_options);
  if (written.ok()) {
    std::printf("study: %s\n", written->study_path.c_str());
  } else {
    std::fprintf(stderr, "nd-pipeline: warning: the study report was not written: %s\n",
                 written.status().message().c_str());
  }
  return 0;
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
  if (nd::Status s = ApplyModelDigests(*args, &*config); !s.ok()) return Fail(s);
  if (args->after_run) return AfterRun(*config, *args);
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
