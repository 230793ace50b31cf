// Tests of Dissector (common/maths/dissector.h) and tally.csv on small Broden directories
// written to a temp dir: a hand-computed 4x4 example and random datasets checked against the
// brute-force reference of score_testing.h.
#include "common/maths/dissector.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <map>
#include <random>
#include <sstream>
#include <vector>

#include "common/results/result_files.h"
#include "tests/testing/score_testing.h"
#include "tests/testing/status_assertions.h"

namespace nd {
namespace {

namespace fs = std::filesystem;
using testing_score::Get;
using testing_score::RandomActivations;
using testing_score::RefAddImage;
using testing_score::RefCounts;
using testing_score::TestBroden;
using testing_score::WriteTestBroden;

using ::nd::testing::TempDir;
std::string ReadFile(const std::string& path) { return ::nd::testing::ReadAll(path); }

Dissector::FetchFn FetchFrom(const std::map<size_t, ActivationMap>* maps) {
  return [maps](size_t row, ActivationMap* out) -> Status {
    auto it = maps->find(row);
    if (it == maps->end()) return NotFound("no activations for row " + std::to_string(row));
    *out = it->second;
    return Status::Ok();
  };
}

// The hand example. Categories object, part, scene (part not selected). Labels: 1 tree (object),
// 2 grass (object), 3 "beach, sandy-s" (scene), 4 wheel (part).
//   image 0 (4x4): object layer = grass on columns 0-1, tree on columns 2-3; part layer = wheel on
//                  row 0 (not selected: never read); scene scalar 3.
//   image 1 (4x4): object layer = tree on row 0.
// Units (2x2 maps, T = 1): unit 0 = [[0,0],[0,8]], unit 1 = zeros, unit 2 = unit 0.
// Upsampled unit 0 = 8 * r_y * r_x with r = (0, 0.25, 0.75, 1) (upsample.h):
//   0 0   0   0
//   0 0.5 1.5 2
//   0 1.5 4.5 6
//   0 2   6   8         -> M = values > 1: 8 pixels, (1,2) (1,3) (2,1..3) (3,1..3).
// Counts: G[tree] = 8 + 4 = 12, G[grass] = 8, G[beach] = 16 (scalar).
//   I[0,tree] = 6 (image 0: rows 1-3 of columns 2-3) + 0 (image 1: row 0 is not masked);
//   I[0,grass] = 2 ((2,1), (3,1)); I[0,beach] = |M| = 8.
//   paper: U[0,object] = 8 + 8 = 16 (both images contain object labels); U[0,scene] = 8.
//   lite:  U[0,object] = 8 + 0 (image 1's mask misses the tree pixels); U[0,scene] = 8.
// IoU paper: tree 6/(16+12-6) = 3/11, grass 2/(16+8-2) = 1/11, beach 8/(8+16-8) = 1/2.
// IoU lite:  tree 6/(8+12-6) = 3/7,   grass 2/(8+8-2) = 1/7,   beach 1/2.
// Units 0 and 2: label "beach, sandy-s" (0.5 beats the object category). Unit 1: empty mask, all
// IoU 0: first category (object), lowest label (tree).
class HandExampleTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_FALSE(dir_.path().empty());
    TestBroden b;
    b.categories = {"object", "part", "scene"};
    b.label_names = {"", "tree", "grass", "beach, sandy-s", "wheel"};
    b.coverage = {{-1, -1, -1}, {1, -1, -1}, {1, -1, -1}, {-1, -1, 1}, {-1, 1, -1}};
    TestBroden::Image a;
    a.sh = a.sw = 4;
    a.layers = {{{2, 2, 1, 1, 2, 2, 1, 1, 2, 2, 1, 1, 2, 2, 1, 1}},
                {{4, 4, 4, 4, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0}},
                {}};
    a.scalars = {{}, {}, {3}};
    TestBroden::Image c;
    c.sh = c.sw = 4;
    c.layers = {{{1, 1, 1, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0}}, {}, {}};
    b.images = {a, c};
    ASSERT_TRUE(WriteTestBroden(b, dir_.path()));
    BrodenOptions opt;
    opt.categories = {"scene", "object"};
    StatusOr<BrodenDataset> ds = BrodenDataset::Open(dir_.path(), opt);
    ND_ASSERT_OK(ds);
    dataset_ = std::make_unique<BrodenDataset>(std::move(ds).value());
    ActivationMap m;
    m.units = 3;
    m.h = m.w = 2;
    m.data = {0, 0, 0, 8, 0, 0, 0, 0, 0, 0, 0, 8};
    maps_[0] = m;
    maps_[1] = m;
  }

