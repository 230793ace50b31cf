// LayerResults: IoU, labels, detectors and unique-detector counts of one layer (SPEC.md §2 steps
// 6-8). tally.csv is written by common/results/result_files.h.
//
// Rules, all deterministic:
//  - IoU[u,l] = I[u,l] / (U[u,primary(l)] + G[l] - I[u,l]), in double from exact int64 counts; 0
//    when the denominator is 0 and for labels with no primary category. Note: with the SPEC's
//    counting, IoU can exceed 1 when an image carries the same label in two layers at one pixel
//    (I and G count the pixel twice, U counts |M| once); it lies in [0, 1] otherwise.
//  - best label of unit u in category c: argmax of IoU over the labels whose primary category is c,
//    the lowest label number winning ties (so with all IoUs 0 it is the category's lowest label);
//    -1 when no label has primary category c (e.g. a category that is not selected).
//  - the unit's category: argmax over categories with a best label of the best IoU, the first
//    category in category.csv order winning ties; the unit's label is that category's best label
//    (-1 when no category has labels).
//  - detector: the unit's IoU > iou_threshold.
//  - unique detectors, paper rule: per category c, the number of distinct best-in-c labels among
//    units whose best-in-c IoU > iou_threshold; summed over categories.
//  - unique detectors, top-label rule: distinct unit labels among detectors.
//  - detectors_per_category[c]: detectors whose category is c.
//  - top labels of a unit: up to 3 labels with IoU > 0, by IoU descending, then category order,
//    then label number (so the first is the unit's label when its IoU > 0).
// Units are 0-based here; tally.csv writes them 1-based.
//
// Thread-safety: LayerResults is a plain value.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "common/base/status.h"
#include "common/broden/broden_dataset.h"
#include "common/maths/iou_tally.h"

namespace nd {

struct LabelScore {
  int label = -1;
  int category = -1;
  double iou = 0;
};

struct UnitResult {
  int label = -1;     // the unit's label (global number), -1 when none
  int category = -1;  // its category index (category.csv order), -1 when none
  double iou = 0;     // its IoU
  bool detector = false;
  std::vector<LabelScore> top;  // up to 3, see the header comment
};

struct LayerResults {
  int units = 0, num_labels = 0, num_categories = 0;
  UnionRule rule = UnionRule::kPaper;
  double iou_threshold = 0.04;
  int64_t images = 0;  // images counted in the tally

  // The counts (copied from the tally), row-major as IouTally's arrays.
  std::vector<int64_t> label_pixels;  // G[l]
  std::vector<int64_t> intersection;  // I[u*num_labels + l]
  std::vector<int64_t> union_area;    // U[u*num_categories + c]
  std::vector<int> primary_category;  // per label, -1 for none

  std::vector<double> iou;       // IoU[u*num_labels + l]
  std::vector<int> best_label;   // [u*num_categories + c], -1 when the category has no labels
  std::vector<double> best_iou;  // [u*num_categories + c]
  std::vector<UnitResult> unit;  // per unit

  int detectors = 0;
  int unique_detectors_paper = 0;
  int unique_detectors_top_label = 0;
  std::vector<int> detectors_per_category;     // detectors whose category is c
  std::vector<int> unique_per_category_paper;  // the paper rule's count of category c

  double Iou(int u, int l) const { return iou[static_cast<size_t>(u) * num_labels + l]; }
  int BestLabel(int u, int c) const {
    return best_label[static_cast<size_t>(u) * num_categories + c];
  }
  double BestIou(int u, int c) const {
    return best_iou[static_cast<size_t>(u) * num_categories + c];
  }
};

// Computes the results from a finished tally. `primary_category` has one entry per label slot
// (BrodenDataset::PrimaryCategory), values in [-1, tally.num_categories()).
// Errors: sizes that disagree with the tally, a category out of range, a threshold that is NaN.
StatusOr<LayerResults> ComputeLayerResults(const IouTally& tally,
                                           const std::vector<int>& primary_category,
                                           double iou_threshold);

// The same, with the primary categories of `dataset`.
StatusOr<LayerResults> ComputeLayerResults(const IouTally& tally, const BrodenDataset& dataset,
                                           double iou_threshold);

}  // namespace nd
