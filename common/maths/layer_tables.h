// LayerTables: what the analyses from the activation cache (compositional explanations,
// explain.h; bootstrap and permutation statistics, label_stats.h) need of one layer at one set of
// thresholds, gathered in one pass over the cached activations. No forward pass, no sockets.
//
// Per image i (the caller's numbering, 0..images-1; in the score process image i is the i-th
// scored index.csv row):
//  - its LabelIndex (label_index.h; shared, e.g. the score stage's prepared one);
//  - `merged`: for every label with pixels in the image, the union of its pixels over all layers
//    (a pixel counts once), sorted by label number; labels that are also a scalar label of the
//    image are left out of `merged`, since a scalar label covers the whole grid;
//  - `scalars`: the image's distinct scalar labels, sorted;
//  - `g`: the image's contribution to G[l] (SPEC.md §2 step 5: once per layer carrying the pixel,
//    sh*sw per scalar occurrence), sorted by label.
// Labels that LabelIndex ignores (label 0, labels without a primary category among the selected
// categories) are absent everywhere.
// Per unit u, for every image where the unit's mask M (unit_mask.h: threshold, bilinear
// upsampling, `> T`) is not empty (images with an empty mask contribute nothing to any count):
//  - the mask's words [lo, hi) (bits.h layout; words outside are zero) and m = |M|;
//  - `counts`: the image's contribution to I[u,l] (SPEC.md §2 step 5 counting: once per layer,
//    |M| per scalar occurrence), labels with a non-zero contribution, sorted by label;
//  - `union_categories`: bit c set when the image adds |M| to U[u,c] under the tally's union rule.
// Summing these tables over all images gives exactly IouTally's counts (tested), so weighting
// images (bootstrap) or re-pairing masks with other images' labels (permutations) needs no
// rescoring.
//
// Skips: an image whose labels or activations cannot be obtained, or whose activations are
// malformed, is skipped and named in skipped(); it then counts nowhere. A map whose number of
// units differs from the thresholds is an error (FailedPrecondition), as in Dissector.
//
// Memory: the masks dominate: about 8 bytes × (words spanned by each non-empty mask) — for
// ResNet-18 layer4 at q = 0.005 on 2,000 generated 224-px images 67 MiB (742 MiB at 22,000); the
// label indexes are shared with the caller.
//
// Thread-safety: immutable after Build(); const methods may be called concurrently. Build() uses
// `workers` threads and calls the callbacks concurrently (they must be thread-safe).
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "common/base/activation_map.h"
#include "common/base/status.h"
#include "common/maths/iou_tally.h"
#include "common/maths/label_index.h"

namespace nd {

// A label's pixel set on one image: words [lo, hi) of the grid, `words` pointing at word lo.
struct LabelBits {
  int label = 0;
  uint32_t lo = 0, hi = 0;
  int64_t count = 0;
  const uint64_t* words = nullptr;
};

struct TableImage {
  TableImage() = default;
  TableImage(TableImage&&) = default;  // moving keeps `own`'s buffer, so `merged` stays valid
  TableImage& operator=(TableImage&&) = default;
  TableImage(const TableImage&) = delete;
  TableImage& operator=(const TableImage&) = delete;

  std::shared_ptr<const LabelIndex> index;
  int sh = 0, sw = 0;
  size_t num_words = 0;
  std::vector<LabelBits> merged;           // sorted by label, see the header comment
  std::vector<int> scalars;                // distinct, sorted
  std::vector<std::pair<int, int64_t>> g;  // (label, G contribution), sorted by label
  std::vector<uint64_t> own;               // storage of merged sets spanning several layers
  bool skipped = false;                    // labels or activations unavailable
  int64_t pixels() const { return static_cast<int64_t>(sh) * sw; }
  // The merged set of `label` or nullptr.
  const LabelBits* FindMerged(int label) const;
  bool HasScalar(int label) const;
};

// Unit u's non-empty mask on one image.
struct ActiveImage {
  uint32_t image = 0;
  uint32_t lo = 0, hi = 0;                // word range of the mask
  int64_t m = 0;                          // |M|
  uint64_t union_categories = 0;          // bit c: the image adds m to U[u,c]
  size_t word_offset = 0;                 // words [lo, hi) at UnitTable::words[word_offset...]
  size_t count_begin = 0, count_end = 0;  // into UnitTable::counts
};

struct UnitTable {
  std::vector<ActiveImage> active;              // sorted by image
  std::vector<uint64_t> words;                  // the masks' words
  std::vector<std::pair<int, int64_t>> counts;  // (label, I contribution)
  int64_t total_m = 0;                          // Σ |M|
  const uint64_t* Mask(const ActiveImage& a) const { return words.data() + a.word_offset; }
};

struct SkippedTableImage {
  size_t image = 0;
  std::string reason;
};

class LayerTables {
 public:
  // Image i's label index (the callee may share one it holds).
  using LabelFn = std::function<StatusOr<std::shared_ptr<const LabelIndex>>(size_t image)>;
  // Image i's activations into `out` (reuse its buffer).
  using FetchFn = std::function<Status(size_t image, ActivationMap* out)>;

  // One pass over `images` images. `thresholds[u]` = T_u; `num_labels` label slots and
  // `num_categories` categories as the tally has (at most 64 categories); `rule` the union rule of
  // the tally; `workers` threads (0 = all hardware threads).
  // Errors: no thresholds, a NaN threshold, more than 64 categories, a map whose unit count
  // differs from thresholds.size() (FailedPrecondition), workers < 0.
  static StatusOr<LayerTables> Build(size_t images, const LabelFn& labels, const FetchFn& fetch,
                                     const std::vector<double>& thresholds, int num_labels,
                                     int num_categories, UnionRule rule, int workers);

  int units() const { return static_cast<int>(units_.size()); }
  int num_labels() const { return num_labels_; }
  int num_categories() const { return num_categories_; }
  UnionRule rule() const { return rule_; }
  const std::vector<TableImage>& images() const { return images_; }
  const std::vector<UnitTable>& unit_tables() const { return units_; }
  const UnitTable& unit(int u) const { return units_[u]; }
  const std::vector<SkippedTableImage>& skipped() const { return skipped_; }
  int64_t images_used() const { return static_cast<int64_t>(images_.size() - skipped_.size()); }
  // Σ over images of G contributions (equals IouTally's G).
  const std::vector<int64_t>& label_pixels() const { return g_total_; }
  // Labels present (merged pixels or scalar) in at least one used image, ascending.
  const std::vector<int>& occurring_labels() const { return occurring_; }
  // Σ over images of |L| with a pixel counted once however many layers carry it (scalar: sh*sw).
  const std::vector<int64_t>& merged_label_pixels() const { return merged_total_; }
  // Images (ascending) where label l is present (merged pixels or scalar).
  const std::vector<std::vector<uint32_t>>& postings() const { return postings_; }
  size_t MemoryBytes() const;

 private:
  int num_labels_ = 0, num_categories_ = 0;
  UnionRule rule_ = UnionRule::kPaper;
  std::vector<TableImage> images_;
  std::vector<UnitTable> units_;
  std::vector<SkippedTableImage> skipped_;
  std::vector<int64_t> g_total_, merged_total_;
  std::vector<int> occurring_;
  std::vector<std::vector<uint32_t>> postings_;
};

}  // namespace nd
