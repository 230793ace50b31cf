#include "common/maths/unit_mask.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>

#include "common/maths/bits.h"

#if defined(__SSE2__)
#include <emmintrin.h>
#endif

namespace nd {
namespace {

// Slack of the corner bounds (see unit_mask.h): relative 2^-20 (> 6 roundings of 2^-24) and
// absolute 2^-140 (> subnormal error of six operations).
constexpr double kRelSlack = 0x1p-20;
constexpr double kAbsSlack = 0x1p-140;

// Upper bound of any interpolated value whose corners are all <= m.
inline double UpperBound(float m) {
  const double d = m;
  const double b = d + std::fabs(d) * kRelSlack + kAbsSlack;
  return d <= 0 ? std::min(b, 0.0) : b;
}

// Lower bound of any interpolated value whose corners are all >= n.
inline double LowerBound(float n) {
  const double d = n;
  const double b = d - std::fabs(d) * kRelSlack - kAbsSlack;
  return d >= 0 ? std::max(b, 0.0) : b;
}

// Bit i of the result = (hy0 * top[i] + hy1 * bot[i] > tf), for i < n <= 64. The SSE2 path does
// the same IEEE float32 operations as the scalar one (no FMA), so both give identical bits.
inline uint64_t RowBits(const float* top, const float* bot, int n, float hy0, float hy1, float tf) {
  uint64_t bits = 0;
  int i = 0;
#if defined(__SSE2__)
  const __m128 h0 = _mm_set1_ps(hy0), h1 = _mm_set1_ps(hy1), t = _mm_set1_ps(tf);
  for (; i + 4 <= n; i += 4) {
    const __m128 v =
        _mm_add_ps(_mm_mul_ps(h0, _mm_loadu_ps(top + i)), _mm_mul_ps(h1, _mm_loadu_ps(bot + i)));
    bits |= static_cast<uint64_t>(_mm_movemask_ps(_mm_cmpgt_ps(v, t))) << i;
  }
#endif
  for (; i < n; ++i) {
    const float v = hy0 * top[i] + hy1 * bot[i];
    bits |= static_cast<uint64_t>(v > tf) << i;
  }
  return bits;
}

}  // namespace

float ThresholdAsFloat(double t) {
  if (std::isnan(t)) return std::numeric_limits<float>::quiet_NaN();
  float f = static_cast<float>(t);
  if (static_cast<double>(f) > t) f = std::nextafter(f, -std::numeric_limits<float>::infinity());
  return f;
}

void MaskStats::Add(const MaskStats& o) {
  maps += o.maps;
  maps_skipped_max += o.maps_skipped_max;
  cells_zero += o.cells_zero;
  cells_one += o.cells_one;
  cells_mixed += o.cells_mixed;
}

void UnitMaskBuilder::SetGeometry(int h, int w, int sh, int sw) {
  if (h == h_ && w == w_ && sh == sh_ && sw == sw_) return;
  h_ = h;
  w_ = w;
  sh_ = sh;
  sw_ = sw;
  rows_ = ComputeAxisSampling(h, sh);
  cols_ = ComputeAxisSampling(w, sw);
  auto group = [](const AxisSampling& s, std::vector<Group>* out) {
    out->clear();
    for (int o = 0; o < s.out_size; ++o) {
      if (out->empty() || out->back().i0 != s.i0[o] || out->back().i1 != s.i1[o]) {
        out->push_back(Group{s.i0[o], s.i1[o], o, o + 1});
      } else {
        out->back().end = o + 1;
      }
    }
  };
  group(rows_, &row_groups_);
  group(cols_, &col_groups_);
  words_.assign(WordsForBits(static_cast<int64_t>(sh) * sw), 0);
  top_.assign(sw, 0.0f);
  below_.assign(static_cast<size_t>(h) * w, 0);
  above_.assign(static_cast<size_t>(h) * w, 0);
  bot_.assign(sw, 0.0f);
  lo_ = hi_ = 0;
  count_ = 0;
}

void UnitMaskBuilder::Clear() {
  if (lo_ < hi_) std::memset(words_.data() + lo_, 0, (hi_ - lo_) * sizeof(uint64_t));
  lo_ = words_.size();
  hi_ = 0;
  count_ = 0;
}

void UnitMaskBuilder::MarkRange(int64_t begin, int64_t end) {
  SetBitRange(words_.data(), begin, end);
  lo_ = std::min(lo_, static_cast<size_t>(begin >> 6));
  hi_ = std::max(hi_, static_cast<size_t>(((end - 1) >> 6) + 1));
}

void UnitMaskBuilder::OrBits(int64_t pos, uint64_t bits) {
  const int64_t w = pos >> 6;
  const int s = static_cast<int>(pos & 63);
  words_[w] |= bits << s;
  if (s != 0 && (bits >> (64 - s)) != 0) words_[w + 1] |= bits >> (64 - s);
  count_ += Popcount64(bits);
  const int64_t first = pos + __builtin_ctzll(bits), last = pos + 63 - __builtin_clzll(bits);
  lo_ = std::min(lo_, static_cast<size_t>(first >> 6));
  hi_ = std::max(hi_, static_cast<size_t>((last >> 6) + 1));
}

int64_t UnitMaskBuilder::Build(const float* map, float tf) {
  Clear();
  ++stats_.maps;
  // max A > T (NaN values never count, as in the reference). Non-finite values need no special
  // path (see the cell rules below and unit_mask.h).
  const int n = h_ * w_;
  float mx = -std::numeric_limits<float>::infinity();
  int i = 0;
#if defined(__SSE2__)
  if (n >= 8) {
    __m128 acc = _mm_set1_ps(mx);
    for (; i + 4 <= n; i += 4) acc = _mm_max_ps(_mm_loadu_ps(map + i), acc);  // NaN lanes keep acc
    alignas(16) float lanes[4];
    _mm_store_ps(lanes, acc);
    for (float v : lanes) mx = v > mx ? v : mx;
  }
#endif
  for (; i < n; ++i) mx = map[i] > mx ? map[i] : mx;
  if (!(mx > tf)) {
    ++stats_.maps_skipped_max;
    lo_ = hi_ = 0;
    return 0;
  }
  {
    // Corner rules per source value, once per map: below_[i] when every interpolated value whose
    // corners are all <= map[i] is <= T; above_[i] when every one whose corners are all >= map[i]
    // is > T (and map[i] is finite, since 0 * inf is NaN). UpperBound/LowerBound are monotone, so
    // "all four corners below" is the cell rule of unit_mask.h with m = max corner, and likewise
    // for above with the min corner. NaN is neither.
    const double t = tf;
    for (int k = 0; k < n; ++k) {
      const float v = map[k];
      below_[k] = UpperBound(v) <= t;
      above_[k] = LowerBound(v) > t && std::isfinite(v);
    }
    for (const Group& gy : row_groups_) {
      const int64_t o0 = static_cast<int64_t>(gy.i0) * w_, o1 = static_cast<int64_t>(gy.i1) * w_;
      const float* r0 = map + o0;
      const float* r1 = map + o1;
      const uint8_t* b0 = below_.data() + o0;
      const uint8_t* b1 = below_.data() + o1;
      const uint8_t* a0 = above_.data() + o0;
      const uint8_t* a1 = above_.data() + o1;
      for (const Group& gx : col_groups_) {
        if (b0[gx.i0] & b0[gx.i1] & b1[gx.i0] & b1[gx.i1]) {
          ++stats_.cells_zero;
          continue;
        }
        if (a0[gx.i0] & a0[gx.i1] & a1[gx.i0] & a1[gx.i1]) {
          ++stats_.cells_one;
          for (int y = gy.begin; y < gy.end; ++y) {
            const int64_t base = static_cast<int64_t>(y) * sw_;
            MarkRange(base + gx.begin, base + gx.end);
          }
          count_ += static_cast<int64_t>(gy.end - gy.begin) * (gx.end - gx.begin);
          continue;
        }
        const float a = r0[gx.i0], b = r0[gx.i1], c = r1[gx.i0], d = r1[gx.i1];
        ++stats_.cells_mixed;
        // Same arithmetic as BilinearAt(): top and bot depend only on x within a cell, so they are
        // computed once per column; then v = hy0 * top + hy1 * bot per pixel, 4 lanes at a time.
        const int cw = gx.end - gx.begin;
        float* top = top_.data();
        float* bot = bot_.data();
        for (int i = 0; i < cw; ++i) {
          const float wx0 = cols_.l0[gx.begin + i], wx1 = cols_.l1[gx.begin + i];
          top[i] = wx0 * a + wx1 * b;
          bot[i] = wx0 * c + wx1 * d;
        }
        for (int y = gy.begin; y < gy.end; ++y) {
          const int64_t base = static_cast<int64_t>(y) * sw_ + gx.begin;
          for (int i = 0; i < cw; i += 64) {
            const uint64_t bits =
                RowBits(top + i, bot + i, std::min(64, cw - i), rows_.l0[y], rows_.l1[y], tf);
            if (bits != 0) OrBits(base + i, bits);
          }
        }
      }
    }
  }
  if (count_ == 0) lo_ = hi_ = 0;
  return count_;
}

void ReferenceMask(const float* map, int h, int w, int sh, int sw, double t,
                   std::vector<uint8_t>* out) {
  out->assign(static_cast<size_t>(sh) * sw, 0);
  bool any_above = false;
  for (int i = 0; i < h * w; ++i) any_above |= static_cast<double>(map[i]) > t;
  if (!any_above) return;
  std::vector<float> up(static_cast<size_t>(sh) * sw);
  UpsampleBilinear(map, h, w, sh, sw, up.data());
  for (size_t i = 0; i < up.size(); ++i) (*out)[i] = static_cast<double>(up[i]) > t ? 1 : 0;
}

}  // namespace nd
