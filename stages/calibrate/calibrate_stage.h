// CalibrateStage: exact per-unit thresholds T_u with P(a_u > T_u) = q (SPEC.md §2 step 2).
//
// T_u is the linear-interpolated quantile at level 1 − q of all raw activation values of unit u
// over the whole dataset, numpy's default `quantile` ("linear"): with the N values sorted
// ascending v_0..v_{N-1}, pos = (N − 1)(1 − q), i = floor(pos), g = pos − i,
// T = lerp(v_i, v_{i+1}, g) evaluated in double as numpy's _lerp does
// (a + (b − a)·g when g < 0.5, else b − (b − a)(1 − g)).
//
// Memory is bounded by the tail, not the dataset: only values that can still be among the top
// K = N_max − floor((1 − q_max)(N_max − 1)) of a unit are kept, where N_max = max_images·h·w is
// an upper bound on the values that will be seen (q_max = the largest requested quantile, or
// tail_quantile when larger). Each unit keeps a buffer that is pruned to its top K with
// nth_element whenever it reaches 2K, and a cut-off below which values are dropped on arrival; ties
// at the cut-off are safe to drop because equal values are interchangeable in the top-K multiset.
//
// Non-finite values (NaN, +Inf, -Inf) are counted (nan_values(), inf_values()) and excluded: the
// quantile is taken over the finite values only. (The calibrate process skips a whole image whose
// maps hold any non-finite value before it gets here; see CountNonFinite.)
// One instance per layer; not thread-safe.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "common/base/activation_map.h"
#include "common/base/status.h"
#include "common/maths/top_quantile.h"  // LinearQuantileFromTop, used here and by tests

namespace nd {

struct CalibrateOptions {
  std::vector<double> quantiles{0.005};  // each in (0, 0.5]
  int64_t max_images = 0;                // upper bound on images consumed (REQUIRES: > 0)
  // Keep the tail (TakeTails) deep enough for this quantile too, without a threshold for it
  // (config threshold.tail_quantile); 0 = as deep as `quantiles` need. In [0, 0.5].
  double tail_quantile = 0;
};

struct UnitThresholds {
  double quantile = 0;         // q
  std::vector<double> values;  // T_u per unit
};

class CalibrateStage {
 public:
  explicit CalibrateStage(const CalibrateOptions& options);

  // Folds one image's activations. The first call fixes units, h and w; a later map of another
  // shape or more than max_images maps is an error.
  Status Consume(const ActivationMap& map);

  // One UnitThresholds per requested quantile, in options order. REQUIRES: at least one image.
  StatusOr<std::vector<UnitThresholds>> Finish();

  int64_t images() const { return images_; }
  int64_t nan_values() const { return nan_values_; }
  int64_t inf_values() const { return inf_values_; }
  // Values currently held across all units (a measure of the bounded memory).
  int64_t held_values() const;

  // A sharded run's forward task (common/results/shard_files.h): instead of thresholds, each
  // unit's count of finite values and its top values, sorted descending, at most keep() of them
  // (all values when fewer): the exact top-K multiset of this slice, K sized by max_images for
  // the largest quantile. Tails of all slices merge into the whole dataset's top K.
  // REQUIRES: at least one image. Leaves the stage pruned; Finish() still works after it.
  Status TakeTails(std::vector<int64_t>* counts, std::vector<std::vector<float>>* tops);
  int64_t keep() const { return keep_; }
  const CalibrateOptions& options() const { return options_; }
  int units() const { return units_; }
  int h() const { return h_; }
  int w() const { return w_; }

 private:
  void Prune(int unit);

  CalibrateOptions options_;
  int units_ = 0, h_ = 0, w_ = 0;
  int64_t keep_ = 0;  // K
  int64_t images_ = 0;
  int64_t nan_values_ = 0;
  int64_t inf_values_ = 0;
  std::vector<std::vector<float>> tail_;  // per unit, unordered
  std::vector<float> cutoff_;             // per unit: values <= cutoff are dropped
  std::vector<int64_t> count_;            // per unit: non-NaN values seen
};

// NaN and infinite values in a map's data.
struct NonFiniteCounts {
  int64_t nan = 0, inf = 0;
  bool any() const { return nan + inf > 0; }
};
NonFiniteCounts CountNonFinite(const ActivationMap& map);

}  // namespace nd