  ScoreReport Score(UnionRule rule, int workers) {
    ScoreOptions opt;
    opt.union_rule = rule;
    opt.workers = workers;
    auto stage = Dissector::Create(dataset_.get(), opt);
    ND_EXPECT_OK(stage);
    auto report = (*stage)->Run({0, 1}, {1.0, 1.0, 1.0}, FetchFrom(&maps_));
    ND_EXPECT_OK(report);
    return std::move(report).value();
  }

  TempDir dir_{"score"};
  std::unique_ptr<BrodenDataset> dataset_;
  std::map<size_t, ActivationMap> maps_;
};

TEST_F(HandExampleTest, PaperCountsAndIou) {
  const ScoreReport rep = Score(UnionRule::kPaper, 1);
  const LayerResults& r = rep.results;
  EXPECT_EQ(rep.images_scored, 2);
  EXPECT_EQ(rep.images_skipped, 0);
  EXPECT_EQ(r.label_pixels[1], 12);
  EXPECT_EQ(r.label_pixels[2], 8);
  EXPECT_EQ(r.label_pixels[3], 16);
  EXPECT_EQ(r.label_pixels[4], 0);  // part is not selected
  EXPECT_EQ(r.intersection[0 * r.num_labels + 1], 6);
  EXPECT_EQ(r.intersection[0 * r.num_labels + 2], 2);
  EXPECT_EQ(r.intersection[0 * r.num_labels + 3], 8);
  EXPECT_EQ(r.union_area[0 * r.num_categories + 0], 16);
  EXPECT_EQ(r.union_area[0 * r.num_categories + 2], 8);
  EXPECT_DOUBLE_EQ(r.Iou(0, 1), 3.0 / 11);
  EXPECT_DOUBLE_EQ(r.Iou(0, 2), 1.0 / 11);
  EXPECT_DOUBLE_EQ(r.Iou(0, 3), 0.5);
  EXPECT_EQ(r.unit[0].label, 3);
  EXPECT_EQ(r.unit[0].category, 2);
  EXPECT_EQ(r.unit[1].label, 1);
  EXPECT_FALSE(r.unit[1].detector);
  EXPECT_EQ(r.detectors, 2);
  EXPECT_EQ(r.unique_detectors_paper, 2);      // object {tree}, scene {beach}
  EXPECT_EQ(r.unique_detectors_top_label, 1);  // {beach}
  EXPECT_EQ(r.BestLabel(0, 1), -1);            // part: no labels (not selected)
  // Unit 1 is skipped by the max <= T rule on both images; the others are not.
  EXPECT_EQ(rep.masks.maps, 6);
  EXPECT_EQ(rep.masks.maps_skipped_max, 2);
}

TEST_F(HandExampleTest, LiteCountsAndIou) {
  const LayerResults r = Score(UnionRule::kLite, 2).results;
  EXPECT_EQ(r.union_area[0 * r.num_categories + 0], 8);
  EXPECT_EQ(r.union_area[0 * r.num_categories + 2], 8);
  EXPECT_DOUBLE_EQ(r.Iou(0, 1), 3.0 / 7);
  EXPECT_DOUBLE_EQ(r.Iou(0, 2), 1.0 / 7);
  EXPECT_DOUBLE_EQ(r.Iou(0, 3), 0.5);
}

