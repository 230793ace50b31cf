// The value format of the activation cache: one ActivationMap (or one vector of per-unit
// thresholds) as a self-checking byte string. The exact layout is in cache/FORMAT.md.
//
// Records are produced by the extract stage and read by calibrate, score and `cache verify`.
// float16 records hold FloatToHalf(x) (PyTorch's rounding, common/half.h), so reading a float16
// record gives exactly what `t.to(torch.float16).float()` gives. All functions are pure and
// thread-safe; decoding never trusts the input (corrupt bytes give DataLoss, never a crash).
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "common/activation_map.h"
#include "common/status.h"

namespace nd {

// Element type of a record's payload. The numeric values are written to disk: never renumber.
enum class DType : uint8_t { kFloat16 = 1, kFloat32 = 2 };

// "float16" / "float32", the spelling of the config key cache.dtype.
const char* DTypeName(DType dtype);
// Parses "float16" / "float32" (also "f16", "f32"); InvalidArgument otherwise.
[[nodiscard]] StatusOr<DType> ParseDType(std::string_view name);

inline constexpr char kActivationRecordMagic[4] = {'N', 'D', 'A', 'C'};
inline constexpr uint16_t kActivationRecordVersion = 1;
inline constexpr size_t kActivationRecordHeaderSize = 24;

// The decoded fixed header of a record.
struct ActivationRecordHeader {
  DType dtype = DType::kFloat16;
  int scale_log2 = 0;  // stored = value * 2^-scale_log2; readers multiply by 2^scale_log2
  uint32_t units = 0, h = 0, w = 0;
  uint32_t crc32 = 0;  // over header bytes [0,20) followed by the payload
};

// Encodes `map` as a record of `dtype`. For float16, a map whose largest finite magnitude would
// overflow float16 (>= 65520) is stored scaled by the smallest power of two 2^-k that avoids
// overflow (recorded as scale_log2 = k); all other maps are stored unscaled (scale_log2 = 0).
// Errors: InvalidArgument if a dimension is < 1, or data.size() != units*h*w.
[[nodiscard]] StatusOr<std::string> EncodeActivation(const ActivationMap& map,
                                                     DType dtype = DType::kFloat16);

// Parses and checks the header only (magic, version, dtype, size consistent with the shape);
// does not check the CRC. Errors: DataLoss with a one-line reason.
[[nodiscard]] StatusOr<ActivationRecordHeader> DecodeActivationHeader(std::string_view record);

// Fully checks `record` (header, size, CRC-32) and writes the float32 map into *out (resized).
// On error *out is unspecified. Errors: DataLoss ("activation record: checksum mismatch ...").
[[nodiscard]] Status DecodeActivation(std::string_view record, ActivationMap* out);

// Per-unit thresholds are stored as a float32 record of shape units x 1 x 1, so they are exact
// and checked like activations.
[[nodiscard]] StatusOr<std::string> EncodeThresholds(const std::vector<float>& thresholds);
// Errors: DataLoss on a corrupt record or one whose shape is not units x 1 x 1.
[[nodiscard]] Status DecodeThresholds(std::string_view record, std::vector<float>* out);

}  // namespace nd
