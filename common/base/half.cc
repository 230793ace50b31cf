#include "common/base/half.h"

#include <cstring>

#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
#include <immintrin.h>
#define ND_HALF_HAVE_F16C_PATH 1
#endif

namespace nd {
namespace {

inline uint32_t FloatBits(float f) {
  uint32_t u;
  std::memcpy(&u, &f, 4);
  return u;
}
inline float BitsFloat(uint32_t u) {
  float f;
  std::memcpy(&f, &u, 4);
  return f;
}

}  // namespace

uint16_t FloatToHalf(float f) {
  const uint32_t x = FloatBits(f);
  const uint16_t sign = static_cast<uint16_t>((x >> 16) & 0x8000u);
  const uint32_t a = x & 0x7FFFFFFFu;
  if (a >= 0x7F800000u) return sign | (a > 0x7F800000u ? 0x7E00u : 0x7C00u);  // NaN / Inf
  // 65520 = 0x477FF000 is the tie between 65504 (max half, odd mantissa) and 65536: it and
  // everything above round to Inf.
  if (a >= 0x477FF000u) return sign | 0x7C00u;
  if (a >= 0x38800000u) {
    // Normal half (|f| >= 2^-14): rebias the exponent (127 -> 15) and round the 13 dropped
    // mantissa bits to nearest even. A carry out of the mantissa correctly bumps the exponent.
    const uint32_t r = a - 0x38000000u;
    return sign | static_cast<uint16_t>((r + 0x0FFFu + ((r >> 13) & 1u)) >> 13);
  }
  // Subnormal half: the result counts units of 2^-24. With m the 24-bit significand and e the
  // biased float exponent, |f| = m * 2^(e-150), i.e. m >> (126 - e) units of 2^-24.
  const uint32_t e = a >> 23;
  const uint32_t shift = 126 - e;  // >= 14 here
  if (shift > 24) return sign;     // |f| < 2^-25: rounds to zero (2^-25 itself ties to even 0)
  const uint32_t m = (a & 0x007FFFFFu) | 0x00800000u;
  uint32_t q = m >> shift;
  const uint32_t rem = m & ((1u << shift) - 1);
  const uint32_t half = 1u << (shift - 1);
  if (rem > half || (rem == half && (q & 1u))) ++q;  // may carry into 0x0400, the smallest normal
  return sign | static_cast<uint16_t>(q);
}

float HalfToFloat(uint16_t h) {
  const uint32_t sign = uint32_t{h & 0x8000u} << 16;
  const uint32_t exp = (h >> 10) & 0x1Fu;
  const uint32_t man = h & 0x3FFu;
  if (exp == 0x1F) return BitsFloat(sign | 0x7F800000u | (man << 13));  // Inf / NaN (payload kept)
  if (exp != 0) return BitsFloat(sign | ((exp + 112) << 23) | (man << 13));
  // Zero or subnormal: man * 2^-24 is exact in float.
  const float mag = static_cast<float>(man) * BitsFloat(0x33800000u);  // 2^-24
  return BitsFloat(sign | FloatBits(mag));
}

#ifdef ND_HALF_HAVE_F16C_PATH
namespace {

bool HaveF16c() {
  static const bool have = [] {
    __builtin_cpu_init();
    return __builtin_cpu_supports("avx") && __builtin_cpu_supports("f16c");
  }();
  return have;
}

// VCVTPS2PH with an explicit round-to-nearest-even immediate is IEEE RNE regardless of MXCSR
// rounding mode, and matches FloatToHalf for every non-NaN input. NaNs differ (the hardware keeps
// payload bits), so blocks holding a NaN are redone by the scalar code.
__attribute__((target("avx,f16c"))) void FloatToHalfF16c(const float* in, uint16_t* out, size_t n) {
  size_t i = 0;
  for (; i + 8 <= n; i += 8) {
    __m256 v = _mm256_loadu_ps(in + i);
    __m128i h = _mm256_cvtps_ph(v, _MM_FROUND_TO_NEAREST_INT);
    _mm_storeu_si128(reinterpret_cast<__m128i*>(out + i), h);
    if (_mm256_movemask_ps(_mm256_cmp_ps(v, v, _CMP_UNORD_Q)) != 0) {
      for (size_t k = i; k < i + 8; ++k) out[k] = FloatToHalf(in[k]);
    }
  }
  for (; i < n; ++i) out[i] = FloatToHalf(in[i]);
}

// VCVTPH2PS is exact for every non-NaN half; NaN halves are redone by the scalar code so that
// signalling-NaN payloads match HalfToFloat bit for bit.
__attribute__((target("avx,f16c"))) void HalfToFloatF16c(const uint16_t* in, float* out, size_t n) {
  size_t i = 0;
  for (; i + 8 <= n; i += 8) {
    __m128i h = _mm_loadu_si128(reinterpret_cast<const __m128i*>(in + i));
    __m256 v = _mm256_cvtph_ps(h);
    _mm256_storeu_ps(out + i, v);
    if (_mm256_movemask_ps(_mm256_cmp_ps(v, v, _CMP_UNORD_Q)) != 0) {
      for (size_t k = i; k < i + 8; ++k) out[k] = HalfToFloat(in[k]);
    }
  }
  for (; i < n; ++i) out[i] = HalfToFloat(in[i]);
}

}  // namespace
#endif

void FloatToHalfArray(const float* in, uint16_t* out, size_t n) {
#ifdef ND_HALF_HAVE_F16C_PATH
  if (HaveF16c()) return FloatToHalfF16c(in, out, n);
#endif
  for (size_t i = 0; i < n; ++i) out[i] = FloatToHalf(in[i]);
}

void HalfToFloatArray(const uint16_t* in, float* out, size_t n) {
#ifdef ND_HALF_HAVE_F16C_PATH
  if (HaveF16c()) return HalfToFloatF16c(in, out, n);
#endif
  for (size_t i = 0; i < n; ++i) out[i] = HalfToFloat(in[i]);
}

}  // namespace nd
