// ActivationWriter: the extract stage's cache writer. Turns one batch's forward outputs into
// activation-cache records (cache/activation_record.h, cache/FORMAT.md) and commits them, one LMDB
// write transaction per batch and every configured layer in it: either all layers of a batch's
// images are in the cache or none is (a crash loses at most the batches in flight).
//
// The first committed batch of each layer also writes the layer's manifest record (names and
// shape, for `nd-pipeline cache stats`).
//
// Encode and Commit are separate so that several threads can encode (float16 conversion and
// CRC-32 are the CPU-heavy part) while commits take turns.
//
// Ownership and threads: owns its ActivationCache handle. Thread-safe: Encode may run in any
// number of threads at once (it only reads the writer's fixed state); Commit serialises on an
// internal mutex, so batches are committed one transaction at a time in the order Commit is called.
#pragma once

#include <torch/types.h>

#include <array>
#include <memory>
#include <mutex>
#include <string>
#include <utility>
#include <vector>

#include "cache/activation_cache.h"
#include "cache/activation_record.h"
#include "cache/cache_keys.h"
#include "common/base/config.h"
#include "common/base/status.h"
#include "common/runtime/wire.h"

namespace nd {

// One batch, encoded and ready to commit.
struct EncodedBatch {
  uint64_t batch_id = 0;
  std::vector<ImageRef> images;  // ran through the network, in tensor order
  std::vector<ImageRef> cached;  // already in the cache; only passed on
  std::vector<SkippedRow> skipped;
  // (key, record) for every layer (outer) and image (inner), in that order; empty when the batch
  // had no images to run.
  std::vector<std::pair<std::string, std::string>> records;
  // Per configured layer, the [units, h, w] of this batch's outputs (for the manifest); empty
  // when the batch had no images.
  std::vector<std::array<int, 3>> shapes;
};

class ActivationWriter {
 public:
  // Derives the layer identities (reads and hashes model.path) and opens the cache read-write.
  // Errors: those of ConfiguredLayers, ParseDType(cache.dtype) and ActivationCache::Open.
  [[nodiscard]] static StatusOr<std::unique_ptr<ActivationWriter>> Open(
      const PipelineConfig& config);

  ActivationWriter(const ActivationWriter&) = delete;
  ActivationWriter& operator=(const ActivationWriter&) = delete;

  // The record dtype (cache.dtype).
  DType dtype() const { return dtype_; }
  // model.layers.size(): outputs come model-major, this many per model.
  size_t layers_per_model() const { return per_model_; }
  // Whether the cache holds a current record of every layer of model `model` (ConfiguredModels
  // order) for every image of `images`. Errors: the cache's.
  [[nodiscard]] StatusOr<bool> HasAllRecords(size_t model,
                                             const std::vector<ImageRef>& images) const;

  // Encodes `outputs` (one tensor per configured layer (ConfiguredLayers order: model-major, then
  // model.layers order); an undefined tensor for the layers of a model that did not run; each a
  // contiguous CPU tensor of shape [batch.images.size(), units, h, w], float32 as ModelRunner::Run
  // returns them; float16 is also accepted and widened exactly) as records keyed by the images'
  // digests. Takes the batch's image lists; its tensor is not needed. Errors: InvalidArgument
  // naming the layer and row for a shape or dtype mismatch. REQUIRES: outputs is empty when
  // batch.images is empty.
  [[nodiscard]] StatusOr<EncodedBatch> Encode(ImageBatch batch,
                                              const std::vector<torch::Tensor>& outputs) const;

  // Adds the manifest record of every layer whose manifest this writer has not committed yet,
  // writes everything in ONE write transaction (none when the batch had no images), and fills
  // `ready` with every image of the batch that now has activations (run now or cached before),
  // in row order, plus the batch's skipped rows. On error nothing of the batch is stored and
  // `ready` is unspecified. Errors: those of ActivationCache::PutBatch (naming the cache dir).
  [[nodiscard]] Status Commit(EncodedBatch batch, ReadyBatch* ready);

 private:
  ActivationWriter() = default;

  PipelineConfig config_;
  std::vector<LayerId> layers_;
  std::vector<std::string> model_paths_;  // per entry of layers_
  size_t per_model_ = 1;
  std::vector<std::string> prefixes_;
  DType dtype_ = DType::kFloat16;
  std::unique_ptr<ActivationCache> cache_;

  std::mutex commit_mu_;                // serialises Commit
  std::vector<bool> manifest_written_;  // guarded by commit_mu_
};

}  // namespace nd
