// Content digests and checksums (SHA-256 written from FIPS 180-4; CRC-32 is zlib's):
//   - SHA-256 (FIPS 180-4): identifies model files and images by content in cache keys.
//   - CRC-32 (IEEE 802.3, the zlib/PNG polynomial; zlib's crc32_z): cache records, PNG chunks.
// All functions are thread-safe (no shared mutable state); a Sha256 object is thread-compatible.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "common/base/status.h"

namespace nd {

// Incremental SHA-256. Feed bytes with Update() any number of times, then call Finish() once.
// REQUIRES: no Update() after Finish() (call Reset() to reuse the object).
class Sha256 {
 public:
  Sha256() { Reset(); }
  void Reset();
  void Update(const void* data, size_t size);
  void Update(std::string_view s) { Update(s.data(), s.size()); }
  // Pads, returns the 32-byte digest. The object must be Reset() before further use.
  std::array<uint8_t, 32> Finish();

 private:
  void Compress(const uint8_t* blocks, size_t count);  // `count` 64-byte blocks

  std::array<uint32_t, 8> state_;
  std::array<uint8_t, 64> buffer_;
  size_t buffered_ = 0;
  uint64_t total_bytes_ = 0;
};

// Whether Sha256 runs on the CPU's SHA extensions (x86 SHA-NI, found at run time) rather than the
// portable code; both give the same digests. For tests: `portable` = true forces the portable
// code in this process until set back.
bool Sha256UsesShaExtensions();
void SetSha256PortableForTesting(bool portable);

// Lowercase hex of `size` bytes ("" for size 0).
std::string ToHex(const uint8_t* bytes, size_t size);

// SHA-256 of `data` as 64 lowercase hex characters.
std::string Sha256Hex(std::string_view data);

// SHA-256 of a file's contents as 64 lowercase hex characters; the file is streamed in 1 MiB
// chunks. Errors: NotFound (no such file), IoError (unreadable), both naming `path`.
[[nodiscard]] StatusOr<std::string> Sha256File(const std::string& path);

// CRC-32 (IEEE, as zlib's crc32()): Crc32("123456789") == 0xCBF43926. To checksum data given in
// pieces, pass the previous result as `crc`: Crc32(b, nb, Crc32(a, na)) == Crc32(a+b).
uint32_t Crc32(const void* data, size_t size, uint32_t crc = 0);
inline uint32_t Crc32(std::string_view s, uint32_t crc = 0) {
  return Crc32(s.data(), s.size(), crc);
}

}  // namespace nd
