// Dissector: the score stage's logic (SPEC.md §2 steps 3-8) for one layer, without sockets.
//
// Given an opened BrodenDataset (with its category selection), the index.csv rows to score, the
// per-unit thresholds T_u and a callback that fetches one image's activations, Run() streams the
// images through `workers` threads, each with its own IouTally shard and scratch buffers, merges
// the shards (exact int64 sums, so the result does not depend on the order of images or the number
// of workers) and computes LayerResults.
//
// Skips: an image whose labels cannot be read (BrodenDataset::ReadLabels or LabelIndex::Build
// fails) or whose activations cannot be fetched (the callback fails, or returns a map with
// non-positive size or the wrong number of values) is skipped and reported with its reason in
// ScoreReport::skipped; the run goes on. A map whose number of units differs from the number of
// thresholds is a configuration error: Run() stops and returns FailedPrecondition.
//
// Label indexes: by default each image's LabelIndex is built inside Run() and dropped after use.
// PrepareLabels() builds them ahead of time (e.g. while the network runs) and keeps them, so that
// Run() only streams activations; SetLabelIndex() supplies one built elsewhere (e.g. read back
// from a cache). A prepared failure is remembered and reported as that image's skip reason.
// Memory: a LabelIndex of a 112×112 Broden image is a few KiB (LabelIndex::MemoryBytes();
// PreparedLabelBytes() sums them).
//
// Thread-safety: a Dissector is not thread-safe: PrepareLabels(), SetLabelIndex(), Run() and
// the accessors must not overlap (call them from one thread, or serialise them). Inside Run() and
// PrepareLabels() the stage uses its own worker threads; the fetch callback is called
// concurrently from up to `workers` of them and must be thread-safe. The dataset must outlive the
// stage.
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "common/base/activation_map.h"
#include "common/base/status.h"
#include "common/broden/broden_dataset.h"
#include "common/maths/iou_tally.h"
#include "common/maths/label_index.h"
#include "common/maths/layer_results.h"
#include "common/maths/unit_mask.h"

namespace nd {

// Which code computes the counts; both give identical counts (tensor_scorer.h).
enum class ScoreEngine {
  kNative,  // bit-mask scorer on the CPU (unit_mask.h, iou_tally.h)
  kTensor,  // LibTorch tensor scorer on `device` (tensor_scorer.h), one per worker thread
};

// What Dissector needs of a device scorer (the tensor engine, tensor_scorer.h): it counts into
// its own state and adds the counts to an IouTally at the end. One instance per worker thread.
class DeviceScorer {
 public:
  virtual ~DeviceScorer() = default;
  virtual Status AddImage(const LabelIndex& labels, const ActivationMap& acts) = 0;
  virtual Status AddCountsTo(IouTally* tally) = 0;
  virtual StatusOr<MaskStats> TakeMaskStats() = 0;
};

// Makes the tensor engine's scorers. It lives in its own library (nd_score_tensor, LibTorch) that
// only nd-stage-score-tensor links, so the CPU scorer process never loads LibTorch.
struct DeviceScorerFactory {
  // Checks the device at startup: InvalidArgument / FailedPrecondition, one line.
  std::function<Status(const std::string& device)> check_device;
  std::function<StatusOr<std::unique_ptr<DeviceScorer>>(
      const std::vector<double>& thresholds, int num_labels, int num_categories, UnionRule rule,
      const std::string& device, int64_t chunk_bytes)>
      create;
};

struct ScoreOptions {
  UnionRule union_rule = UnionRule::kPaper;   // config [score] union = "paper" | "lite"
  double iou_threshold = 0.04;                // config [score] iou_threshold; detector if IoU > it
  int workers = 0;                            // threads; 0 = std::thread::hardware_concurrency()
  ScoreEngine engine = ScoreEngine::kNative;  // score main: kTensor when score.device != "cpu"
  std::string device = "cpu";  // the tensor engine's device: "cpu" | "cuda" | "cuda:N"
  int64_t tensor_chunk_bytes = int64_t{512} << 20;  // tensor engine: device memory of all workers'
                                                    // unit chunks together, approx.
  // kTensor: the engine (TensorEngine() in tensor_scorer.h); Create fails without it.
  DeviceScorerFactory tensor_engine;
};

struct SkippedImage {
  size_t row = 0;      // index.csv data row (0-based)
  std::string reason;  // one line
};

struct ScoreReport {
  LayerResults results;
  int64_t images_scored = 0;
  int64_t images_skipped = 0;
  std::vector<SkippedImage> skipped;  // sorted by row
  int64_t label_read_failures = 0;    // of images_skipped: labels unreadable
  int64_t fetch_failures = 0;         // of images_skipped: activations unavailable or malformed
  // Pixels of the scored images that carry one label in more than one layer
  // (LabelIndex::repeated_label_pixels); 0 for real Broden and generated data.
  int64_t repeated_label_pixels = 0;
  MaskStats masks;         // maps, maps skipped by max <= T, cell decisions
  double cpu_seconds = 0;  // CPU time of the worker threads, fetch callback included
  double wall_seconds = 0;
  int workers = 0;  // threads used
  // The merged counts the results were computed from (a sharded run's score task writes them
  // out; common/results/shard_files.h). Never null after a successful Run().
  std::shared_ptr<const IouTally> tally;
};

class Dissector {
 public:
  // Fetches image `row`'s activations into `out` (reuse its buffer). Called concurrently.
  using FetchFn = std::function<Status(size_t row, ActivationMap* out)>;

