#include "tools/rate/rate_stats.h"

#include <algorithm>
#include <cmath>
#include <limits>

namespace nd {
namespace {

constexpr double kNan = std::numeric_limits<double>::quiet_NaN();
constexpr double kZ95 = 1.959963984540054;

int RowSum(const std::vector<int>& row) {
  int n = 0;
  for (int v : row) n += v;
  return n;
}

}  // namespace

Interval WilsonInterval(int64_t k, int64_t n) {
  if (n <= 0) return {0, 1};
  const double nn = static_cast<double>(n);
  const double p = static_cast<double>(k) / nn;
  const double z2 = kZ95 * kZ95;
  const double denom = 1 + z2 / nn;
  const double centre = (p + z2 / (2 * nn)) / denom;
  const double half = kZ95 * std::sqrt(p * (1 - p) / nn + z2 / (4 * nn * nn)) / denom;
  return {std::max(0.0, centre - half), std::min(1.0, centre + half)};
}

double FleissKappa(const std::vector<std::vector<int>>& counts) {
  if (counts.empty()) return kNan;
  const size_t k = counts[0].size();
  std::vector<double> category(k, 0);
  double p_bar = 0, total = 0;
  int64_t subjects = 0;
  for (const auto& row : counts) {
    const int n = RowSum(row);
    if (n < 2) continue;
    double squares = 0;
    for (size_t j = 0; j < k; ++j) {
      squares += static_cast<double>(row[j]) * row[j];
      category[j] += row[j];
    }
    p_bar += (squares - n) / (static_cast<double>(n) * (n - 1));
    total += n;
    ++subjects;
  }
  if (subjects == 0) return kNan;
  p_bar /= static_cast<double>(subjects);
  double p_e = 0;
  for (double c : category) p_e += (c / total) * (c / total);
  if (p_e >= 1) return kNan;
  return (p_bar - p_e) / (1 - p_e);
}

double KrippendorffAlphaNominal(const std::vector<std::vector<int>>& counts) {
  if (counts.empty()) return kNan;
  const size_t k = counts[0].size();
  // o[c][k] coincidences; only the diagonal and the off-diagonal sum are needed for nominal data.
  std::vector<double> n_c(k, 0);
  double disagree = 0, n = 0;
  for (const auto& row : counts) {
    const int m = RowSum(row);
    if (m < 2) continue;
    for (size_t c = 0; c < k; ++c) {
      n_c[c] += row[c];  // Σ_k o_ck = values of c in pairable subjects
      for (size_t d = 0; d < k; ++d)
        if (c != d) disagree += static_cast<double>(row[c]) * row[d] / (m - 1);
    }
    n += m;
  }
  if (n == 0) return kNan;
  double expected = 0;
  for (size_t c = 0; c < k; ++c)
    for (size_t d = 0; d < k; ++d)
      if (c != d) expected += n_c[c] * n_c[d];
  if (expected == 0) return kNan;
  return 1 - (n - 1) * disagree / expected;
}

Agreement MeasureAgreement(const std::vector<std::vector<int>>& counts) {
  Agreement a;
  int64_t sum = 0;
  for (const auto& row : counts) {
    const int n = RowSum(row);
    if (n < 2) continue;
    a.min_raters = a.subjects == 0 ? n : std::min(a.min_raters, n);
    a.max_raters = std::max(a.max_raters, n);
    sum += n;
    ++a.subjects;
  }
  a.mean_raters = a.subjects ? static_cast<double>(sum) / a.subjects : 0;
  a.fleiss_kappa = FleissKappa(counts);
  a.krippendorff_alpha = KrippendorffAlphaNominal(counts);
  return a;
}

}  // namespace nd
