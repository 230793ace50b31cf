#include "common/maths/upsample.h"

#include <cmath>

namespace nd {

AxisSampling ComputeAxisSampling(int in_size, int out_size) {
  AxisSampling s;
  s.in_size = in_size;
  s.out_size = out_size;
  s.i0.resize(out_size);
  s.i1.resize(out_size);
  s.l0.resize(out_size);
  s.l1.resize(out_size);
  // Each line is one float32 rounding (the library is built with -ffp-contract=off).
  const float scale = static_cast<float>(in_size) / static_cast<float>(out_size);
  for (int o = 0; o < out_size; ++o) {
    const float t = static_cast<float>(o) + 0.5f;
    const float p = scale * t;
    float src = p - 0.5f;
    if (src < 0.0f) src = 0.0f;
    int i0 = static_cast<int>(std::floor(src));
    if (i0 > in_size - 1) i0 = in_size - 1;
    const int i1 = i0 + (i0 < in_size - 1 ? 1 : 0);
    const float l1 = src - static_cast<float>(i0);
    const float l0 = 1.0f - l1;
    s.i0[o] = i0;
    s.i1[o] = i1;
    s.l0[o] = l0;
    s.l1[o] = l1;
  }
  return s;
}

void UpsampleBilinear(const float* in, int h, int w, int out_h, int out_w, float* out) {
  const AxisSampling rows = ComputeAxisSampling(h, out_h);
  const AxisSampling cols = ComputeAxisSampling(w, out_w);
  for (int y = 0; y < out_h; ++y) {
    for (int x = 0; x < out_w; ++x) {
      out[static_cast<int64_t>(y) * out_w + x] = BilinearAt(in, w, rows, cols, y, x);
    }
  }
}

}  // namespace nd
