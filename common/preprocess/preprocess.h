// Image preprocessing, as the network sees its input (SPEC.md §2 step 1): decode the file's bytes
// (OpenCV), convert to RGB, resize to size×size by bilinear interpolation on float values when the
// size differs (half-pixel centres, as PIL and torchvision), and normalise per channel:
//   torchvision: (RGB/255 − (0.485, 0.456, 0.406)) / (0.229, 0.224, 0.225)
//   netdissect:  (RGB − (124.6901, 118.6897, 109.5388)) / 57.12
// into 3×size×size floats, CHW. Used by the decode stage, nd-train and nd-bench's bare floor, so
// the three agree to the bit. Pure functions; thread-safe.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "common/base/status.h"

namespace nd {

// True for a JPEG (starts with FF D8) without its end-of-image marker near the end. libjpeg
// "decodes" such a file by filling the rest with grey and only warns. Inline: decode's relay
// build checks it without linking the decoder (OpenCV).
inline bool IsTruncatedJpeg(const std::string& bytes) {
  if (bytes.size() < 4 || static_cast<unsigned char>(bytes[0]) != 0xFF ||
      static_cast<unsigned char>(bytes[1]) != 0xD8)
    return false;  // not a JPEG: OpenCV's decoder reports truncation of the other formats
  // The end-of-image marker FF D9, allowing a little trailing padding after it.
  size_t from = bytes.size() > 64 ? bytes.size() - 64 : 2;
  for (size_t i = bytes.size() - 1; i > from; --i)
    if (static_cast<unsigned char>(bytes[i]) == 0xD9 &&
        static_cast<unsigned char>(bytes[i - 1]) == 0xFF)
      return false;
  return true;
}

// Normalises an 8-bit RGB (not BGR) image of any size into `out` (3×size×size floats, CHW).
// InvalidArgument for an unknown preset.
Status PreprocessRgb(const unsigned char* rgb, int rows, int cols, int size,
                     const std::string& preset, float* out);

// Decodes an image file's bytes into 8-bit RGB, interleaved (HWC), *rows × *cols. DataLoss
// "truncated JPEG (no end-of-image marker)" or "not a decodable image (corrupt or truncated)".
Status DecodeRgb(const std::string& bytes, std::vector<uint8_t>* rgb, int* rows, int* cols);

// Decodes an image file's bytes and preprocesses it into `out` (3×size×size floats). DataLoss
// "truncated JPEG (no end-of-image marker)" or "not a decodable image (corrupt or truncated)" for a
// bad file, InvalidArgument for an unknown preset. The caller prefixes the file's name.
Status DecodeAndPreprocess(const std::string& bytes, int size, const std::string& preset,
                           float* out);

}  // namespace nd