TEST_F(HandExampleTest, TallyCsvIsLiteral) {
  const std::string path = dir_.path() + "/tally.csv";
  ND_ASSERT_OK(WriteTallyCsv(Score(UnionRule::kPaper, 1).results, *dataset_, path));
  const std::string want =
      "unit,category,label,score,object-label,object-truth,object-activation,object-intersect,"
      "object-iou,scene-label,scene-truth,scene-activation,scene-intersect,scene-iou\r\n"
      "1,scene,\"beach, sandy-s\",0.5,tree,12.0,16.0,6.0,0.2727272727272727,\"beach, "
      "sandy-s\",16.0,8.0,8.0,0.5\r\n"
      "3,scene,\"beach, sandy-s\",0.5,tree,12.0,16.0,6.0,0.2727272727272727,\"beach, "
      "sandy-s\",16.0,8.0,8.0,0.5\r\n"
      "2,object,tree,0.0,tree,12.0,0.0,0.0,0.0,\"beach, sandy-s\",16.0,0.0,0.0,0.0\r\n";
  EXPECT_EQ(ReadFile(path), want);
  EXPECT_FALSE(fs::exists(path + ".tmp." + std::to_string(::getpid())));

  ND_ASSERT_OK(WriteTallyCsv(Score(UnionRule::kLite, 1).results, *dataset_, path));
  const std::string text = ReadFile(path);
  const std::string row1 =
      "1,scene,\"beach, sandy-s\",0.5,tree,12.0,8.0,6.0,0.42857142857142855,\"beach, "
      "sandy-s\",16.0,8.0,8.0,0.5\r\n";
  EXPECT_NE(text.find(row1), std::string::npos) << text;
  EXPECT_FALSE(WriteTallyCsv(Score(UnionRule::kLite, 1).results, *dataset_,
                             dir_.path() + "/no/such/dir/tally.csv")
                   .ok());
}

// Regression (issue 16): under `lite`, a category whose every label has IoU 0 for a unit is written
// as NetDissect-Lite writes it: label '' (its label 0), truth 0, intersect 0, IoU 0, and as
// activation the unit's union of the last selected category (where Lite's label 0 falls); a unit
// with no IoU anywhere gets that category and label ''. The hand example with categories part and
// scene selected: unit 0's mask (rows 1-3 of both images) misses the wheel (row 0 of image 0), so
// part is degenerate; scene: beach (scalar, image 0) I = 8, G = 16, U_lite = 8 -> 0.5.
// paper writes part's first label, wheel, with G = 4 and U_paper[0,part] = 8 (image 0 has a part
// label).
TEST_F(HandExampleTest, DegenerateCategoriesAreWrittenAsEachPresetDoes) {
  BrodenOptions opt;
  opt.categories = {"part", "scene"};
  auto ds = BrodenDataset::Open(dir_.path(), opt);
  ND_ASSERT_OK(ds);
  auto tally = [&](UnionRule rule) {
    ScoreOptions so;
    so.union_rule = rule;
    so.workers = 1;
    auto stage = Dissector::Create(&*ds, so);
    ND_EXPECT_OK(stage);
    auto report = (*stage)->Run({0, 1}, {1.0, 1.0, 1.0}, FetchFrom(&maps_));
    ND_EXPECT_OK(report);
    auto text = FormatTallyCsv(report->results, *ds);
    ND_EXPECT_OK(text);
    return *text;
  };
  const std::string header =
      "unit,category,label,score,part-label,part-truth,part-activation,part-intersect,part-iou,"
      "scene-label,scene-truth,scene-activation,scene-intersect,scene-iou\r\n";
  EXPECT_EQ(tally(UnionRule::kLite), header +
                                         "1,scene,\"beach, sandy-s\",0.5,,0.0,8.0,0.0,0.0,\"beach, "
                                         "sandy-s\",16.0,8.0,8.0,0.5\r\n"
                                         "3,scene,\"beach, sandy-s\",0.5,,0.0,8.0,0.0,0.0,\"beach, "
                                         "sandy-s\",16.0,8.0,8.0,0.5\r\n"
                                         "2,scene,,0.0,,0.0,0.0,0.0,0.0,,0.0,0.0,0.0,0.0\r\n");
  EXPECT_EQ(tally(UnionRule::kPaper),
            header +
                "1,scene,\"beach, sandy-s\",0.5,wheel,4.0,8.0,0.0,0.0,\"beach, "
                "sandy-s\",16.0,8.0,8.0,0.5\r\n"
                "3,scene,\"beach, sandy-s\",0.5,wheel,4.0,8.0,0.0,0.0,\"beach, "
                "sandy-s\",16.0,8.0,8.0,0.5\r\n"
                "2,part,wheel,0.0,wheel,4.0,0.0,0.0,0.0,\"beach, sandy-s\",16.0,0.0,0.0,0.0\r\n");
}

