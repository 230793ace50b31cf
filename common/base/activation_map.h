// ActivationMap: one image's activations at one layer, `units` maps of h×w, float32, row-major
// ([unit][y][x]). Rank-2 layer outputs ([N, units]) are stored as 1×1 maps. This is the unit of
// exchange between the cache, calibrate and score; the cache may store it as float16 and widen it
// back on read.
#pragma once

#include <cstddef>
#include <vector>

namespace nd {

struct ActivationMap {
  int units = 0, h = 0, w = 0;
  std::vector<float> data;  // units*h*w

  size_t plane() const { return static_cast<size_t>(h) * w; }
  const float* unit(int u) const { return data.data() + plane() * u; }
  float* unit(int u) { return data.data() + plane() * u; }
};

}  // namespace nd
