// nd-make-broden: writes a synthetic dataset in the Broden layout (see broden_generator.h), or,
// with --expand-from, an expanded concept set of an existing one (see expand_dataset.h).
// Exit code 0 on success; 2 with one line "nd-make-broden: <reason>" for bad flags; 1 for
// failures while generating (unwritable directory, full disk).
#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <opencv2/core.hpp>
#include <string>

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

nd::StatusOr<int64_t> ParseInt(const std::string& flag, const std::string& text) {
  errno = 0;
  char* end = nullptr;
  const long long v = std::strtoll(text.c_str(), &end, 10);
  if (text.empty() || *end != '\0' || errno == ERANGE) {
    return nd::InvalidArgument(flag + ": '" + text + "' is not an integer");
  }
  return static_cast<int64_t>(v);
}

nd::StatusOr<double> ParseReal(const std::string& flag, const std::string& text) {
  errno = 0;
  char* end = nullptr;
  const double v = std::strtod(text.c_str(), &end);
  if (text.empty() || *end != '\0' || errno == ERANGE) {
    return nd::InvalidArgument(flag + ": '" + text + "' is not a number");
  }
  return v;
}

struct Args {
  nd::BrodenGeneratorOptions options;
  std::string expand_from;     // --expand-from: expand instead of generating
  std::string generator_flag;  // the first flag that only generating uses
  bool help = false;
};

nd::StatusOr<Args> ParseArgs(int argc, char** argv) {
  Args args;
  nd::BrodenGeneratorOptions& o = args.options;
  bool have_out = false, have_images = false;
  for (int i = 1; i < argc; ++i) {
    std::string flag = argv[i], value;
    bool inline_value = false;
    if (const size_t eq = flag.find('='); flag.rfind("--", 0) == 0 && eq != std::string::npos) {
      value = flag.substr(eq + 1);
      flag = flag.substr(0, eq);
      inline_value = true;
    }
    auto next = [&]() -> nd::StatusOr<std::string> {
      if (inline_value) return value;
      if (i + 1 >= argc) return nd::InvalidArgument(flag + " needs a value");
      return std::string(argv[++i]);
    };
    const bool generator_only = flag == "--images" || flag == "--seed" || flag == "--size" ||
                                flag == "--texture-fraction" || flag == "--val-fraction" ||
                                flag == "--jpeg-quality" || flag == "--progress";
    if (generator_only && args.generator_flag.empty()) args.generator_flag = flag;
    if (flag == "-h" || flag == "--help") {
      args.help = true;
    } else if (flag == "--expand-from") {
      ND_ASSIGN_OR_RETURN(args.expand_from, next());
      if (args.expand_from.empty()) return nd::InvalidArgument("--expand-from needs a directory");
    } else if (flag == "--out") {
      ND_ASSIGN_OR_RETURN(o.out_dir, next());
      have_out = true;
    } else if (flag == "--images") {
      ND_ASSIGN_OR_RETURN(std::string v, next());
      ND_ASSIGN_OR_RETURN(o.num_images, ParseInt(flag, v));
      have_images = true;
    } else if (flag == "--seed") {
      ND_ASSIGN_OR_RETURN(std::string v, next());
      ND_ASSIGN_OR_RETURN(int64_t seed, ParseInt(flag, v));
      if (seed < 0) return nd::InvalidArgument("--seed must be >= 0, got " + v);
      o.seed = static_cast<uint64_t>(seed);
    } else if (flag == "--size") {
      ND_ASSIGN_OR_RETURN(std::string v, next());
      ND_ASSIGN_OR_RETURN(int64_t size, ParseInt(flag, v));
      if (size < 32 || size > 2048)
        return nd::InvalidArgument("--size must be in 32..2048, got " + v);
      o.image_size = static_cast<int>(size);
    } else if (flag == "--threads") {
      ND_ASSIGN_OR_RETURN(std::string v, next());
      ND_ASSIGN_OR_RETURN(int64_t threads, ParseInt(flag, v));
      if (threads < 0 || threads > 1024) {
        return nd::InvalidArgument("--threads must be in 0..1024 (0 = all cores), got " + v);
      }
      o.threads = static_cast<int>(threads);
    } else if (flag == "--texture-fraction") {
      ND_ASSIGN_OR_RETURN(std::string v, next());
      ND_ASSIGN_OR_RETURN(o.texture_fraction, ParseReal(flag, v));
    } else if (flag == "--val-fraction") {
      ND_ASSIGN_OR_RETURN(std::string v, next());
      ND_ASSIGN_OR_RETURN(o.val_fraction, ParseReal(flag, v));
    } else if (flag == "--jpeg-quality") {
      ND_ASSIGN_OR_RETURN(std::string v, next());
      ND_ASSIGN_OR_RETURN(int64_t q, ParseInt(flag, v));
      if (q < 1 || q > 100)
        return nd::InvalidArgument("--jpeg-quality must be in 1..100, got " + v);
      o.jpeg_quality = static_cast<int>(q);
    } else if (flag == "--overwrite" && !inline_value) {
      o.overwrite = true;
    } else if (flag == "--progress" && !inline_value) {
      o.log_progress = true;
    } else {
      return nd::InvalidArgument("unknown option '" + std::string(argv[i]) + "' (see --help)");
    }
  }
  if (args.help) return args;
  if (!have_out) return nd::InvalidArgument("--out DIR is required (see --help)");
  if (!args.expand_from.empty()) {
    // The new labels are derived from SRC alone: a generator setting would silently do nothing.
    if (!args.generator_flag.empty()) {
      return nd::InvalidArgument(args.generator_flag +
                                 " has no effect with --expand-from (the images are SRC's)");
    }
    return args;
  }
  if (!have_images) return nd::InvalidArgument("--images N is required (see --help)");
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
