// The network input's normalisation (SPEC.md §2 step 1), apart from decoding so that a process
// without an image decoder can apply it: decode sends a batch of images that needed no resize as
// their 8-bit RGB bytes (a quarter of the float32 bytes), and extract normalises them here with
// the same float32 operations PreprocessRgb (preprocess.h) uses, so the input is the same to the
// bit either way:
//   torchvision: mean_c = m_c · 255, scale_c = 1 / (s_c · 255), m = (0.485, 0.456, 0.406),
//                s = (0.229, 0.224, 0.225)
//   netdissect:  mean = (124.6901, 118.6897, 109.5388), scale_c = 1 / 57.12
//   out[c][y][x] = ((float)rgb[y][x][c] − mean_c) · scale_c        (float32; no fused multiply-add
//                                                                   can form: a subtraction, then
//                                                                   a product)
// Header only, no dependencies beyond Status; pure functions, thread-safe.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>

#include "common/base/status.h"

namespace nd {

struct Normalization {
  float mean[3] = {0, 0, 0};
  float scale[3] = {1, 1, 1};
};

// The constants of model.preprocess = "torchvision" | "netdissect". InvalidArgument otherwise.
inline StatusOr<Normalization> NormalizationFor(const std::string& preset) {
  Normalization n;
  if (preset == "torchvision") {
    const float m[3] = {0.485f, 0.456f, 0.406f}, s[3] = {0.229f, 0.224f, 0.225f};
    for (int c = 0; c < 3; ++c) {
      n.mean[c] = m[c] * 255.0f;
      n.scale[c] = 1.0f / (s[c] * 255.0f);
    }
  } else if (preset == "netdissect") {
    const float m[3] = {124.6901f, 118.6897f, 109.5388f};
    for (int c = 0; c < 3; ++c) {
      n.mean[c] = m[c];
      n.scale[c] = 1.0f / 57.12f;
    }
  } else {
    return InvalidArgument("unknown preprocessing preset '" + preset + "'");
  }
  return n;
}

// `pixels` values of 8-bit RGB, interleaved (HWC), into `out` as 3 planes of `pixels` floats
// (CHW).
inline void NormalizeRgb8(const uint8_t* rgb, size_t pixels, const Normalization& n, float* out) {
  for (int c = 0; c < 3; ++c) {
    const float mean = n.mean[c], scale = n.scale[c];
    float* plane = out + c * pixels;
    for (size_t i = 0; i < pixels; ++i)
      plane[i] = (static_cast<float>(rgb[3 * i + c]) - mean) * scale;
  }
}

}  // namespace nd
