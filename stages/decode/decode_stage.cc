#include "stages/decode/decode_stage.h"

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <fstream>
#include <iterator>
#include <thread>

#include "common/base/digest.h"
#include "common/base/parallel.h"
#include "common/preprocess/normalize.h"
#include "common/preprocess/preprocess.h"

namespace nd {

struct DecodeStage::Slot {
  enum State { kSkipped, kCached, kDecoded } state = kSkipped;
  std::string digest;
  std::string reason;
  std::vector<float> pixels;  // 3*S*S normalised, when decoded and resized
  std::vector<uint8_t> rgb;   // S*S*3 as decoded, when the image needed no resize
  bool from_memo = false;     // digest from the memo: the file was not hashed
  bool hashed = false;        // `entry` holds this file's identity and digest for the memo
  FileDigestEntry entry;
};

DecodeStage::DecodeStage(const BrodenDataset& dataset, const DecodeOptions& options,
                         std::function<bool(const std::string&)> is_cached)
    : dataset_(dataset),
      options_(options),
      is_cached_(std::move(is_cached)),
      normalization_(NormalizationFor(options.preprocess)) {
  options_.workers = WorkerCount(options_.workers);
  const size_t rows = dataset_.images().size();
  end_row_ = std::min(options_.end_row, rows);
  first_row_ = std::min(options_.first_row, end_row_);
  next_row_ = first_row_;
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
    // Checked before hashing: such a file is skipped whatever the cache holds.
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
  const int s = options_.input_size;
#ifdef ND_DECODE_RELAY
  // nd-stage-decode-relay runs with extract's relay, when every image was cached at plan time: an
  // image to decode means its file changed since. It goes on as one to forward (zero pixels), and
  // the extract relay stops the run naming its row (stages/extract/relay_pool.h).
  slot->pixels.assign(static_cast<size_t>(3) * s * s, 0.0f);
  slot->state = Slot::kDecoded;
  return;
#else
  std::vector<uint8_t> rgb;
  int rows = 0, cols = 0;
  Status st = DecodeRgb(bytes, &rgb, &rows, &cols);
  if (st.ok() && rows == s && cols == s && normalization_.ok()) {
    slot->rgb = std::move(rgb);  // sent as it is; extract normalises (normalize.h)
    slot->state = Slot::kDecoded;
    return;
  }
  if (st.ok()) {
    slot->pixels.resize(static_cast<size_t>(3) * s * s);
    st = PreprocessRgb(rgb.data(), rows, cols, s, options_.preprocess, slot->pixels.data());
  }
  if (!st.ok()) {
    slot->reason = image.image + ": " + st.message();
    return;
  }
  slot->state = Slot::kDecoded;
#endif
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
  const size_t total = end_row_;
  if (next_row_ >= total) return std::nullopt;
  const size_t begin = next_row_;
  const size_t end = std::min(total, begin + static_cast<size_t>(options_.batch_size));
  next_row_ = end;
  std::vector<Slot> slots(end - begin);
  const int workers = std::min<int>(options_.workers, static_cast<int>(slots.size()));
  auto decode_share = [&](int t) {
    for (size_t i = t; i < slots.size(); i += workers) DecodeOne(begin + i, &slots[i]);
  };
  if (!RunOnThreads(workers, decode_share, "decode").ok()) {
    // No thread could start (resource limits): decode the batch on this thread.
    for (size_t i = 0; i < slots.size(); ++i) DecodeOne(begin + i, &slots[i]);
  }

  ImageBatch batch;
  batch.batch_id = next_batch_++;
  batch.height = batch.width = options_.input_size;
  size_t decoded = 0, raw = 0;
  for (const Slot& s : slots) {
    decoded += s.state == Slot::kDecoded;
    raw += s.state == Slot::kDecoded && !s.rgb.empty();
  }
  // Every decoded image at the input size: the batch carries their 8-bit RGB (a quarter of the
  // bytes through the sockets); otherwise all go normalised in float32.
  const bool rgb8 = decoded > 0 && raw == decoded;
  batch.pixel_format = rgb8 ? ImageBatch::kRgb8 : ImageBatch::kNormalizedFloat32;
  const size_t plane = static_cast<size_t>(options_.input_size) * options_.input_size;
  const size_t per_image = 3 * plane;
  batch.tensor.resize(decoded * per_image * (rgb8 ? sizeof(uint8_t) : sizeof(float)));
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
        if (rgb8) {
          std::memcpy(dst, s.rgb.data(), per_image);
          dst += per_image;
        } else {
          if (!s.rgb.empty()) {
            NormalizeRgb8(s.rgb.data(), plane, *normalization_, reinterpret_cast<float*>(dst));
          } else {
            std::memcpy(dst, s.pixels.data(), per_image * sizeof(float));
          }
          dst += per_image * sizeof(float);
        }
        break;
    }
  }
  return batch;
}

}  // namespace nd
