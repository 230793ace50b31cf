// nd-report: a static, self-contained HTML report of a finished dissection, rendered from the
// result files and the activation cache (no forward pass). SPEC.md §3, "The original report".
//
// What BuildReport() reads, for every configured layer (and every quantile when
// threshold.quantile is a list, as nd-stage-score writes them):
//   <output.dir>/<layer>[/q<q>]/tally.csv       labels, IoUs, per-category best labels (unit
//   1-based) <output.dir>/<layer>[/q<q>]/thresholds.csv  T_u (unit 0-based)
//   <output.dir>/<layer>[/q<q>]/summary.json    optional; only "images" is shown from it
//   the LMDB cache (read-only): one GetActivation per image and layer, keyed by the SHA-256 of the
//   image file, exactly as decode/extract wrote them; the dataset's index.csv and its photos.
//
// What it writes, under <report dir> (default <output.dir>/report):
//   index.html                 the page: inline CSS, inline JS, inline SVG charts, no network
//   img/<section>/unit<N>.jpg  one strip per unit: its top-K images side by side, each a square
//                              tile of tile_size px (letterboxed), tiles separated by kTileGap px
//   img/<section>/images.csv   which images were used: unit,rank,row,image,max_activation
// Numbering, everywhere in the report (page, anchors, file names, images.csv): units are 1-based
// as in tally.csv (unit N is channel N-1 of the layer and row N-1 of thresholds.csv); ranks are
// 1-based (1 = highest max activation); `row` is the 0-based data row of index.csv. A section is
// one layer (id = the layer name) or, with several quantiles, one layer at one quantile
// (id = "<layer>-q<q>", q printed with %g). Card anchors are "#<section>-unit-<N>".
// The img/ folder is deleted and rewritten on every run; nothing else under <report dir> is.
//
// The top images of a unit are the K images with the highest max activation of that unit over
// all cached images (ties: the lower row first). A tile is the photo with everything outside the
// unit's mask dimmed to 20%: mask = (max A > T_u) and (up(A) > T_u), where up() is the bilinear
// upsampling of common/maths/upsample.h to the photo's size (the rule that was scored, evaluated at
// image size as the original tools do), T_u from thresholds.csv. Units, detectors and unique
// detectors are recomputed from tally.csv with score.iou_threshold (best IoU > cutoff), so they
// equal summary.json's when the configuration is the one that was scored.
//
// Images whose activation is not in the cache (skipped by the pipeline, or changed since) are
// counted and left out; a photo that cannot be decoded leaves its tile grey and is counted.
//
// Thread-safety: BuildReport() is reentrant (it uses `workers` threads internally); the other
// functions are pure.
#pragma once

#include <cstdint>
#include <opencv2/core.hpp>
#include <string>
#include <vector>

#include "common/base/config.h"
#include "common/base/status.h"
#include "common/results/result_files.h"
#include "tools/report/report_html.h"

