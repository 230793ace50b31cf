#include "cache/activation_record.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <limits>

#include "common/base/digest.h"
#include "common/base/half.h"

#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ != __ORDER_LITTLE_ENDIAN__
#error "cache records store payloads in host order, which must be little-endian"
#endif

namespace nd {
namespace {

void PutU16(char* p, uint16_t v) {
  p[0] = static_cast<char>(v & 0xFF);
  p[1] = static_cast<char>(v >> 8);
}
void PutU32(char* p, uint32_t v) {
  for (int i = 0; i < 4; ++i) p[i] = static_cast<char>((v >> (8 * i)) & 0xFF);
}
uint16_t GetU16(const char* p) {
  return static_cast<uint16_t>(static_cast<uint8_t>(p[0]) | (static_cast<uint8_t>(p[1]) << 8));
}
uint32_t GetU32(const char* p) {
  uint32_t v = 0;
  for (int i = 0; i < 4; ++i) v |= uint32_t{static_cast<uint8_t>(p[i])} << (8 * i);
  return v;
}

size_t ElementSize(DType d) { return d == DType::kFloat16 ? 2 : 4; }

// CRC over header bytes [0,20) and everything after the header (scale table and payload).
uint32_t RecordCrc(std::string_view record) {
  uint32_t c = Crc32(record.data(), 20);
  return Crc32(record.data() + kActivationRecordHeaderSize,
               record.size() - kActivationRecordHeaderSize, c);
}

}  // namespace

const char* DTypeName(DType dtype) {
  switch (dtype) {
    case DType::kFloat16:
      return "float16";
    case DType::kFloat32:
      return "float32";
  }
  return "unknown";
}

StatusOr<DType> ParseDType(std::string_view name) {
  if (name == "float16" || name == "f16") return DType::kFloat16;
  if (name == "float32" || name == "f32") return DType::kFloat32;
  return InvalidArgument("unknown dtype '" + std::string(name) +
                         "'; expected 'float16' or 'float32'");
}

int Float16UnitScaleLog2(const float* values, size_t n) {
  float max_abs = 0.0f;
  for (size_t i = 0; i < n; ++i) {
    const float a = std::fabs(values[i]);
    if (a > max_abs && a != std::numeric_limits<float>::infinity()) max_abs = a;  // NaN: false
  }
  if (max_abs == 0.0f) return 0;
  int e = 0;
  std::frexp(max_abs, &e);  // max_abs = f * 2^e, f in [0.5, 1): floor(log2 max_abs) = e - 1
  return std::clamp(e - 1 - 14, -128, 127);
}

namespace {

// Bytes of a float16 record's scale table: one int8 per unit, zero-padded to a multiple of 8 so
// that the payload starts 8-byte aligned relative to the record.
size_t ScaleTableBytes(DType dtype, uint64_t units) {
  return dtype == DType::kFloat16 ? static_cast<size_t>((units + 7) / 8 * 8) : 0;
}

}  // namespace

StatusOr<std::string> EncodeActivation(const ActivationMap& map, DType dtype) {
  if (map.units < 1 || map.h < 1 || map.w < 1) {
    return InvalidArgument("activation map shape " + std::to_string(map.units) + "x" +
                           std::to_string(map.h) + "x" + std::to_string(map.w) +
                           " has a dimension < 1");
  }
  const size_t plane = map.plane();
  const size_t n = static_cast<size_t>(map.units) * plane;
  if (map.data.size() != n) {
    return InvalidArgument("activation map has " + std::to_string(map.data.size()) +
                           " values, shape needs " + std::to_string(n));
  }
  const size_t table = ScaleTableBytes(dtype, static_cast<uint64_t>(map.units));
  std::string out(kActivationRecordHeaderSize + table + n * ElementSize(dtype), '\0');
  char* p = out.data();
  std::memcpy(p, kActivationRecordMagic, 4);
  PutU16(p + 4, kActivationRecordVersion);
  p[6] = static_cast<char>(dtype);
  p[7] = 0;  // reserved
  PutU32(p + 8, static_cast<uint32_t>(map.units));
  PutU32(p + 12, static_cast<uint32_t>(map.h));
  PutU32(p + 16, static_cast<uint32_t>(map.w));
  char* payload = p + kActivationRecordHeaderSize + table;
  if (dtype == DType::kFloat32) {
    std::memcpy(payload, map.data.data(), n * 4);
  } else {
    std::vector<uint16_t> halves(plane);
    std::vector<float> scaled(plane);
    for (int u = 0; u < map.units; ++u) {
      const float* src = map.data.data() + static_cast<size_t>(u) * plane;
      const int k = Float16UnitScaleLog2(src, plane);
      p[kActivationRecordHeaderSize + u] = static_cast<char>(static_cast<int8_t>(k));
      const float* in = src;
      if (k != 0) {
        // x * 2^-k in double is exact, and so is its conversion to float: |x * 2^-k| < 2^15 for
        // finite x, and a result below float's range only occurs where float16 is 0 anyway.
        const double s = std::ldexp(1.0, -k);
        for (size_t i = 0; i < plane; ++i) scaled[i] = static_cast<float>(src[i] * s);
        in = scaled.data();
      }
      FloatToHalfArray(in, halves.data(), plane);
      std::memcpy(payload + static_cast<size_t>(u) * plane * 2, halves.data(), plane * 2);
    }
  }
  PutU32(p + 20, RecordCrc(out));
  return out;
}

StatusOr<ActivationRecordHeader> DecodeActivationHeader(std::string_view record) {
  if (record.size() < kActivationRecordHeaderSize) {
    return DataLoss("activation record: truncated header (" + std::to_string(record.size()) +
                    " bytes, need " + std::to_string(kActivationRecordHeaderSize) + ")");
  }
  const char* p = record.data();
  if (std::memcmp(p, kActivationRecordMagic, 4) != 0) {
    return DataLoss("activation record: bad magic (not an nd-pipeline activation record)");
  }
  const uint16_t version = GetU16(p + 4);
  if (version != 1 && version != kActivationRecordVersion) {
    return DataLoss("activation record: unsupported format version " + std::to_string(version) +
                    " (this build reads version " + std::to_string(kActivationRecordVersion) + ")");
  }
  ActivationRecordHeader h;
  h.version = version;
  const uint8_t dtype = static_cast<uint8_t>(p[6]);
  if (dtype != static_cast<uint8_t>(DType::kFloat16) &&
      dtype != static_cast<uint8_t>(DType::kFloat32)) {
    return DataLoss("activation record: unknown dtype code " + std::to_string(dtype));
  }
  h.dtype = static_cast<DType>(dtype);
  if (version == 1 && h.dtype == DType::kFloat16) {
    return DataLoss(
        "activation record: float16 record of format version 1, written before per-unit scaling "
        "(values below 6e-8 may have been stored as 0); refused: re-extract the layer "
        "(`nd-pipeline up` forwards such images again)");
  }
  if (p[7] != 0) {
    return DataLoss("activation record: reserved header byte 7 is " +
                    std::to_string(static_cast<uint8_t>(p[7])) + ", expected 0");
  }
  h.units = GetU32(p + 8);
  h.h = GetU32(p + 12);
  h.w = GetU32(p + 16);
  h.crc32 = GetU32(p + 20);
  constexpr uint32_t kMaxDim = static_cast<uint32_t>(std::numeric_limits<int32_t>::max());
  if (h.units < 1 || h.h < 1 || h.w < 1 || h.units > kMaxDim || h.h > kMaxDim || h.w > kMaxDim) {
    return DataLoss("activation record: invalid shape " + std::to_string(h.units) + "x" +
                    std::to_string(h.h) + "x" + std::to_string(h.w));
  }
  const size_t table = ScaleTableBytes(h.dtype, h.units);
  h.payload_offset = kActivationRecordHeaderSize + table;
  // The product of three dimensions < 2^31 can overflow 64 bits, so compare by division.
  const size_t elem = ElementSize(h.dtype);
  const uint64_t plane = uint64_t{h.h} * h.w;  // < 2^62
  const bool fits = record.size() >= h.payload_offset && [&] {
    const size_t payload = record.size() - h.payload_offset;
    return payload % elem == 0 && (payload / elem) % plane == 0 &&
           (payload / elem) / plane == h.units;
  }();
  if (!fits) {
    return DataLoss("activation record: " + std::to_string(record.size()) +
                    " bytes do not match shape " + std::to_string(h.units) + "x" +
                    std::to_string(h.h) + "x" + std::to_string(h.w) + " " + DTypeName(h.dtype));
  }
  return h;
}

Status DecodeActivation(std::string_view record, ActivationMap* out) {
  ND_ASSIGN_OR_RETURN(ActivationRecordHeader h, DecodeActivationHeader(record));
  const uint32_t crc = RecordCrc(record);
  if (crc != h.crc32) {
    char buf[96];
    std::snprintf(buf, sizeof(buf), "checksum mismatch (stored %08x, computed %08x)", h.crc32, crc);
    return DataLoss(std::string("activation record: ") + buf);
  }
  out->units = static_cast<int>(h.units);
  out->h = static_cast<int>(h.h);
  out->w = static_cast<int>(h.w);
  const size_t plane = static_cast<size_t>(h.h) * h.w;
  const size_t n = static_cast<size_t>(h.units) * plane;
  out->data.resize(n);
  const char* payload = record.data() + h.payload_offset;
  if (h.dtype == DType::kFloat32) {
    std::memcpy(out->data.data(), payload, n * 4);
    return Status::Ok();
  }
  if (reinterpret_cast<uintptr_t>(payload) % alignof(uint16_t) == 0) {
    HalfToFloatArray(reinterpret_cast<const uint16_t*>(payload), out->data.data(), n);
  } else {
    std::vector<uint16_t> halves(n);
    std::memcpy(halves.data(), payload, n * 2);
    HalfToFloatArray(halves.data(), out->data.data(), n);
  }
  const char* scales = record.data() + kActivationRecordHeaderSize;
  for (size_t u = 0; u < h.units; ++u) {
    const int k = static_cast<int8_t>(scales[u]);
    if (k == 0) continue;
    // A float16 value times 2^k for k in [-128, 127] is exact in double; the product of a stored
    // value < 2^16 and 2^k is a float (or a float subnormal for the tiniest units).
    const double s = std::ldexp(1.0, k);
    float* x = out->data.data() + u * plane;
    for (size_t i = 0; i < plane; ++i) x[i] = static_cast<float>(x[i] * s);
  }
  return Status::Ok();
}

}  // namespace nd
