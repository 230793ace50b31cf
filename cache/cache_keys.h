// Keys of the activation cache and the per-layer manifest record. Layout in cache/FORMAT.md.
//
// Every key is printable ASCII, "<kind>/<group>/<rest>", so that keys of one kind and one layer
// are contiguous in LMDB's sorted order and a prefix scan finds them:
//   a/<layer-hash>/<image-sha256>   activation record of one image at one layer
//   t/<layer-hash>/<quantile-bits>  per-unit thresholds of one layer at one quantile
//   m/<layer-hash>/                 the layer's manifest (human-readable names, for `cache stats`)
//   b/<namespace>/<name>            other blobs (label maps, per-image label indexes, ...)
// <layer-hash> is 32 hex digits naming (model file digest, preprocessing preset, input size,
// layer, dtype): changing any of them gives other keys, so a new model or preprocessing can never
// hit stale entries. All functions are pure and thread-safe.
#pragma once

#include <string>
#include <string_view>

#include "cache/activation_record.h"
#include "common/base/status.h"

namespace nd {

// What an activation was computed from. dtype is part of the identity so that a float32 run
// (exact parity with float32 tools) never reads float16 values cached by an earlier run.
struct LayerId {
  std::string model_digest_hex;  // Sha256File(model.path)
  std::string preprocess;        // "torchvision" | "netdissect"
  int input_size = 0;            // model.input_size
  std::string layer;             // module path, e.g. "layer4"
  DType dtype = DType::kFloat16;
};

inline constexpr size_t kLayerHashHexLength = 32;
inline constexpr size_t kLayerKeyPrefixLength = 2 + kLayerHashHexLength + 1;  // "a/" hash "/"

// 32 lowercase hex digits: the first 16 bytes of SHA-256 over a versioned, length-delimited
// encoding of the LayerId fields (so "ab"+"c" and "a"+"bc" differ).
std::string LayerHash(const LayerId& id);

// "a/<layer-hash>/": the prefix of every activation key of this layer (35 characters).
std::string LayerKeyPrefix(const LayerId& id);
// Convenience form of LayerKeyPrefix with dtype float16.
std::string LayerKeyPrefix(const std::string& model_digest_hex, const std::string& preprocess,
                           int input_size, const std::string& layer);

// prefix + image digest. REQUIRES: layer_prefix from LayerKeyPrefix; image_digest_hex is the
// 64-hex-digit SHA-256 of the image file's bytes (fixed width keeps keys sortable).
std::string ActivationKey(std::string_view layer_prefix, std::string_view image_digest_hex);

// "t/<layer-hash>/<16 hex digits of the IEEE-754 bits of quantile>": exact, so 0.005 and
// 0.0050000000000000001 (the same double) share a key and any other value does not.
std::string ThresholdKey(const LayerId& id, double quantile);

// "q/<layer-hash>/<image-set>": calibrate's exact top tails of the layer's units over one image
// set (cache/FORMAT.md; image_set_hex from ImageSetDigest in pipeline_keys.h).
std::string TailsKey(const LayerId& id, std::string_view image_set_hex);

// "m/<layer-hash>/".
std::string ManifestKey(const LayerId& id);

// "b/<ns>/<name>". REQUIRES: ns is non-empty and contains no '/'.
std::string BlobKey(std::string_view ns, std::string_view name);

// The group of a key: everything up to and including its second '/', or the whole key if it has
// fewer than two. `cache stats` aggregates by group.
std::string_view KeyGroup(std::string_view key);

// The 32-hex-digit layer hash inside an "a/", "t/" or "m/" key or group; "" for other keys.
std::string_view KeyLayerHash(std::string_view key);

// Human-readable description of one cached layer, stored under ManifestKey(id()) by whoever
// writes the layer's first activations, so that `cache stats` can print names instead of hashes.
struct LayerManifest {
  std::string model_path;  // as configured; informational only (the digest is the identity)
  std::string model_digest_hex;
  std::string preprocess;
  int input_size = 0;
  std::string layer;
  DType dtype = DType::kFloat16;
  int units = 0, h = 0, w = 0;  // shape of one activation map; 0 when unknown
  // When a run that used this layer last finished (Unix seconds), stamped by `nd-pipeline up`
  // after a successful run (RecordLayerUse); 0 when unknown (not yet stamped). `cache gc
  // --older-than` reads it.
  int64_t last_used_unix = 0;

  LayerId id() const { return LayerId{model_digest_hex, preprocess, input_size, layer, dtype}; }
};

// Text, one "key=value" per line after a "nd-layer-manifest 1" line; '\\' and newlines in values
// are escaped as "\\\\" and "\\n".
std::string EncodeLayerManifest(const LayerManifest& manifest);
// Errors: DataLoss naming the missing field or bad line. Unknown keys are ignored (forward
// compatibility).
[[nodiscard]] Status DecodeLayerManifest(std::string_view text, LayerManifest* out);

}  // namespace nd
