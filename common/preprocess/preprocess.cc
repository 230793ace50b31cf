#include "common/preprocess/preprocess.h"

#include <opencv2/core.hpp>
#include <opencv2/imgcodecs.hpp>
#include <opencv2/imgproc.hpp>

namespace nd {

Status PreprocessRgb(const unsigned char* rgb, int rows, int cols, int size,
                     const std::string& preset, float* out) {
  float mean[3], scale[3];
  if (preset == "torchvision") {
    const float m[3] = {0.485f, 0.456f, 0.406f}, s[3] = {0.229f, 0.224f, 0.225f};
    for (int c = 0; c < 3; ++c) {
      mean[c] = m[c] * 255.0f;
      scale[c] = 1.0f / (s[c] * 255.0f);
    }
  } else if (preset == "netdissect") {
    const float m[3] = {124.6901f, 118.6897f, 109.5388f};
    for (int c = 0; c < 3; ++c) {
      mean[c] = m[c];
      scale[c] = 1.0f / 57.12f;
    }
  } else {
    return InvalidArgument("unknown preprocessing preset '" + preset + "'");
  }
  cv::Mat src(rows, cols, CV_8UC3, const_cast<unsigned char*>(rgb));
  cv::Mat f;
  src.convertTo(f, CV_32FC3);
  if (rows != size || cols != size) {
    cv::Mat resized;
    // INTER_LINEAR uses half-pixel centres (align_corners=False), as PIL and torchvision do.
    cv::resize(f, resized, cv::Size(size, size), 0, 0, cv::INTER_LINEAR);
    f = resized;
  }
  const size_t plane = static_cast<size_t>(size) * size;
  for (int y = 0; y < size; ++y) {
    const float* p = f.ptr<float>(y);
    for (int x = 0; x < size; ++x)
      for (int c = 0; c < 3; ++c)
        out[c * plane + static_cast<size_t>(y) * size + x] = (p[3 * x + c] - mean[c]) * scale[c];
  }
  return Status::Ok();
}

Status DecodeAndPreprocess(const std::string& bytes, int size, const std::string& preset,
                           float* out) {
  if (IsTruncatedJpeg(bytes)) return DataLoss("truncated JPEG (no end-of-image marker)");
  cv::Mat raw(1, static_cast<int>(bytes.size()), CV_8UC1, const_cast<char*>(bytes.data()));
  cv::Mat bgr;
  try {
    bgr = cv::imdecode(raw, cv::IMREAD_COLOR);
  } catch (const cv::Exception& e) {
    bgr.release();
  }
  if (bgr.empty()) return DataLoss("not a decodable image (corrupt or truncated)");
  cv::Mat rgb;
  cv::cvtColor(bgr, rgb, cv::COLOR_BGR2RGB);
  return PreprocessRgb(rgb.data, rgb.rows, rgb.cols, size, preset, out);
}

}  // namespace nd
