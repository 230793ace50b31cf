// The activation mask of one unit on one image (SPEC.md §2 step 3), bit-packed (bits.h).
//
// Definition used by nd-pipeline, for a map A (h×w float32), threshold T (double) and the
// segmentation grid sh×sw, with up = the float32 upsampling of upsample.h:
//
//   M[p] = (max A > T) and (up[p] > T)          comparisons in double: (double)v > T
//
// In exact arithmetic the first condition is implied by the second (bilinear interpolation is a
// convex combination), which is why SPEC.md says skipping maps with max A <= T is exact. In
// float32 it is not quite: w0*v + w1*v can round to the float just above v (it does for ~3% of the
// weights that occur), so a map whose maximum equals T could have pixels one ulp above T. SPEC.md
// says such a mask is empty, and so does this definition. The two conditions differ only when
// max A <= T < max A * (1 + 2^-21) (or the mirror for negative values).
//
// Comparing floats with a double T: for float v, (double)v > T  <=>  v > ThresholdAsFloat(T),
// where ThresholdAsFloat(T) is the largest float <= T. A GPU scorer should compare in float32
// against that value (torch casts a Python-float scalar to the tensor's dtype, which would round
// T to nearest instead) and and-in `any(A > Tf)` per map (not `A.amax() > Tf`: amax propagates NaN,
// while the max here ignores NaN values; tensor_scorer.h does this).
//
// The fast builder (UnitMaskBuilder) computes exactly this, never materialising `up`:
//  - maps with max A <= T are skipped (empty mask);
//  - the output grid is cut into cells, the rectangles of output pixels whose four bilinear
//    neighbours (y0,y1,x0,x1) are the same; per cell, with corner max m and min n:
//      all pixels <= T  when m + 2^-20|m| + 2^-140 <= T, or m <= 0 <= T;
//      all pixels >  T  when n - 2^-20|n| - 2^-140 > T, or n >= 0 > T;
//    these bounds are rigorous for the float32 arithmetic: with non-negative weights that sum to
//    within 1 ulp of 1 per axis, the six rounded operations put the result within (1+2^-24)^6 of
//    the corner range, plus subnormal absolute error below 2^-146;
//  - other cells (corner values within ~1e-6 relative of T, or straddling it) are evaluated per
//    pixel with the exact arithmetic of upsample.h (BilinearAt's operations; the per-column
//    `top`/`bot` are computed once per cell and the last step runs 4 SSE2 lanes at a time, which
//    are the same IEEE float32 operations);
//  - NaN and infinite values need no special path: a NaN corner fails both bounds (NaN compares
//    false), an infinite corner fails the all-1 rule (it requires a finite maximum, since
//    0 * inf is NaN), and the all-0 rule stays valid with infinities (every value is then -inf,
//    NaN, or within the bound).
//
// Thread-safety: a UnitMaskBuilder is a per-thread scratch object (not thread-safe); distinct
// builders may be used concurrently.
#pragma once

#include <cstddef>
#include <cstdint>
#include <vector>

#include "common/maths/upsample.h"

namespace nd {

// The largest float32 <= t (-inf when t < -FLT_MAX; +FLT_MAX when FLT_MAX <= t < inf; NaN for
// NaN). For any float v: ((double)v > t) == (v > ThresholdAsFloat(t)).
float ThresholdAsFloat(double t);

// Counters of how masks were obtained; summed across builders by the caller.
struct MaskStats {
  int64_t maps = 0;              // Build() calls
  int64_t maps_skipped_max = 0;  // maps with max A <= T (no work beyond the max)
  int64_t cells_zero = 0;        // cells decided all-0 by the corner bound
  int64_t cells_one = 0;         // cells decided all-1 by the corner bound
  int64_t cells_mixed = 0;       // cells evaluated per pixel

  void Add(const MaskStats& o);
};

// Builds masks for one geometry (h×w maps -> sh×sw grid) at a time and owns the mask buffer.
// After Build(), words() holds the whole mask (num_words() words, every word valid, bits past
// sh*sw zero), count() is |M| and [lo(), hi()) is a word range outside which all words are zero
// (lo() == hi() when the mask is empty). The buffer is reused: the next Build() (or
// SetGeometry()) overwrites it, so copy what must outlive that.
class UnitMaskBuilder {
 public:
  UnitMaskBuilder() = default;

  // Sets the geometry; cheap when unchanged. REQUIRES: h, w, sh, sw >= 1.
  void SetGeometry(int h, int w, int sh, int sw);

  // Builds the mask of `map` (h*w floats, row-major) at threshold `tf` = ThresholdAsFloat(T).
  // Returns |M|. REQUIRES: SetGeometry() was called.
  int64_t Build(const float* map, float tf);

  const uint64_t* words() const { return words_.data(); }
  size_t num_words() const { return words_.size(); }
  size_t lo() const { return lo_; }
  size_t hi() const { return hi_; }
  int64_t count() const { return count_; }
  int sh() const { return sh_; }
  int sw() const { return sw_; }
  const MaskStats& stats() const { return stats_; }

 private:
  struct Group {  // a run of output coordinates with the same (i0, i1)
    int i0, i1, begin, end;
  };
  void Clear();
  void MarkRange(int64_t begin, int64_t end);  // set bits, widen [lo_, hi_)
  void OrBits(int64_t pos, uint64_t bits);     // OR 64 bits at pixel `pos`, count, widen

  int h_ = 0, w_ = 0, sh_ = 0, sw_ = 0;
  AxisSampling rows_, cols_;
  std::vector<Group> row_groups_, col_groups_;
  std::vector<uint64_t> words_;
  std::vector<float> top_, bot_;        // per-column scratch of a mixed cell
  std::vector<uint8_t> below_, above_;  // per-source-value corner rules of the current map
  size_t lo_ = 0, hi_ = 0;
  int64_t count_ = 0;
  MaskStats stats_;
};

// The definition above evaluated naively (reference upsample of the whole grid, then compare):
// `out` receives sh*sw bytes 0/1. For tests and for checking the fast builder.
void ReferenceMask(const float* map, int h, int w, int sh, int sw, double t,
                   std::vector<uint8_t>* out);

}  // namespace nd
