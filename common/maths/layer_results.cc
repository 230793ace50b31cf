#include "common/maths/layer_results.h"

#include <algorithm>
#include <charconv>
#include <cmath>
#include <cstdio>
#include <numeric>
#include <set>

#include "common/base/atomic_file.h"
#include "common/base/text_format.h"

namespace nd {

StatusOr<LayerResults> ComputeLayerResults(const IouTally& tally,
                                           const std::vector<int>& primary_category,
                                           double iou_threshold) {
  const int units = tally.units(), num_labels = tally.num_labels(),
            num_cats = tally.num_categories();
  if (static_cast<int>(primary_category.size()) != num_labels) {
    return InvalidArgument("layer results: " + std::to_string(primary_category.size()) +
                           " primary categories for " + std::to_string(num_labels) + " labels");
  }
  if (std::isnan(iou_threshold)) return InvalidArgument("layer results: iou_threshold is NaN");
  std::vector<std::vector<int>> labels_of(num_cats);  // labels by primary category, ascending
  for (int l = 0; l < num_labels; ++l) {
    const int c = primary_category[l];
    if (c < -1 || c >= num_cats) {
      return InvalidArgument("layer results: label " + std::to_string(l) +
                             " has primary category " + std::to_string(c) + ", outside [-1, " +
                             std::to_string(num_cats) + ")");
    }
    if (c >= 0 && l != 0) labels_of[c].push_back(l);
  }

  LayerResults r;
  r.units = units;
  r.num_labels = num_labels;
  r.num_categories = num_cats;
  r.rule = tally.rule();
  r.iou_threshold = iou_threshold;
  r.images = tally.images();
  r.label_pixels = tally.label_pixels_array();
  r.intersection = tally.intersection_array();
  r.union_area = tally.union_array();
  r.primary_category = primary_category;
  r.iou.assign(static_cast<size_t>(units) * num_labels, 0.0);
  r.best_label.assign(static_cast<size_t>(units) * num_cats, -1);
  r.best_iou.assign(static_cast<size_t>(units) * num_cats, 0.0);
  r.unit.resize(units);
  r.detectors_per_category.assign(num_cats, 0);
  r.unique_per_category_paper.assign(num_cats, 0);

  for (int u = 0; u < units; ++u) {
    double* iou = r.iou.data() + static_cast<size_t>(u) * num_labels;
    for (int c = 0; c < num_cats; ++c) {
      for (int l : labels_of[c]) {
        const int64_t i = tally.intersection(u, l);
        const int64_t den = tally.union_area(u, c) + tally.label_pixels(l) - i;
        iou[l] = den == 0 ? 0.0 : static_cast<double>(i) / static_cast<double>(den);
      }
    }
    UnitResult& ur = r.unit[u];
    for (int c = 0; c < num_cats; ++c) {
      int best = -1;
      double best_iou = 0;
      for (int l : labels_of[c]) {
        if (best < 0 || iou[l] > best_iou) {
          best = l;
          best_iou = iou[l];
        }
      }
      r.best_label[static_cast<size_t>(u) * num_cats + c] = best;
      r.best_iou[static_cast<size_t>(u) * num_cats + c] = best_iou;
      if (best >= 0 && (ur.category < 0 || best_iou > ur.iou)) {
        ur.category = c;
        ur.label = best;
        ur.iou = best_iou;
      }
    }
    ur.detector = ur.label >= 0 && ur.iou > iou_threshold;
    // Top labels: IoU descending, then category order, then label number.
    std::vector<LabelScore> candidates;
    for (int c = 0; c < num_cats; ++c) {
      for (int l : labels_of[c]) {
        if (iou[l] > 0) candidates.push_back(LabelScore{l, c, iou[l]});
      }
    }
    const size_t k = std::min<size_t>(3, candidates.size());
    std::partial_sort(candidates.begin(), candidates.begin() + k, candidates.end(),
                      [](const LabelScore& a, const LabelScore& b) {
                        if (a.iou != b.iou) return a.iou > b.iou;
                        if (a.category != b.category) return a.category < b.category;
                        return a.label < b.label;
                      });
    candidates.resize(k);
    ur.top = std::move(candidates);
  }

  std::set<int> top_labels;
  for (int u = 0; u < units; ++u) {
    const UnitResult& ur = r.unit[u];
    if (!ur.detector) continue;
    ++r.detectors;
    ++r.detectors_per_category[ur.category];
    top_labels.insert(ur.label);
  }
  r.unique_detectors_top_label = static_cast<int>(top_labels.size());
  for (int c = 0; c < num_cats; ++c) {
    std::set<int> distinct;
    for (int u = 0; u < units; ++u) {
      if (r.BestIou(u, c) > iou_threshold && r.BestLabel(u, c) >= 0) {
        distinct.insert(r.BestLabel(u, c));
      }
    }
    r.unique_per_category_paper[c] = static_cast<int>(distinct.size());
    r.unique_detectors_paper += r.unique_per_category_paper[c];
  }
  return r;
}

StatusOr<LayerResults> ComputeLayerResults(const IouTally& tally, const BrodenDataset& dataset,
                                           double iou_threshold) {
  if (static_cast<int>(dataset.categories().size()) != tally.num_categories()) {
    return InvalidArgument("layer results: dataset has " +
                           std::to_string(dataset.categories().size()) + " categories, tally has " +
                           std::to_string(tally.num_categories()));
  }
  std::vector<int> primary(dataset.num_labels());
  for (int l = 0; l < dataset.num_labels(); ++l) primary[l] = dataset.PrimaryCategory(l);
  return ComputeLayerResults(tally, primary, iou_threshold);
}

}  // namespace nd
