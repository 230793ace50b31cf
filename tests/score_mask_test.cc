// Tests of the score stage's upsampling (common/maths/upsample.h) and masks (unit_mask.h).
//
// Expected upsampled values are derived by hand from the formula in upsample.h: per axis the
// source coordinate s = in/out * (o + 0.5) - 0.5, clamped to >= 0, split into i0 = floor(s) and
// the weight l1 = s - i0 of i0 + 1 (clamped to the last row/column).
#include <gtest/gtest.h>

#include <cmath>
#include <cstdint>
#include <limits>
#include <random>
#include <vector>

#include "common/maths/bits.h"
#include "common/maths/unit_mask.h"
#include "common/maths/upsample.h"

namespace nd {
namespace {

std::vector<float> Upsample(const std::vector<float>& in, int h, int w, int sh, int sw) {
  std::vector<float> out(static_cast<size_t>(sh) * sw, -1.0f);
  UpsampleBilinear(in.data(), h, w, sh, sw, out.data());
  return out;
}

// 2x2 -> 4x4: scale 0.5; s = 0.5*(o+0.5) - 0.5 = -0.25 (clamped to 0), 0.25, 0.75, 1.25.
// Weights on the second source row/column: 0, 0.25, 0.75, and 0.25 of a clamped pair (1,1), so
// the effective source coordinates are 0, 0.25, 0.75, 1. All values are exact dyadics.
TEST(UpsampleTest, TwoByTwoToFourByFourHandComputed) {
  // A = [[0, 4], [8, 12]] = 8*y + 4*x, a linear function: out = 8*ry + 4*rx with r = 0,.25,.75,1.
  const std::vector<float> in = {0, 4, 8, 12};
  const std::vector<float> expected = {0, 1, 3,  4,   //
                                       2, 3, 5,  6,   //
                                       6, 7, 9,  10,  //
                                       8, 9, 11, 12};
  EXPECT_EQ(Upsample(in, 2, 2, 4, 4), expected);
}

// The example printed in PyTorch's documentation of nn.Upsample (align_corners=False).
TEST(UpsampleTest, MatchesPyTorchDocumentationExample) {
  const std::vector<float> in = {1, 2, 3, 4};
  const std::vector<float> expected = {1.0f, 1.25f, 1.75f, 2.0f,  //
                                       1.5f, 1.75f, 2.25f, 2.5f,  //
                                       2.5f, 2.75f, 3.25f, 3.5f,  //
                                       3.0f, 3.25f, 3.75f, 4.0f};
  EXPECT_EQ(Upsample(in, 2, 2, 4, 4), expected);
}

// 3x3 -> 7 rows x 5 columns.
// Rows (3 -> 7, scale 3/7): s = 3/7*(o+.5) - .5 = [<0 -> 0, 1/7, 4/7, 1, 10/7, 13/7, 16/7];
//   the last has i0 = 2 = i1 (clamped), so the effective coordinates are
//   ry = [0, 1/7, 4/7, 1, 10/7, 13/7, 2].
// Columns (3 -> 5, scale 0.6): s = [<0 -> 0, 0.4, 1.0, 1.6, 2.2 -> clamped 2]:
//   rx = [0, 0.4, 1, 1.6, 2].
// A[i][j] = 3i + j + i*j is bilinear in (i, j), so bilinear interpolation reproduces it at the
// effective coordinates: out = 3*ry + rx + ry*rx.
TEST(UpsampleTest, ThreeByThreeToSevenByFiveHandComputed) {
  std::vector<float> in(9);
  for (int i = 0; i < 3; ++i) {
    for (int j = 0; j < 3; ++j) in[i * 3 + j] = static_cast<float>(3 * i + j + i * j);
  }
  const double ry[7] = {0, 1.0 / 7, 4.0 / 7, 1, 10.0 / 7, 13.0 / 7, 2};
  const double rx[5] = {0, 0.4, 1, 1.6, 2};
  const std::vector<float> out = Upsample(in, 3, 3, 7, 5);
  for (int y = 0; y < 7; ++y) {
    for (int x = 0; x < 5; ++x) {
      const double expected = 3 * ry[y] + rx[x] + ry[y] * rx[x];
      EXPECT_NEAR(out[y * 5 + x], expected, 1e-5) << "y=" << y << " x=" << x;
    }
  }
  // The tables themselves: source indices exactly, weights to float precision.
  const AxisSampling rows = ComputeAxisSampling(3, 7);
  EXPECT_EQ(rows.i0, (std::vector<int32_t>{0, 0, 0, 1, 1, 1, 2}));
  EXPECT_EQ(rows.i1, (std::vector<int32_t>{1, 1, 1, 2, 2, 2, 2}));
  EXPECT_EQ(rows.l1[0], 0.0f);  // clamped at the top edge
  EXPECT_EQ(rows.l1[3], 0.0f);  // 3/7 * 3.5 - 0.5 rounds to exactly 1
  EXPECT_NEAR(rows.l1[6], 2.0 / 7, 1e-6);
  const AxisSampling cols = ComputeAxisSampling(3, 5);
  EXPECT_EQ(cols.i0, (std::vector<int32_t>{0, 0, 1, 1, 2}));
  EXPECT_EQ(cols.i1, (std::vector<int32_t>{1, 1, 2, 2, 2}));
  // 0.6f * 2.5 is exactly halfway between 1.5 and the next float; ties-to-even gives 1.5, so
  // s = 1.0 exactly and the weight of column 2 is 0.
  EXPECT_EQ(cols.l1[2], 0.0f);
  EXPECT_NEAR(cols.l1[1], 0.4, 1e-6);
  for (int o = 0; o < 5; ++o) EXPECT_EQ(cols.l0[o], 1.0f - cols.l1[o]);
}

TEST(UpsampleTest, SameSizeIsIdentityAndOneByOneIsConstant) {
  std::mt19937 rng(7);
  std::normal_distribution<float> dist;
  std::vector<float> in(5 * 6);
  for (float& v : in) v = dist(rng);
  EXPECT_EQ(Upsample(in, 5, 6, 5, 6), in);
  const std::vector<float> one = {2.5f};
  EXPECT_EQ(Upsample(one, 1, 1, 3, 4), std::vector<float>(12, 2.5f));
}

TEST(ThresholdAsFloatTest, IsLargestFloatNotAboveThreshold) {
  EXPECT_EQ(ThresholdAsFloat(0.1), std::nextafter(0.1f, 0.0f));  // (float)0.1 > 0.1
  EXPECT_EQ(ThresholdAsFloat(0.5), 0.5f);
  EXPECT_EQ(ThresholdAsFloat(-0.1), -0.1f);  // (float)-0.1 < -0.1 already
  EXPECT_EQ(ThresholdAsFloat(1e300), std::numeric_limits<float>::max());
  EXPECT_EQ(ThresholdAsFloat(-1e300), -std::numeric_limits<float>::infinity());
  EXPECT_TRUE(std::isnan(ThresholdAsFloat(std::nan(""))));
  std::mt19937_64 rng(11);
  std::uniform_real_distribution<double> dist(-10, 10);
  for (int k = 0; k < 10000; ++k) {
    const double t = dist(rng);
    const float f = static_cast<float>(t);
    const float tf = ThresholdAsFloat(t);
    for (float v : {std::nextafter(f, -100.0f), f, std::nextafter(f, 100.0f)}) {
      ASSERT_EQ(static_cast<double>(v) > t, v > tf) << "t=" << t << " v=" << v;
    }
  }
}

TEST(BitsTest, SetBitRangeMatchesBitByBit) {
  for (int begin = 0; begin < 200; begin += 7) {
    for (int end = begin; end < 200; end += 5) {
      std::vector<uint64_t> words(4, 0);
      SetBitRange(words.data(), begin, end);
      for (int p = 0; p < 256; ++p) {
        const bool set = (words[p / 64] >> (p % 64)) & 1;
        ASSERT_EQ(set, p >= begin && p < end) << begin << " " << end << " " << p;
      }
    }
  }
}

// Checks one fast mask against the reference definition, bit by bit, and its bookkeeping.
void ExpectSameMask(UnitMaskBuilder* builder, const std::vector<float>& map, int h, int w, int sh,
                    int sw, double t) {
  std::vector<uint8_t> ref;
  ReferenceMask(map.data(), h, w, sh, sw, t, &ref);
  builder->SetGeometry(h, w, sh, sw);
  const int64_t count = builder->Build(map.data(), ThresholdAsFloat(t));
  int64_t ref_count = 0;
  for (int64_t p = 0; p < sh * sw; ++p) {
    const bool bit = (builder->words()[p >> 6] >> (p & 63)) & 1;
    ASSERT_EQ(bit, ref[p] != 0) << h << "x" << w << " -> " << sh << "x" << sw << " t=" << t
                                << " pixel " << p;
    ref_count += ref[p];
  }
  ASSERT_EQ(count, ref_count);
  ASSERT_EQ(builder->num_words(), WordsForBits(static_cast<int64_t>(sh) * sw));
  // Padding bits past sh*sw are zero, and words outside [lo, hi) are zero.
  for (int64_t p = static_cast<int64_t>(sh) * sw;
       p < static_cast<int64_t>(builder->num_words()) * 64; ++p) {
    ASSERT_EQ((builder->words()[p >> 6] >> (p & 63)) & 1, 0u);
  }
  for (size_t i = 0; i < builder->num_words(); ++i) {
    if (i < builder->lo() || i >= builder->hi()) {
      ASSERT_EQ(builder->words()[i], 0u) << i;
    }
  }
  if (count == 0) {
    EXPECT_EQ(builder->lo(), builder->hi());
  }
}

TEST(UnitMaskTest, FastMaskEqualsReferenceOnRandomMaps) {
  std::mt19937 rng(12345);
  UnitMaskBuilder builder;  // reused across geometries on purpose
  std::uniform_int_distribution<int> small(1, 9), big(1, 40), kind(0, 5);
  std::normal_distribution<float> normal(0, 1);
  std::uniform_int_distribution<int> level(0, 3);
  for (int iter = 0; iter < 4000; ++iter) {
    const int h = small(rng), w = small(rng), sh = big(rng), sw = big(rng);
    std::vector<float> map(h * w);
    const int k = kind(rng);
    for (float& v : map) {
      switch (k) {
        case 0:  // continuous
          v = normal(rng);
          break;
        case 1:  // few levels: constant cells, ties with the threshold
          v = static_cast<float>(level(rng));
          break;
        case 2:  // ReLU-like: mostly zero
          v = std::max(0.0f, normal(rng) - 1.0f);
          break;
        case 3:  // few non-dyadic levels (rounding in the weighted sums)
          v = 0.1f * static_cast<float>(level(rng)) + 0.7f;
          break;
        case 4:  // negative values
          v = -std::fabs(normal(rng));
          break;
        default: {                                    // some NaN and infinities among normal values
          const int r = level(rng) * 4 + level(rng);  // 0..15
          const float inf = std::numeric_limits<float>::infinity();
          v = r == 0   ? std::numeric_limits<float>::quiet_NaN()
              : r == 1 ? inf
              : r == 2 ? -inf
                       : normal(rng);
        }
      }
    }
    // Thresholds from the map's values (ties), their float neighbours, and midpoints.
    std::uniform_int_distribution<int> pick(0, h * w - 1);
    const float v = map[pick(rng)];
    const float v2 = map[pick(rng)];
    for (double t : {static_cast<double>(v), static_cast<double>(std::nextafter(v, -1e9f)),
                     static_cast<double>(std::nextafter(v, 1e9f)), 0.5 * (double(v) + v2),
                     static_cast<double>(v) + 1e-12, 0.0}) {
      ExpectSameMask(&builder, map, h, w, sh, sw, t);
      if (HasFatalFailure()) return;
    }
  }
  // All three decisions were exercised.
  EXPECT_GT(builder.stats().cells_zero, 0);
  EXPECT_GT(builder.stats().cells_one, 0);
  EXPECT_GT(builder.stats().cells_mixed, 0);
  EXPECT_GT(builder.stats().maps_skipped_max, 0);
}

TEST(UnitMaskTest, NonFiniteValuesFollowTheReference) {
  UnitMaskBuilder builder;
  const float inf = std::numeric_limits<float>::infinity();
  const float nan = std::numeric_limits<float>::quiet_NaN();
  // NaN and infinities next to values above and below the thresholds, in every corner position.
  const std::vector<std::vector<float>> maps = {
      {0, 1, inf, 2, nan, 0.5f, -inf, 3, 1}, {5, 5, 5, 5, nan, 5, 5, 5, 5},
      {nan, 5, 5, 5, 5, 5, 5, 5, 5},         {5, 5, 5, 5, 5, 5, 5, 5, inf},
      {-inf, 5, 5, 5, 5, 5, 5, 5, 5},        {inf, inf, inf, inf, inf, inf, inf, inf, inf}};
  for (const auto& map : maps) {
    for (double t : {0.0, 0.75, 2.5, -1.0, 4.0, 1e300, std::numeric_limits<double>::infinity()}) {
      ExpectSameMask(&builder, map, 3, 3, 8, 7, t);
      if (HasFatalFailure()) return;
    }
  }
  EXPECT_GT(builder.stats().cells_mixed, 0);
}

// Regression: w0*v + w1*v can round above v in float32. A map whose maximum equals T must still
// have an empty mask (SPEC.md §2 step 3), although plain `upsample > T` is not empty for it.
TEST(UnitMaskTest, ConstantMapAtThresholdIsEmptyDespiteRounding) {
  const int h = 3, w = 3, sh = 7, sw = 40;
  bool found = false;
  for (int k = 1; k < 100000 && !found; ++k) {
    const float v = 1.0f + static_cast<float>(k) * 1e-5f;
    const std::vector<float> map(h * w, v);
    const std::vector<float> up = Upsample(map, h, w, sh, sw);
    bool above = false;
    for (float x : up) above |= x > v;
    if (!above) continue;
    found = true;
    UnitMaskBuilder builder;
    builder.SetGeometry(h, w, sh, sw);
    EXPECT_EQ(builder.Build(map.data(), ThresholdAsFloat(v)), 0);
    std::vector<uint8_t> ref;
    ReferenceMask(map.data(), h, w, sh, sw, v, &ref);
    for (uint8_t b : ref) EXPECT_EQ(b, 0);
  }
  EXPECT_TRUE(found) << "no rounding case found; the premise of this test changed";
}

TEST(UnitMaskTest, EmptyAndFullMasks) {
  UnitMaskBuilder builder;
  builder.SetGeometry(7, 7, 112, 112);
  std::vector<float> map(49, 1.0f);
  EXPECT_EQ(builder.Build(map.data(), ThresholdAsFloat(0.5)), 112 * 112);
  EXPECT_EQ(builder.lo(), 0u);
  EXPECT_EQ(builder.hi(), 196u);
  for (size_t i = 0; i < 196; ++i) EXPECT_EQ(builder.words()[i], ~uint64_t{0});
  // The next build clears the previous mask.
  EXPECT_EQ(builder.Build(map.data(), ThresholdAsFloat(1.0)), 0);
  for (size_t i = 0; i < 196; ++i) EXPECT_EQ(builder.words()[i], 0u);
  EXPECT_EQ(builder.stats().maps_skipped_max, 1);
}

}  // namespace
}  // namespace nd
