// Tests of the score stage's label index, counts and results (common/maths/label_index.h,
// iou_tally.h, layer_results.h) against a naive brute-force reference (score_testing.h) and
// hand-computed examples.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <random>
#include <vector>

#include "common/base/text_format.h"
#include "common/maths/iou_tally.h"
#include "common/maths/label_index.h"
#include "common/maths/layer_results.h"
#include "tests/testing/score_testing.h"
#include "tests/testing/status_assertions.h"

namespace nd {
namespace {

using testing_score::Get;
using testing_score::RandomActivations;
using testing_score::RandomLabels;
using testing_score::RefAddImage;
using testing_score::RefCompute;
using testing_score::RefCounts;
using testing_score::RefResults;

// 4x4 grid, 2 layers.
//   layer 0: label 1 on the left half, label 2 on the right half
//   layer 1: label 1 on row 0, label 3 (no primary category) on row 3, label 0 elsewhere
// scalars: 4 (category 1), 3 (no category: dropped)
TEST(LabelIndexTest, HandExample) {
  ImageLabels lab;
  lab.sh = lab.sw = 4;
  lab.layers = {{1, 1, 2, 2, 1, 1, 2, 2, 1, 1, 2, 2, 1, 1, 2, 2},
                {1, 1, 1, 1, 0, 0, 0, 0, 0, 0, 0, 0, 3, 3, 3, 3}};
  lab.layer_category = {0, 0};
  lab.scalar_labels = {4, 3};
  lab.scalar_category = {1, 1};
  const std::vector<int> primary = {-1, 0, 2, -1, 1};
  StatusOr<LabelIndex> idx = LabelIndex::Build(lab, primary, 3);
  ND_ASSERT_OK(idx);
  ASSERT_EQ(idx->pixel_labels().size(), 3u);  // (0,1), (0,2), (1,1)
  const auto& pl = idx->pixel_labels();
  EXPECT_EQ(pl[0].label, 1);
  EXPECT_EQ(pl[0].layer, 0);
  EXPECT_EQ(pl[0].set.count, 8);
  EXPECT_EQ(pl[1].label, 2);
  EXPECT_EQ(pl[1].set.count, 8);
  EXPECT_EQ(pl[2].label, 1);
  EXPECT_EQ(pl[2].layer, 1);
  EXPECT_EQ(pl[2].set.count, 4);
  for (int p = 0; p < 16; ++p) {
    EXPECT_EQ(idx->Contains(pl[0].set, p), p % 4 < 2) << p;
    EXPECT_EQ(idx->Contains(pl[2].set, p), p < 4) << p;
  }
  EXPECT_EQ(idx->scalar_labels(), std::vector<int>{4});
  // Category 0 (label 1): left half ∪ row 0 = 8 + 2 = 10 pixels. Category 2 (label 2): right half.
  ASSERT_EQ(idx->categories().size(), 3u);
  EXPECT_EQ(idx->categories()[0].category, 0);
  EXPECT_FALSE(idx->categories()[0].has_scalar);
  EXPECT_EQ(idx->categories()[1].category, 1);
  EXPECT_TRUE(idx->categories()[1].has_scalar);
  EXPECT_EQ(idx->categories()[1].set, -1);
  EXPECT_EQ(idx->categories()[2].category, 2);
  const auto& cs0 = idx->category_sets()[idx->categories()[0].set];
  EXPECT_EQ(cs0.set.count, 10);
  EXPECT_EQ(idx->category_sets()[idx->categories()[2].set].set.count, 8);
}

TEST(LabelIndexTest, RejectsBadInput) {
  ImageLabels lab;
  lab.sh = lab.sw = 2;
  lab.layers = {{1, 2, 3}};
  EXPECT_FALSE(LabelIndex::Build(lab, {-1, 0, 0, 0}, 1).ok());  // 3 pixels, not 4
  lab.layers = {{1, 2, 9, 0}};
  const auto bad = LabelIndex::Build(lab, {-1, 0, 0, 0}, 1);
  ASSERT_FALSE(bad.ok());
  EXPECT_NE(bad.status().message().find("label 9"), std::string::npos) << bad.status().message();
  lab.layers = {{1, 2, 3, 0}};
  EXPECT_FALSE(LabelIndex::Build(lab, {-1, 0, 5, 0}, 1).ok());  // category out of range
  lab.sh = 0;
  EXPECT_FALSE(LabelIndex::Build(lab, {-1, 0, 0, 0}, 1).ok());
}

// Runs the tally and the reference on the same random images and compares every count.
void CompareWithReference(UnionRule rule, uint32_t seed, bool* saw_nonzero_iou) {
  std::mt19937 rng(seed);
  const int num_labels = 14, num_cats = 4, units = 5;
  std::uniform_int_distribution<int> pcat(-1, num_cats - 1);
  std::vector<int> primary(num_labels);
  for (int l = 1; l < num_labels; ++l) primary[l] = pcat(rng);
  primary[0] = 2;  // label 0 must be ignored whatever its table entry says
  // Thresholds include the activation levels 0..3 (ties) and values in between.
  const std::vector<double> thresholds = {0.0, 1.0, 0.5, -0.3, 2.0};
  IouTally tally(thresholds, num_labels, num_cats, rule);
  RefCounts ref;
  UnitMaskBuilder builder;
  std::uniform_int_distribution<int> size(1, 14), msize(1, 5), nlayers(0, 4);
  for (int image = 0; image < 30; ++image) {
    const ImageLabels lab =
        RandomLabels(&rng, size(rng), size(rng), num_labels, nlayers(rng), num_cats);
    const ActivationMap acts = RandomActivations(&rng, units, msize(rng), msize(rng));
    StatusOr<LabelIndex> idx = LabelIndex::Build(lab, primary, num_cats);
    ND_ASSERT_OK(idx);
    ND_ASSERT_OK(tally.AddImage(*idx, acts, &builder));
    RefAddImage(lab, acts, thresholds, primary, rule, &ref);
  }
  EXPECT_EQ(tally.images(), 30);
  for (int l = 0; l < num_labels; ++l) {
    ASSERT_EQ(tally.label_pixels(l), Get(ref.g, l)) << "G label " << l;
  }
  for (int u = 0; u < units; ++u) {
    for (int l = 0; l < num_labels; ++l) {
      ASSERT_EQ(tally.intersection(u, l), Get(ref.i, u, l)) << "I unit " << u << " label " << l;
    }
    for (int c = 0; c < num_cats; ++c) {
      ASSERT_EQ(tally.union_area(u, c), Get(ref.u, u, c)) << "U unit " << u << " cat " << c;
    }
  }
  StatusOr<LayerResults> res = ComputeLayerResults(tally, primary, 0.04);
  ND_ASSERT_OK(res);
  const RefResults want = RefCompute(ref, units, num_labels, num_cats, primary, 0.04);
  for (int u = 0; u < units; ++u) {
    for (int l = 0; l < num_labels; ++l) {
      ASSERT_EQ(res->Iou(u, l), want.iou[u][l]) << u << " " << l;
      if (want.iou[u][l] > 0) *saw_nonzero_iou = true;
    }
    for (int c = 0; c < num_cats; ++c) {
      ASSERT_EQ(res->BestLabel(u, c), want.best[u][c]) << u << " " << c;
      ASSERT_EQ(res->BestIou(u, c), want.best_iou[u][c]) << u << " " << c;
    }
    ASSERT_EQ(res->unit[u].label, want.label[u]) << u;
    ASSERT_EQ(res->unit[u].category, want.category[u]) << u;
    ASSERT_EQ(res->unit[u].iou, want.unit_iou[u]) << u;
    ASSERT_EQ(res->unit[u].top.size(), want.top[u].size()) << u;
    for (size_t k = 0; k < want.top[u].size(); ++k) {
      EXPECT_EQ(res->unit[u].top[k].iou, std::get<0>(want.top[u][k]));
      EXPECT_EQ(res->unit[u].top[k].category, std::get<1>(want.top[u][k]));
      EXPECT_EQ(res->unit[u].top[k].label, std::get<2>(want.top[u][k]));
    }
  }
  EXPECT_EQ(res->detectors, want.detectors);
  EXPECT_EQ(res->unique_detectors_paper, want.unique_paper);
  EXPECT_EQ(res->unique_detectors_top_label, want.unique_top);
}

TEST(IouTallyTest, MatchesBruteForcePaper) {
  bool nonzero = false;
  for (uint32_t seed = 1; seed <= 40; ++seed) {
    CompareWithReference(UnionRule::kPaper, seed, &nonzero);
    if (HasFatalFailure()) return;
  }
  EXPECT_TRUE(nonzero);
}

TEST(IouTallyTest, MatchesBruteForceLite) {
  bool nonzero = false;
  for (uint32_t seed = 1; seed <= 40; ++seed) {
    CompareWithReference(UnionRule::kLite, seed, &nonzero);
    if (HasFatalFailure()) return;
  }
  EXPECT_TRUE(nonzero);
}

// Shards merged in any grouping equal the single-pass tally; counts are order-independent.
TEST(IouTallyTest, MergeAndOrderDoNotChangeCounts) {
  std::mt19937 rng(99);
  const int num_labels = 10, num_cats = 3, units = 4;
  const std::vector<int> primary = {-1, 0, 0, 1, 1, 2, 2, -1, 0, 1};
  const std::vector<double> t = {0.5, 1.0, 0.0, 1.5};
  std::vector<LabelIndex> idx;
  std::vector<ActivationMap> acts;
  for (int i = 0; i < 20; ++i) {
    idx.push_back(
        LabelIndex::Build(RandomLabels(&rng, 9, 7, num_labels, 3, num_cats), primary, num_cats)
            .value());
    acts.push_back(RandomActivations(&rng, units, 3, 3));
  }
  for (UnionRule rule : {UnionRule::kPaper, UnionRule::kLite}) {
    IouTally whole(t, num_labels, num_cats, rule), a(t, num_labels, num_cats, rule),
        b(t, num_labels, num_cats, rule);
    UnitMaskBuilder mb;
    for (int i = 0; i < 20; ++i) ASSERT_TRUE(whole.AddImage(idx[i], acts[i], &mb).ok());
    for (int i = 19; i >= 0; --i) {
      ASSERT_TRUE((i % 3 == 0 ? a : b).AddImage(idx[i], acts[i], &mb).ok());
    }
    ND_ASSERT_OK(b.Merge(a));
    EXPECT_EQ(b.images(), 20);
    EXPECT_EQ(b.label_pixels_array(), whole.label_pixels_array());
    EXPECT_EQ(b.intersection_array(), whole.intersection_array());
    EXPECT_EQ(b.union_array(), whole.union_array());
  }
  IouTally p(t, num_labels, num_cats, UnionRule::kPaper),
      l(t, num_labels, num_cats, UnionRule::kLite);
  EXPECT_FALSE(p.Merge(l).ok());
  IouTally other({0.5, 1.0, 0.0, 1.25}, num_labels, num_cats, UnionRule::kPaper);
  EXPECT_FALSE(p.Merge(other).ok());
}

TEST(IouTallyTest, RejectsMalformedActivations) {
  const std::vector<int> primary = {-1, 0};
  ImageLabels lab;
  lab.sh = lab.sw = 2;
  lab.layers = {{1, 1, 0, 0}};
  const LabelIndex idx = LabelIndex::Build(lab, primary, 1).value();
  IouTally tally({0.0, 0.0}, 2, 1, UnionRule::kPaper);
  UnitMaskBuilder mb;
  ActivationMap a;
  a.units = 3;  // thresholds say 2
  a.h = a.w = 1;
  a.data = {1, 1, 1};
  EXPECT_FALSE(tally.AddImage(idx, a, &mb).ok());
  a.units = 2;  // 2 units but 3 values
  EXPECT_FALSE(tally.AddImage(idx, a, &mb).ok());
  EXPECT_EQ(tally.images(), 0);
  EXPECT_EQ(tally.label_pixels(1), 0);  // nothing was counted
}

// Every IoU lies in [0, 1] when no label repeats across layers at one pixel.
TEST(IouTallyTest, IouInUnitIntervalWithoutRepeatedLabels) {
  std::mt19937 rng(5);
  const int num_labels = 12, num_cats = 3, units = 6;
  std::vector<int> primary(num_labels);
  for (int l = 1; l < num_labels; ++l) primary[l] = l % num_cats;
  for (UnionRule rule : {UnionRule::kPaper, UnionRule::kLite}) {
    IouTally tally({0.0, 0.5, 1.0, 1.5, 2.0, -1.0}, num_labels, num_cats, rule);
    UnitMaskBuilder mb;
    for (int i = 0; i < 25; ++i) {
      ImageLabels lab = RandomLabels(&rng, 11, 13, num_labels, 3, num_cats);
      // Layer k only keeps labels l with l % 3 == k: no label in two layers.
      for (int k = 0; k < 3; ++k) {
        for (auto& v : lab.layers[k]) {
          if (v % 3 != k) v = 0;
        }
      }
      ASSERT_TRUE(tally
                      .AddImage(LabelIndex::Build(lab, primary, num_cats).value(),
                                RandomActivations(&rng, units, 4, 4), &mb)
                      .ok());
    }
    const LayerResults r = ComputeLayerResults(tally, primary, 0.04).value();
    int positive = 0;
    for (double v : r.iou) {
      EXPECT_GE(v, 0.0);
      EXPECT_LE(v, 1.0);
      positive += v > 0;
    }
    EXPECT_GT(positive, 0);
  }
}

// The SPEC's counting lets IoU exceed 1 when a label is in two layers at the same pixels:
// one 2x2 image, label 1 in both layers everywhere, mask everything: I = 8, G = 8, U = 4,
// IoU = 8 / (4 + 8 - 8) = 2.
TEST(IouTallyTest, RepeatedLabelAcrossLayersCanExceedOne) {
  ImageLabels lab;
  lab.sh = lab.sw = 2;
  lab.layers = {{1, 1, 1, 1}, {1, 1, 1, 1}};
  const std::vector<int> primary = {-1, 0};
  IouTally tally({0.0}, 2, 1, UnionRule::kPaper);
  UnitMaskBuilder mb;
  ActivationMap a;
  a.units = 1;
  a.h = a.w = 1;
  a.data = {1.0f};
  ND_ASSERT_OK(tally.AddImage(LabelIndex::Build(lab, primary, 1).value(), a, &mb));
  EXPECT_EQ(tally.intersection(0, 1), 8);
  EXPECT_EQ(tally.label_pixels(1), 8);
  EXPECT_EQ(tally.union_area(0, 0), 4);
  EXPECT_EQ(ComputeLayerResults(tally, primary, 0.04)->Iou(0, 1), 2.0);
}

// Edge cases by hand on one 4x4 image with label 1 (category 0) on the left half (8 pixels) and
// scalar label 2 (category 1):
//  - unit 0 masks everything (T below all values): I[1] = 8, G[1] = 8, U[0,0] = 16
//    -> IoU(1) = 8 / (16 + 8 - 8) = 0.5; scalar: I = 16, G = 16, U[0,1] = 16 -> IoU(2) = 1.
//  - unit 1 masks nothing (T at the maximum): all counts 0, IoU 0, not a detector; its label is
//    the lowest label of the first category (all ties).
TEST(LayerResultsTest, AllMaskedAndEmptyMask) {
  ImageLabels lab;
  lab.sh = lab.sw = 4;
  lab.layers = {{1, 1, 0, 0, 1, 1, 0, 0, 1, 1, 0, 0, 1, 1, 0, 0}};
  lab.scalar_labels = {2};
  const std::vector<int> primary = {-1, 0, 1};
  for (UnionRule rule : {UnionRule::kPaper, UnionRule::kLite}) {
    IouTally tally({-5.0, 3.0}, 3, 2, rule);
    UnitMaskBuilder mb;
    ActivationMap a;
    a.units = 2;
    a.h = a.w = 2;
    a.data = {1, 2, 3, 0, 1, 2, 3, 0};
    ND_ASSERT_OK(tally.AddImage(LabelIndex::Build(lab, primary, 2).value(), a, &mb));
    const LayerResults r = ComputeLayerResults(tally, primary, 0.04).value();
    EXPECT_EQ(r.Iou(0, 1), 0.5);
    EXPECT_EQ(r.Iou(0, 2), 1.0);
    EXPECT_EQ(r.unit[0].label, 2);
    EXPECT_EQ(r.unit[0].category, 1);
    EXPECT_TRUE(r.unit[0].detector);
    ASSERT_EQ(r.unit[0].top.size(), 2u);
    EXPECT_EQ(r.unit[0].top[1].label, 1);
    EXPECT_EQ(tally.intersection(1, 1), 0);
    EXPECT_EQ(tally.union_area(1, 0), 0);
    EXPECT_EQ(r.Iou(1, 1), 0.0);
    EXPECT_EQ(r.unit[1].label, 1);
    EXPECT_EQ(r.unit[1].category, 0);
    EXPECT_FALSE(r.unit[1].detector);
    EXPECT_TRUE(r.unit[1].top.empty());
    EXPECT_EQ(r.detectors, 1);
    EXPECT_EQ(r.unique_detectors_top_label, 1);
    EXPECT_EQ(r.unique_detectors_paper, 2);  // unit 0 is above 0.04 in both categories
  }
}

// Detector and unique-detector rules by hand. One 1x10 image: label 1 (category 0) on pixels 0-4,
// label 2 (category 0) on pixels 5-9, scalar label 3 (category 1). 1x10 maps upsample to
// themselves; T = 0.5 selects the pixels set to 1. paper: U[u,0] = U[u,1] = |M|.
// IoU(1) = a/(b+5), IoU(2) = b/(a+5), IoU(3) = (a+b)/10 for a masked pixels in 0-4, b in 5-9.
//   unit 0: pixels 0-4 (a=5,b=0): 1.0, 0, 0.5   -> label 1
//   unit 1: pixels 0-3 (a=4,b=0): 0.8, 0, 0.4   -> label 1
//   unit 2: pixels 5-9 (a=0,b=5): 0, 1.0, 0.5   -> label 2
//   unit 3: pixel 9    (a=0,b=1): 0, 0.2, 0.1   -> label 2, not a detector at cutoff 0.3
//   unit 4: all        (a=5,b=5): 0.5, 0.5, 1.0 -> label 3; best in category 0 is the tie 1/2 -> 1
TEST(LayerResultsTest, UniqueDetectorRulesByHand) {
  ImageLabels lab;
  lab.sh = 1;
  lab.sw = 10;
  lab.layers = {{1, 1, 1, 1, 1, 2, 2, 2, 2, 2}};
  lab.scalar_labels = {3};
  const std::vector<int> primary = {-1, 0, 0, 1};
  ActivationMap a;
  a.units = 5;
  a.h = 1;
  a.w = 10;
  const std::vector<std::vector<float>> maps = {{1, 1, 1, 1, 1, 0, 0, 0, 0, 0},
                                                {1, 1, 1, 1, 0, 0, 0, 0, 0, 0},
                                                {0, 0, 0, 0, 0, 1, 1, 1, 1, 1},
                                                {0, 0, 0, 0, 0, 0, 0, 0, 0, 1},
                                                {1, 1, 1, 1, 1, 1, 1, 1, 1, 1}};
  for (const auto& m : maps) a.data.insert(a.data.end(), m.begin(), m.end());
  IouTally tally({0.5, 0.5, 0.5, 0.5, 0.5}, 4, 2, UnionRule::kPaper);
  UnitMaskBuilder mb;
  ND_ASSERT_OK(tally.AddImage(LabelIndex::Build(lab, primary, 2).value(), a, &mb));
  const LayerResults r = ComputeLayerResults(tally, primary, 0.3).value();
  EXPECT_DOUBLE_EQ(r.Iou(1, 1), 0.8);
  EXPECT_DOUBLE_EQ(r.Iou(3, 2), 0.2);
  EXPECT_DOUBLE_EQ(r.Iou(3, 3), 0.1);
  EXPECT_EQ(r.unit[0].label, 1);
  EXPECT_EQ(r.unit[1].label, 1);
  EXPECT_EQ(r.unit[2].label, 2);
  EXPECT_EQ(r.unit[3].label, 2);
  EXPECT_EQ(r.unit[4].label, 3);
  EXPECT_EQ(r.unit[4].category, 1);
  EXPECT_EQ(r.BestLabel(4, 0), 1);  // tie between labels 1 and 2: lower number
  EXPECT_EQ(r.BestIou(4, 0), 0.5);
  EXPECT_FALSE(r.unit[3].detector);
  EXPECT_EQ(r.detectors, 4);
  EXPECT_EQ(r.unique_detectors_top_label, 3);  // {1, 2, 3}
  // Paper rule: category 0 above 0.3: units 0,1,4 -> 1, unit 2 -> 2: {1, 2}; category 1: label 3
  // for units 0 (0.5), 1 (0.4), 2 (0.5), 4 (1.0): {3}. Total 3.
  EXPECT_EQ(r.unique_per_category_paper, (std::vector<int>{2, 1}));
  EXPECT_EQ(r.unique_detectors_paper, 3);
  EXPECT_EQ(r.detectors_per_category, (std::vector<int>{3, 1}));
  // Top labels of unit 4: label 3 (1.0), then the tie 0.5 between labels 1 and 2 in label order.
  ASSERT_EQ(r.unit[4].top.size(), 3u);
  EXPECT_EQ(r.unit[4].top[0].label, 3);
  EXPECT_EQ(r.unit[4].top[1].label, 1);
  EXPECT_EQ(r.unit[4].top[2].label, 2);
}

TEST(PythonFloatReprTest, MatchesPythonRepr) {
  // Expected strings printed by CPython 3's repr().
  const std::vector<std::pair<double, const char*>> cases = {
      {3.0 / 11, "0.2727272727272727"},
      {3.0 / 7, "0.42857142857142855"},
      {1.0 / 7, "0.14285714285714285"},
      {0.5, "0.5"},
      {0.0, "0.0"},
      {12.0, "12.0"},
      {1e16, "1e+16"},
      {1e15, "1000000000000000.0"},
      {123456789012345678.0, "1.2345678901234568e+17"},
      {1e-5, "1e-05"},
      {1.5e-5, "1.5e-05"},
      {0.0001, "0.0001"},
      {0.00012345, "0.00012345"},
      {2.5e-7, "2.5e-07"},
      {1.0 / 3, "0.3333333333333333"},
      {12961339.0, "12961339.0"},
      {-0.25, "-0.25"},
      {-3.2e-05, "-3.2e-05"},
      {0.1 + 0.2, "0.30000000000000004"},
      {5e-324, "5e-324"},
      {1.7976931348623157e308, "1.7976931348623157e+308"},
  };
  for (const auto& [v, want] : cases) EXPECT_EQ(PythonFloatRepr(v), want) << v;
}

}  // namespace
}  // namespace nd
