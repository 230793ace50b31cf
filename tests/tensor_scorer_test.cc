// Tests of the tensor scorer (stages/score/tensor_scorer.h) run on the CPU device: its upsampled
// values are bit-identical to upsample.h's, and its counts (every G, I, U integer, both union
// rules, mask stats) are identical to IouTally's (the native CPU scorer) on a hand-computed
// 2x2->4x4 example and on many random datasets with ties at the threshold, maps whose maximum is
// exactly T, NaN and infinite values; Dissector with the tensor engine writes a tally.csv
// byte-identical to the native engine's.
//
// Benchmark (not run by ctest): tensor_scorer_test --gtest_also_run_disabled_tests
//   --gtest_filter='*Bench*' prints CPU ms/image of both scorers for 512 units 7x7 -> 112x112.
#include "stages/score/tensor_scorer.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <limits>
#include <map>
#include <random>
#include <sstream>
#include <vector>

#include "common/maths/dissector.h"
#include "common/maths/iou_tally.h"
#include "common/maths/label_index.h"
#include "common/maths/upsample.h"
#include "common/results/result_files.h"
#include "tests/testing/score_testing.h"
#include "tests/testing/status_assertions.h"

namespace nd {
namespace {

namespace fs = std::filesystem;

ActivationMap Map(int units, int h, int w, std::vector<float> data) {
  ActivationMap a;
  a.units = units;
  a.h = h;
  a.w = w;
  a.data = std::move(data);
  return a;
}

bool SameFloat(float a, float b) {
  if (std::isnan(a) && std::isnan(b)) return true;
  uint32_t x, y;
  std::memcpy(&x, &a, 4);
  std::memcpy(&y, &b, 4);
  return x == y;
}

// Native and tensor tallies of the same images; the tensor one gets its counts by AddCountsTo.
struct Pair {
  Pair(const std::vector<double>& t, int labels, int cats, UnionRule rule,
       const TensorScorerOptions& options)
      : native(t, labels, cats, rule), tensor(t, labels, cats, rule) {
    auto s = TensorScorer::Create(t, labels, cats, rule, options);
    ND_EXPECT_OK(s);
    if (s.ok()) scorer = std::move(s).value();
  }
  void Add(const LabelIndex& idx, const ActivationMap& acts) {
    const Status a = native.AddImage(idx, acts, &builder);
    const Status b = scorer->AddImage(idx, acts);
    ASSERT_EQ(a.ok(), b.ok()) << a.ToString() << " / " << b.ToString();
  }
  void Finish() {
    ND_ASSERT_OK(scorer->AddCountsTo(&tensor));
    auto stats = scorer->TakeMaskStats();
    ND_ASSERT_OK(stats);
    tensor_stats = *stats;
  }
  void ExpectIdentical() const {
    EXPECT_EQ(tensor.images(), native.images());
    EXPECT_EQ(tensor.label_pixels_array(), native.label_pixels_array());
    EXPECT_EQ(tensor.intersection_array(), native.intersection_array());
    EXPECT_EQ(tensor.union_array(), native.union_array());
    EXPECT_EQ(tensor_stats.maps, builder.stats().maps);
    EXPECT_EQ(tensor_stats.maps_skipped_max, builder.stats().maps_skipped_max);
  }
  IouTally native, tensor;
  UnitMaskBuilder builder;
  std::unique_ptr<TensorScorer> scorer;
  MaskStats tensor_stats;
};

// ---------------------------------------------------------------------------------------------
// The hand example, 2x2 maps -> 4x4 grid. Per axis 2 -> 4 (upsample.h): scale 0.5, source
// coordinates -0.25 (clamped to 0), 0.25, 0.75, 1.25 (i0 = 1 = i1), so a line [a, b] becomes
// [a, 0.75a + 0.25b, 0.25a + 0.75b, b] (every value below is exact in float32).
//   unit 0: [[0, 4], [8, 12]] -> rows [0 1 3 4] [2 3 5 6] [6 7 9 10] [8 9 11 12]; T = 5:
//           M = (1,3), row 2, row 3: |M| = 9.
//   unit 1: [[0, 0], [0, 12]] -> rows [0 0 0 0] [0 .75 2.25 3] [0 2.25 6.75 9] [0 3 9 12]; T = 5:
//           M = (2,2) (2,3) (3,2) (3,3): |M| = 4, all in the right half.
//   unit 2: all 5, T = 5: max A = T, so M is empty.
//   unit 3: [[0.1f, 0], [0, 0]], T = 0.1 (double): 0.1f > 0.1, so the pixel (0,0) (weights 1, 0)
//           is in M; 0.75 * 0.1f is not: |M| = 1. (Comparing with T rounded to nearest, 0.1f,
//           would give an empty mask.)
// Labels: layer 0 = label 1 on the left half (x < 2), label 2 on the right half; layer 1 = label
// 1 on row 0; scalar label 3. Primary categories: 1 -> 0, 2 -> 2, 3 -> 1, 4 -> 0 (absent).
// G: 1 -> 8 + 4 = 12, 2 -> 8, 3 -> 16.
// I[u, 1] = |M ∩ left half| + |M ∩ row 0|; I[u, 2] = |M ∩ right half|; I[u, 3] = |M|:
//   unit 0: 4 + 0, 5, 9;  unit 1: 0, 4, 4;  unit 2: 0, 0, 0;  unit 3: 1 + 1, 0, 1.
// U paper: |M| for categories 0, 1, 2 (all present).
// U lite: category 1 (scalar) always |M|; category 0 (left half ∪ row 0) when M meets it: units
//   0, 3; category 2 (right half) when M meets it: units 0, 1.
TEST(TensorScorerTest, HandExample2x2To4x4) {
  ImageLabels lab;
  lab.sh = lab.sw = 4;
  lab.layers = {{1, 1, 2, 2, 1, 1, 2, 2, 1, 1, 2, 2, 1, 1, 2, 2},
                {1, 1, 1, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0}};
  lab.layer_category = {0, 0};
  lab.scalar_labels = {3};
  lab.scalar_category = {1};
  const std::vector<int> primary = {-1, 0, 2, 1, 0};
  auto idx = LabelIndex::Build(lab, primary, 3);
  ND_ASSERT_OK(idx);
  const ActivationMap acts = Map(4, 2, 2,
                                 {0, 4, 8, 12,  // unit 0
                                  0, 0, 0, 12,  // unit 1
                                  5, 5, 5, 5,   // unit 2
                                  0.1f, 0, 0, 0});
  const std::vector<double> t = {5, 5, 5, 0.1};

  // The upsampled values of unit 0 and 1, by hand.
  auto up = TensorUpsample("cpu", acts, 4, 4);
  ND_ASSERT_OK(up);
  const std::vector<float> up0 = {0, 1, 3, 4, 2, 3, 5, 6, 6, 7, 9, 10, 8, 9, 11, 12};
  const std::vector<float> up1 = {0, 0, 0, 0, 0, .75f, 2.25f, 3, 0, 2.25f, 6.75f, 9, 0, 3, 9, 12};
  EXPECT_EQ(std::vector<float>(up->begin(), up->begin() + 16), up0);
  EXPECT_EQ(std::vector<float>(up->begin() + 16, up->begin() + 32), up1);

  const int64_t i_expected[4][5] = {
      {0, 4, 5, 9, 0}, {0, 0, 4, 4, 0}, {0, 0, 0, 0, 0}, {0, 2, 0, 1, 0}};
  const int64_t m[4] = {9, 4, 0, 1};
  const int64_t u_lite[4][3] = {{9, 9, 9}, {0, 4, 4}, {0, 0, 0}, {1, 1, 0}};
  for (UnionRule rule : {UnionRule::kPaper, UnionRule::kLite}) {
    SCOPED_TRACE(UnionRuleName(rule));
    Pair pair(t, 5, 3, rule, TensorScorerOptions{});
    ASSERT_NE(pair.scorer, nullptr);
    pair.Add(*idx, acts);
    pair.Finish();
    if (HasFatalFailure()) return;
    const IouTally& r = pair.tensor;
    EXPECT_EQ(r.images(), 1);
    EXPECT_EQ(r.label_pixels_array(), (std::vector<int64_t>{0, 12, 8, 16, 0}));
    for (int u = 0; u < 4; ++u) {
      for (int l = 0; l < 5; ++l) EXPECT_EQ(r.intersection(u, l), i_expected[u][l]) << u << l;
      for (int c = 0; c < 3; ++c) {
        EXPECT_EQ(r.union_area(u, c), rule == UnionRule::kPaper ? m[u] : u_lite[u][c]) << u << c;
      }
    }
    EXPECT_EQ(pair.tensor_stats.maps, 4);
    EXPECT_EQ(pair.tensor_stats.maps_skipped_max, 1);  // unit 2
    pair.ExpectIdentical();
  }
}

// ---------------------------------------------------------------------------------------------
// Upsampling: bit-identical to UpsampleBilinear for many geometries and values (subnormal, huge,
// negative, zero of both signs, ties; infinities, whose products with 0 are NaN).
TEST(TensorScorerTest, UpsampleIsBitIdenticalToReference) {
  std::mt19937 rng(7);
  const int geometries[][4] = {
      {2, 2, 4, 4}, {7, 7, 112, 112}, {7, 7, 113, 113}, {14, 14, 112, 112}, {3, 5, 13, 11},
      {1, 1, 9, 9}, {5, 3, 3, 5},     {1, 6, 1, 37},    {56, 56, 112, 112}, {6, 6, 1, 1}};
  std::normal_distribution<float> normal(0, 1);
  std::uniform_int_distribution<int> kind(0, 9);
  int64_t compared = 0;
  for (const auto& g : geometries) {
    for (int rep = 0; rep < 3; ++rep) {
      const int units = 6;
      ActivationMap a = Map(units, g[0], g[1], std::vector<float>(units * g[0] * g[1]));
      for (float& v : a.data) {
        const int k = kind(rng);
        v = k < 5    ? normal(rng) * 3
            : k == 5 ? 1e-40f * normal(rng)
            : k == 6 ? 3e37f * normal(rng)
            : k == 7 ? std::round(normal(rng))
            : k == 8 ? -0.0f
                     : 0.1f;
        if (rep == 2 && kind(rng) == 0) v = kind(rng) < 5 ? INFINITY : -INFINITY;
      }
      std::vector<float> ref(static_cast<size_t>(g[2]) * g[3]);
      auto up = TensorUpsample("cpu", a, g[2], g[3]);
      ND_ASSERT_OK(up);
      ASSERT_EQ(up->size(), ref.size() * units);
      for (int u = 0; u < units; ++u) {
        UpsampleBilinear(a.unit(u), g[0], g[1], g[2], g[3], ref.data());
        for (size_t p = 0; p < ref.size(); ++p, ++compared) {
          ASSERT_TRUE(SameFloat((*up)[u * ref.size() + p], ref[p]))
              << g[0] << "x" << g[1] << "->" << g[2] << "x" << g[3] << " unit " << u << " pixel "
              << p << ": " << (*up)[u * ref.size() + p] << " vs " << ref[p];
        }
      }
    }
  }
  EXPECT_GT(compared, 100000);
}

// ---------------------------------------------------------------------------------------------
// Random datasets: counts identical to IouTally's, both rules, any batch size and unit chunking,
// geometry changing between images.
TEST(TensorScorerTest, RandomDatasetsMatchNativeScorer) {
  std::mt19937 rng(12345);
  std::uniform_int_distribution<int> small(1, 6), grid(1, 19), nunits(1, 20), nimages(1, 7),
      pick(0, 9), batch(1, 4);
  const int num_labels = 11, num_cats = 4;
  int64_t tie_units = 0, max_is_t_units = 0, nonempty = 0;
  for (int trial = 0; trial < 60; ++trial) {
    std::vector<int> primary(num_labels);
    for (int l = 0; l < num_labels; ++l) {
      primary[l] = l == 0 || pick(rng) == 0 ? -1 : pick(rng) % num_cats;
    }
    const int units = nunits(rng);
    // Geometries: mostly one per trial, sometimes changing per image.
    const bool mixed = pick(rng) < 3;
    int h = small(rng), w = small(rng), sh = grid(rng), sw = grid(rng);
    if (trial == 0) h = w = 2, sh = sw = 4;
    std::vector<ImageLabels> labs;
    std::vector<ActivationMap> maps;
    const int n = nimages(rng);
    for (int i = 0; i < n; ++i) {
      if (mixed && i > 0 && pick(rng) < 5) {
        h = small(rng), w = small(rng), sh = grid(rng), sw = grid(rng);
      }
      const int layers = pick(rng) % 3;
      labs.push_back(testing_score::RandomLabels(&rng, sh, sw, num_labels, layers, num_cats));
      maps.push_back(testing_score::RandomActivations(&rng, units, h, w));
    }
    // Thresholds from the first map: a value in it (ties), its maximum (max A = T), a level
    // between values, or a double just above/below a float.
    std::vector<double> t(units);
    for (int u = 0; u < units; ++u) {
      const ActivationMap& a = maps[0];
      std::uniform_int_distribution<size_t> at(0, a.plane() - 1);
      const float* d = a.unit(u);
      const float mx = *std::max_element(d, d + a.plane());
      switch (pick(rng)) {
        case 0:
        case 1:
        case 2:
          t[u] = d[at(rng)];
          ++tie_units;
          break;
        case 3:
        case 4:
          t[u] = mx;
          ++max_is_t_units;
          break;
        case 5:
          t[u] = 0.5;
          break;
        case 6:
          t[u] = std::nextafter(static_cast<double>(d[at(rng)]), 1e300);
          break;
        case 7:
          t[u] = std::nextafter(static_cast<double>(d[at(rng)]), -1e300);
          break;
        case 8:
          t[u] = -1e300;
          break;
        default:
          t[u] = 0.7 * mx;
          break;
      }
    }
    // NaN and infinities in a few maps.
    if (pick(rng) == 0) {
      for (ActivationMap& a : maps) {
        std::uniform_int_distribution<size_t> at(0, a.data.size() - 1);
        a.data[at(rng)] = std::numeric_limits<float>::quiet_NaN();
        a.data[at(rng)] = INFINITY;
        a.data[at(rng)] = -INFINITY;
      }
    }
    std::vector<LabelIndex> idx;
    for (const ImageLabels& lab : labs) {
      auto b = LabelIndex::Build(lab, primary, num_cats);
      ND_ASSERT_OK(b);
      idx.push_back(std::move(b).value());
    }
    for (UnionRule rule : {UnionRule::kPaper, UnionRule::kLite}) {
      SCOPED_TRACE("trial " + std::to_string(trial) + " " + UnionRuleName(rule));
      TensorScorerOptions opt;
      opt.batch_images = batch(rng);
      opt.chunk_bytes = pick(rng) < 5 ? 1 : int64_t{1} << 30;  // one unit per chunk, or all
      Pair pair(t, num_labels, num_cats, rule, opt);
      ASSERT_NE(pair.scorer, nullptr);
      for (int i = 0; i < n; ++i) pair.Add(idx[i], maps[i]);
      pair.Finish();
      if (HasFatalFailure()) return;
      pair.ExpectIdentical();
      for (int64_t v : pair.native.intersection_array()) nonempty += v > 0;
    }
  }
  // The data exercised what it is meant to.
  EXPECT_GT(tie_units, 50);
  EXPECT_GT(max_is_t_units, 30);
  EXPECT_GT(nonempty, 100);
}

// Constant maps whose value v is T: the upsampled values can round to the float above v
// (unit_mask.h), but max A = T makes the mask empty in both scorers. The test checks that such
// rounding does occur in its data (so the max gate is what keeps the masks empty).
TEST(TensorScorerTest, MaxExactlyTIsEmptyEvenWhenInterpolationRoundsUp) {
  std::mt19937 rng(99);
  std::uniform_real_distribution<float> value(0.01f, 100.0f);
  const int units = 64;
  ActivationMap a = Map(units, 7, 7, std::vector<float>(units * 49));
  std::vector<double> t(units);
  for (int u = 0; u < units; ++u) {
    const float v = value(rng);
    std::fill(a.unit(u), a.unit(u) + 49, v);
    t[u] = v;
  }
  auto up = TensorUpsample("cpu", a, 113, 113);
  ND_ASSERT_OK(up);
  int rounded_up = 0;
  for (int u = 0; u < units; ++u) {
    for (int p = 0; p < 113 * 113; ++p) rounded_up += (*up)[u * 113 * 113 + p] > a.unit(u)[0];
  }
  EXPECT_GT(rounded_up, 0) << "no interpolated value rounded above its constant map";
  ImageLabels lab;
  lab.sh = lab.sw = 113;
  lab.layers = {std::vector<uint16_t>(113 * 113, 1)};
  lab.layer_category = {0};
  auto idx = LabelIndex::Build(lab, {-1, 0}, 1);
  ND_ASSERT_OK(idx);
  for (UnionRule rule : {UnionRule::kPaper, UnionRule::kLite}) {
    Pair pair(t, 2, 1, rule, TensorScorerOptions{});
    ASSERT_NE(pair.scorer, nullptr);
    pair.Add(*idx, a);
    pair.Finish();
    if (HasFatalFailure()) return;
    pair.ExpectIdentical();
    for (int u = 0; u < units; ++u) EXPECT_EQ(pair.tensor.intersection(u, 1), 0);
    EXPECT_EQ(pair.tensor_stats.maps_skipped_max, units);
  }
}

TEST(TensorScorerTest, ErrorsAreStatuses) {
  // Bad device names; CUDA where there is none is one FailedPrecondition line.
  EXPECT_EQ(CheckTensorDevice("gpu").code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(CheckTensorDevice("cuda:x").code(), StatusCode::kInvalidArgument);
  const Status cuda = CheckTensorDevice("cuda:63");
  EXPECT_FALSE(cuda.ok());
  EXPECT_NE(cuda.message().find("cuda:63"), std::string::npos) << cuda.message();
  EXPECT_EQ(cuda.message().find('\n'), std::string::npos) << cuda.message();
  ND_EXPECT_OK(CheckTensorDevice("cpu"));
  TensorScorerOptions opt;
  opt.device = "cuda:63";
  EXPECT_FALSE(TensorScorer::Create({1.0}, 2, 1, UnionRule::kPaper, opt).ok());
  EXPECT_FALSE(TensorScorer::Create({}, 2, 1, UnionRule::kPaper, TensorScorerOptions{}).ok());
  EXPECT_FALSE(
      TensorScorer::Create({std::nan("")}, 2, 1, UnionRule::kPaper, TensorScorerOptions{}).ok());
  // Per-image validation: InvalidArgument, nothing added.
  auto s = TensorScorer::Create({1.0, 2.0}, 2, 1, UnionRule::kPaper, TensorScorerOptions{});
  ND_ASSERT_OK(s);
  ImageLabels lab;
  lab.sh = lab.sw = 2;
  lab.layers = {{1, 1, 1, 1}};
  lab.layer_category = {0};
  auto idx = LabelIndex::Build(lab, {-1, 0}, 1);
  ND_ASSERT_OK(idx);
  EXPECT_EQ((*s)->AddImage(*idx, Map(3, 1, 1, {1, 2, 3})).code(), StatusCode::kInvalidArgument);
  EXPECT_EQ((*s)->AddImage(*idx, Map(2, 1, 1, {1})).code(), StatusCode::kInvalidArgument);
  IouTally tally({1.0, 2.0}, 2, 1, UnionRule::kPaper);
  ND_ASSERT_OK((*s)->AddCountsTo(&tally));
  EXPECT_EQ(tally.images(), 0);
  IouTally other({1.0, 2.0}, 2, 1, UnionRule::kLite);
  EXPECT_FALSE((*s)->AddCountsTo(&other).ok());
}

// ---------------------------------------------------------------------------------------------
// Dissector with the tensor engine on the CPU: same report counts and a byte-identical tally.csv.
std::string ReadFile(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  std::stringstream ss;
  ss << f.rdbuf();
  return ss.str();
}

TEST(TensorScorerTest, ScoreStageTensorEngineWritesIdenticalTally) {
  const std::string dir = testing_score::MakeTempDir("tensor_score");
  ASSERT_FALSE(dir.empty());
  std::mt19937 rng(31);
  testing_score::TestBroden b;
  b.categories = {"c0", "c1", "c2"};
  b.label_names = {"", "a", "b", "c", "d", "e", "f"};
  b.coverage = {{-1, -1, -1}, {1, -1, -1},   {0.5, 0.5, -1}, {-1, 1, -1},
                {-1, -1, 1},  {-1, 0.25, 1}, {-1, -1, -1}};
  std::uniform_int_distribution<int> label(0, 6), coin(0, 1), size(5, 16);
  for (int i = 0; i < 9; ++i) {
    testing_score::TestBroden::Image im;
    im.sh = size(rng);
    im.sw = i < 5 ? im.sh : size(rng);
    im.layers.resize(3);
    im.scalars.resize(3);
    for (int c = 0; c < 3; ++c) {
      if (coin(rng) == 0) continue;
      std::vector<uint16_t> layer(im.sh * im.sw);
      const int x = label(rng), y = label(rng);
      for (int p = 0; p < im.sh * im.sw; ++p) layer[p] = (p % im.sw) * 2 < im.sw ? x : y;
      im.layers[c].push_back(layer);
    }
    if (coin(rng)) im.scalars[2].push_back(4);
    b.images.push_back(im);
  }
  ASSERT_TRUE(testing_score::WriteTestBroden(b, dir));
  auto ds = BrodenDataset::Open(dir);
  ND_ASSERT_OK(ds);
  std::map<size_t, ActivationMap> maps;
  std::vector<size_t> rows;
  const int units = 12;
  for (size_t row = 0; row < ds->images().size(); ++row) {
    maps[row] = testing_score::RandomActivations(&rng, units, 3, 3);
    rows.push_back(row);
  }
  std::vector<double> t(units);
  for (int u = 0; u < units; ++u) t[u] = maps[0].unit(u)[u % 9];  // ties
  auto fetch = [&](size_t row, ActivationMap* out) -> Status {
    *out = maps.at(row);
    return Status::Ok();
  };
  for (UnionRule rule : {UnionRule::kPaper, UnionRule::kLite}) {
    std::vector<std::string> tallies;
    for (ScoreEngine engine : {ScoreEngine::kNative, ScoreEngine::kTensor}) {
      ScoreOptions opt;
      opt.union_rule = rule;
      opt.workers = 2;
      opt.engine = engine;
      opt.tensor_engine = TensorEngine();
      auto stage = Dissector::Create(&*ds, opt);
      ND_ASSERT_OK(stage);
      auto rep = (*stage)->Run(rows, t, fetch);
      ND_ASSERT_OK(rep);
      EXPECT_EQ(rep->images_scored, static_cast<int64_t>(rows.size()));
      const std::string out = dir + "/out_" + UnionRuleName(rule) + std::to_string(int(engine));
      fs::create_directories(out);
      RunFacts facts;
      facts.layer = "layer";
      ND_ASSERT_OK(WriteLayerResultFiles(out, *ds, *rep, t, facts));
      tallies.push_back(ReadFile(out + "/tally.csv"));
    }
    ASSERT_FALSE(tallies[0].empty());
    EXPECT_EQ(tallies[1], tallies[0]) << UnionRuleName(rule);
  }
  // A CUDA device where there is none is an error at Create (startup), not during Run.
  ScoreOptions cuda;
  cuda.engine = ScoreEngine::kTensor;
  cuda.device = "cuda:63";
  cuda.tensor_engine = TensorEngine();
  EXPECT_FALSE(Dissector::Create(&*ds, cuda).ok());
  // Without the engine (the CPU scorer process), a tensor device is refused at Create too.
  ScoreOptions none;
  none.engine = ScoreEngine::kTensor;
  EXPECT_EQ(Dissector::Create(&*ds, none).status().code(), StatusCode::kFailedPrecondition);
  std::error_code ec;
  fs::remove_all(dir, ec);
}

// ---------------------------------------------------------------------------------------------
// Benchmark: 512 units, 7x7 -> 112x112, Broden-like labels, T at about the 99.5% quantile.
TEST(TensorScorerBench, DISABLED_CpuMsPerImage) {
  std::mt19937 rng(5);
  const int units = 512, images = 24, num_labels = 200, num_cats = 4;
  std::vector<int> primary(num_labels);
  for (int l = 1; l < num_labels; ++l) primary[l] = l % num_cats;
  primary[0] = -1;
  std::vector<LabelIndex> idx;
  std::vector<ActivationMap> maps;
  for (int i = 0; i < images; ++i) {
    auto b = LabelIndex::Build(testing_score::RandomLabels(&rng, 112, 112, num_labels, 3, num_cats),
                               primary, num_cats);
    ND_ASSERT_OK(b);
    idx.push_back(std::move(b).value());
    ActivationMap a = Map(units, 7, 7, std::vector<float>(units * 49));
    std::normal_distribution<float> normal(0, 1);
    for (float& v : a.data) v = std::max(0.0f, normal(rng));
    maps.push_back(std::move(a));
  }
  // T = 2.576 (~99.5% quantile of the positive part of a normal: most maps fail the max gate, as
  // at Network Dissection's thresholds) and T = 1.0 (most maps pass: the worst case).
  for (double level : {2.576, 1.0}) {
    const std::vector<double> t(units, level);
    for (UnionRule rule : {UnionRule::kPaper, UnionRule::kLite}) {
      IouTally native(t, num_labels, num_cats, rule), tensor(t, num_labels, num_cats, rule);
      UnitMaskBuilder builder;
      auto t0 = std::chrono::steady_clock::now();
      for (int i = 0; i < images; ++i) ASSERT_TRUE(native.AddImage(idx[i], maps[i], &builder).ok());
      auto t1 = std::chrono::steady_clock::now();
      auto scorer = TensorScorer::Create(t, num_labels, num_cats, rule, TensorScorerOptions{});
      ND_ASSERT_OK(scorer);
      for (int i = 0; i < images; ++i) ASSERT_TRUE((*scorer)->AddImage(idx[i], maps[i]).ok());
      ND_ASSERT_OK((*scorer)->AddCountsTo(&tensor));
      auto t2 = std::chrono::steady_clock::now();
      EXPECT_EQ(tensor.intersection_array(), native.intersection_array());
      EXPECT_EQ(tensor.union_array(), native.union_array());
      const double native_ms = std::chrono::duration<double, std::milli>(t1 - t0).count() / images;
      const double tensor_ms = std::chrono::duration<double, std::milli>(t2 - t1).count() / images;
      const MaskStats& st = builder.stats();
      std::printf(
          "T=%g %s: %.0f%% of maps pass max > T; native %.2f ms/image (1 thread), tensor "
          "on CPU %.2f ms/image (LibTorch intra-op threads)\n",
          level, UnionRuleName(rule),
          100.0 * static_cast<double>(st.maps - st.maps_skipped_max) / st.maps, native_ms,
          tensor_ms);
    }
  }
}

}  // namespace
}  // namespace nd
