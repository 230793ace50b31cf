// nd-make-broden: writes a synthetic dataset in the Broden layout (see broden_generator.h), or,
// with --expand-from, an expanded concept set of an existing one (see expand_dataset.h).
// Exit code 0 on success; 2 with one line "nd-make-broden: <reason>" for bad flags; 1 for
// failures while generating (unwritable directory, full disk).
#include <cstdio>
#include <cstdlib>
#include <opencv2/core.hpp>
#include <string>

#include "common/base/args.h"
#include "common/base/log.h"
#include "common/base/status.h"
#include "tools/make_broden/broden_generator.h"
#include "tools/make_broden/expand_dataset.h"

namespace {

constexpr char kUsage[] =
    "usage: nd-make-broden --out DIR --images N [options]\n"
    "       nd-make-broden --expand-from SRC --out DIR [--threads T] [--overwrite]\n"
    "\n"
    "Writes a synthetic Broden dataset (index.csv, category.csv, label.csv, c_*.csv, images/)\n"
    "to DIR, deterministic for a seed and independent of the thread count.\n"
    "\n"
    "options:\n"
    "  --out DIR            output directory; must not exist or be empty (required)\n"
    "  --images N           number of images (required)\n"
    "  --seed S             dataset seed (default 1)\n"
    "  --size PX            photo size PX x PX (default 224); segmentation is PX/2\n"
    "  --threads T          worker threads (default: all cores)\n"
    "  --texture-fraction F share of texture-only images (default 0.15)\n"
    "  --val-fraction F     share of images in the val split (default 0.2)\n"
    "  --jpeg-quality Q     JPEG quality 1..100 (default 90)\n"
    "  --overwrite          replace DIR if it holds a previous dataset (has index.csv)\n"
    "  --progress           log progress every 10%\n"
    "  --expand-from SRC    write SRC's images (hard links, else copies) with more labels:\n"
    "                       part upper-half/lower-half and a new category edge\n"
    "                       (horizontal-edge, vertical-edge), derived from SRC's object layers\n"
    "                       (README.md, \"Expanded concept sets\")\n"
    "  -h, --help           this help\n";

struct Args {
  nd::BrodenGeneratorOptions options;
  std::string expand_from;  // --expand-from: expand instead of generating
  bool help = false;
};

nd::StatusOr<Args> ParseArgs(int argc, char** argv) {
  Args args;
  nd::BrodenGeneratorOptions& o = args.options;
  nd::ArgParser parser;
  parser
      .Custom("--expand-from",
              [&args](const std::string& v) {
                if (v.empty()) return nd::InvalidArgument("needs a directory");
                args.expand_from = v;
                return nd::Status::Ok();
              })
      .String("--out", &o.out_dir)
      .Int("--images", &o.num_images)
      .Int("--seed", &o.seed, uint64_t{0})
      .Int("--size", &o.image_size, 32, 2048)
      .Int("--threads", &o.threads, 0, 1024)
      .Real("--texture-fraction", &o.texture_fraction)
      .Real("--val-fraction", &o.val_fraction)
      .Int("--jpeg-quality", &o.jpeg_quality, 1, 100)
      .Flag("--overwrite", &o.overwrite)
      .Flag("--progress", &o.log_progress);
  ND_RETURN_IF_ERROR(parser.Parse(argc, argv));
  args.help = parser.help();
  if (args.help) return args;
  if (!parser.Seen("--out")) return nd::InvalidArgument("--out DIR is required (see --help)");
  if (!args.expand_from.empty()) {
    // The new labels are derived from SRC alone: a generator setting would silently do nothing.
    const std::string generator_flag =
        parser.FirstSeen({"--images", "--seed", "--size", "--texture-fraction", "--val-fraction",
                          "--jpeg-quality", "--progress"});
    if (!generator_flag.empty()) {
      return nd::InvalidArgument(generator_flag +
                                 " has no effect with --expand-from (the images are SRC's)");
    }
    return args;
  }
  if (!parser.Seen("--images")) return nd::InvalidArgument("--images N is required (see --help)");
  return args;
}

int Fail(const nd::Status& s) {
  std::fprintf(stderr, "nd-make-broden: %s\n", s.message().c_str());
  return s.code() == nd::StatusCode::kInvalidArgument ? 2 : 1;
}

}  // namespace

int main(int argc, char** argv) {
  nd::SetLogComponent("nd-make-broden");
  auto args = ParseArgs(argc, argv);
  if (!args.ok()) return Fail(args.status());
  if (args->help) {
    std::fputs(kUsage, stdout);
    return 0;
  }
  cv::setNumThreads(0);  // we run our own workers; keep OpenCV single-threaded inside each
  if (!args->expand_from.empty()) {
    nd::ExpandOptions eo;
    eo.source_dir = args->expand_from;
    eo.out_dir = args->options.out_dir;
    eo.threads = args->options.threads;
    eo.overwrite = args->options.overwrite;
    nd::DatasetExpander expander(eo);
    auto expanded = expander.Run();
    if (!expanded.ok()) return Fail(expanded.status());
    std::printf("nd-make-broden: wrote %s\n%s", eo.out_dir.c_str(),
                nd::FormatExpandSummary(eo, *expanded).c_str());
    return 0;
  }
  nd::BrodenGenerator generator(args->options);
  auto summary = generator.Run();
  if (!summary.ok()) return Fail(summary.status());
  std::printf("nd-make-broden: wrote %s\n%s", args->options.out_dir.c_str(),
              nd::FormatSummary(*summary).c_str());
  return 0;
}
