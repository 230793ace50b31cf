#include "tools/make_broden/broden_generator.h"

#include <unistd.h>

#include <algorithm>
#include <array>
#include <atomic>
#include <cerrno>
#include <chrono>
#include <cinttypes>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <mutex>
#include <opencv2/core.hpp>
#include <opencv2/imgcodecs.hpp>
#include <thread>
#include <utility>

#include "common/base/log.h"
#include "common/base/parallel.h"
#include "tools/make_broden/render.h"

namespace nd {
namespace fs = std::filesystem;
using synth::kNumCategories;
using synth::kNumLabels;

namespace {

// Pixel count of one label in one category of one image.
struct LabelCount {
  uint8_t category;
  uint16_t label;
  int32_t pixels;
};

struct ImageResult {
  std::string row;  // index.csv row, no line end
  bool val = false;
  bool texture = false;
  uint16_t scene = 0;
  std::vector<LabelCount> counts;
};

std::string ErrnoText() { return std::strerror(errno); }

Status WriteFile(const std::string& path, const void* data, size_t size) {
  std::FILE* f = std::fopen(path.c_str(), "wbe");
  if (f == nullptr) return IoError("cannot create '" + path + "': " + ErrnoText());
  const bool wrote = size == 0 || std::fwrite(data, 1, size, f) == size;
  const std::string write_error = wrote ? "" : ErrnoText();
  if (std::fclose(f) != 0 && wrote) return IoError("cannot write '" + path + "': " + ErrnoText());
  if (!wrote) return IoError("cannot write '" + path + "': " + write_error);
  return Status::Ok();
}

Status WriteText(const std::string& path, const std::string& text) {
  return WriteFile(path, text.data(), text.size());
}

std::string Fixed6(double v) {
  char buf[64];
  std::snprintf(buf, sizeof(buf), "%.6f", v);
  return buf;
}

// Per-thread buffers.
struct Worker {
  synth::RenderedImage rendered;
  cv::Mat seg16;  // sh×sw CV_16UC1 scratch
  cv::Mat rgb;    // sh×sw CV_8UC3 PNG scratch
  std::vector<uchar> encoded;
};

class Job {
 public:
  Job(const BrodenGeneratorOptions& options, std::string root)
      : options_(options),
        root_(std::move(root)),
        size_(options.image_size),
        seg_(BrodenGenerator::SegSize(options.image_size)) {
    src_.resize(seg_);
    for (int i = 0; i < seg_; ++i) {
      // Nearest neighbour: the full-resolution pixel under the segmentation pixel's centre.
      src_[i] = std::min(size_ - 1, static_cast<int>((2 * i + 1) * static_cast<int64_t>(size_) /
                                                     (2 * static_cast<int64_t>(seg_))));
    }
  }

  int seg() const { return seg_; }

