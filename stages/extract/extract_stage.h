// ExtractStage: runs image batches through the model once and commits every captured layer's
// activations to the cache, one LMDB write transaction per batch (a crash loses at most the
// batch in flight). No sockets: main.cc feeds it ImageBatch messages and forwards ReadyBatch.
//
// The first batch of each layer also writes the layer's manifest record (names and shape, for
// `nd-pipeline cache stats`). Not thread-safe; one instance per process.
#pragma once

#include <memory>
#include <vector>

#include "cache/activation_cache.h"
#include "cache/cache_keys.h"
#include "common/config.h"
#include "common/status.h"
#include "common/wire.h"
#include "stages/extract/model_runner.h"

namespace nd {

class ExtractStage {
 public:
  // Loads the model (failing on an unknown layer or a bad file) and opens the cache.
  static StatusOr<std::unique_ptr<ExtractStage>> Open(const PipelineConfig& config);

  // Runs batch.images through the model, writes their activations, and fills `ready` with every
  // image of the batch that now has activations (run now or cached before), in row order.
  Status Process(const ImageBatch& batch, ReadyBatch* ready);

  uint64_t forward_images() const { return forward_images_; }
  double forward_seconds() const { return forward_seconds_; }

 private:
  ExtractStage() = default;
  PipelineConfig config_;
  std::vector<LayerId> layers_;
  std::vector<std::string> prefixes_;
  std::vector<bool> manifest_written_;
  std::unique_ptr<ModelRunner> model_;
  std::unique_ptr<ActivationCache> cache_;
  DType dtype_ = DType::kFloat16;
  uint64_t forward_images_ = 0;
  double forward_seconds_ = 0;
};

}  // namespace nd
