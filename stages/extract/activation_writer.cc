#include "stages/extract/activation_writer.h"

#include <algorithm>
#include <cstring>

#include "cache/pipeline_keys.h"
#include "common/base/half.h"

namespace nd {

StatusOr<std::unique_ptr<ActivationWriter>> ActivationWriter::Open(const PipelineConfig& config) {
  std::unique_ptr<ActivationWriter> w(new ActivationWriter());
  w->config_ = config;
  ND_ASSIGN_OR_RETURN(w->layers_, ConfiguredLayers(config));
  ND_ASSIGN_OR_RETURN(w->dtype_, ParseDType(config.cache.dtype));
  for (const LayerId& id : w->layers_) w->prefixes_.push_back(LayerKeyPrefix(id));
  w->per_model_ = config.model.layers.size();
  for (const ModelEntry& model : ConfiguredModels(config))
    for (size_t l = 0; l < w->per_model_; ++l) w->model_paths_.push_back(model.path);
  w->manifest_written_.assign(w->layers_.size(), false);
  ND_ASSIGN_OR_RETURN(ActivationCache cache, ActivationCache::Open(CacheOptionsFor(config)));
  w->cache_ = std::make_unique<ActivationCache>(std::move(cache));
  return w;
}

StatusOr<bool> ActivationWriter::HasAllRecords(size_t model,
                                               const std::vector<ImageRef>& images) const {
  for (size_t l = model * per_model_; l < (model + 1) * per_model_; ++l)
    for (const ImageRef& image : images) {
      ND_ASSIGN_OR_RETURN(bool current, cache_->ContainsCurrentActivation(
                                            ActivationKey(prefixes_[l], image.digest)));
      if (!current) return false;
    }
  return true;
}

StatusOr<EncodedBatch> ActivationWriter::Encode(ImageBatch batch,
                                                const std::vector<torch::Tensor>& outputs) const {
  EncodedBatch e;
  e.batch_id = batch.batch_id;
  e.images = std::move(batch.images);
  e.cached = std::move(batch.cached);
  e.skipped = std::move(batch.skipped);
  if (e.images.empty()) return e;
  if (outputs.size() != layers_.size()) {
    return InvalidArgument("extract: " + std::to_string(outputs.size()) + " outputs for " +
                           std::to_string(layers_.size()) + " layers");
  }
  const int64_t n = static_cast<int64_t>(e.images.size());
  e.records.reserve(static_cast<size_t>(n) * layers_.size() + layers_.size());
  for (size_t l = 0; l < layers_.size(); ++l) {
    const torch::Tensor& out = outputs[l];
    if (!out.defined()) {  // a model that did not run for this batch (already cached)
      e.shapes.push_back({0, 0, 0});
      continue;
    }
    const bool half = out.scalar_type() == torch::kHalf;
    if (out.dim() != 4 || out.size(0) != n || !out.device().is_cpu() || !out.is_contiguous() ||
        (!half && out.scalar_type() != torch::kFloat)) {
      return InvalidArgument("extract: layer " + layers_[l].layer + ": output " +
                             c10::str(out.sizes()) + " " + c10::toString(out.scalar_type()) +
                             " is not a contiguous CPU float tensor of " + std::to_string(n) +
                             " images");
    }
    ActivationMap map;
    map.units = static_cast<int>(out.size(1));
    map.h = static_cast<int>(out.size(2));
    map.w = static_cast<int>(out.size(3));
    e.shapes.push_back({map.units, map.h, map.w});
    const size_t per_image = static_cast<size_t>(map.units) * map.plane();
    map.data.resize(per_image);
    for (int64_t i = 0; i < n; ++i) {
      if (half) {
        // at::Half is the binary16 bit pattern; widening is exact.
        const auto* base = static_cast<const uint16_t*>(out.data_ptr());
        HalfToFloatArray(base + i * per_image, map.data.data(), per_image);
      } else {
        const float* base = out.data_ptr<float>();
        std::memcpy(map.data.data(), base + i * per_image, per_image * sizeof(float));
      }
      auto record = EncodeActivation(map, dtype_);
      if (!record.ok())
        return record.status().WithContext("layer " + layers_[l].layer + ", row " +
                                           std::to_string(e.images[i].row));
      e.records.emplace_back(ActivationKey(prefixes_[l], e.images[i].digest),
                             std::move(record).value());
    }
  }
  return e;
}

Status ActivationWriter::Commit(EncodedBatch batch, ReadyBatch* ready) {
  ready->batch_id = batch.batch_id;
  ready->skipped = std::move(batch.skipped);
  ready->forwarded = 0;
  if (!batch.images.empty()) {
    std::lock_guard<std::mutex> lock(commit_mu_);
    std::vector<size_t> new_manifests;
    for (size_t l = 0; l < layers_.size() && l < batch.shapes.size(); ++l) {
      if (manifest_written_[l] || batch.shapes[l][0] == 0) continue;
      LayerManifest m;
      m.model_path = model_paths_[l];
      m.model_digest_hex = layers_[l].model_digest_hex;
      m.preprocess = layers_[l].preprocess;
      m.input_size = layers_[l].input_size;
      m.layer = layers_[l].layer;
      m.dtype = dtype_;
      m.units = batch.shapes[l][0];
      m.h = batch.shapes[l][1];
      m.w = batch.shapes[l][2];
      batch.records.emplace_back(ManifestKey(layers_[l]), EncodeLayerManifest(m));
      new_manifests.push_back(l);
    }
    // One transaction for the whole batch, all layers: either every layer of these images is in
    // the cache or none is.
    ND_RETURN_IF_ERROR(cache_->PutBatch(batch.records));
    for (size_t l : new_manifests) manifest_written_[l] = true;
    ready->forwarded = static_cast<uint32_t>(batch.images.size());
  }
  ready->images = std::move(batch.images);
  ready->images.insert(ready->images.end(), batch.cached.begin(), batch.cached.end());
  std::sort(ready->images.begin(), ready->images.end(),
            [](const ImageRef& a, const ImageRef& b) { return a.row < b.row; });
  return Status::Ok();
}

}  // namespace nd
