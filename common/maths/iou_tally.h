// IouTally: the exact counts of SPEC.md §2 step 5 for one layer, accumulated image by image.
//
//   G[l]   pixels carrying label l, over all layers (a pixel counts once per layer that carries l);
//          a scalar label adds sh*sw per occurrence. Counted once per image, whatever the units.
//   I[u,l] pixels of the unit's mask M carrying l, counted the same way; a scalar label adds |M|.
//   U[u,c] |M| summed over the images that count for category c:
//            kPaper (the 2017 original): images containing a pixel or scalar label whose primary
//                    category is c;
//            kLite (NetDissect-Lite): images where M overlaps a pixel whose label's primary
//                    category is c, or that have a scalar label with primary category c.
// M is the mask of unit_mask.h. All counts are int64 sums, so shards merge exactly (Merge) and the
// result does not depend on the order of images or on the number of shards. Labels with no
// primary category and label 0 never count (LabelIndex drops them).
//
// Thread-safety: not thread-safe; use one IouTally (and one UnitMaskBuilder) per thread and Merge
// at the end.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "common/base/activation_map.h"
#include "common/base/status.h"
#include "common/maths/label_index.h"
#include "common/maths/unit_mask.h"

namespace nd {

enum class UnionRule { kPaper, kLite };

// "paper" / "lite".
const char* UnionRuleName(UnionRule rule);
// Parses "paper" / "lite"; anything else is InvalidArgument naming the value.
StatusOr<UnionRule> ParseUnionRule(const std::string& name);

// The input checks every scorer (IouTally, TensorScorer) makes before counting an image, so both
// refuse the same inputs with the same message: acts.units != units, non-positive h/w, data size
// != units*h*w, a label index built for more labels or categories than the tally has.
Status CheckTallyInputs(const LabelIndex& labels, const ActivationMap& acts, int units,
                        int num_labels, int num_categories);

class IouTally {
 public:
  // `thresholds[u]` is unit u's T_u; the tally has thresholds.size() units. `num_labels` is the
  // number of label slots (BrodenDataset::num_labels()), `num_categories` the number of
  // categories in category.csv (selected or not).
  IouTally(const std::vector<double>& thresholds, int num_labels, int num_categories,
           UnionRule rule);

  // Adds one image. `builder` is the caller's per-thread scratch (its stats accumulate).
  // Errors (the tally is unchanged): acts.units != units(), non-positive h/w, data size !=
  // units*h*w, a label index built for more labels or categories than this tally has.
  Status AddImage(const LabelIndex& labels, const ActivationMap& acts, UnitMaskBuilder* builder);

  // Adds another shard's counts. Errors when the shapes, rule or thresholds differ.
  Status Merge(const IouTally& other);

  // Adds counts computed elsewhere for `images` images with this tally's thresholds and rule
  // (the tensor scorer, tensor_scorer.h): g[l], i[u*num_labels + l], u[u*num_categories + c].
  // Errors (the tally is unchanged): a vector of the wrong size, negative images.
  Status AddCounts(int64_t images, const std::vector<int64_t>& g, const std::vector<int64_t>& i,
                   const std::vector<int64_t>& u);

  int units() const { return units_; }
  int num_labels() const { return num_labels_; }
  int num_categories() const { return num_categories_; }
  UnionRule rule() const { return rule_; }
  const std::vector<double>& thresholds() const { return thresholds_; }
  int64_t images() const { return images_; }

  int64_t label_pixels(int l) const { return g_[l]; }
  int64_t intersection(int u, int l) const { return i_[static_cast<size_t>(u) * num_labels_ + l]; }
  int64_t union_area(int u, int c) const {
    return u_[static_cast<size_t>(u) * num_categories_ + c];
  }
  // Row-major arrays: G[l]; I[u*num_labels + l]; U[u*num_categories + c].
  const std::vector<int64_t>& label_pixels_array() const { return g_; }
  const std::vector<int64_t>& intersection_array() const { return i_; }
  const std::vector<int64_t>& union_array() const { return u_; }

 private:
  int units_, num_labels_, num_categories_;
  UnionRule rule_;
  std::vector<double> thresholds_;
  std::vector<float> thresholds_f_;  // ThresholdAsFloat(thresholds_[u])
  int64_t images_ = 0;
  std::vector<int64_t> g_, i_, u_;
};

}  // namespace nd
