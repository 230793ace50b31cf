// libFuzzer target for the Broden label-PNG decoder (DecodeLabelPngBytes in
// common/broden/broden_dataset.h): the built-in fast path (chunk walk, CRCs, libdeflate inflate,
// unfiltering) and the libpng fallback, on arbitrary bytes. The expected size is taken from the
// input's IHDR when it names a small image (so that valid PNGs reach the pixel decoders), and a
// second call uses a fixed 8x8 (the wrong-size path). Traps when:
//   - a success leaves out->size() != rows*cols, or an error message spans lines or does not name
//     the file;
//   - either decoder decodes a file that OpenCV (cv::imdecode, IMREAD_UNCHANGED: the reader's
//     decoder before the libpng fallback) also decodes to this size, and the label values differ;
//   - the libpng fallback refuses a PNG that OpenCV decodes to this size and a supported format
//     (differential checks of both decoders against OpenCV).
// Built by -DND_FUZZ=ON (tools/fuzz.sh); replayed over the committed corpus by
// tests/fuzz/replay_main.cc (ctest png_fuzz_replay).
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <opencv2/core.hpp>
#include <opencv2/imgcodecs.hpp>
#include <string>
#include <vector>

#include "common/broden/broden_dataset.h"

namespace {

constexpr const char* kName = "fuzz.png";

void Check(bool ok) {
  if (!ok) __builtin_trap();
}

uint32_t BigEndian32(const uint8_t* p) {
  return (uint32_t{p[0]} << 24) | (uint32_t{p[1]} << 16) | (uint32_t{p[2]} << 8) | uint32_t{p[3]};
}

void CheckResult(const nd::Status& s, int rows, int cols, const std::vector<uint16_t>& out) {
  if (s.ok()) {
    Check(out.size() == static_cast<size_t>(rows) * static_cast<size_t>(cols));
    return;
  }
  const std::string& m = s.message();
  Check(m.find('\n') == std::string::npos && m.find('\r') == std::string::npos);
  Check(m.rfind(kName, 0) == 0);
}

// The labels OpenCV (libpng) gives the same bytes, mapped as DecodeLabelPng documents; empty when
// OpenCV does not decode them to a supported format.
std::vector<uint16_t> OpenCvLabels(const uint8_t* data, size_t size) {
  std::vector<uint16_t> labels;
  cv::Mat mat;
  try {
    mat = cv::imdecode(cv::Mat(1, static_cast<int>(size), CV_8U, const_cast<uint8_t*>(data)),
                       cv::IMREAD_UNCHANGED);
  } catch (const cv::Exception&) {
    return labels;
  }
  if (mat.empty()) return labels;
  const int channels = mat.channels();
  for (int r = 0; r < mat.rows; ++r) {
    for (int x = 0; x < mat.cols; ++x) {
      if (mat.depth() == CV_8U && (channels == 3 || channels == 4)) {
        const uint8_t* px = mat.ptr<uint8_t>(r) + x * channels;
        labels.push_back(static_cast<uint16_t>(px[2] + 256 * px[1]));
      } else if (mat.depth() == CV_8U && channels == 1) {
        labels.push_back(mat.ptr<uint8_t>(r)[x]);
      } else if (mat.depth() == CV_16U && channels == 1) {
        labels.push_back(mat.ptr<uint16_t>(r)[x]);
      } else {
        return {};
      }
    }
  }
  return labels;
}

}  // namespace

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  // Keep OpenCV's decoders from allocating gigapixel images for hostile headers.
  setenv("OPENCV_IO_MAX_IMAGE_PIXELS", "1048576", 1);
  cv::setNumThreads(0);
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::vector<uint16_t> out;
  int rows = 8, cols = 8;
  if (size >= 24 && std::memcmp(data + 12, "IHDR", 4) == 0) {
    const uint32_t w = BigEndian32(data + 16), h = BigEndian32(data + 20);
    if (w >= 1 && h >= 1 && w <= 512 && h <= 512) {
      rows = static_cast<int>(h);
      cols = static_cast<int>(w);
    }
  }
  bool fast = false;
  nd::Status s = nd::DecodeLabelPngBytes(data, size, kName, rows, cols, &out, &fast);
  CheckResult(s, rows, cols, out);
  const bool is_png = size >= 8 && std::memcmp(data, "\x89PNG\r\n\x1a\n", 8) == 0;
  if (is_png) {
    const std::vector<uint16_t> reference = OpenCvLabels(data, size);
    const size_t pixels = static_cast<size_t>(rows) * static_cast<size_t>(cols);
    // libpng may refuse a file the fast path accepts (e.g. a chunk order it dislikes); where both
    // decode, they must agree on every label. The fallback is libpng set up as OpenCV set it up:
    // it decodes exactly what OpenCV decodes.
    if (s.ok() && reference.size() == out.size()) Check(reference == out);
    if (!fast && reference.size() == pixels) Check(s.ok());
  }
  if (rows != 8 || cols != 8) {
    s = nd::DecodeLabelPngBytes(data, size, kName, 8, 8, &out, &fast);
    CheckResult(s, 8, 8, out);
  }
  return 0;
}
