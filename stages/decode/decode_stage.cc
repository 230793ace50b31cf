#include "stages/decode/decode_stage.h"

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <fstream>
#include <iterator>
#include <opencv2/core.hpp>
#include <opencv2/imgcodecs.hpp>
#include <opencv2/imgproc.hpp>
#include <thread>

#include "common/digest.h"

namespace nd {

struct DecodeStage::Slot {
  enum State { kSkipped, kCached, kDecoded } state = kSkipped;
  std::string digest;
  std::string reason;
  std::vector<float> pixels;  // 3*S*S when decoded
  bool from_memo = false;     // digest from the memo: the file was not hashed
  bool hashed = false;        // `entry` holds this file's identity and digest for the memo
  FileDigestEntry entry;
};

DecodeStage::DecodeStage(const BrodenDataset& dataset, const DecodeOptions& options,
                         std::function<bool(const std::string&)> is_cached)
    : dataset_(dataset), options_(options), is_cached_(std::move(is_cached)) {
  if (options_.workers <= 0) options_.workers = std::max(1u, std::thread::hardware_concurrency());
}

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

bool IsTruncatedJpeg(const std::string& bytes) {
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

void DecodeStage::DecodeOne(size_t row, Slot* slot) const {
  const BrodenImage& image = dataset_.images()[row];
  auto path = dataset_.ResolveImagePath(image.image);
  if (!path.ok()) {
    slot->reason = path.status().message();
    return;
  }
  if (memo_lookup_) {
    // The identity is read before the bytes: a file changed after this point gets a newer ctime,
    // so a stale digest can never be recorded under its new identity.
    slot->entry.stat_time_ns = WallClockNs();
    if (ReadFileIdentity(*path, &slot->entry.identity)) {
      slot->entry.path = *path;
      std::string known = memo_lookup_(*path, slot->entry.identity);
      if (!known.empty() && is_cached_ && is_cached_(known)) {
        slot->digest = std::move(known);
        slot->from_memo = true;
        slot->state = Slot::kCached;
        return;
      }
    }
  }
  std::ifstream in(*path, std::ios::binary);
  if (!in.is_open()) {
    const int err = errno;  // set by the failed open(2) underneath
    slot->reason = image.image + ": cannot open: " + (err ? std::strerror(err) : "unknown error");
    return;
  }
  std::string bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  if (!in.good() && !in.eof()) {
    slot->reason = image.image + ": cannot read file";
    return;
  }
  if (bytes.empty()) {
    slot->reason = image.image + ": missing or empty file";
    return;
  }
  if (IsTruncatedJpeg(bytes)) {
    // libjpeg "decodes" a truncated file by filling the rest with grey and only warns.
    slot->reason = image.image + ": truncated JPEG (no end-of-image marker)";
    return;
  }
  slot->digest = Sha256Hex(bytes);
  if (memo_lookup_ && !slot->entry.path.empty()) {
    slot->entry.digest = slot->digest;
    slot->hashed = true;
  }
  if (is_cached_ && is_cached_(slot->digest)) {
    slot->state = Slot::kCached;
    return;
  }
  cv::Mat raw(1, static_cast<int>(bytes.size()), CV_8UC1, bytes.data());
  cv::Mat bgr;
  try {
    bgr = cv::imdecode(raw, cv::IMREAD_COLOR);
  } catch (const cv::Exception& e) {
    bgr.release();
  }
  if (bgr.empty()) {
    slot->reason = image.image + ": not a decodable image (corrupt or truncated)";
    return;
  }
  cv::Mat rgb;
  cv::cvtColor(bgr, rgb, cv::COLOR_BGR2RGB);
  const int s = options_.input_size;
  slot->pixels.resize(static_cast<size_t>(3) * s * s);
  Status st =
      PreprocessRgb(rgb.data, rgb.rows, rgb.cols, s, options_.preprocess, slot->pixels.data());
  if (!st.ok()) {
    slot->reason = image.image + ": " + st.message();
    return;
  }
  slot->state = Slot::kDecoded;
}

void DecodeStage::SetDigestMemo(
    std::function<std::string(const std::string&, const FileIdentity&)> lookup) {
  memo_lookup_ = std::move(lookup);
}

std::vector<FileDigestEntry> DecodeStage::TakeHashedFiles() {
  std::vector<FileDigestEntry> out;
  out.swap(hashed_);
  return out;
}

std::optional<ImageBatch> DecodeStage::Next() {
  const size_t total = dataset_.images().size();
  if (next_row_ >= total) return std::nullopt;
  const size_t begin = next_row_;
  const size_t end = std::min(total, begin + static_cast<size_t>(options_.batch_size));
  next_row_ = end;
  std::vector<Slot> slots(end - begin);
  const int workers = std::min<int>(options_.workers, static_cast<int>(slots.size()));
  std::vector<std::thread> threads;
  for (int t = 1; t < workers; ++t)
    threads.emplace_back([&, t] {
      for (size_t i = t; i < slots.size(); i += workers) DecodeOne(begin + i, &slots[i]);
    });
  for (size_t i = 0; i < slots.size(); i += workers) DecodeOne(begin + i, &slots[i]);
  for (auto& th : threads) th.join();

  ImageBatch batch;
  batch.batch_id = next_batch_++;
  batch.height = batch.width = options_.input_size;
  size_t decoded = 0;
  for (const Slot& s : slots) decoded += s.state == Slot::kDecoded;
  const size_t per_image = static_cast<size_t>(3) * options_.input_size * options_.input_size;
  batch.tensor.resize(decoded * per_image * sizeof(float));
  char* dst = batch.tensor.data();
  for (size_t i = 0; i < slots.size(); ++i) {
    const uint32_t row = static_cast<uint32_t>(dataset_.images()[begin + i].row);
    Slot& s = slots[i];
    rows_from_memo_ += s.from_memo;
    if (s.hashed) hashed_.push_back(std::move(s.entry));
    switch (s.state) {
      case Slot::kSkipped:
        batch.skipped.push_back({row, s.reason});
        break;
      case Slot::kCached:
        batch.cached.push_back({row, s.digest});
        break;
      case Slot::kDecoded:
        batch.images.push_back({row, s.digest});
        std::memcpy(dst, s.pixels.data(), per_image * sizeof(float));
        dst += per_image * sizeof(float);
        break;
    }
  }
  return batch;
}

}  // namespace nd