  // REQUIRES: `dataset` outlives the stage. Errors: iou_threshold NaN, workers < 0; for the
  // tensor engine, a device that is malformed or unavailable (CheckTensorDevice()), so a CUDA
  // device requested on a machine without one fails here, at startup.
  static StatusOr<std::unique_ptr<Dissector>> Create(const BrodenDataset* dataset,
                                                     const ScoreOptions& options);

  // Reads the labels of `rows` and builds their indexes now, on the stage's workers; keeps them
  // for Run(). Rows already prepared are skipped. Per-image failures are remembered (not
  // returned); the error is InvalidArgument for a row outside index.csv.
  Status PrepareLabels(const std::vector<size_t>& rows);

  // Supplies the index of `row` (replacing a prepared one). Errors: row outside index.csv; an index
  // whose size differs from the row's sh×sw or built for another label table.
  Status SetLabelIndex(size_t row, std::shared_ptr<const LabelIndex> index);

  // The prepared index of `row`, or nullptr (not prepared, or preparation failed).
  std::shared_ptr<const LabelIndex> PreparedLabelIndex(size_t row) const;
  size_t PreparedLabelBytes() const;
  // Drops all prepared indexes.
  void ClearPreparedLabels();

  // Scores `rows` (any order, duplicates counted twice) with thresholds[u] = T_u.
  // Errors: a row outside index.csv, a NaN threshold, no thresholds, a map whose unit count
  // differs from thresholds.size(); with the tensor engine, a device failure (Internal). Per-image
  // problems are skips, not errors. With the tensor engine the report's mask stats hold only maps
  // and maps_skipped_max (there are no cells).
  StatusOr<ScoreReport> Run(const std::vector<size_t>& rows, const std::vector<double>& thresholds,
                            const FetchFn& fetch);

  const ScoreOptions& options() const { return options_; }
  int workers() const { return workers_; }

 private:
  struct Prepared {
    std::shared_ptr<const LabelIndex> index;
    std::string error;  // non-empty when preparation failed
  };
  Dissector(const BrodenDataset* dataset, const ScoreOptions& options);
  // Reads labels of `row` and builds its index.
  StatusOr<LabelIndex> BuildIndex(size_t row) const;
  struct Shard;  // one worker's tally and counters (dissector.cc)
  // Scores index.csv row `row` into *s, or records why it was skipped. Returns false when the run
  // must stop (s->fatal set: an activation map of the wrong size, a device failure).
  bool ScoreRow(size_t row, size_t units, const FetchFn& fetch, Shard* s) const;

  const BrodenDataset* dataset_;
  ScoreOptions options_;
  int workers_;
  std::vector<int> primary_;  // per label slot
  int num_categories_;
  std::vector<Prepared> prepared_;  // by row; empty entries when not prepared
};

}  // namespace nd
