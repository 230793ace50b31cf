#include "common/maths/top_quantile.h"

#include <algorithm>
#include <cmath>

namespace nd {

int64_t TopValuesNeeded(int64_t n, double q) {
  if (n <= 0) return 0;
  double pos = static_cast<double>(n - 1) * (1.0 - q);
  int64_t lo = static_cast<int64_t>(std::floor(pos));
  return n - lo;  // ranks from the top 0 .. n-1-lo inclusive
}

double LinearQuantileFromTop(const std::vector<float>& top, int64_t n, double level) {
  double pos = static_cast<double>(n - 1) * level;
  int64_t lo = static_cast<int64_t>(std::floor(pos));
  int64_t hi = std::min(lo + 1, n - 1);
  double g = pos - static_cast<double>(lo);
  double a = top[static_cast<size_t>(n - 1 - lo)];
  double b = top[static_cast<size_t>(n - 1 - hi)];
  double d = b - a;
  // numpy._lerp: a + d*g, replaced by b - d*(1-g) where g >= 0.5.
  return g >= 0.5 ? b - d * (1.0 - g) : a + d * g;
}

}  // namespace nd
