#include "common/base/half.h"

#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <limits>
#include <vector>

namespace nd {
namespace {

float Bits(uint32_t u) {
  float f;
  std::memcpy(&f, &u, 4);
  return f;
}

// All bit patterns below were derived by hand from the binary16 layout
// (1 sign bit, 5 exponent bits with bias 15, 10 mantissa bits).
TEST(HalfTest, NormalValues) {
  EXPECT_EQ(FloatToHalf(1.0f), 0x3C00);
  EXPECT_EQ(FloatToHalf(-2.0f), 0xC000);
  EXPECT_EQ(FloatToHalf(0.5f), 0x3800);
  EXPECT_EQ(FloatToHalf(65504.0f), 0x7BFF);               // largest finite half
  EXPECT_EQ(FloatToHalf(std::ldexp(1.0f, -14)), 0x0400);  // smallest normal
}

TEST(HalfTest, OverflowToInfinity) {
  EXPECT_EQ(FloatToHalf(std::nextafter(65520.0f, 0.0f)), 0x7BFF);  // below the tie
  EXPECT_EQ(FloatToHalf(65520.0f), 0x7C00);  // tie with odd 0x7BFF rounds up, to Inf
  EXPECT_EQ(FloatToHalf(1e10f), 0x7C00);
  EXPECT_EQ(FloatToHalf(-1e10f), 0xFC00);
  EXPECT_EQ(FloatToHalf(std::numeric_limits<float>::max()), 0x7C00);
}

TEST(HalfTest, Subnormals) {
  EXPECT_EQ(FloatToHalf(std::ldexp(1.0f, -24)), 0x0001);     // smallest subnormal
  EXPECT_EQ(FloatToHalf(std::ldexp(1023.0f, -24)), 0x03FF);  // largest subnormal
  EXPECT_EQ(FloatToHalf(std::ldexp(1.0f, -25)), 0x0000);     // tie between 0 and 1 -> even 0
  EXPECT_EQ(FloatToHalf(std::nextafter(std::ldexp(1.0f, -25), 1.0f)), 0x0001);
  EXPECT_EQ(FloatToHalf(std::ldexp(3.0f, -25)), 0x0002);  // tie between 1 and 2 -> even 2
  EXPECT_EQ(FloatToHalf(std::ldexp(5.0f, -25)), 0x0002);  // tie between 2 and 3 -> even 2
  EXPECT_EQ(FloatToHalf(std::ldexp(1.0f, -30)), 0x0000);
  EXPECT_EQ(FloatToHalf(-std::ldexp(1.0f, -30)), 0x8000);
  EXPECT_EQ(FloatToHalf(Bits(0x00000001u)), 0x0000);  // float subnormal
  // Just below 2^-14 rounds up into the smallest normal.
  EXPECT_EQ(FloatToHalf(std::nextafter(std::ldexp(1.0f, -14), 0.0f)), 0x0400);
  EXPECT_EQ(FloatToHalf(std::ldexp(2047.0f, -25)), 0x0400);  // 1023.5 units: tie -> even 1024
}

TEST(HalfTest, TiesRoundToEven) {
  // Half spacing at 1.0 is 2^-10.
  EXPECT_EQ(FloatToHalf(1.0f + std::ldexp(1.0f, -11)), 0x3C00);      // 1 + 0.5ulp -> even 0x3C00
  EXPECT_EQ(FloatToHalf(1.0f + 3 * std::ldexp(1.0f, -11)), 0x3C02);  // 1.5ulp -> even 0x3C02
  EXPECT_EQ(FloatToHalf(1.0f + std::ldexp(1.0f, -11) + std::ldexp(1.0f, -23)), 0x3C01);
  // Half spacing at 2048 is 2: 2048=0x6800, 2050=0x6801, 2052=0x6802.
  EXPECT_EQ(FloatToHalf(2049.0f), 0x6800);
  EXPECT_EQ(FloatToHalf(2051.0f), 0x6802);
  EXPECT_EQ(FloatToHalf(-2051.0f), 0xE802);
  // Mantissa carry into the exponent: 2047.999 rounds to 2048.
  EXPECT_EQ(FloatToHalf(2047.5f), 0x6800);  // 2047 (0x67FF, odd) and 2048 tie -> 2048
}

TEST(HalfTest, SignedZeroInfNaN) {
  EXPECT_EQ(FloatToHalf(0.0f), 0x0000);
  EXPECT_EQ(FloatToHalf(-0.0f), 0x8000);
  EXPECT_EQ(FloatToHalf(std::numeric_limits<float>::infinity()), 0x7C00);
  EXPECT_EQ(FloatToHalf(-std::numeric_limits<float>::infinity()), 0xFC00);
  uint16_t nan = FloatToHalf(std::numeric_limits<float>::quiet_NaN());
  EXPECT_EQ(nan, 0x7E00);
  EXPECT_TRUE(std::isnan(HalfToFloat(nan)));
  EXPECT_TRUE(std::isnan(HalfToFloat(FloatToHalf(Bits(0x7F800001u)))));  // signalling NaN
  EXPECT_EQ(FloatToHalf(Bits(0xFFC00000u)), 0xFE00);                     // negative NaN
  EXPECT_TRUE(std::signbit(HalfToFloat(0x8000)));
  EXPECT_EQ(HalfToFloat(0x8000), 0.0f);
}

TEST(HalfTest, HalfToFloatValues) {
  EXPECT_EQ(HalfToFloat(0x3C00), 1.0f);
  EXPECT_EQ(HalfToFloat(0x3555), 0.333251953125f);  // 2^-2 * (1 + 341/1024)
  EXPECT_EQ(HalfToFloat(0x7BFF), 65504.0f);
  EXPECT_EQ(HalfToFloat(0x0001), std::ldexp(1.0f, -24));
  EXPECT_EQ(HalfToFloat(0x83FF), -std::ldexp(1023.0f, -24));
  EXPECT_EQ(HalfToFloat(0xFC00), -std::numeric_limits<float>::infinity());
}

bool IsNanHalf(uint32_t h) { return (h & 0x7C00) == 0x7C00 && (h & 0x3FF) != 0; }

TEST(HalfTest, ExhaustiveRoundTripOfEveryHalf) {
  for (uint32_t h = 0; h < 65536; ++h) {
    if (IsNanHalf(h)) {
      EXPECT_TRUE(std::isnan(HalfToFloat(static_cast<uint16_t>(h))));
      continue;
    }
    float f = HalfToFloat(static_cast<uint16_t>(h));
    ASSERT_EQ(FloatToHalf(f), h) << std::hex << h;
    ASSERT_EQ(HalfToFloat(FloatToHalf(f)), f);
  }
}

// Independent reference: the nearest finite positive half found by binary search over the
// (monotone) positive half bit patterns, comparing in double; ties go to the even pattern.
uint16_t ReferenceFloatToHalf(float f) {
  uint16_t sign = std::signbit(f) ? 0x8000 : 0;
  double a = std::fabs(static_cast<double>(f));
  if (std::isinf(a) || a >= 65520.0) return sign | 0x7C00;
  auto value = [](uint32_t h) {
    uint32_t e = h >> 10, m = h & 0x3FF;
    return e == 0 ? std::ldexp(double(m), -24) : std::ldexp(double(1024 + m), int(e) - 25);
  };
  uint32_t lo = 0, hi = 0x7BFF;  // invariant: value(lo) <= a, answer in [lo, hi]
  while (lo < hi) {
    uint32_t mid = (lo + hi + 1) / 2;
    if (value(mid) <= a)
      lo = mid;
    else
      hi = mid - 1;
  }
  uint32_t best = lo;
  if (lo < 0x7BFF) {
    double dlo = a - value(lo), dhi = value(lo + 1) - a;
    if (dhi < dlo || (dhi == dlo && (lo & 1))) best = lo + 1;
  }
  return static_cast<uint16_t>(sign | best);
}

TEST(HalfTest, MatchesBruteForceReferenceOnSampledFloats) {
  // Every 251st float bit pattern (both signs), plus the neighbourhood of every half.
  for (uint64_t u = 0; u <= 0xFFFFFFFFull; u += 251) {
    float f = Bits(static_cast<uint32_t>(u));
    if (std::isnan(f)) continue;
    ASSERT_EQ(FloatToHalf(f), ReferenceFloatToHalf(f)) << std::hex << u;
  }
  for (uint32_t h = 0; h < 0x7C00; ++h) {
    float f = HalfToFloat(static_cast<uint16_t>(h));
    float mid = (h < 0x7BFF) ? 0.5f * (f + HalfToFloat(static_cast<uint16_t>(h + 1))) : 65520.0f;
    for (float g : {std::nextafter(mid, 0.0f), mid, std::nextafter(mid, 1e9f)}) {
      ASSERT_EQ(FloatToHalf(g), ReferenceFloatToHalf(g)) << std::hex << h;
      ASSERT_EQ(FloatToHalf(-g), ReferenceFloatToHalf(-g)) << std::hex << h;
    }
  }
}

TEST(HalfTest, ArrayVersionsAreBitIdenticalToScalar) {
  std::vector<float> in;
  for (uint64_t u = 0; u <= 0xFFFFFFFFull; u += 4099) in.push_back(Bits(static_cast<uint32_t>(u)));
  in.push_back(std::numeric_limits<float>::quiet_NaN());
  in.push_back(65520.0f);
  in.push_back(-0.0f);  // odd total length exercises the tail loop
  std::vector<uint16_t> out(in.size());
  FloatToHalfArray(in.data(), out.data(), in.size());
  for (size_t i = 0; i < in.size(); ++i) {
    ASSERT_EQ(out[i], FloatToHalf(in[i])) << i << " " << std::hex << out[i];
  }

  std::vector<uint16_t> halves(65536 + 3);
  for (size_t i = 0; i < halves.size(); ++i) halves[i] = static_cast<uint16_t>(i);
  std::vector<float> back(halves.size());
  HalfToFloatArray(halves.data(), back.data(), halves.size());
  for (size_t i = 0; i < halves.size(); ++i) {
    float want = HalfToFloat(halves[i]);
    ASSERT_EQ(std::memcmp(&back[i], &want, 4), 0) << std::hex << halves[i];
  }
}

}  // namespace
}  // namespace nd
