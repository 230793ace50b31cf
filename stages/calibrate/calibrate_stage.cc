#include "stages/calibrate/calibrate_stage.h"

#include <algorithm>
#include <cmath>
#include <functional>
#include <limits>

namespace nd {
NonFiniteCounts CountNonFinite(const ActivationMap& map) {
  NonFiniteCounts counts;
  for (const float x : map.data) {
    if (!std::isfinite(x)) ++(std::isnan(x) ? counts.nan : counts.inf);
  }
  return counts;
}

CalibrateStage::CalibrateStage(const CalibrateOptions& options) : options_(options) {}

int64_t CalibrateStage::held_values() const {
  int64_t n = 0;
  for (const auto& t : tail_) n += static_cast<int64_t>(t.size());
  return n;
}

void CalibrateStage::Prune(int unit) {
  auto& t = tail_[unit];
  if (static_cast<int64_t>(t.size()) <= keep_) return;
  std::nth_element(t.begin(), t.begin() + (keep_ - 1), t.end(), std::greater<float>());
  t.resize(static_cast<size_t>(keep_));
  cutoff_[unit] = *std::min_element(t.begin(), t.end());
}

Status CalibrateStage::Consume(const ActivationMap& map) {
  if (options_.max_images <= 0) return InvalidArgument("calibrate: max_images must be > 0");
  if (options_.quantiles.empty()) return InvalidArgument("calibrate: no quantiles requested");
  if (map.data.size() != static_cast<size_t>(map.units) * map.plane())
    return InvalidArgument("calibrate: activation map size does not match its shape");
  if (images_ == 0) {
    units_ = map.units;
    h_ = map.h;
    w_ = map.w;
    const double qmax =
        std::max(*std::max_element(options_.quantiles.begin(), options_.quantiles.end()),
                 options_.tail_quantile);
    keep_ = std::max<int64_t>(1, TopValuesNeeded(options_.max_images * h_ * w_, qmax));
    tail_.assign(units_, {});
    cutoff_.assign(units_, -std::numeric_limits<float>::infinity());
    count_.assign(units_, 0);
  } else if (map.units != units_ || map.h != h_ || map.w != w_) {
    return InvalidArgument("calibrate: activation shape " + std::to_string(map.units) + "x" +
                           std::to_string(map.h) + "x" + std::to_string(map.w) +
                           " differs from the first image's " + std::to_string(units_) + "x" +
                           std::to_string(h_) + "x" + std::to_string(w_));
  }
  if (images_ >= options_.max_images)
    return InvalidArgument("calibrate: more images than the declared " +
                           std::to_string(options_.max_images));
  ++images_;
  const size_t plane = map.plane();
  for (int u = 0; u < units_; ++u) {
    const float* v = map.unit(u);
    auto& t = tail_[u];
    float cut = cutoff_[u];
    int64_t nan = 0, inf = 0;
    for (size_t i = 0; i < plane; ++i) {
      float x = v[i];
      if (!std::isfinite(x)) {
        ++(std::isnan(x) ? nan : inf);
      } else if (x > cut) {
        t.push_back(x);
      }
    }
    nan_values_ += nan;
    inf_values_ += inf;
    count_[u] += static_cast<int64_t>(plane) - nan - inf;
    if (static_cast<int64_t>(t.size()) >= 2 * keep_ + 1024) Prune(u);
  }
  return Status::Ok();
}

Status CalibrateStage::TakeTails(std::vector<int64_t>* counts,
                                 std::vector<std::vector<float>>* tops) {
  if (images_ == 0) return FailedPrecondition("calibrate: no activations to calibrate");
  counts->assign(count_.begin(), count_.end());
  tops->assign(units_, {});
  for (int u = 0; u < units_; ++u) {
    Prune(u);
    (*tops)[u] = tail_[u];
    std::sort((*tops)[u].begin(), (*tops)[u].end(), std::greater<float>());
  }
  return Status::Ok();
}

StatusOr<std::vector<UnitThresholds>> CalibrateStage::Finish() {
  if (images_ == 0) return FailedPrecondition("calibrate: no activations to calibrate");
  std::vector<UnitThresholds> out(options_.quantiles.size());
  for (size_t k = 0; k < out.size(); ++k) {
    out[k].quantile = options_.quantiles[k];
    out[k].values.assign(units_, std::numeric_limits<double>::quiet_NaN());
  }
  for (int u = 0; u < units_; ++u) {
    Prune(u);
    auto& t = tail_[u];
    std::sort(t.begin(), t.end(), std::greater<float>());
    int64_t n = count_[u];
    if (n == 0) continue;  // all non-finite: threshold NaN, no pixel is ever above it
    for (size_t k = 0; k < out.size(); ++k) {
      double level = 1.0 - options_.quantiles[k];
      // Values dropped at the cut-off equal the smallest kept value; the top ranks we need are
      // all among the kept ones because K was sized for the largest possible n.
      out[k].values[u] = LinearQuantileFromTop(t, n, level);
    }
  }
  return out;
}

}  // namespace nd
