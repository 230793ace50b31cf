// The cache identities of a configured pipeline: one LayerId per configured layer, from the model
// file's digest, the preprocessing preset, the input size and cache.dtype. Every stage derives
// them the same way, so decode's "already cached?" and extract's writes agree by construction.
#pragma once

#include <vector>

#include "cache/activation_cache.h"
#include "cache/cache_keys.h"
#include "common/base/config.h"
#include "common/base/status.h"

namespace nd {

// A model's identity: SHA-256 of the model file (64 lowercase hex), not its path.
// model.digest when set (the supervisor hands its one computation to every stage); else, with
// `memo_cache`, the digest remembered for the file's unchanged stat identity
// (cache/file_digest_memo.h; not with decode.rehash), else the file is read and hashed (and the
// digest remembered in `memo_cache`). Errors: the file cannot be read ("[model].path: ..." or
// "[[models]] \"name\" .path: ...").
StatusOr<std::string> ModelEntryDigest(const PipelineConfig& config, const ModelEntry& model,
                                       ActivationCache* memo_cache = nullptr);
// ModelEntryDigest of the first (with [model].path: the only) model.
StatusOr<std::string> ModelDigest(const PipelineConfig& config,
                                  ActivationCache* memo_cache = nullptr);

// One LayerId per (model, layer): for every model of ConfiguredModels(config) in order, every
// layer of model.layers in order (index = model * layers + layer), with ModelEntryDigest (no memo:
// stages get the digests from the run's configuration).
StatusOr<std::vector<LayerId>> ConfiguredLayers(const PipelineConfig& config);

// What calibrate, score and the report score, in this order: for every model, every configured
// layer, then every [[view]] at every alpha (config order). A layer's values are its cached
// activations; a view's are its source layer's, transformed by the view's basis
// (common/maths/view_basis.h) when read.
struct UnitSet {
  std::string name;   // result folder under output.dir: ModelResultPrefix + the layer or the
                      // ViewResultName() (config.h ResultSetNames has the same names and order)
  size_t model = 0;   // index into ConfiguredModels(config)
  size_t source = 0;  // index into ConfiguredLayers(config): where the activations are read
  // The identity of the set's thresholds in the cache (ImageSetThresholdKey): the layer's own
  // LayerId, or for a view the source's with `layer` = "<layer>|view|<spec>", spec =
  // "rotation:seed=<seed>:alpha=<alpha, shortest exact form>" or "file:sha256=<of the .npy bytes>"
  // (so a changed matrix file never reuses old thresholds).
  LayerId id;
  int view = -1;  // index into config.views; -1 for a layer
  double alpha = 1;
  bool is_view() const { return view >= 0; }
};

// The sets of `config`. Errors: ConfiguredLayers'; a view's .npy file that cannot be read
// ("[[view]] \"name\" .path: ...").
StatusOr<std::vector<UnitSet>> ConfiguredUnitSets(const PipelineConfig& config);

CacheOptions CacheOptionsFor(const PipelineConfig& config, bool read_only = false);

// Stamps last_used_unix = now_unix into the manifest of every configured layer the cache holds a
// manifest for (one write transaction); layers without a manifest are left alone. Called by
// `nd-pipeline up` after a successful run, so `cache gc --older-than` knows what is in use.
// Errors: IoError/DataLoss from the cache, naming the key.
[[nodiscard]] Status RecordLayerUse(const PipelineConfig& config, ActivationCache& cache,
                                    int64_t now_unix);

}  // namespace nd

namespace nd {

// The identity of a set of images: the first 16 hex digits of SHA-256 over their digests sorted
// bytewise, each followed by "\n" (order and batching do not matter; duplicates do).
std::string ImageSetDigest(std::vector<std::string> image_digests);

// The key of a layer's thresholds at quantile q over one set of images: ThresholdKey(id, q)
// followed by ImageSetDigest(image_digests). Two runs over
// different datasets sharing one cache can therefore never read each other's thresholds.
std::string ImageSetThresholdKey(const LayerId& id, double quantile,
                                 std::vector<std::string> image_digests);

// Per-unit thresholds as stored under ThresholdKey(): "NDT1", u32 unit count, then the doubles
// (IEEE-754, little-endian). Exact: a threshold read back equals the one computed.
std::string EncodeThresholdValues(const std::vector<double>& values);
Status DecodeThresholdValues(std::string_view record, std::vector<double>* values);

}  // namespace nd
