#include "tools/report/report_builder.h"

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <functional>
#include <limits>
#include <map>
#include <mutex>
#include <opencv2/imgcodecs.hpp>
#include <opencv2/imgproc.hpp>
#include <set>
#include <thread>

#include "cache/activation_cache.h"
#include "cache/pipeline_keys.h"
#include "common/base/atomic_file.h"
#include "common/base/digest.h"
#include "common/base/log.h"
#include "common/base/parallel.h"
#include "common/base/text_format.h"
#include "common/broden/broden_dataset.h"
#include "common/broden/csv.h"
#include "common/maths/unit_mask.h"
#include "common/maths/upsample.h"
#include "common/maths/view_basis.h"
#include "tools/rate/answers_file.h"
#include "tools/rate/rate_study.h"
#include "tools/rate/rate_summary.h"
#include "tools/report/report_html.h"

namespace nd {
namespace {

std::string Format9(double v) { return FormatG(v, 9); }

namespace fs = std::filesystem;

// A path component made of [A-Za-z0-9._-] only (layer names are module paths such as
// "layer3.1.conv2"; anything else becomes '_').
std::string SafeComponent(const std::string& s) {
  std::string out;
  for (char c : s) {
    const bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                    c == '.' || c == '_' || c == '-';
    out += ok ? c : '_';
  }
  if (out.empty() || out == "." || out == "..") out = "_" + out;
  return out;
}

// One scored result set: a layer at one quantile, with its files.
struct SectionInput {
  size_t layer = 0;  // index into the configured layers
  double quantile = 0;
  fs::path dir;
  TallyFile tally;
  std::vector<double> thresholds;
  int64_t images = -1;
  int64_t significant_detectors = -1;  // summary.json, -1 when absent
  std::vector<UnitAnalysis> analysis;  // explanations.csv / stats.csv, per unit
};

// Counts and chart data of a section, from its tally (SPEC.md §2 step 8).
void Summarise(const TallyFile& tally, const std::vector<std::string>& categories, double cutoff,
               ReportSection* s) {
  const size_t nc = categories.size();
  s->units = static_cast<int>(tally.units.size());
  s->unique_per_category.assign(nc, 0);
  s->detectors_per_category.assign(nc, 0);
  s->label_detectors.assign(nc, {});
  // The tally's category columns, mapped to page categories by name.
  std::vector<int> column_of(nc, -1);
  for (size_t c = 0; c < nc; ++c)
    for (size_t k = 0; k < tally.categories.size(); ++k)
      if (tally.categories[k] == categories[c]) column_of[c] = static_cast<int>(k);
  std::set<std::string> top_labels;
  std::vector<std::set<std::string>> unique(nc);
  std::vector<std::map<std::string, int>> per_label(nc);
  s->detectors = 0;
  for (const TallyUnit& u : tally.units) {
    for (size_t c = 0; c < nc; ++c) {
      const int k = column_of[c];
      if (k >= 0 && u.cat_iou[k] > cutoff && !u.cat_label[k].empty())
        unique[c].insert(u.cat_label[k]);
    }
    if (!(u.iou > cutoff)) continue;
    ++s->detectors;
    top_labels.insert(u.category + "\n" + u.label);
    for (size_t c = 0; c < nc; ++c) {
      if (categories[c] != u.category) continue;
      ++s->detectors_per_category[c];
      ++per_label[c][u.label];
    }
  }
  s->unique_top_label = static_cast<int>(top_labels.size());
  s->unique_paper = 0;
  for (size_t c = 0; c < nc; ++c) {
    s->unique_per_category[c] = static_cast<int>(unique[c].size());
    s->unique_paper += s->unique_per_category[c];
    auto& v = s->label_detectors[c];
    v.assign(per_label[c].begin(), per_label[c].end());
    std::stable_sort(v.begin(), v.end(), [](const auto& a, const auto& b) {
      return a.second > b.second;  // map order breaks ties by name
    });
  }
}

}  // namespace

std::string StripPath(const std::string& section_id, int unit) {
  return "img/" + SafeComponent(section_id) + "/unit" + std::to_string(unit) + ".jpg";
}

StatusOr<LayerScan> ScanLayer(const std::vector<const ActivationCache*>& caches,
                              const std::string& prefix, const std::string& layer_name,
                              const std::vector<std::string>& digests, int expected_units, int k,
                              int workers, LinearView* view) {
  const size_t n = digests.size();
  const int shards = std::max(1, std::min<int>(workers, static_cast<int>(n)));
  struct Shard {
    std::vector<UnitTopImages> top;
    int units = -1, h = 0, w = 0;
    int64_t scanned = 0, missing = 0;
    std::string first_key;
  };
  std::vector<Shard> shard(shards);
  std::atomic<size_t> next{0};
  std::mutex mu;
  Status first_error;
  std::atomic<bool> stop{false};
  std::atomic<int> warned{0};
  auto fail = [&](Status s) {
    std::lock_guard<std::mutex> lock(mu);
    if (first_error.ok()) first_error = std::move(s);
    stop = true;
  };
  auto body = [&](int id) {
    Shard& sh = shard[id];
    ActivationMap record, viewed;
    ActivationMap& map = view ? viewed : record;
    for (;;) {
      if (stop.load(std::memory_order_relaxed)) return;
      const size_t row = next.fetch_add(1);
      if (row >= n) return;
      if (digests[row].empty()) {
        ++sh.missing;
        continue;
      }
      const std::string key = ActivationKey(prefix, digests[row]);
      Status s = NotFound(key);
      for (const ActivationCache* cache : caches) {
        s = cache->GetActivation(key, &record);
        if (s.code() != StatusCode::kNotFound) break;
      }
      if (s.ok() && view) {
        s = view->Apply(record, &viewed);
        if (!s.ok()) {
          fail(s.WithContext("view '" + layer_name + "'"));
          return;
        }
      }
      if (!s.ok()) {
        ++sh.missing;
        if (s.code() == StatusCode::kNotFound) continue;
        if (s.code() == StatusCode::kDataLoss) {
          if (warned.fetch_add(1) < 5)
            LogWarning("skipping row " + std::to_string(row) + ": " + s.message());
          continue;
        }
        fail(s);
        return;
      }
      if (sh.units < 0) {
        sh.units = map.units;
        sh.h = map.h;
        sh.w = map.w;
        sh.first_key = key;
        if (map.units != expected_units) {
          fail(DataLoss("layer '" + layer_name + "': the cache has " + std::to_string(map.units) +
                        " units (" + key + "), thresholds.csv has " +
                        std::to_string(expected_units)));
          return;
        }
        sh.top.assign(map.units, UnitTopImages(k));
      } else if (map.units != sh.units || map.h != sh.h || map.w != sh.w) {
        fail(DataLoss("layer '" + layer_name + "': record " + key + " has shape " +
                      std::to_string(map.units) + "x" + std::to_string(map.h) + "x" +
                      std::to_string(map.w) + ", " + sh.first_key + " has " +
                      std::to_string(sh.units) + "x" + std::to_string(sh.h) + "x" +
                      std::to_string(sh.w)));
        return;
      }
      ++sh.scanned;
      const size_t plane = map.plane();
      const uint32_t r = static_cast<uint32_t>(row);
      for (int u = 0; u < map.units; ++u) {
        const float* a = map.unit(u);
        const float m = MaxIgnoringNan(a, plane);
        if (sh.top[u].Accepts(m, r)) sh.top[u].Offer(m, r, a, plane);
      }
    }
  };
  ND_RETURN_IF_ERROR(RunOnThreads(shards, body, "report"));
  ND_RETURN_IF_ERROR(first_error);

  LayerScan out;
  Shard* base = nullptr;
  for (Shard& sh : shard) {
    out.scanned += sh.scanned;
    out.missing += sh.missing;
    if (sh.units < 0) continue;
    if (!base) {
      base = &sh;
      continue;
    }
    if (sh.units != base->units || sh.h != base->h || sh.w != base->w)
      return DataLoss("layer '" + layer_name + "': records " + sh.first_key + " and " +
                      base->first_key + " differ in shape");
    for (int u = 0; u < sh.units; ++u) base->top[u].Merge(std::move(sh.top[u]));
  }
  if (!base)
    return NotFound(
        "layer '" + layer_name +
        "': no image of the dataset has a cached "
        "activation in " +
        (caches.empty() ? std::string("no cache") : caches.front()->dir()) +
        (caches.size() > 1 ? " or " + std::to_string(caches.size() - 1) + " more" : "") +
        "; run nd-pipeline up first");
  out.units = base->units;
  out.h = base->h;
  out.w = base->w;
  out.top.resize(out.units);
  for (int u = 0; u < out.units; ++u) out.top[u] = base->top[u].Sorted();
  return out;
}

namespace {

// Renders and writes the strips of one section; fills the cards' strip and tile fields.
struct StripCounters {
  std::atomic<int64_t> strips{0}, unreadable{0};
};

Status WriteStrips(const BrodenDataset& dataset, const LayerScan& scan,
                   const std::vector<double>& thresholds, const ReportOptions& o,
                   const fs::path& img_dir, const std::string& url_dir,
                   std::vector<UnitCard>* cards_by_unit, StripCounters* counters) {
  const int tile = o.tile_size;
  const int units = scan.units;
  size_t widest = 0;
  for (const auto& t : scan.top) widest = std::max(widest, t.size());
  if (widest == 0) return Status::Ok();
  const int strip_w = static_cast<int>(widest) * tile + (static_cast<int>(widest) - 1) * kTileGap;
  // Units per batch: bound the strips held in memory to ~64 MiB.
  const size_t strip_bytes = static_cast<size_t>(strip_w) * tile * 3;
  const int batch = static_cast<int>(std::max<size_t>(1, (size_t{64} << 20) / strip_bytes));
  const std::vector<int> params = {cv::IMWRITE_JPEG_QUALITY, o.jpeg_quality};
  const cv::Scalar background(255, 255, 255), grey(160, 160, 160);
  for (int start = 0; start < units; start += batch) {
    const int end = std::min(units, start + batch);
    std::vector<cv::Mat> strips(end - start);
    // Per photo: the (unit, rank) tiles it appears in, so each photo is decoded once per batch.
    std::map<uint32_t, std::vector<std::pair<int, int>>> jobs;
    for (int u = start; u < end; ++u) {
      const auto& top = scan.top[u];
      if (top.empty()) continue;
      const int w =
          static_cast<int>(top.size()) * tile + (static_cast<int>(top.size()) - 1) * kTileGap;
      strips[u - start] = cv::Mat(tile, w, CV_8UC3, background);
      for (size_t r = 0; r < top.size(); ++r) jobs[top[r].row].emplace_back(u, static_cast<int>(r));
    }
    std::vector<std::pair<uint32_t, std::vector<std::pair<int, int>>>> job_list(jobs.begin(),
                                                                                jobs.end());
    ND_RETURN_IF_ERROR(ParallelFor(
        job_list.size(), o.workers,
        [&](size_t j) -> Status {
          const uint32_t row = job_list[j].first;
          const BrodenImage& im = dataset.images()[row];
          cv::Mat photo;
          auto path = dataset.ResolveImagePath(im.image);
          try {
            if (path.ok()) photo = cv::imread(*path, cv::IMREAD_COLOR);
          } catch (const cv::Exception&) {
            photo.release();
          }
          for (const auto& [u, r] : job_list[j].second) {
            cv::Mat roi = strips[u - start](cv::Rect(r * (tile + kTileGap), 0, tile, tile));
            if (photo.empty()) {
              roi.setTo(grey);
              ++counters->unreadable;
              continue;
            }
            RenderMaskedTile(photo, scan.top[u][r].map.data(), scan.h, scan.w, thresholds[u], roi);
          }
          return Status::Ok();
        },
        "report"));
    ND_RETURN_IF_ERROR(ParallelFor(
        end - start, o.workers,
        [&](size_t i) -> Status {
          const int u = start + static_cast<int>(i);
          if (strips[i].empty()) return Status::Ok();
          const std::string name = "unit" + std::to_string(u + 1) + ".jpg";  // as StripPath
          std::vector<uchar> bytes;
          try {
            if (!cv::imencode(".jpg", strips[i], bytes, params))
              return IoError((img_dir / name).string() + ": JPEG encoding failed");
          } catch (const cv::Exception& e) {
            return IoError((img_dir / name).string() + ": JPEG encoding failed: " + e.what());
          }
          ND_RETURN_IF_ERROR(WriteFileAtomically(
              (img_dir / name).string(),
              std::string_view(reinterpret_cast<const char*>(bytes.data()), bytes.size())));
          UnitCard& card = (*cards_by_unit)[u];
          card.strip = url_dir + "/" + name;
          card.strip_width = strips[i].cols;
          card.strip_height = strips[i].rows;
          ++counters->strips;
          return Status::Ok();
        },
        "report"));
  }
  return Status::Ok();
}

}  // namespace

StatusOr<std::vector<std::string>> ImageDigests(const BrodenDataset& dataset, int workers) {
  const auto& images = dataset.images();
  std::vector<std::string> digests(images.size());
  std::atomic<int> warned{0};
  ND_RETURN_IF_ERROR(ParallelFor(
      images.size(), workers,
      [&](size_t i) -> Status {
        auto path = dataset.ResolveImagePath(images[i].image);
        if (!path.ok()) return Status::Ok();  // Open() already rejected such rows
        auto digest = Sha256File(*path);
        if (!digest.ok()) {
          if (warned.fetch_add(1) < 5) LogWarning(digest.status().message());
          return Status::Ok();  // left out, counted as missing by the scan
        }
        digests[i] = std::move(*digest);
        return Status::Ok();
      },
      "report"));
  return digests;
}

// ---- UnitTopImages ----

bool UnitTopImages::Accepts(float max, uint32_t row) const {
  if (static_cast<int>(items_.size()) < k_) return true;
  const TopImage& w = items_[worst_];
  return RanksBefore(max, row, w.max, w.row);
}

void UnitTopImages::UpdateWorst() {
  worst_ = 0;
  for (size_t i = 1; i < items_.size(); ++i)
    if (RanksBefore(items_[worst_].max, items_[worst_].row, items_[i].max, items_[i].row))
      worst_ = i;
}

void UnitTopImages::Offer(float max, uint32_t row, const float* map, size_t plane) {
  if (k_ <= 0 || !Accepts(max, row)) return;
  if (static_cast<int>(items_.size()) < k_) {
    items_.push_back(TopImage{max, row, std::vector<float>(map, map + plane)});
  } else {
    TopImage& w = items_[worst_];
    w.max = max;
    w.row = row;
    w.map.assign(map, map + plane);
  }
  if (static_cast<int>(items_.size()) == k_) UpdateWorst();
}

void UnitTopImages::Merge(UnitTopImages&& other) {
  for (TopImage& t : other.items_) {
    if (!Accepts(t.max, t.row)) continue;
    if (static_cast<int>(items_.size()) < k_) {
      items_.push_back(std::move(t));
    } else {
      items_[worst_] = std::move(t);
    }
    if (static_cast<int>(items_.size()) == k_) UpdateWorst();
  }
  other.items_.clear();
}

std::vector<TopImage> UnitTopImages::Sorted() const {
  std::vector<TopImage> out = items_;
  std::sort(out.begin(), out.end(), [](const TopImage& a, const TopImage& b) {
    return RanksBefore(a.max, a.row, b.max, b.row);
  });
  return out;
}

float MaxIgnoringNan(const float* v, size_t n) {
  float m = -std::numeric_limits<float>::infinity();
  for (size_t i = 0; i < n; ++i) m = v[i] > m ? v[i] : m;  // NaN compares false
  return m;
}

// ---- Tiles ----

int64_t RenderMaskedTile(const cv::Mat& photo, const float* map, int h, int w, double t,
                         cv::Mat& tile) {
  const int ph = photo.rows, pw = photo.cols;
  // The mask of unit_mask.h, at photo resolution: (max A > T) and (up > T), compared as floats
  // against the largest float <= T, which equals comparing in double.
  const bool any = static_cast<double>(MaxIgnoringNan(map, static_cast<size_t>(h) * w)) > t;
  const float tf = ThresholdAsFloat(t);
  std::vector<float> up;
  if (any) {
    up.resize(static_cast<size_t>(ph) * pw);
    UpsampleBilinear(map, h, w, ph, pw, up.data());
  }
  uint8_t dim[256];
  for (int v = 0; v < 256; ++v) dim[v] = static_cast<uint8_t>((v * 51 + 127) / 255);  // 20%
  cv::Mat composed(ph, pw, CV_8UC3);
  int64_t area = 0;
  for (int y = 0; y < ph; ++y) {
    const uint8_t* src = photo.ptr<uint8_t>(y);
    uint8_t* dst = composed.ptr<uint8_t>(y);
    const float* a = any ? up.data() + static_cast<size_t>(y) * pw : nullptr;
    for (int x = 0; x < pw; ++x) {
      const bool in = a && a[x] > tf;
      area += in;
      for (int ch = 0; ch < 3; ++ch) dst[3 * x + ch] = in ? src[3 * x + ch] : dim[src[3 * x + ch]];
    }
  }
  const int side = tile.cols;
  const double scale = static_cast<double>(side) / std::max(ph, pw);
  const int nw = std::clamp(static_cast<int>(std::lround(pw * scale)), 1, side);
  const int nh = std::clamp(static_cast<int>(std::lround(ph * scale)), 1, tile.rows);
  tile.setTo(cv::Scalar(64, 64, 64));
  cv::Mat dst = tile(cv::Rect((side - nw) / 2, (tile.rows - nh) / 2, nw, nh));
  cv::resize(composed, dst, cv::Size(nw, nh), 0, 0, cv::INTER_AREA);
  return area;
}

// ---- Result files ----

// ---- The report ----

namespace {

// Every section's result files (tally.csv, thresholds.csv, optional summary.json and analysis
// files), layer-major then quantile; the first missing or inconsistent file is the error.
StatusOr<std::vector<SectionInput>> ReadSectionInputs(const PipelineConfig& config,
                                                      const std::vector<UnitSet>& sets) {
  const auto& quantiles = config.threshold.quantiles;
  std::vector<SectionInput> inputs;
  for (size_t l = 0; l < sets.size(); ++l) {
    for (double q : quantiles) {
      SectionInput in;
      in.layer = l;
      in.quantile = q;
      in.dir = LayerResultDir(config.output.dir, sets[l].name, q, quantiles.size() > 1);
      ND_ASSIGN_OR_RETURN(in.tally, ReadTallyFile((in.dir / "tally.csv").string()));
      ND_ASSIGN_OR_RETURN(in.thresholds, ReadThresholdsFile((in.dir / "thresholds.csv").string()));
      if (in.thresholds.size() != in.tally.units.size())
        return DataLoss((in.dir / "thresholds.csv").string() + ": " +
                        std::to_string(in.thresholds.size()) + " units, tally.csv has " +
                        std::to_string(in.tally.units.size()));
      // summary.json is optional here: the report shows its image count and significance.
      StatusOr<LayerSummary> summary = ReadSummaryFile((in.dir / "summary.json").string());
      if (summary.ok()) {
        in.images = static_cast<int64_t>(summary->images);
        in.significant_detectors = summary->analysis.significant_detectors;
      } else if (summary.status().code() != StatusCode::kNotFound) {
        LogWarning(summary.status().message() + " (the report goes on without it)");
      }
      in.analysis.resize(in.tally.units.size());
      ND_RETURN_IF_ERROR(ReadAnalysisFiles(in.dir.string(), &in.analysis));
      inputs.push_back(std::move(in));
    }
  }
  return inputs;
}

// One card per unit, in unit order: its label, runners-up by category, threshold, analysis and
// top images (tiles are filled by WriteStrips).
std::vector<UnitCard> MakeCards(const SectionInput& in, const LayerScan& scan,
                                const BrodenDataset& dataset, double iou_threshold) {
  std::vector<UnitCard> by_unit(scan.units);
  for (int u = 0; u < scan.units; ++u) {
    const TallyUnit& t = in.tally.units[u];
    UnitCard& c = by_unit[u];
    c.unit = u + 1;
    c.label = t.label;
    c.category = t.category;
    c.iou = t.iou;
    c.detector = t.iou > iou_threshold;
    c.threshold = in.thresholds[u];
    c.analysis = in.analysis[u];
    for (size_t k = 0; k < in.tally.categories.size(); ++k) {
      if (in.tally.categories[k] == t.category || t.cat_label[k].empty() || !(t.cat_iou[k] > 0))
        continue;
      c.runners.push_back(RunnerUp{t.cat_label[k], in.tally.categories[k], t.cat_iou[k]});
    }
    std::stable_sort(c.runners.begin(), c.runners.end(),
                     [](const RunnerUp& a, const RunnerUp& b) { return a.iou > b.iou; });
    for (const TopImage& ti : scan.top[u])
      c.tiles.push_back(CardTile{dataset.images()[ti.row].image, ti.row, ti.max});
  }
  return by_unit;
}

// <img_dir>/images.csv: which image each tile of each strip shows.
Status WriteImageIndex(const fs::path& img_dir, const std::vector<UnitCard>& by_unit) {
  std::string index = "unit,rank,row,image,max_activation\n";
  for (const UnitCard& c : by_unit)
    for (size_t r = 0; r < c.tiles.size(); ++r)
      index += std::to_string(c.unit) + "," + std::to_string(r + 1) + "," +
               std::to_string(c.tiles[r].row) + "," + CsvField(c.tiles[r].image) + "," +
               Format9(c.tiles[r].max) + "\n";
  return WriteFileAtomically((img_dir / "images.csv").string(), index);
}

}  // namespace

StatusOr<ReportStats> BuildReport(const PipelineConfig& config, const ReportOptions& options) {
  const auto started = std::chrono::steady_clock::now();
  ReportOptions o = options;
  if (o.top_images < 1 || o.top_images > 100)
    return InvalidArgument("--top: " + std::to_string(o.top_images) + " is not in 1..100");
  if (o.tile_size < 16 || o.tile_size > 512)
    return InvalidArgument("--tile: " + std::to_string(o.tile_size) + " is not in 16..512");
  if (o.jpeg_quality < 1 || o.jpeg_quality > 100)
    return InvalidArgument("--jpeg-quality: " + std::to_string(o.jpeg_quality) +
                           " is not in 1..100");
  if (o.workers < 0) return InvalidArgument("--workers: must be >= 0");
  if (o.workers == 0) o.workers = std::max(1u, std::thread::hardware_concurrency());
  if (config.output.dir.empty()) return InvalidArgument("[output].dir is required");
  const fs::path out_dir =
      o.out_dir.empty() ? fs::path(config.output.dir) / "report" : fs::path(o.out_dir);

  ND_ASSIGN_OR_RETURN(BrodenDataset dataset,
                      BrodenDataset::Open(config.dataset.path, BrodenOptionsFor(config.dataset)));
  ND_ASSIGN_OR_RETURN(std::vector<LayerId> layers, ConfiguredLayers(config));
  // Sections: every layer, then every view (shown like a layer).
  ND_ASSIGN_OR_RETURN(std::vector<UnitSet> sets, ConfiguredUnitSets(config));

  ReportPage page;
  page.model = config.model.path;
  for (const ModelEntry& m : config.models)  // a series: every model, by name
    page.model += (page.model.empty() ? "" : ", ") + m.name + " (" + m.path + ")";
  page.dataset = config.dataset.path;
  page.union_rule = config.score.union_rule;
  page.cache_dtype = config.cache.dtype;
  page.preprocess = config.model.preprocess;
  page.iou_threshold = config.score.iou_threshold;
  page.top_images = o.top_images;
  for (const BrodenCategory& c : dataset.categories())
    if (c.selected) page.categories.push_back(c.name);

  // Read every section's files first, so that a missing one fails before any work.
  const auto& quantiles = config.threshold.quantiles;
  ND_ASSIGN_OR_RETURN(std::vector<SectionInput> inputs, ReadSectionInputs(config, sets));

  ND_ASSIGN_OR_RETURN(std::vector<std::string> digests, ImageDigests(dataset, o.workers));
  std::vector<ActivationCache> opened;
  if (o.cache_dirs.empty()) {
    ND_ASSIGN_OR_RETURN(ActivationCache one,
                        ActivationCache::Open(CacheOptionsFor(config, /*read_only=*/true)));
    opened.push_back(std::move(one));
  }
  for (const std::string& dir : o.cache_dirs) {
    CacheOptions co = CacheOptionsFor(config, /*read_only=*/true);
    co.dir = dir;
    ND_ASSIGN_OR_RETURN(ActivationCache one, ActivationCache::Open(co));
    opened.push_back(std::move(one));
  }
  std::vector<const ActivationCache*> caches;
  for (const ActivationCache& one : opened) caches.push_back(&one);

  std::error_code ec;
  const fs::path img_root = out_dir / "img";
  fs::remove_all(img_root, ec);
  if (ec)
    return IoError(img_root.string() + ": cannot remove the previous images: " + ec.message());
  fs::create_directories(img_root, ec);
  if (ec) return IoError(img_root.string() + ": cannot create: " + ec.message());

  ReportStats stats;
  StripCounters counters;
  for (size_t l = 0; l < sets.size(); ++l) {
    const UnitSet& set = sets[l];
    std::unique_ptr<LinearView> view;
    if (set.is_view()) view = std::make_unique<LinearView>(config.views[set.view], set.alpha);
    const int expected = static_cast<int>(inputs[l * quantiles.size()].thresholds.size());
    const auto scan_started = std::chrono::steady_clock::now();
    ND_ASSIGN_OR_RETURN(LayerScan scan,
                        ScanLayer(caches, LayerKeyPrefix(layers[set.source]), set.name, digests,
                                  expected, o.top_images, o.workers, view.get()));
    stats.images_scanned += scan.scanned;
    stats.images_missing += scan.missing;
    const double scan_s =
        std::chrono::duration<double>(std::chrono::steady_clock::now() - scan_started).count();
    for (size_t qi = 0; qi < quantiles.size(); ++qi) {
      SectionInput& in = inputs[l * quantiles.size() + qi];
      if (static_cast<int>(in.thresholds.size()) != scan.units)
        return DataLoss((in.dir / "thresholds.csv").string() + ": " +
                        std::to_string(in.thresholds.size()) + " units, the cache has " +
                        std::to_string(scan.units));
      ReportSection s;
      s.layer = set.name;
      s.quantile = in.quantile;
      s.images = in.images;
      s.id = quantiles.size() > 1 ? set.name + "-q" + FormatG(in.quantile, 6) : set.name;
      s.title =
          quantiles.size() > 1 ? set.name + " (q = " + FormatG(in.quantile, 6) + ")" : set.name;
      Summarise(in.tally, page.categories, config.score.iou_threshold, &s);
      s.significant_detectors = static_cast<int>(in.significant_detectors);

      // Cards by unit, then in tally order.
      std::vector<UnitCard> by_unit = MakeCards(in, scan, dataset, config.score.iou_threshold);
      const std::string dir_name = SafeComponent(s.id);
      const fs::path img_dir = img_root / dir_name;
      fs::create_directories(img_dir, ec);
      if (ec) return IoError(img_dir.string() + ": cannot create: " + ec.message());
      const auto strips_started = std::chrono::steady_clock::now();
      ND_RETURN_IF_ERROR(WriteStrips(dataset, scan, in.thresholds, o, img_dir, "img/" + dir_name,
                                     &by_unit, &counters));
      ND_RETURN_IF_ERROR(WriteImageIndex(img_dir, by_unit));
      // Tally order: IoU descending, ties by unit (as tally.csv).
      std::vector<int> order(scan.units);
      for (int u = 0; u < scan.units; ++u) order[u] = u;
      std::stable_sort(order.begin(), order.end(),
                       [&](int a, int b) { return by_unit[a].iou > by_unit[b].iou; });
      for (int u : order) s.cards.push_back(std::move(by_unit[u]));
      LogInfo(
          s.title + ": " + std::to_string(scan.units) + " units, " + std::to_string(scan.scanned) +
          " images scanned in " + FormatG(scan_s, 6) + " s, strips in " +
          FormatG(std::chrono::duration<double>(std::chrono::steady_clock::now() - strips_started)
                      .count(),
                  6) +
          " s");
      stats.units += scan.units;
      page.sections.push_back(std::move(s));
    }
  }
  // The human evaluation (`nd-pipeline rate`), on the sections of the quantile that was rated.
  {
    auto records = ReadAnswersFile(RateAnswersPath(config));
    if (!records.ok()) {
      LogWarning(records.status().message() + " (the report goes on without human evaluation)");
    } else if (!records->empty()) {
      std::map<std::string, int64_t> study;
      for (const SectionInput& in : inputs) {
        if (in.quantile != quantiles.front()) continue;
        const std::string& layer = sets[in.layer].name;
        study[layer] = StudySize(in.tally, config.rate, config.score.iou_threshold);
      }
      for (LayerHumanEval& h : SummarizeAnswers(*records, config.rate.min_catch_accuracy, study)) {
        for (ReportSection& s : page.sections) {
          if (s.layer != h.layer || s.quantile != quantiles.front()) continue;
          s.has_human = true;
          s.human = h;
        }
      }
    }
  }
  stats.sections = static_cast<int>(page.sections.size());
  stats.strips = counters.strips;
  stats.photos_unreadable = counters.unreadable;
  const fs::path index_path = out_dir / "index.html";
  ND_RETURN_IF_ERROR(WriteFileAtomically(index_path.string(), RenderReportHtml(page)));
  stats.index_path = index_path.string();
  stats.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count();
  return stats;
}

}  // namespace nd
