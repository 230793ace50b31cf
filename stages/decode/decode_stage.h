// DecodeStage: turns the rows of a Broden index into normalised image batches (SPEC.md §2 step 1).
//
// For each row, in index.csv order: read the file once, take the SHA-256 of its bytes (the
// image's content digest, part of the cache key), and if `is_cached(digest)` says activations for
// every requested layer already exist, pass the image on as cached without decoding it. Otherwise
// decode it (OpenCV), convert to RGB, resize to input_size×input_size by bilinear interpolation on
// float values when the size differs, and normalise:
//   torchvision: (RGB/255 − (0.485, 0.456, 0.406)) / (0.229, 0.224, 0.225)
//   netdissect:  (RGB − (124.6901, 118.6897, 109.5388)) / 57.12
// into a float32 [n, 3, S, S] tensor. When every decoded image of a batch is S×S already (no
// resize), the batch carries their 8-bit RGB instead (ImageBatch::kRgb8, a quarter of the bytes)
// and extract normalises them with the same operations (common/preprocess/normalize.h). A file
// that is missing, escapes the dataset root, or does not decode is skipped with a one-line reason
// naming the file; the stream goes on.
//
// Decoding of one batch is spread over `workers` threads. Not thread-safe itself (one caller).
#pragma once

#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "common/base/file_identity.h"
#include "common/base/status.h"
#include "common/broden/broden_dataset.h"
#include "common/preprocess/normalize.h"
#include "common/runtime/wire.h"

namespace nd {

struct DecodeOptions {
  int input_size = 224;
  std::string preprocess = "torchvision";  // or "netdissect"
  int batch_size = 32;
  int workers = 0;  // 0 = hardware threads
  // The rows to read, [first_row, end_row) of index.csv's usable rows (a sharded run's slice,
  // config.h ShardRows); rows past the dataset's end are ignored.
  size_t first_row = 0;
  size_t end_row = SIZE_MAX;
};

class DecodeStage {
 public:
  // `dataset` must outlive the stage. `is_cached` may be empty (nothing is cached); it is called
  // from worker threads and must be thread-safe.
  DecodeStage(const BrodenDataset& dataset, const DecodeOptions& options,
              std::function<bool(const std::string& digest)> is_cached);

  // The digest memo (cache/file_digest_memo.h): `lookup(path, identity)` returns the SHA-256 hex
  // recorded for the file with that stat identity, or "" (then the file is read and hashed). With
  // a memo, each row's file is stat'ed before it is read; a remembered digest whose activations
  // are cached makes the row cached without opening the file, and every file hashed is reported
  // by TakeHashedFiles() for the caller to record. `lookup` is called from worker threads and
  // must be thread-safe. Without a memo (the default) every file is read and hashed.
  void SetDigestMemo(std::function<std::string(const std::string&, const FileIdentity&)> lookup);

  // The next batch (up to batch_size rows, some possibly cached or skipped), or nullopt at the
  // end of the index.
  std::optional<ImageBatch> Next();

  // Files hashed since the last call (with a memo set), in row order.
  std::vector<FileDigestEntry> TakeHashedFiles();
  // Rows whose digest came from the memo (their files were not hashed), since the start.
  size_t rows_from_memo() const { return rows_from_memo_; }

  size_t rows_done() const { return next_row_ - first_row_; }
  size_t rows_total() const { return end_row_ - first_row_; }

 private:
  struct Slot;
  void DecodeOne(size_t row, Slot* slot) const;

  const BrodenDataset& dataset_;
  DecodeOptions options_;
  std::function<bool(const std::string&)> is_cached_;
  StatusOr<Normalization> normalization_;  // of options.preprocess
  std::function<std::string(const std::string&, const FileIdentity&)> memo_lookup_;
  std::vector<FileDigestEntry> hashed_;
  size_t rows_from_memo_ = 0;
  size_t first_row_ = 0, end_row_ = 0;  // the rows read (DecodeOptions), clamped to the dataset
  size_t next_row_ = 0;
  uint64_t next_batch_ = 0;
};

}  // namespace nd