  Status ProcessImage(int64_t index, Worker* w, ImageResult* result) {
    synth::Rng rng(synth::ImageSeed(options_.seed, index));
    result->val = rng.Uniform() < options_.val_fraction;
    synth::RenderOptions ro;
    ro.size = size_;
    ro.texture_fraction = options_.texture_fraction;
    synth::RenderImage(ro, &rng, &w->rendered);
    const synth::RenderedImage& r = w->rendered;
    result->texture = r.layout == synth::Layout::kTexture;

    char base[64];
    std::snprintf(base, sizeof(base), "synth/%06" PRId64, index + 1);
    const std::string rel = base;
    const std::string dir = root_ + "/images/";

    // Photo.
    w->encoded.clear();
    if (!cv::imencode(".jpg", r.image, w->encoded,
                      {cv::IMWRITE_JPEG_QUALITY, options_.jpeg_quality})) {
      return Internal("cannot encode JPEG for image " + rel);
    }
    ND_RETURN_IF_ERROR(WriteFile(dir + rel + ".jpg", w->encoded.data(), w->encoded.size()));

    std::array<std::array<int32_t, kNumLabels>, 5> hist{};  // color, object, material, part1, part2
    std::string cells[kNumCategories];

    // Colour layer: name the photo pixels that the segmentation grid samples.
    w->seg16.create(seg_, seg_, CV_16UC1);
    for (int i = 0; i < seg_; ++i) {
      const cv::Vec3b* in = r.image.ptr<cv::Vec3b>(src_[i]);
      uint16_t* out = w->seg16.ptr<uint16_t>(i);
      for (int j = 0; j < seg_; ++j) {
        const cv::Vec3b& p = in[src_[j]];
        out[j] = synth::ColorLabel(p[2], p[1], p[0]);
        ++hist[0][out[j]];
      }
    }
    ND_RETURN_IF_ERROR(WriteLayer(w, dir, rel + "_color.png"));
    cells[synth::kColor] = rel + "_color.png";

    if (!result->texture) {
      struct LayerSpec {
        const cv::Mat* full;
        int hist_index;
        const char* suffix;
        int category;
        bool always;
      };
      const LayerSpec layers[] = {{&r.object, 1, "_object.png", synth::kObject, true},
                                  {&r.material, 2, "_material.png", synth::kMaterial, false},
                                  {&r.part1, 3, "_part_1.png", synth::kPart, false},
                                  {&r.part2, 4, "_part_2.png", synth::kPart, false}};
      for (const LayerSpec& spec : layers) {
        auto& h = hist[spec.hist_index];
        for (int i = 0; i < seg_; ++i) {
          const uint16_t* in = spec.full->ptr<uint16_t>(src_[i]);
          uint16_t* out = w->seg16.ptr<uint16_t>(i);
          for (int j = 0; j < seg_; ++j) {
            out[j] = in[src_[j]];
            ++h[out[j]];
          }
        }
        const bool any = h[0] < seg_ * seg_;
        if (!any && !spec.always) continue;  // omit empty optional layers
        ND_RETURN_IF_ERROR(WriteLayer(w, dir, rel + spec.suffix));
        std::string& cell = cells[spec.category];
        if (!cell.empty()) cell += ';';
        cell += rel + spec.suffix;
      }
      std::vector<int64_t> object(kNumLabels), material(kNumLabels);
      for (int l = 0; l < kNumLabels; ++l) {
        object[l] = hist[1][l];
        material[l] = hist[2][l];
      }
      result->scene = synth::SceneForCounts(object, material, static_cast<int64_t>(seg_) * seg_);
      if (result->scene != synth::kUnlabeled) cells[synth::kScene] = std::to_string(result->scene);
    } else {
      cells[synth::kTexture] = std::to_string(r.texture);
    }

    // Counts per category (part = both part layers; scalars = sh*sw).
    result->counts.clear();
    const int hist_category[5] = {synth::kColor, synth::kObject, synth::kMaterial, synth::kPart,
                                  synth::kPart};
    std::array<std::array<int32_t, kNumLabels>, kNumCategories> per_cat{};
    for (int k = 0; k < 5; ++k) {
      for (int l = 1; l < kNumLabels; ++l) per_cat[hist_category[k]][l] += hist[k][l];
    }
    if (result->scene) per_cat[synth::kScene][result->scene] += seg_ * seg_;
    if (result->texture) per_cat[synth::kTexture][r.texture] += seg_ * seg_;
    for (int c = 0; c < kNumCategories; ++c) {
      for (int l = 1; l < kNumLabels; ++l) {
        if (per_cat[c][l] > 0) {
          result->counts.push_back(
              {static_cast<uint8_t>(c), static_cast<uint16_t>(l), per_cat[c][l]});
        }
      }
    }

    std::string& row = result->row;
    row = rel + ".jpg,";
    row += result->val ? "val" : "train";
    const std::string s = std::to_string(size_), g = std::to_string(seg_);
    row += "," + s + "," + s + "," + g + "," + g;
    for (int c = 0; c < kNumCategories; ++c) row += "," + cells[c];
    return Status::Ok();
  }

