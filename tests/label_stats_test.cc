// Label statistics (common/maths/label_stats.h): bootstrap intervals and stability against a
// direct resampling that rescores the resampled image multiset from scratch with the brute-force
// reference of tests/testing/score_testing.h (same RNG draws); permutation counts against brute
// force on re-paired images; a planted detector's p-value; p-values of label-independent units; BH;
// the RNG.
#include "common/maths/label_stats.h"

#include <gtest/gtest.h>

#include <numeric>
#include <random>

#include "common/maths/layer_results.h"
#include "common/maths/rng.h"
#include "common/results/analysis_files.h"
#include "tests/testing/analysis_testing.h"
#include "tests/testing/status_assertions.h"

namespace nd {
namespace {

using testing_analysis::BuildTables;
using testing_analysis::Fixture;
using testing_analysis::RandomFixture;
namespace ts = testing_score;

LayerResults Dissect(const Fixture& f, UnionRule rule) {
  IouTally tally(f.thresholds, f.num_labels, f.num_cats, rule);
  UnitMaskBuilder builder;
  for (size_t i = 0; i < f.labels.size(); ++i) {
    auto idx = LabelIndex::Build(f.labels[i], f.primary, f.num_cats);
    ND_EXPECT_OK(idx);
    ND_EXPECT_OK(tally.AddImage(*idx, f.acts[i], &builder));
  }
  auto r = ComputeLayerResults(tally, f.primary, 0.04);
  ND_EXPECT_OK(r);
  return *r;
}

// numpy's default quantile, written out again here.
double Quantile(std::vector<double> v, double q) {
  std::sort(v.begin(), v.end());
  const double pos = (v.size() - 1) * q;
  const size_t lo = static_cast<size_t>(std::floor(pos));
  const size_t hi = std::min(lo + 1, v.size() - 1);
  return v[lo] + (v[hi] - v[lo]) * (pos - lo);
}

TEST(LabelStatsTest, BootstrapEqualsRescoringEachResampleFromScratch) {
  int unstable = 0, wide = 0;  // the fixtures are not trivial
  for (UnionRule rule : {UnionRule::kPaper, UnionRule::kLite}) {
    for (uint32_t seed = 1; seed <= 3; ++seed) {
      SCOPED_TRACE(std::string(UnionRuleName(rule)) + " seed " + std::to_string(seed));
      const Fixture f = RandomFixture(seed, 9, 10, 8, 4, 3, 3, 8, 3);
      const LayerResults results = Dissect(f, rule);
      auto tables = BuildTables(f, rule);
      ND_ASSERT_OK(tables);
      StatsOptions o;
      o.bootstrap = 60;
      o.seed = 1000 + seed;
      o.workers = 1 + seed % 3;
      auto stats = ComputeLabelStats(*tables, results, o);
      ND_ASSERT_OK(stats);
      const int units = f.units();
      std::vector<std::vector<double>> iou(units);
      std::vector<int> same(units, 0);
      for (int b = 0; b < o.bootstrap; ++b) {
        const std::vector<int> w = BootstrapWeights(o.seed, b, f.labels.size());
        ts::RefCounts ref;
        for (size_t i = 0; i < f.labels.size(); ++i)
          for (int k = 0; k < w[i]; ++k)
            ts::RefAddImage(f.labels[i], f.acts[i], f.thresholds, f.primary, rule, &ref);
        const ts::RefResults rr =
            ts::RefCompute(ref, units, f.num_labels, f.num_cats, f.primary, 0.04);
        for (int u = 0; u < units; ++u) {
          const int l = results.unit[u].label, c = results.unit[u].category;
          const int64_t i = ts::Get(ref.i, u, l);
          const int64_t d = ts::Get(ref.u, u, c) + ts::Get(ref.g, l) - i;
          iou[u].push_back(d == 0 ? 0.0 : double(i) / double(d));
          same[u] += rr.label[u] == l;
        }
      }
      for (int u = 0; u < units; ++u) {
        SCOPED_TRACE("unit " + std::to_string(u));
        const UnitStats& s = stats->units[u];
        EXPECT_EQ(s.label, results.unit[u].label);
        EXPECT_NEAR(s.iou_low, Quantile(iou[u], 0.025), 1e-12);
        EXPECT_NEAR(s.iou_high, Quantile(iou[u], 0.975), 1e-12);
        EXPECT_LE(s.iou_low, s.iou_high);
        EXPECT_EQ(s.stability, double(same[u]) / o.bootstrap);
        unstable += s.stability < 1;
        wide += s.iou_low < s.iou_high;
      }
    }
  }
  EXPECT_GT(unstable, 3);
  EXPECT_GT(wide, 12);
}

TEST(LabelStatsTest, BootstrapWeightsAreAMultisetOfNImages) {
  const std::vector<int> w = BootstrapWeights(5, 3, 100);
  EXPECT_EQ(std::accumulate(w.begin(), w.end(), 0), 100);
  EXPECT_EQ(w, BootstrapWeights(5, 3, 100));
  EXPECT_NE(w, BootstrapWeights(5, 4, 100));
  EXPECT_NE(w, BootstrapWeights(6, 3, 100));
}

TEST(LabelStatsTest, PairedCountsEqualBruteForceOnRepairedImages) {
  for (UnionRule rule : {UnionRule::kPaper, UnionRule::kLite}) {
    const Fixture f = RandomFixture(21, 8, 9, 9, 3, 3, 3, 8, 3);
    auto tables = BuildTables(f, rule);
    ND_ASSERT_OK(tables);
    for (int p = 0; p < 4; ++p) {
      const std::vector<uint32_t> perm = NullPermutation(*tables, 77, p);
      std::vector<uint32_t> sorted = perm;
      std::sort(sorted.begin(), sorted.end());
      for (size_t i = 0; i < sorted.size(); ++i) ASSERT_EQ(sorted[i], i);
      ts::RefCounts ref;
      for (size_t i = 0; i < f.labels.size(); ++i)
        ts::RefAddImage(f.labels[perm[i]], f.acts[i], f.thresholds, f.primary, rule, &ref);
      for (int u = 0; u < f.units(); ++u) {
        for (int l = 1; l < f.num_labels; ++l) {
          const int c = f.primary[l];
          if (c < 0) continue;
          const auto [i, d] = PairedCounts(*tables, u, l, c, perm);
          EXPECT_EQ(i, ts::Get(ref.i, u, l)) << u << " " << l;
          EXPECT_EQ(d, ts::Get(ref.u, u, c) + ts::Get(ref.g, l) - ts::Get(ref.i, u, l));
        }
      }
    }
  }
}

// The max null's statistic is the dissection's unit IoU on the re-paired images.
TEST(LabelStatsTest, PairedTopCountsAreTheTopIouOfBruteForceOnRepairedImages) {
  for (UnionRule rule : {UnionRule::kPaper, UnionRule::kLite}) {
    const Fixture f = RandomFixture(31, 8, 9, 9, 4, 3, 3, 8, 3);
    auto tables = BuildTables(f, rule);
    ND_ASSERT_OK(tables);
    for (int p = 0; p < 4; ++p) {
      const std::vector<uint32_t> perm = NullPermutation(*tables, 5, p);
      ts::RefCounts ref;
      for (size_t i = 0; i < f.labels.size(); ++i)
        ts::RefAddImage(f.labels[perm[i]], f.acts[i], f.thresholds, f.primary, rule, &ref);
      const ts::RefResults rr =
          ts::RefCompute(ref, f.units(), f.num_labels, f.num_cats, f.primary, 0.04);
      for (int u = 0; u < f.units(); ++u) {
        const auto [i, d] = PairedTopCounts(*tables, u, f.primary, perm);
        EXPECT_EQ(d == 0 ? 0.0 : double(i) / double(d), rr.unit_iou[u]) << u;
      }
    }
  }
}

// Permutations never pair a mask with labels of another segmentation size, and the counts still
// equal brute force on the re-paired images.
TEST(LabelStatsTest, PermutationsStayWithinImagesOfTheSameSize) {
  const Fixture f = testing_analysis::MixedSizeFixture(4, 6, 8, 8, 7, 9);
  auto tables = BuildTables(f, UnionRule::kLite);
  ND_ASSERT_OK(tables);
  for (int p = 0; p < 5; ++p) {
    const std::vector<uint32_t> perm = NullPermutation(*tables, 9, p);
    bool moved = false;
    for (size_t i = 0; i < perm.size(); ++i) {
      EXPECT_EQ(f.labels[perm[i]].sh, f.labels[i].sh);
      EXPECT_EQ(f.labels[perm[i]].sw, f.labels[i].sw);
      moved |= perm[i] != i;
    }
    EXPECT_TRUE(moved);
    ts::RefCounts ref;
    for (size_t i = 0; i < f.labels.size(); ++i)
      ts::RefAddImage(f.labels[perm[i]], f.acts[i], f.thresholds, f.primary, UnionRule::kLite,
                      &ref);
    for (int u = 0; u < f.units(); ++u)
      for (int l = 1; l < f.num_labels; ++l) {
        if (f.primary[l] < 0) continue;
        EXPECT_EQ(PairedCounts(*tables, u, l, f.primary[l], perm).first, ts::Get(ref.i, u, l));
      }
  }
}

// 60 images of 16×16: a large `floor` label on every image, a `target` rectangle on about half of
// them, small clutter labels. Unit 0's activations are 1 exactly on `target` (maps at grid size,
// so the upsampling is the identity): a planted detector. Units 1..40 are random blobs
// independent of the labels.
Fixture PlantedFixture() {
  std::mt19937 rng(4242);
  Fixture f;
  f.num_labels = 6;
  f.num_cats = 2;
  f.primary = {-1, 0, 0, 1, 1, 1};
  f.names = {"", "floor", "target", "speck", "dot", "blob"};
  const int n = 16, units = 41;
  std::uniform_int_distribution<int> coord(0, n - 1), len(2, 7), coin(0, 1), clutter(3, 5);
  for (int i = 0; i < 60; ++i) {
    ImageLabels lab;
    lab.sh = lab.sw = n;
    std::vector<uint16_t> obj(n * n, 0), mat(n * n, 0);
    for (int p = 0; p < n * n; ++p) obj[p] = (p / n) >= 6 ? 1 : 0;  // floor: the lower 10 rows
    const bool has_target = coin(rng);
    if (has_target) {
      const int y = coord(rng) % 10, x = coord(rng) % 10, h = len(rng), w = len(rng);
      for (int yy = y; yy < std::min(n, y + h); ++yy)
        for (int xx = x; xx < std::min(n, x + w); ++xx) obj[yy * n + xx] = 2;
    }
    for (int k = 0; k < 3; ++k) mat[coord(rng) * n + coord(rng)] = clutter(rng);
    lab.layers = {obj, mat};
    lab.layer_category = {0, 1};
    f.labels.push_back(lab);
    ActivationMap a;
    a.units = units;
    a.h = a.w = n;
    a.data.assign(static_cast<size_t>(units) * n * n, 0.0f);
    for (int p = 0; p < n * n; ++p) a.data[p] = obj[p] == 2 ? 1.0f : 0.0f;
    for (int u = 1; u < units; ++u) {
      float* d = a.unit(u);
      const int y = coord(rng), x = coord(rng), h = len(rng), w = len(rng);
      for (int yy = y; yy < std::min(n, y + h); ++yy)
        for (int xx = x; xx < std::min(n, x + w); ++xx) d[yy * n + xx] = 1.0f;
    }
    f.acts.push_back(a);
  }
  f.thresholds.assign(units, 0.5);
  return f;
}

TEST(LabelStatsTest, PlantedDetectorIsSignificantAndIndependentUnitsLookUniform) {
  const Fixture f = PlantedFixture();
  const LayerResults results = Dissect(f, UnionRule::kPaper);
  ASSERT_EQ(f.names[results.unit[0].label], "target");
  auto tables = BuildTables(f, UnionRule::kPaper);
  ND_ASSERT_OK(tables);
  StatsOptions o;
  o.permutations = 1000;
  o.bootstrap = 200;
  o.seed = 3;
  o.max_null = true;
  auto stats = ComputeLabelStats(*tables, results, o);
  ND_ASSERT_OK(stats);
  const UnitStats& planted = stats->units[0];
  EXPECT_LT(planted.p_value, 0.01);
  EXPECT_EQ(planted.p_value, 1.0 / 1001.0);
  EXPECT_LT(planted.q_value, 0.05);
  EXPECT_GT(planted.stability, 0.99);
  EXPECT_LT(planted.null_mean, 0.2);
  EXPECT_GE(stats->significant_detectors, 1);
  // The max null also finds the planted unit, and is never below the top-label null.
  EXPECT_EQ(planted.p_max, 1.0 / 1001.0);
  EXPECT_LT(planted.q_max, 0.05);
  EXPECT_GE(stats->significant_detectors_max, 1);
  for (const UnitStats& s : stats->units) EXPECT_GE(s.p_max, s.p_value);
  // Units 1..40 see labels independent of their masks: their p-values should be roughly uniform.
  double sum = 0;
  int small = 0;
  for (int u = 1; u < f.units(); ++u) {
    const double p = stats->units[u].p_value;
    sum += p;
    small += p < 0.05;
  }
  const double mean = sum / (f.units() - 1);
  ::testing::Test::RecordProperty("mean_p", std::to_string(mean));
  ::testing::Test::RecordProperty("p_below_0_05", small);
  EXPECT_GT(mean, 0.3);
  EXPECT_LT(mean, 0.7);
  EXPECT_LE(small, 6);
  const std::string csv = FormatStatsCsv(*stats, f.names);
  EXPECT_EQ(csv.substr(0, csv.find('\n')),
            "unit,label,iou,iou_low,iou_high,stability,p_value,q_value,null_mean,p_max,q_max");
  EXPECT_EQ(std::count(csv.begin(), csv.end(), '\n'), 1 + f.units());
}

// The planted detector with its images' labels shuffled (each image gets another image's labels):
// over many shuffles its p-value should be roughly uniform.
TEST(LabelStatsTest, PlantedUnitWithShuffledLabelsHasRoughlyUniformPValues) {
  const Fixture planted = PlantedFixture();
  std::vector<double> ps;
  for (uint32_t shuffle = 1; shuffle <= 40; ++shuffle) {
    Fixture f = planted;
    std::mt19937 rng(shuffle);
    std::shuffle(f.labels.begin(), f.labels.end(), rng);
    const LayerResults results = Dissect(f, UnionRule::kPaper);
    auto tables = BuildTables(f, UnionRule::kPaper);
    ND_ASSERT_OK(tables);
    StatsOptions o;
    o.permutations = 200;
    o.seed = shuffle;
    auto stats = ComputeLabelStats(*tables, results, o);
    ND_ASSERT_OK(stats);
    ps.push_back(stats->units[0].p_value);
  }
  const double mean = std::accumulate(ps.begin(), ps.end(), 0.0) / ps.size();
  const int small =
      static_cast<int>(std::count_if(ps.begin(), ps.end(), [](double p) { return p < 0.05; }));
  ::testing::Test::RecordProperty("mean_p", std::to_string(mean));
  ::testing::Test::RecordProperty("p_below_0_05", small);
  EXPECT_GT(mean, 0.3);
  EXPECT_LT(mean, 0.7);
  EXPECT_LE(small, 6) << "of 40 shuffles";
}

TEST(LabelStatsTest, ResultsDoNotDependOnWorkers) {
  const Fixture f = RandomFixture(8, 12, 8, 8, 5, 3, 3, 8, 3);
  const LayerResults results = Dissect(f, UnionRule::kLite);
  auto tables = BuildTables(f, UnionRule::kLite);
  ND_ASSERT_OK(tables);
  std::string first;
  for (int workers : {1, 2, 4}) {
    StatsOptions o;
    o.bootstrap = 50;
    o.permutations = 50;
    o.workers = workers;
    auto stats = ComputeLabelStats(*tables, results, o);
    ND_ASSERT_OK(stats);
    const std::string csv = FormatStatsCsv(*stats, f.names);
    if (first.empty()) first = csv;
    EXPECT_EQ(csv, first) << "workers " << workers;
  }
}

TEST(LabelStatsTest, BenjaminiHochberg) {
  const std::vector<double> q = BenjaminiHochberg({0.01, 0.04, 0.03, 0.5});
  ASSERT_EQ(q.size(), 4u);
  EXPECT_DOUBLE_EQ(q[0], 0.04);
  EXPECT_DOUBLE_EQ(q[1], 0.04 * 4 / 3);
  EXPECT_DOUBLE_EQ(q[2], 0.04 * 4 / 3);
  EXPECT_DOUBLE_EQ(q[3], 0.5);
  EXPECT_EQ(BenjaminiHochberg({1.0, 1.0}), (std::vector<double>{1.0, 1.0}));
}

// Golden values from an independent Python implementation of rng.h's definition.
TEST(RngTest, StreamsAreTheDocumentedXoshiroDraws) {
  Rng r(1, kBootstrapDomain, 0);
  const uint64_t first[3] = {r.Next(), r.Next(), r.Next()};
  EXPECT_EQ(first[0], 0x14a359c87b28cbbeULL);
  EXPECT_EQ(first[1], 0xc75beae0dad3b754ULL);
  EXPECT_EQ(first[2], 0xa6e55da561478443ULL);
  Rng b(12345, kPermutationDomain, 7);
  EXPECT_EQ(b.Below(1000003), 363101u);
  // Below(n) stays in range and covers it.
  Rng c(9, 9, 9);
  std::vector<int> seen(7, 0);
  for (int k = 0; k < 7000; ++k) ++seen[c.Below(7)];
  for (int v : seen) EXPECT_GT(v, 800);
}

}  // namespace
}  // namespace nd