namespace nd {

inline constexpr int kTileGap = 4;  // px of card background between the tiles of a strip

struct ReportOptions {
  int top_images = 10;    // K, tiles per unit; 1..100
  int tile_size = 112;    // edge of a square tile in px; 16..512
  int jpeg_quality = 85;  // 1..100
  int workers = 0;        // threads for the cache scan and the tiles; 0 = number of cores
  std::string out_dir;    // "" = <output.dir>/report
  // The caches holding the activations, read in this order (an image's record is taken from the
  // first that has it): a sharded run's cache shards. Empty = cache.dir.
  std::vector<std::string> cache_dirs;
};

struct ReportStats {
  std::string index_path;      // the index.html written
  int sections = 0;            // layer × quantile sections
  int64_t units = 0;           // cards, all sections
  int64_t strips = 0;          // strip JPEGs written
  int64_t images_scanned = 0;  // activation records read, all layers
  int64_t images_missing = 0;  // rows without a cached activation (per layer, summed)
  int64_t photos_unreadable = 0;
  double seconds = 0;
};

// Validates `options` (InvalidArgument naming the option), reads what the header lists and
// writes the report. Errors name the file or key: NotFound for a missing tally.csv /
// thresholds.csv ("run nd-pipeline up first"), DataLoss for a malformed one or a cache record whose
// shape disagrees with the layer's, IoError for unwritable output.
[[nodiscard]] StatusOr<ReportStats> BuildReport(const PipelineConfig& config,
                                                const ReportOptions& options);

// The URL of a unit's strip relative to the report directory: "img/<section>/unit<N>.jpg", the
// section id made safe as a file name (characters other than [A-Za-z0-9._-] become '_'), N 1-based.
// The study report (study_report.h) links the strips through it.
std::string StripPath(const std::string& section_id, int unit);

// ---- The pieces, exposed for tests. ----

// One image among a unit's top images.
struct TopImage {
  float max = 0;           // max activation of the unit on this image (NaN values ignored)
  uint32_t row = 0;        // 0-based index.csv data row
  std::vector<float> map;  // the unit's h×w activation map on this image
};

// True when a ranks before b: higher max, then lower row.
inline bool RanksBefore(float a_max, uint32_t a_row, float b_max, uint32_t b_row) {
  return a_max > b_max || (a_max == b_max && a_row < b_row);
}

// Keeps the K best (max, row) of one unit with their maps. Offer() is O(1) when the candidate does
// not enter (the common case) and O(K) when it does. The result does not depend on the order of
// the offers (RanksBefore is a total order on distinct rows). Not thread-safe; one per thread and
// unit, merged with Merge().
class UnitTopImages {
 public:
  explicit UnitTopImages(int k = 10) : k_(k) {}
  // Would (max, row) enter now? Cheap; call before copying a map.
  bool Accepts(float max, uint32_t row) const;
  // REQUIRES: map has h*w floats.
  void Offer(float max, uint32_t row, const float* map, size_t plane);
  void Merge(UnitTopImages&& other);
  // The kept images, best first.
  std::vector<TopImage> Sorted() const;
  size_t size() const { return items_.size(); }

 private:
  void UpdateWorst();
  int k_;
  std::vector<TopImage> items_;
  size_t worst_ = 0;  // index of the worst kept item, valid when items_ is full
};

class ActivationCache;
class BrodenDataset;
class LinearView;

// Per-unit top images of one layer, from one scan of the cache.
struct LayerScan {
  int units = 0, h = 0, w = 0;
  std::vector<std::vector<TopImage>> top;  // [unit] (0-based) best first
  int64_t scanned = 0, missing = 0;        // records read; rows without a usable record
};

// The SHA-256 of every image file of the dataset (the cache's image key), in index.csv row order;
// "" for a file that cannot be read (a warning is logged for the first few).
[[nodiscard]] StatusOr<std::vector<std::string>> ImageDigests(const BrodenDataset& dataset,
                                                              int workers);

// Scans the cached activations of one layer (`prefix` = LayerKeyPrefix of it) for the images
// `digests` names and keeps each unit's top `k` (UnitTopImages). Errors: DataLoss when a record's
// shape disagrees with another's or its unit count with `expected_units`; NotFound when no image
// has a record. Uses `workers` threads. With several caches (a sharded run's), an image's record
// is taken from the first cache that has it. With `view`, the records are the view's source layer
// and every map is transformed by the view's basis before its maxima are taken.
[[nodiscard]] StatusOr<LayerScan> ScanLayer(const std::vector<const ActivationCache*>& caches,
                                            const std::string& prefix,
                                            const std::string& layer_name,
                                            const std::vector<std::string>& digests,
                                            int expected_units, int k, int workers,
                                            LinearView* view = nullptr);
[[nodiscard]] inline StatusOr<LayerScan> ScanLayer(const ActivationCache& cache,
                                                   const std::string& prefix,
                                                   const std::string& layer_name,
                                                   const std::vector<std::string>& digests,
                                                   int expected_units, int k, int workers) {
  return ScanLayer(std::vector<const ActivationCache*>{&cache}, prefix, layer_name, digests,
                   expected_units, k, workers);
}

// The max of n floats ignoring NaN (-inf when all are NaN or n == 0).
float MaxIgnoringNan(const float* v, size_t n);

// Renders one tile: `photo` (8-bit BGR) with the pixels outside the mask of `map` (h×w) at
// threshold t (see the header comment) scaled to 20%, then resized (area) to fit the square
// `tile` (its size is the tile size), centred on a grey background. `tile` may be a view into a
// strip. Returns |mask| at photo resolution.
// REQUIRES: photo non-empty CV_8UC3; map has h*w floats, h, w >= 1; tile non-empty CV_8UC3.
int64_t RenderMaskedTile(const cv::Mat& photo, const float* map, int h, int w, double t,
                         cv::Mat& tile);

}  // namespace nd
