// How much to trust each unit's label: bootstrap intervals and label stability over images, and a
// permutation null with Benjamini–Hochberg q-values, computed from LayerTables (layer_tables.h):
// no forward pass, no rescoring. Configured by [stats] bootstrap / permutations / seed
// (common/base/config.h); written to stats.csv and summary.json (analysis_files.h).
//
// Let ℓ* be unit u's label and c* its category (LayerResults: the observed dissection), and IoU
// the dissection's IoU (SPEC.md §2 steps 5-6, the tally's union rule) computed from counts that
// are sums of per-image contributions (LayerTables: |M|, per-label I, per-label G, per-category
// union membership).
//
// Bootstrap over images (B = bootstrap resamples): resample b draws N = images_used images with
// replacement: N draws of Rng(seed, kBootstrapDomain, b).Below(N) (rng.h), draw j picking the j-th
// used image in image order; image i gets weight w_i = number of times drawn. Every count is then
// Σ_i w_i · (image i's contribution). Per unit:
//  - iou_low / iou_high: the 2.5% and 97.5% quantiles of the B values IoU_b(u, ℓ*), by linear
//    interpolation between order statistics (numpy's default: position (B-1)·p);
//  - stability: the share of resamples whose top label of u (the dissection's rule: highest IoU,
//    ties to the earlier category in category.csv, then the lower label number) is ℓ*.
//
// Permutation null (P = permutations): permutation p is a uniformly random permutation π of the
// used images (Fisher-Yates with Rng(seed, kPermutationDomain, p)), restricted to images of the
// same sh×sw (each group of equal size is shuffled in turn, groups ordered by first appearance),
// so both margins (every mask, every label map) are kept. Image i's masks are paired with image
// π(i)'s labels: I_π = Σ_i |M_i ∩ ℓ*(π(i))| (once per layer; scalar: |M_i|), U_π = Σ_i |M_i| when
// (M_i, labels of π(i)) counts for c* under the union rule, G unchanged; null IoU = I_π /
// (U_π + G − I_π). Per unit: p = (1 + #{p : null IoU ≥ observed IoU}) / (1 + P), compared
// exactly (128-bit cross-multiplication); q: Benjamini–Hochberg over all units of the layer
// (q_(i) = min_{j ≥ i} p_(j)·m/j, at most 1, units sorted by p, m = number of units).
// significant_detectors: detectors (IoU > cut-off) with q < 0.05.
//
// Max null (max_null = true, config [stats] max_null): the null above fixes the label that the
// observed data picked as the best of all labels, so it ignores that selection and is
// anti-conservative. The max null compares the observed top IoU with the top IoU of the
// re-paired data, i.e. max over all labels l of I_π(u,l) / (U_π(u,primary(l)) + G[l] − I_π(u,l))
// (the dissection's unit IoU on the permuted pairing), with the same permutations:
// p_max = (1 + #{p : null top IoU ≥ observed IoU}) / (1 + P) ≥ p, and q_max its BH q-values.
//
// Thread-safety: pure functions; they use `workers` threads, and results do not depend on it.
#pragma once

#include <cstdint>
#include <vector>

#include "common/base/status.h"
#include "common/maths/layer_results.h"
#include "common/maths/layer_tables.h"

namespace nd {

struct StatsOptions {
  int bootstrap = 0;       // config [stats] bootstrap: resamples; 0 = none
  int permutations = 0;    // config [stats] permutations; 0 = none
  uint64_t seed = 1;       // config [stats] seed
  int workers = 0;         // threads; 0 = all hardware threads
  double q_cutoff = 0.05;  // significance level of the q-values
  bool max_null = false;   // config [stats] max_null: also p_max / q_max (about 3x the work)
};

struct UnitStats {
  int label = -1;  // the unit's label (ℓ*), -1 when none
  double iou = 0;  // its observed IoU
  // Bootstrap (when bootstrap > 0).
  double iou_low = 0, iou_high = 0;
  double stability = 0;
  // Permutations (when permutations > 0).
  int64_t null_at_least = 0;  // #{null IoU >= observed}
  double null_mean = 0;       // mean null IoU
  double p_value = 1, q_value = 1;
  // Max null (when max_null).
  double p_max = 1, q_max = 1;
};

struct LabelStatsReport {
  std::vector<UnitStats> units;
  int bootstrap = 0, permutations = 0;
  bool max_null = false;
  int significant_detectors = 0;      // detectors with q < q_cutoff (permutations > 0)
  int significant_units = 0;          // units with q < q_cutoff
  int significant_detectors_max = 0;  // detectors with q_max < q_cutoff (max_null)
  double bootstrap_seconds = 0, permutation_seconds = 0;
};

// Computes the statistics of every unit of `results`, which must be the dissection of exactly the
// images `tables` holds (tested: the tables' counts at weight 1 equal the tally's).
// Errors: negative bootstrap or permutations, workers < 0, results and tables of different sizes.
StatusOr<LabelStatsReport> ComputeLabelStats(const LayerTables& tables, const LayerResults& results,
                                             const StatsOptions& options);

// The weights of bootstrap resample b over n images (see the header comment). For tests.
std::vector<int> BootstrapWeights(uint64_t seed, int b, size_t n);
// Permutation p over the used images of `tables`: perm[i] = the image whose labels image i's
// masks are paired with (identity on skipped images). For tests.
std::vector<uint32_t> NullPermutation(const LayerTables& tables, uint64_t seed, int p);
// The counts (I, U + G − I) of unit u's label `label` (category `category`) when image i's masks
// are paired with image perm[i]'s labels. For tests.
std::pair<int64_t, int64_t> PairedCounts(const LayerTables& tables, int u, int label, int category,
                                         const std::vector<uint32_t>& perm);
// The counts (I, U + G − I) of the best label of unit u (the dissection's rule) when image i's
// masks are paired with image perm[i]'s labels; `primary` is the label -> category table. For
// tests.
std::pair<int64_t, int64_t> PairedTopCounts(const LayerTables& tables, int u,
                                            const std::vector<int>& primary,
                                            const std::vector<uint32_t>& perm);
// Benjamini–Hochberg q-values of `p` (same order).
std::vector<double> BenjaminiHochberg(const std::vector<double>& p);
// numpy-style linear quantile of sorted values (position (n-1)·q). REQUIRES: sorted non-empty.
double LinearQuantile(const std::vector<double>& sorted, double q);

}  // namespace nd