// A random Broden directory: 4 categories, 12 labels with random per-category coverage (some in
// no category), 14 images with 0-2 layers and 0-1 scalars per category.
TestBroden RandomBroden(std::mt19937* rng) {
  TestBroden b;
  b.categories = {"c0", "c1", "c2", "c3"};
  const int num_labels = 12;
  b.label_names.push_back("");
  b.coverage.push_back({-1, -1, -1, -1});
  std::uniform_int_distribution<int> coin(0, 1), cov(1, 4);
  for (int l = 1; l < num_labels; ++l) {
    b.label_names.push_back("label" + std::to_string(l));
    std::vector<double> c(4);
    for (double& v : c) v = coin(*rng) ? cov(*rng) * 0.25 : -1;
    if (l == 7) c = {-1, -1, -1, -1};  // no primary category
    b.coverage.push_back(c);
  }
  std::uniform_int_distribution<int> size(3, 12), nl(0, 2), label(0, num_labels - 1), ns(0, 1);
  for (int i = 0; i < 14; ++i) {
    TestBroden::Image im;
    im.sh = size(*rng);
    im.sw = size(*rng);
    im.layers.resize(4);
    im.scalars.resize(4);
    for (int c = 0; c < 4; ++c) {
      const int n = nl(*rng);
      for (int k = 0; k < n; ++k) {
        std::vector<uint16_t> layer(im.sh * im.sw);
        const int a = label(*rng), bb = label(*rng);
        for (auto& v : layer) v = coin(*rng) ? a : bb;
        im.layers[c].push_back(layer);
      }
      if (ns(*rng)) {
        std::vector<int> in_cat;
        for (int l = 1; l < num_labels; ++l) {
          if (b.coverage[l][c] >= 0) in_cat.push_back(l);
        }
        if (!in_cat.empty()) im.scalars[c].push_back(in_cat[label(*rng) % in_cat.size()]);
      }
    }
    b.images.push_back(im);
  }
  return b;
}

class RandomDatasetTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_FALSE(dir_.path().empty());
    std::mt19937 rng(2024);
    ASSERT_TRUE(WriteTestBroden(RandomBroden(&rng), dir_.path()));
    StatusOr<BrodenDataset> ds = BrodenDataset::Open(dir_.path());
    ND_ASSERT_OK(ds);
    dataset_ = std::make_unique<BrodenDataset>(std::move(ds).value());
    for (int l = 0; l < dataset_->num_labels(); ++l)
      primary_.push_back(dataset_->PrimaryCategory(l));
    for (size_t row = 0; row < dataset_->images().size(); ++row) {
      maps_[row] = RandomActivations(&rng, kUnits, 3, 3);
      rows_.push_back(row);
    }
  }

  // The reference counts over `rows`.
  RefCounts Reference(const std::vector<size_t>& rows, UnionRule rule) {
    RefCounts ref;
    for (size_t row : rows) {
      StatusOr<ImageLabels> lab = dataset_->ReadLabels(row);
      ND_EXPECT_OK(lab);
      RefAddImage(*lab, maps_[row], thresholds_, primary_, rule, &ref);
    }
    return ref;
  }

  void ExpectCounts(const LayerResults& r, const RefCounts& ref) {
    for (int l = 0; l < r.num_labels; ++l) ASSERT_EQ(r.label_pixels[l], Get(ref.g, l)) << l;
    for (int u = 0; u < r.units; ++u) {
      for (int l = 0; l < r.num_labels; ++l) {
        ASSERT_EQ(r.intersection[u * r.num_labels + l], Get(ref.i, u, l)) << u << " " << l;
      }
      for (int c = 0; c < r.num_categories; ++c) {
        ASSERT_EQ(r.union_area[u * r.num_categories + c], Get(ref.u, u, c)) << u << " " << c;
      }
    }
  }

  static constexpr int kUnits = 5;
  const std::vector<double> thresholds_ = {0.0, 1.0, 0.5, 2.0, -0.5};
  TempDir dir_{"score"};
  std::unique_ptr<BrodenDataset> dataset_;
  std::vector<int> primary_;
  std::map<size_t, ActivationMap> maps_;
  std::vector<size_t> rows_;
};

TEST_F(RandomDatasetTest, MatchesReferenceForAnyWorkersOrderAndPreparation) {
  for (UnionRule rule : {UnionRule::kPaper, UnionRule::kLite}) {
    const RefCounts ref = Reference(rows_, rule);
    std::vector<size_t> shuffled = rows_;
    std::shuffle(shuffled.begin(), shuffled.end(), std::mt19937(3));
    std::vector<LayerResults> all;
    for (int variant = 0; variant < 4; ++variant) {
      ScoreOptions opt;
      opt.union_rule = rule;
      opt.workers = variant == 0 ? 1 : 3;
      auto stage = Dissector::Create(dataset_.get(), opt).value();
      if (variant == 3) {
        ND_ASSERT_OK(stage->PrepareLabels(rows_));
        EXPECT_GT(stage->PreparedLabelBytes(), 0u);
        EXPECT_NE(stage->PreparedLabelIndex(0), nullptr);
      }
      auto rep = stage->Run(variant >= 2 ? shuffled : rows_, thresholds_, FetchFrom(&maps_));
      ND_ASSERT_OK(rep);
      EXPECT_EQ(rep->images_scored, static_cast<int64_t>(rows_.size()));
      EXPECT_EQ(rep->images_skipped, 0);
      ExpectCounts(rep->results, ref);
      if (HasFatalFailure()) return;
      all.push_back(rep->results);
    }
    for (const LayerResults& r : all) {
      EXPECT_EQ(r.iou, all[0].iou);
      EXPECT_EQ(r.best_label, all[0].best_label);
      EXPECT_EQ(r.unique_detectors_paper, all[0].unique_detectors_paper);
    }
    // Something was actually detected in this data.
    int positive = 0;
    for (double v : all[0].iou) positive += v > 0;
    EXPECT_GT(positive, 0);
  }
}

