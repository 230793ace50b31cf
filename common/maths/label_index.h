// LabelIndex: one image's labels, indexed for scoring (SPEC.md §2 steps 4-5).
//
// Built once per image from ImageLabels (common/broden/broden_dataset.h) and the labels' primary
// categories. It holds:
//  - pixel_labels(): one bit-packed pixel set (bits.h) per (layer, label) pair present, in layer
//    order then order of first appearance; a pixel that carries label l in k layers is in k sets,
//    so it counts k times (SPEC: "a pixel counts once per layer that carries l");
//  - scalar_labels(): the image's whole-image labels, one entry per occurrence;
//  - category_sets(): per category c, the union over all layers of the pixels whose label's primary
//    category is c (the `lite` union rule);
//  - categories(): every category c that the image "contains" for the `paper` union rule: some
//    pixel or scalar label with primary category c; and whether a scalar label has primary c.
// Label 0 and labels whose primary category is -1 are ignored everywhere (never stored). The
// category of a layer (ImageLabels::layer_category) plays no role: a label counts for its primary
// category whatever layer carries it.
//
// Storage: each set keeps only the words between its first and last non-zero word, so an index
// costs roughly (number of sets × vertical extent) bits; MemoryBytes() reports it. A 112×112 grid
// is 196 words.
//
// Thread-safety: immutable after Build(); const methods may be called concurrently.
#pragma once

#include <cstddef>
#include <cstdint>
#include <vector>

#include "common/base/status.h"
#include "common/broden/broden_dataset.h"

namespace nd {

class LabelIndex {
 public:
  // A bit-packed pixel set stored over words [lo, hi) of the sh×sw grid; words outside are zero.
  struct PixelSet {
    int64_t count = 0;  // number of pixels in the set
    uint32_t lo = 0, hi = 0;
    size_t offset = 0;  // index of word `lo` in the index's word pool
  };
  struct PixelLabel {
    int label = 0;  // global label number
    int layer = 0;  // index into ImageLabels::layers
    PixelSet set;
  };
  struct CategorySet {
    int category = 0;
    PixelSet set;
  };
  struct CategoryPresence {
    int category = 0;
    bool has_scalar = false;  // a scalar label of the image has primary category `category`
    int set = -1;             // index into category_sets(), -1 when no pixel has such a label
  };

  LabelIndex() = default;

  // Builds the index. `primary_category[l]` is label l's primary category (-1 for none), as
  // BrodenDataset::PrimaryCategory; `num_categories` bounds the category indices.
  // Errors (InvalidArgument): non-positive sh/sw, a layer whose size is not sh*sw, a label number
  // outside [0, primary_category.size()), a primary category outside [-1, num_categories).
  static StatusOr<LabelIndex> Build(const ImageLabels& labels,
                                    const std::vector<int>& primary_category, int num_categories);

  int sh() const { return sh_; }
  int sw() const { return sw_; }
  int64_t pixels() const { return static_cast<int64_t>(sh_) * sw_; }
  size_t num_words() const { return num_words_; }
  // Size of the primary-category table the index was built with (label numbers are below it).
  int num_labels() const { return num_labels_; }
  int num_categories() const { return num_categories_; }

  const std::vector<PixelLabel>& pixel_labels() const { return pixel_labels_; }
  const std::vector<int>& scalar_labels() const { return scalar_labels_; }
  const std::vector<CategorySet>& category_sets() const { return category_sets_; }
  // Sorted by category index, one entry per category present.
  const std::vector<CategoryPresence>& categories() const { return categories_; }

  // The stored words of `set`: element i is word set.lo + i of the grid.
  const uint64_t* SetWords(const PixelSet& set) const { return pool_.data() + set.offset; }
  // |mask ∩ set| for a full-grid mask whose non-zero words lie in [mask_lo, mask_hi).
  int64_t IntersectCount(const uint64_t* mask, size_t mask_lo, size_t mask_hi,
                         const PixelSet& set) const;
  // Whether mask ∩ set is non-empty (same mask convention).
  bool Intersects(const uint64_t* mask, size_t mask_lo, size_t mask_hi, const PixelSet& set) const;
  // True when pixel p (y*sw + x) is in `set`. For tests and tools.
  bool Contains(const PixelSet& set, int64_t p) const;

  // Pixels of the grid that carry one label in more than one layer (a scalar label counts as a
  // layer covering the grid; labels that are never counted are ignored). They count once per layer
  // in the intersections and label totals (SPEC.md §2 step 5), so datasets should have none; score
  // reports the sum in summary.json.
  int64_t repeated_label_pixels() const { return repeated_label_pixels_; }

  // Approximate heap bytes held.
  size_t MemoryBytes() const;

 private:
  int sh_ = 0, sw_ = 0;
  size_t num_words_ = 0;
  int num_labels_ = 0, num_categories_ = 0;
  std::vector<PixelLabel> pixel_labels_;
  std::vector<int> scalar_labels_;
  std::vector<CategorySet> category_sets_;
  std::vector<CategoryPresence> categories_;
  std::vector<uint64_t> pool_;
  int64_t repeated_label_pixels_ = 0;

  static int64_t RepeatedLabelPixels(const LabelIndex& idx);
};

}  // namespace nd
