// Bilinear upsampling of one unit's activation map to the segmentation grid (SPEC.md §2 step 3).
//
// Semantics: bilinear interpolation with half-pixel centres and edge clamping, i.e. torch's
// F.interpolate(x, size=(out_h, out_w), mode='bilinear', align_corners=False) without
// antialiasing. This file fixes the exact float32 arithmetic; the CPU scorer (unit_mask.h) and any
// GPU scorer must reproduce it bit for bit.
//
// The arithmetic, per axis (in_size -> out_size; every operation is one IEEE-754 float32
// operation, rounded to nearest-even, no fused multiply-add — the library is built with
// -ffp-contract=off):
//
//   scale  = (float)in_size / (float)out_size               float32 division
//   s      = scale * ((float)o + 0.5f) - 0.5f               two float32 ops: one multiply (the
//                                                           sum o + 0.5f is exact), one subtract
//   s      = (s < 0) ? 0 : s                                clamp at the low edge
//   i0     = min((int)floor(s), in_size - 1)
//   i1     = i0 + (i0 < in_size - 1 ? 1 : 0)                clamp at the high edge
//   l1     = s - (float)i0                                  exact (a fractional part)
//   l0     = 1.0f - l1                                      float32 subtract
//
// and per output pixel (y, x) with the row tables (y0, y1, hy0, hy1) and the column tables
// (x0, x1, wx0, wx1), values a = in[y0][x0], b = in[y0][x1], c = in[y1][x0], d = in[y1][x1]:
//
//   top = wx0 * a + wx1 * b                                 two products, one sum, float32
//   bot = wx0 * c + wx1 * d
//   out = hy0 * top + hy1 * bot
//
// This is the order of operations of torch's CPU kernel (UpSampleKernel.cpp: the width
// interpolation of each of the two rows, then the height interpolation) and of
// area_pixel_compute_source_index / compute_indices_weights_linear for the tables. A torch build
// whose compiler contracts `scale * t - 0.5f` or the weighted sums into FMAs (and the CUDA kernel,
// which nvcc contracts by default) can differ from this in the last bit of some values; nd-pipeline
// defines the result by the sequence above.
//
// For a bit-exact GPU implementation: compute the per-axis tables on the host with
// ComputeAxisSampling() and upload them (int64 indices, float32 weights); then with separate
// elementwise tensor ops (which do not fuse):
//   top = wx0[None,:] * A[y0][:, x0] + wx1[None,:] * A[y0][:, x1]   (mul, mul, add)
//   bot = wx0[None,:] * A[y1][:, x0] + wx1[None,:] * A[y1][:, x1]
//   out = hy0[:,None] * top + hy1[:,None] * bot
// and compare out > ThresholdAsFloat(T) in float32 (see unit_mask.h).
//
// PIL: Image.resize(..., BILINEAR) on a mode 'F' image (what NetDissect-Lite's
// scipy.misc.imresize(mode='F') called) uses, when enlarging, the triangle filter of support 1
// centred at (o + 0.5) * in/out in input pixel units, truncated to the image and renormalised. Its
// weights for source pixels floor(s) and floor(s)+1 are exactly 1 - frac(s) and frac(s) with the s
// above, and the renormalisation at the borders is exactly the clamping above, so for enlargement
// PIL computes the same function. It does so in double precision, in two separable passes
// (horizontal, then vertical) with a float32 intermediate image, so its results may differ from
// these in the last bits. When shrinking, PIL's filter widens (antialiasing) and the two differ;
// Broden always enlarges (7..56 -> 112/113/192).
//
// Thread-safety: all functions are pure; AxisSampling is an immutable value after construction.
#pragma once

#include <cstdint>
#include <vector>

namespace nd {

// The per-axis interpolation table for in_size -> out_size (see the header comment).
struct AxisSampling {
  int in_size = 0, out_size = 0;
  std::vector<int32_t> i0, i1;  // source indices per output coordinate, i0 <= i1 <= in_size-1
  std::vector<float> l0, l1;    // weights of i0 and i1; l1 in [0, 1)
};

// REQUIRES: in_size >= 1, out_size >= 1.
AxisSampling ComputeAxisSampling(int in_size, int out_size);

// The reference upsampler: out[y*out_w + x] for every output pixel, by the arithmetic above.
// `in` is h×w row-major; `out` must hold out_h*out_w floats.
// REQUIRES: h, w, out_h, out_w >= 1.
void UpsampleBilinear(const float* in, int h, int w, int out_h, int out_w, float* out);

// One output value of the upsampling given the two axis tables: the exact expression used by
// UpsampleBilinear and by the fast mask builder. `in` has row stride `w`.
inline float BilinearAt(const float* in, int w, const AxisSampling& rows, const AxisSampling& cols,
                        int y, int x) {
  const float* r0 = in + static_cast<int64_t>(rows.i0[y]) * w;
  const float* r1 = in + static_cast<int64_t>(rows.i1[y]) * w;
  const int x0 = cols.i0[x], x1 = cols.i1[x];
  const float wx0 = cols.l0[x], wx1 = cols.l1[x];
  const float top = wx0 * r0[x0] + wx1 * r0[x1];
  const float bot = wx0 * r1[x0] + wx1 * r1[x1];
  return rows.l0[y] * top + rows.l1[y] * bot;
}

}  // namespace nd
