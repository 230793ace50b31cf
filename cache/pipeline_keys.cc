#include "cache/pipeline_keys.h"

#include <algorithm>
#include <charconv>
#include <cstring>
#include <optional>

#include "cache/file_digest_memo.h"
#include "common/base/digest.h"
#include "common/base/file_identity.h"

namespace nd {

StatusOr<std::string> ModelEntryDigest(const PipelineConfig& config, const ModelEntry& model,
                                       ActivationCache* memo_cache) {
  if (!model.digest.empty()) return model.digest;
  std::optional<FileDigestMemo> memo;
  FileDigestEntry entry;
  entry.stat_time_ns = WallClockNs();
  const bool have_identity = memo_cache != nullptr && !config.decode.rehash &&
                             ReadFileIdentity(model.path, &entry.identity);
  if (have_identity) {
    memo.emplace(memo_cache);
    std::string known = memo->Lookup(model.path, entry.identity);
    if (!known.empty()) return known;
  }
  auto digest = Sha256File(model.path);
  if (!digest.ok())
    return digest.status().WithContext(
        model.name.empty() ? "[model].path" : "[[models]] \"" + model.name + "\" .path");
  if (have_identity) {
    entry.path = model.path;
    entry.digest = *digest;
    // Only saves work next time: a failure to remember is not an error.
    (void)memo->Record({entry});
  }
  return *digest;
}

StatusOr<std::string> ModelDigest(const PipelineConfig& config, ActivationCache* memo_cache) {
  return ModelEntryDigest(config, ConfiguredModels(config).front(), memo_cache);
}

StatusOr<std::vector<LayerId>> ConfiguredLayers(const PipelineConfig& config) {
  ND_ASSIGN_OR_RETURN(DType dtype, ParseDType(config.cache.dtype));
  std::vector<LayerId> ids;
  for (const ModelEntry& model : ConfiguredModels(config)) {
    ND_ASSIGN_OR_RETURN(std::string digest, ModelEntryDigest(config, model));
    for (const std::string& layer : config.model.layers)
      ids.push_back(
          LayerId{digest, config.model.preprocess, config.model.input_size, layer, dtype});
  }
  return ids;
}

StatusOr<std::vector<UnitSet>> ConfiguredUnitSets(const PipelineConfig& config) {
  ND_ASSIGN_OR_RETURN(std::vector<LayerId> layers, ConfiguredLayers(config));
  const std::vector<ModelEntry> models = ConfiguredModels(config);
  const size_t per_model = config.model.layers.size();
  // A file basis's identity: the digest of its bytes, hashed once for every model.
  std::vector<std::string> file_specs(config.views.size());
  for (size_t v = 0; v < config.views.size(); ++v) {
    const ViewConfig& view = config.views[v];
    if (view.basis != "file") continue;
    auto digest = Sha256File(view.path);
    if (!digest.ok()) return digest.status().WithContext("[[view]] \"" + view.name + "\" .path");
    file_specs[v] = "file:sha256=" + *digest;
  }
  std::vector<UnitSet> sets;
  for (size_t m = 0; m < models.size(); ++m) {
    const std::string prefix = ModelResultPrefix(models[m]);
    for (size_t l = 0; l < per_model; ++l) {
      UnitSet set;
      set.name = prefix + config.model.layers[l];
      set.model = m;
      set.source = m * per_model + l;
      set.id = layers[set.source];
      sets.push_back(std::move(set));
    }
    for (size_t v = 0; v < config.views.size(); ++v) {
      const ViewConfig& view = config.views[v];
      size_t l = 0;
      while (l < per_model && config.model.layers[l] != view.layer) ++l;
      if (l == per_model)
        return InvalidArgument("[[view]] \"" + view.name + "\" .layer: \"" + view.layer +
                               "\" is not one of model.layers");
      for (double alpha : view.alpha) {
        UnitSet set;
        set.name = prefix + ViewResultName(view, alpha);
        set.model = m;
        set.source = m * per_model + l;
        set.id = layers[set.source];
        char buffer[64];
        char* end = std::to_chars(buffer, buffer + sizeof buffer, alpha).ptr;
        set.id.layer +=
            "|view|" + (view.basis == "file" ? file_specs[v]
                                             : "rotation:seed=" + std::to_string(view.seed) +
                                                   ":alpha=" + std::string(buffer, end));
        set.view = static_cast<int>(v);
        set.alpha = alpha;
        sets.push_back(std::move(set));
      }
    }
  }
  return sets;
}

CacheOptions CacheOptionsFor(const PipelineConfig& config, bool read_only) {
  CacheOptions o;
  o.dir = config.cache.dir;
  o.map_size_bytes = static_cast<uint64_t>(config.cache.map_size_mb) << 20;
  o.read_only = read_only;
  return o;
}

Status RecordLayerUse(const PipelineConfig& config, ActivationCache& cache, int64_t now_unix) {
  ND_ASSIGN_OR_RETURN(std::vector<LayerId> layers, ConfiguredLayers(config));
  std::vector<std::pair<std::string, std::string>> records;
  for (const LayerId& id : layers) {
    const std::string key = ManifestKey(id);
    std::string text;
    Status got = cache.Get(key, &text);
    if (got.code() == StatusCode::kNotFound) continue;
    ND_RETURN_IF_ERROR(got);
    LayerManifest manifest;
    ND_RETURN_IF_ERROR(DecodeLayerManifest(text, &manifest).WithContext(key));
    manifest.last_used_unix = now_unix;
    records.emplace_back(key, EncodeLayerManifest(manifest));
  }
  if (records.empty()) return Status::Ok();
  return cache.PutBatch(records);
}

}  // namespace nd

namespace nd {

std::string ImageSetDigest(std::vector<std::string> image_digests) {
  std::sort(image_digests.begin(), image_digests.end());
  Sha256 h;
  for (const std::string& d : image_digests) {
    h.Update(d);
    h.Update("\n", 1);
  }
  auto digest = h.Finish();
  return ToHex(digest.data(), 8);
}

std::string ImageSetThresholdKey(const LayerId& id, double quantile,
                                 std::vector<std::string> image_digests) {
  return ThresholdKey(id, quantile) + ImageSetDigest(std::move(image_digests));
}

std::string EncodeThresholdValues(const std::vector<double>& values) {
  std::string out = "NDT1";
  uint32_t n = static_cast<uint32_t>(values.size());
  out.append(reinterpret_cast<const char*>(&n), 4);
  out.append(reinterpret_cast<const char*>(values.data()), values.size() * sizeof(double));
  return out;
}

Status DecodeThresholdValues(std::string_view record, std::vector<double>* values) {
  uint32_t n = 0;
  if (record.size() < 8 || record.substr(0, 4) != "NDT1")
    return DataLoss("threshold record: bad magic");
  std::memcpy(&n, record.data() + 4, 4);
  if (record.size() != 8 + static_cast<size_t>(n) * sizeof(double))
    return DataLoss("threshold record: " + std::to_string(record.size()) + " bytes for " +
                    std::to_string(n) + " units");
  values->resize(n);
  std::memcpy(values->data(), record.data() + 8, static_cast<size_t>(n) * sizeof(double));
  return Status::Ok();
}

}  // namespace nd