TEST_F(RandomDatasetTest, BadImagesAreSkippedWithReasons) {
  // Row 2 loses a label PNG, row 5 has no activations, row 6's map has the wrong size.
  const BrodenImage& im2 = dataset_->images()[2];
  std::string png;
  for (const auto& layers : im2.pixel_layers) {
    if (!layers.empty()) png = layers[0];
  }
  ASSERT_FALSE(png.empty()) << "fixture: row 2 should have a label layer";
  fs::remove(fs::path(dir_.path()) / "images" / png);
  maps_.erase(5);
  maps_[6].data.pop_back();
  std::vector<size_t> good;
  for (size_t row : rows_) {
    if (row != 2 && row != 5 && row != 6) good.push_back(row);
  }
  for (bool prepare : {false, true}) {
    ScoreOptions opt;
    opt.workers = 2;
    auto stage = Dissector::Create(dataset_.get(), opt).value();
    if (prepare) {
      ND_ASSERT_OK(stage->PrepareLabels(rows_));
      EXPECT_EQ(stage->PreparedLabelIndex(2), nullptr);
    }
    auto rep = stage->Run(rows_, thresholds_, FetchFrom(&maps_));
    ND_ASSERT_OK(rep);
    EXPECT_EQ(rep->images_scored, static_cast<int64_t>(good.size()));
    ASSERT_EQ(rep->skipped.size(), 3u);
    EXPECT_EQ(rep->skipped[0].row, 2u);
    EXPECT_EQ(rep->skipped[0].reason.rfind("labels: ", 0), 0u) << rep->skipped[0].reason;
    EXPECT_NE(rep->skipped[0].reason.find(png), std::string::npos) << rep->skipped[0].reason;
    EXPECT_EQ(rep->skipped[1].row, 5u);
    EXPECT_EQ(rep->skipped[1].reason, "activations: no activations for row 5");
    EXPECT_EQ(rep->skipped[2].row, 6u);
    EXPECT_EQ(rep->skipped[2].reason.rfind("activations: ", 0), 0u);
    EXPECT_EQ(rep->label_read_failures, 1);
    EXPECT_EQ(rep->fetch_failures, 2);
    ExpectCounts(rep->results, Reference(good, UnionRule::kPaper));
  }
}

TEST_F(RandomDatasetTest, ConfigurationErrorsStopTheRun) {
  auto stage = Dissector::Create(dataset_.get(), ScoreOptions{}).value();
  // Thresholds for 4 units, maps have 5.
  auto rep = stage->Run(rows_, {0, 0, 0, 0}, FetchFrom(&maps_));
  ASSERT_FALSE(rep.ok());
  EXPECT_EQ(rep.status().code(), StatusCode::kFailedPrecondition);
  EXPECT_NE(rep.status().message().find("5 units"), std::string::npos) << rep.status().message();
  EXPECT_FALSE(stage->Run({rows_.size()}, thresholds_, FetchFrom(&maps_)).ok());
  EXPECT_FALSE(stage->Run(rows_, {0, 0, std::nan(""), 0, 0}, FetchFrom(&maps_)).ok());
  EXPECT_FALSE(stage->PrepareLabels({rows_.size() + 3}).ok());
  ScoreOptions bad;
  bad.workers = -1;
  EXPECT_FALSE(Dissector::Create(dataset_.get(), bad).ok());
  // A label index of the wrong size is refused.
  ImageLabels lab;
  lab.sh = 1;
  lab.sw = 1;
  auto idx = std::make_shared<const LabelIndex>(
      LabelIndex::Build(lab, primary_, static_cast<int>(dataset_->categories().size())).value());
  EXPECT_FALSE(stage->SetLabelIndex(0, idx).ok());
}

TEST_F(RandomDatasetTest, SuppliedLabelIndexIsUsed) {
  // Row 0's index replaced by an index with no labels: row 0 then contributes nothing.
  const BrodenImage& im = dataset_->images()[0];
  ImageLabels empty;
  empty.sh = im.sh;
  empty.sw = im.sw;
  auto idx = std::make_shared<const LabelIndex>(
      LabelIndex::Build(empty, primary_, static_cast<int>(dataset_->categories().size())).value());
  auto stage = Dissector::Create(dataset_.get(), ScoreOptions{}).value();
  ND_ASSERT_OK(stage->SetLabelIndex(0, idx));
  auto rep = stage->Run(rows_, thresholds_, FetchFrom(&maps_));
  ND_ASSERT_OK(rep);
  std::vector<size_t> rest(rows_.begin() + 1, rows_.end());
  ExpectCounts(rep->results, Reference(rest, UnionRule::kPaper));
  EXPECT_EQ(rep->images_scored, static_cast<int64_t>(rows_.size()));
}

}  // namespace
}  // namespace nd
