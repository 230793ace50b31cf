// Test helpers of the analyses from the cache (layer_tables.h, explain.h, label_stats.h): small
// in-memory fixtures (labels, activations, thresholds) and a brute-force reference of the
// compositional explanations written from the specification: it merges actual per-pixel
// masks for every formula and enumerates the beam literally. It shares nothing with
// stages/score/ but the reference upsampler.
#pragma once

#include <algorithm>
#include <cstdint>
#include <map>
#include <memory>
#include <random>
#include <set>
#include <string>
#include <tuple>
#include <vector>

#include "common/base/activation_map.h"
#include "common/broden/broden_dataset.h"
#include "common/maths/layer_tables.h"
#include "common/maths/upsample.h"
#include "tests/testing/score_testing.h"

namespace nd {
namespace testing_analysis {

struct Fixture {
  int num_labels = 0, num_cats = 0;
  std::vector<int> primary;         // per label slot, -1 for none
  std::vector<std::string> names;   // per label slot
  std::vector<ImageLabels> labels;  // per image
  std::vector<ActivationMap> acts;  // per image
  std::vector<double> thresholds;   // per unit
  int units() const { return static_cast<int>(thresholds.size()); }
};

inline StatusOr<LayerTables> BuildTables(const Fixture& f, UnionRule rule, int workers = 2) {
  auto labels = [&](size_t i) -> StatusOr<std::shared_ptr<const LabelIndex>> {
    ND_ASSIGN_OR_RETURN(LabelIndex idx, LabelIndex::Build(f.labels[i], f.primary, f.num_cats));
    return std::make_shared<const LabelIndex>(std::move(idx));
  };
  auto fetch = [&](size_t i, ActivationMap* out) {
    *out = f.acts[i];
    return Status::Ok();
  };
  return LayerTables::Build(f.labels.size(), labels, fetch, f.thresholds, f.num_labels, f.num_cats,
                            rule, workers);
}

// A random fixture: `images` images of sh×sw, 2 label layers of random labels plus 0..2 scalars,
// `units` units on h×w maps with thresholds at a random level of each unit's values.
inline Fixture RandomFixture(uint32_t seed, int images, int sh, int sw, int units, int h, int w,
                             int num_labels, int num_cats) {
  std::mt19937 rng(seed);
  Fixture f;
  f.num_labels = num_labels;
  f.num_cats = num_cats;
  f.primary.assign(num_labels, -1);
  f.names.assign(num_labels, "");
  std::uniform_int_distribution<int> cat(0, num_cats - 1);
  for (int l = 1; l < num_labels; ++l) {
    f.primary[l] = (l == num_labels - 1) ? -1 : cat(rng);  // the last label has no category
    f.names[l] = "l" + std::to_string(l) + (l % 2 ? "-c" : "");
  }
  for (int i = 0; i < images; ++i) {
    f.labels.push_back(testing_score::RandomLabels(&rng, sh, sw, num_labels, 2, num_cats));
    f.acts.push_back(testing_score::RandomActivations(&rng, units, h, w));
  }
  for (int u = 0; u < units; ++u) {
    std::vector<float> all;
    for (const auto& a : f.acts) all.insert(all.end(), a.unit(u), a.unit(u) + a.plane());
    std::sort(all.begin(), all.end());
    std::uniform_int_distribution<size_t> at(all.size() / 2, all.size() - 2);
    f.thresholds.push_back(all[at(rng)]);
  }
  return f;
}

// RandomFixture(seed, images, sh, sw, ...) followed by `images` more images of sh2×sw2 (same
// labels, units and thresholds): a dataset with two segmentation sizes.
inline Fixture MixedSizeFixture(uint32_t seed, int images, int sh, int sw, int sh2, int sw2) {
  Fixture f = RandomFixture(seed, images, sh, sw, 4, 3, 3, 8, 3);
  const Fixture g = RandomFixture(seed + 1000, images, sh2, sw2, 4, 3, 3, 8, 3);
  // Interleave so that the two sizes alternate in image order.
  std::vector<ImageLabels> labels;
  std::vector<ActivationMap> acts;
  for (int i = 0; i < images; ++i) {
    labels.push_back(f.labels[i]);
    labels.push_back(g.labels[i]);
    acts.push_back(f.acts[i]);
    acts.push_back(g.acts[i]);
  }
  f.labels = labels;
  f.acts = acts;
  return f;
}

// ---------------------------------------------------------------------------------------------
// Brute-force compositional explanations, from the specification.

struct RefFormula {
  std::vector<int> labels;
  std::vector<int> ops;  // 0 OR, 1 AND, 2 AND NOT
  std::string text;
  int64_t inter = 0, uni = 0;
  double iou = 0;
};

struct RefExplanation {
  RefFormula best, primitive;
};

class RefExplainer {
 public:
  explicit RefExplainer(const Fixture& f) : f_(f) {
    const int n_images = static_cast<int>(f.labels.size());
    label_masks_.resize(n_images);
    unit_masks_.assign(f.units(), std::vector<std::vector<uint8_t>>(n_images));
    std::set<int> occurring;
    for (int i = 0; i < n_images; ++i) {
      const ImageLabels& lab = f.labels[i];
      const int n = lab.sh * lab.sw;
      auto& lm = label_masks_[i];
      lm.assign(f.num_labels, std::vector<uint8_t>(n, 0));
      for (const auto& layer : lab.layers)
        for (int p = 0; p < n; ++p)
          if (Valid(layer[p])) lm[layer[p]][p] = 1;
      for (int s : lab.scalar_labels)
        if (Valid(s)) std::fill(lm[s].begin(), lm[s].end(), 1);
      for (int l = 1; l < f.num_labels; ++l)
        if (std::count(lm[l].begin(), lm[l].end(), 1) > 0) occurring.insert(l);
      const ActivationMap& a = f.acts[i];
      std::vector<float> up(n);
      for (int u = 0; u < f.units(); ++u) {
        UpsampleBilinear(a.unit(u), a.h, a.w, lab.sh, lab.sw, up.data());
        double mx = -1e300;
        for (size_t k = 0; k < a.plane(); ++k) mx = std::max(mx, double(a.unit(u)[k]));
        auto& m = unit_masks_[u][i];
        m.assign(n, 0);
        for (int p = 0; p < n; ++p) m[p] = mx > f.thresholds[u] && double(up[p]) > f.thresholds[u];
      }
    }
    candidates_.assign(occurring.begin(), occurring.end());
  }

