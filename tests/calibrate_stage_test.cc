#include "stages/calibrate/calibrate_stage.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <random>

#include "tests/testing/status_assertions.h"

namespace nd {
namespace {

// numpy.quantile(values, level) with the default "linear" method, written from numpy's
// documentation independently of the stage: sort ascending, virtual index (n-1)*level.
double NumpyLinearQuantile(std::vector<float> v, double level) {
  std::sort(v.begin(), v.end());
  double pos = (static_cast<double>(v.size()) - 1) * level;
  size_t i = static_cast<size_t>(std::floor(pos));
  size_t j = std::min(i + 1, v.size() - 1);
  double g = pos - i;
  double a = v[i], b = v[j], d = b - a;
  return g >= 0.5 ? b - d * (1 - g) : a + d * g;
}

ActivationMap Map(int units, int h, int w, const std::vector<float>& data) {
  ActivationMap m;
  m.units = units;
  m.h = h;
  m.w = w;
  m.data = data;
  return m;
}

TEST(CalibrateStageTest, HandComputedQuantileOfOneToTen) {
  // One unit, ten images of a 1x1 map holding 1..10. Level 0.9: pos = 9*0.9 = 8.1 between the
  // 9th (9) and 10th (10) values: 9 + 0.1*1 = 9.1.
  CalibrateStage stage({{0.1}, 10});
  for (int i = 10; i >= 1; --i) ASSERT_TRUE(stage.Consume(Map(1, 1, 1, {float(i)})).ok());
  auto t = stage.Finish();
  ND_ASSERT_OK(t);
  ASSERT_EQ(t->size(), 1u);
  EXPECT_NEAR((*t)[0].values[0], 9.1, 1e-12);
  EXPECT_EQ((*t)[0].quantile, 0.1);
}

TEST(CalibrateStageTest, EqualsSortOnRandomDataWithPruningAndTies) {
  std::mt19937 rng(7);
  for (int trial = 0; trial < 20; ++trial) {
    int units = 1 + trial % 4, h = 1 + trial % 3, w = 1 + (trial * 7) % 5;
    int images = 50 + 37 * trial;
    bool ties = trial % 2;  // small integers make many ties
    std::vector<double> qs = {0.005, 0.01, 0.2};
    CalibrateStage stage({qs, images + 5});  // bound above the real count
    std::vector<std::vector<float>> all(units);
    std::normal_distribution<float> normal(0, 1);
    std::uniform_int_distribution<int> small(-3, 3);
    for (int n = 0; n < images; ++n) {
      ActivationMap m = Map(units, h, w, std::vector<float>(size_t(units) * h * w));
      for (int u = 0; u < units; ++u)
        for (int p = 0; p < h * w; ++p) {
          float x = ties ? float(small(rng)) : normal(rng) * (u + 1);
          m.unit(u)[p] = x;
          all[u].push_back(x);
        }
      ND_ASSERT_OK(stage.Consume(m));
    }
    auto t = stage.Finish();
    ND_ASSERT_OK(t);
    for (size_t k = 0; k < qs.size(); ++k)
      for (int u = 0; u < units; ++u)
        EXPECT_EQ((*t)[k].values[u], NumpyLinearQuantile(all[u], 1 - qs[k]))
            << "trial " << trial << " q " << qs[k] << " unit " << u;
  }
}

TEST(CalibrateStageTest, MemoryIsBoundedByTheTail) {
  // 4000 images x 49 values, q = 0.005: the top ~981 values matter; the stage must not keep all
  // 196,000 of them.
  const int images = 4000;
  CalibrateStage stage({{0.005}, images});
  std::mt19937 rng(3);
  std::uniform_real_distribution<float> uni(0, 1);
  std::vector<float> all;
  for (int n = 0; n < images; ++n) {
    ActivationMap m = Map(1, 7, 7, std::vector<float>(49));
    for (float& x : m.data) all.push_back(x = uni(rng));
    ND_ASSERT_OK(stage.Consume(m));
  }
  EXPECT_LT(stage.held_values(), 4000);
  auto t = stage.Finish();
  ND_ASSERT_OK(t);
  EXPECT_EQ((*t)[0].values[0], NumpyLinearQuantile(all, 0.995));
}

TEST(CalibrateStageTest, NanValuesAreCountedAndExcluded) {
  CalibrateStage stage({{0.5}, 2});
  ND_ASSERT_OK(stage.Consume(Map(1, 1, 3, {1, NAN, 3})));
  ND_ASSERT_OK(stage.Consume(Map(1, 1, 3, {2, 4, NAN})));
  auto t = stage.Finish();
  ND_ASSERT_OK(t);
  EXPECT_EQ(stage.nan_values(), 2);
  EXPECT_DOUBLE_EQ((*t)[0].values[0], 2.5);  // median of 1,2,3,4
}

TEST(CalibrateStageTest, ShapeChangeAndTooManyImagesAreErrors) {
  CalibrateStage stage({{0.1}, 1});
  ND_ASSERT_OK(stage.Consume(Map(2, 1, 1, {1, 2})));
  Status s = stage.Consume(Map(2, 1, 1, {1, 2}));
  EXPECT_FALSE(s.ok());
  EXPECT_NE(s.message().find("more images"), std::string::npos);
  CalibrateStage other({{0.1}, 5});
  ND_ASSERT_OK(other.Consume(Map(2, 1, 1, {1, 2})));
  Status shape = other.Consume(Map(1, 1, 2, {1, 2}));
  EXPECT_NE(shape.message().find("differs from the first image's 2x1x1"), std::string::npos);
}

}  // namespace
}  // namespace nd
