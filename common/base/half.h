// IEEE 754 binary16 ("half", float16) <-> binary32 conversion, as the activation cache stores it.
//
// FloatToHalf rounds to nearest, ties to even, exactly like PyTorch's `tensor.to(torch.float16)`
// on CPU (c10::Half): values whose magnitude is >= 65520 become +-Inf, values below the smallest
// half subnormal round to +-0 or to subnormals correctly, -0.0 stays -0.0, Inf stays Inf, and every
// NaN becomes the quiet NaN 0x7E00 with the input's sign (c10's canonical NaN). HalfToFloat is
// exact (every half is a float); a NaN half becomes a NaN float.
//
// The array versions give bit-identical results to the scalar ones; on x86-64 CPUs with F16C
// they use the hardware conversion (chosen at run time), elsewhere a portable loop.
// All functions are pure and thread-safe.
#pragma once

#include <cstddef>
#include <cstdint>

namespace nd {

uint16_t FloatToHalf(float f);
float HalfToFloat(uint16_t h);

// out[i] = FloatToHalf(in[i]) for i < n. REQUIRES: in and out do not overlap.
void FloatToHalfArray(const float* in, uint16_t* out, size_t n);
// out[i] = HalfToFloat(in[i]) for i < n. REQUIRES: in and out do not overlap.
void HalfToFloatArray(const uint16_t* in, float* out, size_t n);

}  // namespace nd
