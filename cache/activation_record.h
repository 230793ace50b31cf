// The value format of the activation cache: one ActivationMap (or one vector of per-unit
// thresholds) as a self-checking byte string. The exact layout is in cache/FORMAT.md.
//
// Records are produced by the extract stage and read by calibrate, score and `cache verify`.
// float16 records hold FloatToHalf(x * 2^-k_u) (PyTorch's rounding, common/base/half.h) with a
// power-of-two scale k_u per unit, so that neither tiny nor huge activations are lost
// (Float16UnitScaleLog2). All functions are pure and
// thread-safe; decoding never trusts the input (corrupt bytes give DataLoss, never a crash).
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "common/base/activation_map.h"
#include "common/base/status.h"

namespace nd {

// Element type of a record's payload. The numeric values are written to disk: never renumber.
enum class DType : uint8_t { kFloat16 = 1, kFloat32 = 2 };

// "float16" / "float32", the spelling of the config key cache.dtype.
const char* DTypeName(DType dtype);
// Parses "float16" / "float32" (also "f16", "f32"); InvalidArgument otherwise.
[[nodiscard]] StatusOr<DType> ParseDType(std::string_view name);

inline constexpr char kActivationRecordMagic[4] = {'N', 'D', 'A', 'C'};
// Version 2 added the per-unit scales of float16 records. Version 1 float32 records have the same
// layout and are still read; version 1 float16 records (one scale per record, used only against
// overflow, so values below 2^-24 had become 0) are refused with DataLoss.
inline constexpr uint16_t kActivationRecordVersion = 2;
inline constexpr size_t kActivationRecordHeaderSize = 24;

// The decoded fixed header of a record.
struct ActivationRecordHeader {
  int version = kActivationRecordVersion;
  DType dtype = DType::kFloat16;
  uint32_t units = 0, h = 0, w = 0;
  uint32_t crc32 = 0;  // over header bytes [0,20) followed by everything after the header
  size_t payload_offset = kActivationRecordHeaderSize;  // the scale table comes before it
};

// The power-of-two exponent k a float16 record stores unit u with (stored = value * 2^-k): with m
// the largest finite magnitude of the unit's h*w values, k = floor(log2 m) - 14, so that m is
// stored in [2^14, 2^15): every value within 2^29 of m is a normal float16 (11 significant bits)
// and none overflows. k = 0 when m is 0 or there is no finite value; k is clamped to [-128, 127]
// (int8). Scaling by 2^k is exact, so any value that is a normal float16 both ways rounds exactly
// as `x.half()` does: records differ from PyTorch's rounding only where that underflows or
// overflows.
int Float16UnitScaleLog2(const float* values, size_t n);

// Encodes `map` as a record of `dtype`; float16 records carry one scale per unit
// (Float16UnitScaleLog2), float32 records store the values exactly.
// Errors: InvalidArgument if a dimension is < 1, or data.size() != units*h*w.
[[nodiscard]] StatusOr<std::string> EncodeActivation(const ActivationMap& map,
                                                     DType dtype = DType::kFloat16);

// Parses and checks the header only (magic, version, dtype, size consistent with the shape);
// does not check the CRC. A float16 record of version 1 is DataLoss ("written before per-unit
// scaling ... re-extract"). Errors: DataLoss with a one-line reason.
[[nodiscard]] StatusOr<ActivationRecordHeader> DecodeActivationHeader(std::string_view record);

// Fully checks `record` (header, size, CRC-32) and writes the float32 map into *out (resized).
// On error *out is unspecified. Errors: DataLoss ("activation record: checksum mismatch ...").
[[nodiscard]] Status DecodeActivation(std::string_view record, ActivationMap* out);

}  // namespace nd
