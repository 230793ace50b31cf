// Compositional explanations (common/maths/explain.h) against the brute-force reference of
// tests/testing/analysis_testing.h (pixel masks merged per formula, the beam enumerated literally),
// and LayerTables (common/maths/layer_tables.h) against IouTally's counts.
#include "common/maths/explain.h"

#include <gtest/gtest.h>

#include <random>

#include "common/maths/iou_tally.h"
#include "common/results/analysis_files.h"
#include "tests/testing/analysis_testing.h"
#include "tests/testing/status_assertions.h"

namespace nd {
namespace {

using testing_analysis::BuildTables;
using testing_analysis::Fixture;
using testing_analysis::RandomFixture;
using testing_analysis::RefExplainer;
using testing_analysis::RefExplanation;

// Checks every unit against the reference; returns the number of units whose explanation is a
// compound formula that beats its primitive (so that a fixture is known not to be trivial).
int ExpectSameAsReference(const Fixture& f, int length, int beam, int workers = 2) {
  auto tables = BuildTables(f, UnionRule::kPaper, workers);
  ND_EXPECT_OK(tables);
  if (!tables.ok()) return 0;
  ExplainOptions o;
  o.length = length;
  o.beam = beam;
  o.workers = workers;
  auto report = ExplainUnits(*tables, f.names, o);
  ND_EXPECT_OK(report);
  if (!report.ok()) return 0;
  EXPECT_EQ(report->units.size(), static_cast<size_t>(f.units()));
  RefExplainer ref(f);
  int compound = 0;
  for (int u = 0; u < f.units(); ++u) {
    SCOPED_TRACE("unit " + std::to_string(u));
    const RefExplanation want = ref.Explain(u, length, beam);
    const UnitExplanation& got = report->units[u];
    EXPECT_EQ(got.text, want.best.text);
    EXPECT_EQ(got.formula.labels, want.best.labels);
    EXPECT_EQ(got.intersection, want.best.inter);
    EXPECT_EQ(got.union_area, want.best.uni);
    EXPECT_EQ(got.iou, want.best.iou);  // the same integer ratio: bit-identical
    EXPECT_EQ(got.formula.leaves(), static_cast<int>(want.best.labels.size()));
    EXPECT_EQ(got.primitive_text, want.primitive.text);
    EXPECT_EQ(got.primitive_iou, want.primitive.iou);
    EXPECT_EQ(got.text, FormulaText(got.formula, f.names));
    compound += got.formula.leaves() > 1 && got.iou > got.primitive_iou;
  }
  return compound;
}

// A 2-image 4×4 fixture with ties: `beta` and `alpha` have identical masks; the unit's mask is
// alpha ∪ gamma exactly (activations at grid size, so the upsampling is the identity).
Fixture TieFixture() {
  Fixture f;
  f.num_labels = 5;
  f.num_cats = 2;
  f.primary = {-1, 0, 0, 1, 1};
  f.names = {"", "beta", "alpha", "gamma", "delta"};
  const std::vector<uint16_t> obj0 = {1, 1, 0, 0,  //
                                      1, 1, 0, 0,  //
                                      0, 0, 0, 0,  //
                                      0, 0, 0, 0};
  const std::vector<uint16_t> dup0 = {2, 2, 0, 0,  //
                                      2, 2, 0, 0,  //
                                      0, 0, 0, 0,  //
                                      0, 0, 0, 0};
  const std::vector<uint16_t> mat0 = {0, 0, 0, 0,  //
                                      0, 0, 0, 0,  //
                                      3, 3, 4, 4,  //
                                      3, 3, 4, 4};
  const std::vector<uint16_t> obj1 = {0, 0, 1, 1,  //
                                      0, 0, 0, 0,  //
                                      0, 0, 0, 0,  //
                                      0, 0, 0, 0};
  const std::vector<uint16_t> dup1 = {0, 0, 2, 2,  //
                                      0, 0, 0, 0,  //
                                      0, 0, 0, 0,  //
                                      0, 0, 0, 0};
  const std::vector<uint16_t> mat1 = {0, 0, 0, 0,  //
                                      4, 4, 4, 4,  //
                                      3, 0, 0, 0,  //
                                      0, 0, 0, 0};
  for (auto layers : {std::vector<std::vector<uint16_t>>{obj0, dup0, mat0},
                      std::vector<std::vector<uint16_t>>{obj1, dup1, mat1}}) {
    ImageLabels lab;
    lab.sh = lab.sw = 4;
    lab.layers = layers;
    lab.layer_category = {0, 0, 1};
    f.labels.push_back(lab);
    ActivationMap a;
    a.units = 2;
    a.h = a.w = 4;
    a.data.assign(32, 0.0f);
    for (int p = 0; p < 16; ++p) {
      a.data[p] = (layers[0][p] == 1 || layers[2][p] == 3) ? 1.0f : 0.0f;  // alpha ∪ gamma
      a.data[16 + p] = 0.0f;                                               // never active
    }
    f.acts.push_back(a);
  }
  f.thresholds = {0.5, 0.5};
  return f;
}

TEST(ExplainTest, TiesFollowIouThenLeavesThenTextBytewise) {
  const Fixture f = TieFixture();
  auto tables = BuildTables(f, UnionRule::kPaper);
  ND_ASSERT_OK(tables);
  for (int length : {1, 2, 3}) {
    SCOPED_TRACE("length " + std::to_string(length));
    ExplainOptions o;
    o.length = length;
    o.beam = 5;
    auto r = ExplainUnits(*tables, f.names, o);
    ND_ASSERT_OK(r);
    // Unit 0: alpha and beta tie (IoU 6/11); `alpha` sorts first bytewise.
    EXPECT_EQ(r->units[0].primitive_text, "alpha");
    EXPECT_EQ(r->units[0].primitive_iou, 6.0 / 11.0);
    if (length == 1) {
      EXPECT_EQ(r->units[0].text, "alpha");
    } else {
      // (alpha OR gamma), (beta OR gamma), (gamma OR alpha), (gamma OR beta) all reach IoU 1; the
      // 3-leaf formulas that also do have more leaves.
      EXPECT_EQ(r->units[0].text, "(alpha OR gamma)");
      EXPECT_EQ(r->units[0].iou, 1.0);
      EXPECT_EQ(r->units[0].formula.leaves(), 2);
    }
    // Unit 1 is never active: every IoU is 0, so the shortest, bytewise-first formula wins.
    EXPECT_EQ(r->units[1].text, "alpha");
    EXPECT_EQ(r->units[1].iou, 0.0);
  }
  for (int length : {1, 2, 3})
    for (int beam : {1, 2, 5}) ExpectSameAsReference(f, length, beam);
}

TEST(ExplainTest, RandomFixturesMatchTheBruteForceBeamSearch) {
  for (uint32_t seed = 1; seed <= 12; ++seed) {
    SCOPED_TRACE("seed " + std::to_string(seed));
    const Fixture f =
        RandomFixture(seed, 5 + seed % 3, 8 + seed % 5, 7 + seed % 4, 4, 3, 4, 7 + seed % 3, 3);
    ExpectSameAsReference(f, 3, seed % 2 ? 5 : 3, 1 + seed % 3);
  }
}

TEST(ExplainTest, BeamOfOneAndLengthFourMatchTheBruteForce) {
  const Fixture f = RandomFixture(99, 6, 9, 9, 3, 3, 3, 7, 2);
  EXPECT_GT(ExpectSameAsReference(f, 4, 1), 0);
  EXPECT_GT(ExpectSameAsReference(f, 4, 2), 0);
}

TEST(ExplainTest, ImagesOfTwoSegmentationSizesMatchTheBruteForce) {
  for (uint32_t seed = 1; seed <= 3; ++seed)
    ExpectSameAsReference(testing_analysis::MixedSizeFixture(seed, 4, 8, 8, 11, 6), 3, 4);
}

TEST(ExplainTest, OneCandidateOrNoneAtAll) {
  // Labels 1 and 2, label 2 without a category: one candidate, nothing to extend it with.
  const Fixture one = RandomFixture(17, 5, 8, 8, 3, 3, 3, 3, 2);
  ExpectSameAsReference(one, 3, 5);
  // No label has a category: no candidate; explanations are empty rows.
  Fixture none = one;
  std::fill(none.primary.begin(), none.primary.end(), -1);
  auto tables = BuildTables(none, UnionRule::kPaper);
  ND_ASSERT_OK(tables);
  auto r = ExplainUnits(*tables, none.names, ExplainOptions{});
  ND_ASSERT_OK(r);
  EXPECT_EQ(r->units[0].primitive, -1);
  const std::string csv = FormatExplanationsCsv(*r);
  EXPECT_NE(csv.find("\n1,,0.0,0,,0.0\n"), std::string::npos) << csv;
}

TEST(ExplainTest, ResultDoesNotDependOnWorkers) {
  const Fixture f = RandomFixture(7, 8, 10, 10, 6, 4, 4, 9, 3);
  auto tables = BuildTables(f, UnionRule::kPaper, 1);
  ND_ASSERT_OK(tables);
  std::string first;
  for (int workers : {1, 2, 3}) {
    ExplainOptions o;
    o.workers = workers;
    auto r = ExplainUnits(*tables, f.names, o);
    ND_ASSERT_OK(r);
    const std::string csv = FormatExplanationsCsv(*r);
    if (first.empty()) first = csv;
    EXPECT_EQ(csv, first) << "workers " << workers;
  }
}

TEST(ExplainTest, CsvHasOneRowPerUnitWithTheDocumentedHeader) {
  const Fixture f = TieFixture();
  auto tables = BuildTables(f, UnionRule::kPaper);
  ND_ASSERT_OK(tables);
  ExplainOptions o;
  o.length = 2;
  auto r = ExplainUnits(*tables, f.names, o);
  ND_ASSERT_OK(r);
  EXPECT_EQ(FormatExplanationsCsv(*r),
            "unit,formula,iou,length,primitive,primitive_iou\n"
            "1,(alpha OR gamma),1.0,2,alpha,0.5454545454545454\n"
            "2,alpha,0.0,1,alpha,0.0\n");
}

TEST(ExplainTest, RejectsBadOptions) {
  const Fixture f = TieFixture();
  auto tables = BuildTables(f, UnionRule::kPaper);
  ND_ASSERT_OK(tables);
  ExplainOptions o;
  o.length = 0;
  EXPECT_FALSE(ExplainUnits(*tables, f.names, o).ok());
  o.length = 2;
  o.beam = 0;
  EXPECT_FALSE(ExplainUnits(*tables, f.names, o).ok());
  o.beam = 2;
  EXPECT_FALSE(ExplainUnits(*tables, {"", "x"}, o).ok());
}

// The tables' per-image contributions, summed, are exactly IouTally's counts (both union rules).
TEST(LayerTablesTest, SummedContributionsEqualTheTally) {
  for (UnionRule rule : {UnionRule::kPaper, UnionRule::kLite}) {
    for (uint32_t seed = 1; seed <= 4; ++seed) {
      const Fixture f = RandomFixture(seed, 7, 11, 9, 5, 4, 3, 9, 3);
      auto tables = BuildTables(f, rule, 1 + seed % 2);
      ND_ASSERT_OK(tables);
      IouTally tally(f.thresholds, f.num_labels, f.num_cats, rule);
      UnitMaskBuilder builder;
      for (size_t i = 0; i < f.labels.size(); ++i) {
        auto idx = LabelIndex::Build(f.labels[i], f.primary, f.num_cats);
        ND_ASSERT_OK(idx);
        ND_ASSERT_OK(tally.AddImage(*idx, f.acts[i], &builder));
      }
      EXPECT_EQ(tables->label_pixels(), tally.label_pixels_array());
      for (int u = 0; u < f.units(); ++u) {
        std::vector<int64_t> inter(f.num_labels, 0), uni(f.num_cats, 0);
        const UnitTable& ut = tables->unit(u);
        for (const ActiveImage& a : ut.active) {
          for (size_t k = a.count_begin; k < a.count_end; ++k)
            inter[ut.counts[k].first] += ut.counts[k].second;
          for (int c = 0; c < f.num_cats; ++c)
            if (a.union_categories >> c & 1) uni[c] += a.m;
        }
        for (int l = 0; l < f.num_labels; ++l) EXPECT_EQ(inter[l], tally.intersection(u, l));
        for (int c = 0; c < f.num_cats; ++c) EXPECT_EQ(uni[c], tally.union_area(u, c));
      }
    }
  }
}

TEST(LayerTablesTest, MasksEqualTheReferenceMasks) {
  const Fixture f = RandomFixture(5, 6, 13, 10, 4, 3, 4, 8, 2);
  auto tables = BuildTables(f, UnionRule::kPaper);
  ND_ASSERT_OK(tables);
  RefExplainer ref(f);
  for (int u = 0; u < f.units(); ++u) {
    std::vector<std::vector<uint8_t>> got(f.labels.size());
    for (size_t i = 0; i < f.labels.size(); ++i) got[i].assign(13 * 10, 0);
    for (const ActiveImage& a : tables->unit(u).active) {
      const uint64_t* w = tables->unit(u).Mask(a);
      for (uint32_t k = a.lo; k < a.hi; ++k)
        for (int b = 0; b < 64; ++b)
          if (w[k - a.lo] >> b & 1) got[a.image][k * 64 + b] = 1;
    }
    for (size_t i = 0; i < f.labels.size(); ++i) EXPECT_EQ(got[i], ref.unit_mask(u, i));
  }
}

TEST(LayerTablesTest, SkipsImagesWhoseActivationsFail) {
  const Fixture f = RandomFixture(3, 5, 8, 8, 2, 3, 3, 6, 2);
  auto labels = [&](size_t i) -> StatusOr<std::shared_ptr<const LabelIndex>> {
    ND_ASSIGN_OR_RETURN(LabelIndex idx, LabelIndex::Build(f.labels[i], f.primary, f.num_cats));
    return std::make_shared<const LabelIndex>(std::move(idx));
  };
  auto fetch = [&](size_t i, ActivationMap* out) {
    if (i == 2) return DataLoss("gone");
    *out = f.acts[i];
    return Status::Ok();
  };
  auto t = LayerTables::Build(5, labels, fetch, f.thresholds, f.num_labels, f.num_cats,
                              UnionRule::kPaper, 2);
  ND_ASSERT_OK(t);
  ASSERT_EQ(t->skipped().size(), 1u);
  EXPECT_EQ(t->skipped()[0].image, 2u);
  EXPECT_EQ(t->images_used(), 4);
  for (int u = 0; u < 2; ++u)
    for (const ActiveImage& a : t->unit(u).active) EXPECT_NE(a.image, 2u);
  // A map with the wrong number of units is an error, not a skip.
  auto wrong = [&](size_t i, ActivationMap* out) {
    *out = f.acts[i];
    out->units = 1;
    out->data.resize(out->plane());
    return Status::Ok();
  };
  EXPECT_FALSE(LayerTables::Build(5, labels, wrong, f.thresholds, f.num_labels, f.num_cats,
                                  UnionRule::kPaper, 2)
                   .ok());
}

}  // namespace
}  // namespace nd
