#include "common/preprocess/preprocess.h"

#include <cstring>
#include <opencv2/core.hpp>
#include <opencv2/imgcodecs.hpp>
#include <opencv2/imgproc.hpp>

#include "common/preprocess/normalize.h"

namespace nd {

Status PreprocessRgb(const unsigned char* rgb, int rows, int cols, int size,
                     const std::string& preset, float* out) {
  ND_ASSIGN_OR_RETURN(const Normalization n, NormalizationFor(preset));
  const size_t plane = static_cast<size_t>(size) * size;
  if (rows == size && cols == size) {  // (float)v exactly, as convertTo would give
    NormalizeRgb8(rgb, plane, n, out);
    return Status::Ok();
  }
  cv::Mat src(rows, cols, CV_8UC3, const_cast<unsigned char*>(rgb));
  cv::Mat f;
  src.convertTo(f, CV_32FC3);
  cv::Mat resized;
  cv::resize(f, resized, cv::Size(size, size), 0, 0, cv::INTER_LINEAR);
  for (int y = 0; y < size; ++y) {
    const float* p = resized.ptr<float>(y);
    for (int x = 0; x < size; ++x)
      for (int c = 0; c < 3; ++c)
        out[c * plane + static_cast<size_t>(y) * size + x] =
            (p[3 * x + c] - n.mean[c]) * n.scale[c];
  }
  return Status::Ok();
}

Status DecodeRgb(const std::string& bytes, std::vector<uint8_t>* rgb, int* rows, int* cols) {
  if (IsTruncatedJpeg(bytes)) return DataLoss("truncated JPEG (no end-of-image marker)");
  cv::Mat raw(1, static_cast<int>(bytes.size()), CV_8UC1, const_cast<char*>(bytes.data()));
  cv::Mat bgr;
  try {
    bgr = cv::imdecode(raw, cv::IMREAD_COLOR);
  } catch (const cv::Exception& e) {
    bgr.release();
  }
  if (bgr.empty()) return DataLoss("not a decodable image (corrupt or truncated)");
  cv::Mat out(bgr.rows, bgr.cols, CV_8UC3);
  cv::cvtColor(bgr, out, cv::COLOR_BGR2RGB);
  *rows = out.rows;
  *cols = out.cols;
  rgb->resize(static_cast<size_t>(out.rows) * out.cols * 3);
  for (int y = 0; y < out.rows; ++y)
    std::memcpy(rgb->data() + static_cast<size_t>(y) * out.cols * 3, out.ptr<uint8_t>(y),
                static_cast<size_t>(out.cols) * 3);
  return Status::Ok();
}

Status DecodeAndPreprocess(const std::string& bytes, int size, const std::string& preset,
                           float* out) {
  std::vector<uint8_t> rgb;
  int rows = 0, cols = 0;
  ND_RETURN_IF_ERROR(DecodeRgb(bytes, &rgb, &rows, &cols));
  return PreprocessRgb(rgb.data(), rows, cols, size, preset, out);
}

}  // namespace nd