  // Scores `r` for unit u by merging pixel masks image by image.
  void Score(int u, RefFormula* r) const {
    r->inter = r->uni = 0;
    for (size_t i = 0; i < label_masks_.size(); ++i) {
      const auto& lm = label_masks_[i];
      const auto& m = unit_masks_[u][i];
      for (size_t p = 0; p < m.size(); ++p) {
        bool v = lm[r->labels[0]][p];
        for (size_t k = 0; k < r->ops.size(); ++k) {
          const bool x = lm[r->labels[k + 1]][p];
          v = r->ops[k] == 0 ? (v || x) : r->ops[k] == 1 ? (v && x) : (v && !x);
        }
        r->inter += m[p] && v;
        r->uni += m[p] || v;
      }
    }
    r->iou = r->uni == 0 ? 0.0 : double(r->inter) / double(r->uni);
  }

  static bool Before(const RefFormula& a, const RefFormula& b) {
    if (a.iou != b.iou) return a.iou > b.iou;
    if (a.labels.size() != b.labels.size()) return a.labels.size() < b.labels.size();
    if (a.text != b.text) return a.text < b.text;
    if (a.labels != b.labels) return a.labels < b.labels;
    return a.ops < b.ops;
  }

  RefExplanation Explain(int u, int length, int beam) const {
    std::vector<RefFormula> all;
    for (int l : candidates_) {
      RefFormula r;
      r.labels = {l};
      r.text = f_.names[l];
      Score(u, &r);
      all.push_back(r);
    }
    RefExplanation out;
    if (all.empty()) return out;
    std::sort(all.begin(), all.end(), Before);
    out.primitive = all[0];
    std::vector<RefFormula> cur(all.begin(), all.begin() + std::min<size_t>(beam, all.size()));
    static const char* kOps[] = {" OR ", " AND ", " AND NOT "};
    for (int round = 2; round <= length; ++round) {
      std::map<std::pair<std::vector<int>, std::vector<int>>, RefFormula> pool;
      for (const RefFormula& r : cur) pool[{r.labels, r.ops}] = r;
      for (const RefFormula& r : cur) {
        for (int l : candidates_) {
          if (std::find(r.labels.begin(), r.labels.end(), l) != r.labels.end()) continue;
          for (int op = 0; op < 3; ++op) {
            RefFormula e = r;
            e.labels.push_back(l);
            e.ops.push_back(op);
            e.text = "(" + r.text + kOps[op] + f_.names[l] + ")";
            Score(u, &e);
            pool[{e.labels, e.ops}] = e;
          }
        }
      }
      std::vector<RefFormula> v;
      for (auto& [key, r] : pool) v.push_back(r);
      std::sort(v.begin(), v.end(), Before);
      v.resize(std::min<size_t>(beam, v.size()));
      cur = v;
    }
    out.best = cur[0];
    return out;
  }

  const std::vector<int>& candidates() const { return candidates_; }
  const std::vector<uint8_t>& unit_mask(int u, int i) const { return unit_masks_[u][i]; }

 private:
  bool Valid(int l) const { return l > 0 && l < f_.num_labels && f_.primary[l] >= 0; }
  const Fixture& f_;
  std::vector<std::vector<std::vector<uint8_t>>> label_masks_;  // [image][label][pixel]
  std::vector<std::vector<std::vector<uint8_t>>> unit_masks_;   // [unit][image][pixel]
  std::vector<int> candidates_;
};

}  // namespace testing_analysis
}  // namespace nd