 private:
  // Encodes w->seg16 as an RGB PNG (R = label & 255, G = label >> 8) and writes it.
  Status WriteLayer(Worker* w, const std::string& dir, const std::string& rel) {
    w->rgb.create(seg_, seg_, CV_8UC3);
    for (int i = 0; i < seg_; ++i) {
      const uint16_t* in = w->seg16.ptr<uint16_t>(i);
      cv::Vec3b* out = w->rgb.ptr<cv::Vec3b>(i);  // OpenCV order: B, G, R
      for (int j = 0; j < seg_; ++j) {
        out[j] = cv::Vec3b(0, static_cast<uint8_t>(in[j] >> 8), static_cast<uint8_t>(in[j] & 255));
      }
    }
    w->encoded.clear();
    if (!cv::imencode(".png", w->rgb, w->encoded, {cv::IMWRITE_PNG_COMPRESSION, 1})) {
      return Internal("cannot encode PNG " + rel);
    }
    return WriteFile(dir + rel, w->encoded.data(), w->encoded.size());
  }

  const BrodenGeneratorOptions& options_;
  std::string root_;
  int size_, seg_;
  std::vector<int> src_;
};

// The CSV files, from the per-image results in image order.
Status WriteCsvs(const std::string& root, int seg, const std::vector<ImageResult>& results,
                 BrodenGeneratorSummary* summary) {
  const double grid = static_cast<double>(seg) * seg;
  std::vector<std::array<int64_t, kNumLabels>> freq(kNumCategories), pixels(kNumCategories);
  for (auto& a : freq) a.fill(0);
  for (auto& a : pixels) a.fill(0);
  std::string index = "image,split,ih,iw,sh,sw";
  for (int c = 0; c < kNumCategories; ++c) index += std::string(",") + synth::CategoryName(c);
  index += "\n";
  for (const ImageResult& r : results) {
    for (const LabelCount& lc : r.counts) {
      freq[lc.category][lc.label] += 1;
      pixels[lc.category][lc.label] += lc.pixels;
    }
    index += r.row;
    index += "\n";
  }
  auto in_category = [](int l, int c) { return (synth::GetLabelInfo(l).categories >> c) & 1u; };

  // c_<cat>.csv and category.csv.
  std::string category_csv = "name,first,last,count,frequency\n";
  summary->labels_in_category.assign(kNumCategories, 0);
  summary->labels_present.assign(kNumCategories, 0);
  for (int c = 0; c < kNumCategories; ++c) {
    std::string text = "code,number,name,frequency,coverage\n";
    int code = 0, first = 0, last = 0;
    int64_t cat_freq = 0;
    for (int l = 1; l < kNumLabels; ++l) {
      if (!in_category(l, c)) continue;
      ++code;
      if (first == 0) first = l;
      last = l;
      cat_freq += freq[c][l];
      if (freq[c][l] > 0) ++summary->labels_present[c];
      text += std::to_string(code) + "," + std::to_string(l) + "," + synth::GetLabelInfo(l).name +
              "," + std::to_string(freq[c][l]) + "," + Fixed6(pixels[c][l] / grid) + "\n";
    }
    summary->labels_in_category[c] = code;
    ND_RETURN_IF_ERROR(WriteText(root + "/c_" + synth::CategoryName(c) + ".csv", text));
    category_csv += std::string(synth::CategoryName(c)) + "," + std::to_string(first) + "," +
                    std::to_string(last) + "," + std::to_string(code) + "," +
                    std::to_string(cat_freq) + "\n";
  }
  ND_RETURN_IF_ERROR(WriteText(root + "/category.csv", category_csv));

  // label.csv.
  std::string label_csv = "number,name,category,frequency,coverage,syns\n";
  for (int l = 1; l < kNumLabels; ++l) {
    std::vector<std::pair<int64_t, int>> cats;  // (-frequency, category) sorts most frequent first
    int64_t total_freq = 0, total_pixels = 0;
    for (int c = 0; c < kNumCategories; ++c) {
      if (!in_category(l, c)) continue;
      cats.push_back({-freq[c][l], c});
      total_freq += freq[c][l];
      total_pixels += pixels[c][l];
    }
    std::sort(cats.begin(), cats.end());
    std::string cat_text;
    for (const auto& [neg_freq, c] : cats) {
      if (!cat_text.empty()) cat_text += ";";
      cat_text += std::string(synth::CategoryName(c)) + "(" + std::to_string(-neg_freq) + ")";
    }
    const synth::LabelInfo& info = synth::GetLabelInfo(l);
    label_csv += std::to_string(l) + "," + info.name + "," + cat_text + "," +
                 std::to_string(total_freq) + "," + Fixed6(total_pixels / grid) + "," + info.syns +
                 "\n";
  }
  ND_RETURN_IF_ERROR(WriteText(root + "/label.csv", label_csv));
  // index.csv last: its presence marks a complete dataset even inside the partial directory.
  return WriteText(root + "/index.csv", index);
}

bool IsEmptyDir(const fs::path& p) {
  std::error_code ec;
  return fs::is_empty(p, ec) && !ec;
}

}  // namespace

BrodenGenerator::BrodenGenerator(BrodenGeneratorOptions options) : options_(std::move(options)) {}

Status BrodenGenerator::Validate() const {
  const BrodenGeneratorOptions& o = options_;
  if (o.out_dir.empty()) return InvalidArgument("out_dir is required (--out DIR)");
  if (o.num_images < 1 || o.num_images > 10'000'000) {
    return InvalidArgument("--images must be in 1..10000000, got " + std::to_string(o.num_images));
  }
  if (o.image_size < 32 || o.image_size > 2048) {
    return InvalidArgument("--size must be in 32..2048, got " + std::to_string(o.image_size));
  }
  if (o.threads < 0 || o.threads > 1024) {
    return InvalidArgument("--threads must be in 0..1024 (0 = all cores), got " +
                           std::to_string(o.threads));
  }
  if (!(o.texture_fraction >= 0 && o.texture_fraction <= 1)) {
    return InvalidArgument("--texture-fraction must be in [0, 1]");
  }
  if (!(o.val_fraction >= 0 && o.val_fraction <= 1)) {
    return InvalidArgument("--val-fraction must be in [0, 1]");
  }
  if (o.jpeg_quality < 1 || o.jpeg_quality > 100) {
    return InvalidArgument("--jpeg-quality must be in 1..100, got " +
                           std::to_string(o.jpeg_quality));
  }
  std::error_code ec;
  const fs::path out(o.out_dir);
  const fs::file_status st = fs::status(out, ec);
  if (fs::exists(st)) {
    if (!fs::is_directory(st)) {
      return InvalidArgument("output '" + o.out_dir + "' exists and is not a directory");
    }
    if (!IsEmptyDir(out)) {
      if (!o.overwrite) {
        return InvalidArgument("output directory '" + o.out_dir +
                               "' is not empty (pass --overwrite to replace a previous dataset)");
      }
      if (!fs::exists(out / "index.csv")) {
        return InvalidArgument("refusing to overwrite '" + o.out_dir +
                               "': it is not empty and holds no index.csv");
      }
    }
  }
  return Status::Ok();
}

StatusOr<BrodenGeneratorSummary> BrodenGenerator::Run() {
  ND_RETURN_IF_ERROR(Validate());
  const BrodenGeneratorOptions& o = options_;
  const auto start = std::chrono::steady_clock::now();

  // Work in a sibling directory, renamed into place at the end.
  fs::path out = fs::path(o.out_dir).lexically_normal();
  if (!out.has_filename()) out = out.parent_path();  // "dir/" -> "dir"
  const fs::path partial = out.string() + ".partial-" + std::to_string(::getpid());
  std::error_code ec;
  fs::remove_all(partial, ec);
  fs::create_directories(partial / "images" / "synth", ec);
  if (ec) {
    return IoError("--out '" + o.out_dir + "': cannot create '" +
                   (partial / "images" / "synth").string() + "': " + ec.message());
  }
  auto fail = [&](const Status& s) -> Status {
    std::error_code ignored;
    fs::remove_all(partial, ignored);
    return s;
  };

  const int threads =
      static_cast<int>(std::clamp<int64_t>(WorkerCount(o.threads), 1, o.num_images));

  Job job(o, partial.string());
  std::vector<ImageResult> results(static_cast<size_t>(o.num_images));
  std::atomic<int64_t> done{0};
  std::vector<Worker> scratch(static_cast<size_t>(threads));
  Status first_error = ParallelForThreads(
      static_cast<size_t>(o.num_images), threads,
      [&](size_t i, int t) -> Status {
        Status s;
        try {
          s = job.ProcessImage(static_cast<int64_t>(i), &scratch[static_cast<size_t>(t)],
                               &results[i]);
        } catch (const std::exception& e) {  // OpenCV throws cv::Exception
          s = Internal(std::string("image ") + std::to_string(i + 1) + ": " + e.what());
        }
        if (!s.ok()) return s;
        const int64_t n = done.fetch_add(1) + 1;
        if (o.log_progress && o.num_images >= 10 && n % (o.num_images / 10) == 0) {
          LogInfo("generated " + std::to_string(n) + "/" + std::to_string(o.num_images) +
                  " images");
        }
        return Status::Ok();
      },
      "nd-make-broden");
  if (!first_error.ok()) return fail(first_error);

  BrodenGeneratorSummary summary;
  Status s = WriteCsvs(partial.string(), job.seg(), results, &summary);
  if (!s.ok()) return fail(s);

  // Move into place.
  if (fs::exists(out, ec)) {
    if (o.overwrite && fs::exists(out / "index.csv", ec)) {
      fs::remove_all(out, ec);
    } else {
      fs::remove(out, ec);  // an empty directory (Validate() checked)
    }
    if (ec) return fail(IoError("cannot replace '" + out.string() + "': " + ec.message()));
  }
  fs::rename(partial, out, ec);
  if (ec) {
    return fail(IoError("cannot rename '" + partial.string() + "' to '" + out.string() +
                        "': " + ec.message()));
  }

  summary.num_images = o.num_images;
  summary.image_size = o.image_size;
  summary.seg_size = job.seg();
  summary.threads = threads;
  summary.scene_images.assign(kNumLabels, 0);
  for (const ImageResult& r : results) {
    summary.num_texture_images += r.texture;
    summary.num_val += r.val;
    if (!r.texture) ++summary.scene_images[r.scene];
  }
  summary.num_train = summary.num_images - summary.num_val;
  summary.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  summary.images_per_second = summary.seconds > 0 ? summary.num_images / summary.seconds : 0;
  return summary;
}

std::string FormatSummary(const BrodenGeneratorSummary& s) {
  char buf[256];
  std::string text;
  std::snprintf(buf, sizeof(buf),
                "%" PRId64 " images (%" PRId64 " scene, %" PRId64 " texture; %" PRId64
                " train, %" PRId64 " val), photo %dx%d, segmentation %dx%d\n",
                s.num_images, s.num_images - s.num_texture_images, s.num_texture_images,
                s.num_train, s.num_val, s.image_size, s.image_size, s.seg_size, s.seg_size);
  text += buf;
  for (int c = 0; c < kNumCategories && c < static_cast<int>(s.labels_in_category.size()); ++c) {
    std::snprintf(buf, sizeof(buf), "  %-9s %3d labels, %3d present\n", synth::CategoryName(c),
                  s.labels_in_category[c], s.labels_present[c]);
    text += buf;
  }
  text += "  scenes:";
  for (int l = 1; l < static_cast<int>(s.scene_images.size()); ++l) {
    if (s.scene_images[l] > 0) {
      text +=
          " " + std::string(synth::GetLabelInfo(l).name) + " " + std::to_string(s.scene_images[l]);
    }
  }
  if (!s.scene_images.empty()) text += "; no scene " + std::to_string(s.scene_images[0]);
  text += "\n";
  std::snprintf(buf, sizeof(buf), "  %.2f s, %.1f images/s (%.0f images/min), %d threads\n",
                s.seconds, s.images_per_second, s.images_per_second * 60, s.threads);
  text += buf;
  return text;
}

}  // namespace nd
