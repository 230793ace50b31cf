// Statistics of the human evaluation: Wilson score intervals for shares, and inter-rater agreement
// (Fleiss' kappa, Krippendorff's alpha for nominal data) from a table of counts.
//
// The table: counts[i][j] = how many raters put subject (unit) i into category j (for the yes/no
// protocols j = 0 "yes", j = 1 "no"). Subjects with fewer than two ratings carry no information on
// agreement and are left out of both coefficients (Krippendorff's "pairable values").
//
// Definitions (n_i = Σ_j counts[i][j], N = number of subjects with n_i >= 2):
//  - Fleiss' kappa (Fleiss 1971), in the form that allows n_i to vary between subjects:
//      P_i = (Σ_j n_ij² − n_i) / (n_i (n_i − 1)),  P̄ = (1/N) Σ_i P_i,
//      p_j = Σ_i n_ij / Σ_i n_i,  P̄_e = Σ_j p_j²,  κ = (P̄ − P̄_e) / (1 − P̄_e).
//    With the same n for every subject this is exactly Fleiss's statistic.
//  - Krippendorff's alpha, nominal metric (Krippendorff 2011, "Computing Krippendorff's
//    Alpha-Reliability"): coincidences o_ck = Σ_i (number of ordered pairs (c, k) of values of
//    subject i) / (n_i − 1), n_c = Σ_k o_ck, n = Σ_c n_c;
//      α = 1 − (n − 1) · Σ_{c≠k} o_ck / Σ_{c≠k} n_c n_k.
// Both are NaN when undefined: no subject with two ratings, or only one category used at all
// (P̄_e = 1; no disagreement is possible).
//
// Thread-safety: pure functions.
#pragma once

#include <cstdint>
#include <vector>

namespace nd {

struct Interval {
  double low = 0, high = 0;
};

// The 95% Wilson score interval of k successes in n trials (z = 1.959963984540054):
//   centre = (p + z²/2n) / (1 + z²/n), half = z √(p(1−p)/n + z²/4n²) / (1 + z²/n).
// n = 0 gives [0, 1]. REQUIRES: 0 <= k <= n.
Interval WilsonInterval(int64_t k, int64_t n);

struct Agreement {
  int64_t subjects = 0;                // N: subjects with at least two ratings
  int min_raters = 0, max_raters = 0;  // n_i over those subjects (0 when N = 0)
  double mean_raters = 0;
  double fleiss_kappa = 0;        // NaN when undefined
  double krippendorff_alpha = 0;  // NaN when undefined
};

// REQUIRES: every row has the same number of categories; counts >= 0.
double FleissKappa(const std::vector<std::vector<int>>& counts);
double KrippendorffAlphaNominal(const std::vector<std::vector<int>>& counts);
Agreement MeasureAgreement(const std::vector<std::vector<int>>& counts);

}  // namespace nd
