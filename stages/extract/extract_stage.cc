#include "stages/extract/extract_stage.h"

#include <algorithm>
#include <chrono>
#include <cstring>

#include "cache/activation_record.h"
#include "cache/pipeline_keys.h"
#include "common/log.h"

namespace nd {

StatusOr<std::unique_ptr<ExtractStage>> ExtractStage::Open(const PipelineConfig& config) {
  std::unique_ptr<ExtractStage> s(new ExtractStage());
  s->config_ = config;
  ND_ASSIGN_OR_RETURN(s->layers_, ConfiguredLayers(config));
  ND_ASSIGN_OR_RETURN(s->dtype_, ParseDType(config.cache.dtype));
  for (const LayerId& id : s->layers_) s->prefixes_.push_back(LayerKeyPrefix(id));
  s->manifest_written_.assign(s->layers_.size(), false);
  ModelOptions mo;
  mo.path = config.model.path;
  mo.layers = config.model.layers;
  mo.device = config.model.devices.front();
  mo.precision = config.model.precision;
  ND_ASSIGN_OR_RETURN(ModelRunner runner, ModelRunner::Load(mo));
  s->model_ = std::make_unique<ModelRunner>(std::move(runner));
  LogInfo("model " + config.model.path + " on " + s->model_->device() + ", " +
          s->model_->precision() + "; layers: " + [&] {
            std::string l;
            for (const auto& x : config.model.layers) l += (l.empty() ? "" : ", ") + x;
            return l;
          }());
  ND_ASSIGN_OR_RETURN(ActivationCache cache, ActivationCache::Open(CacheOptionsFor(config)));
  s->cache_ = std::make_unique<ActivationCache>(std::move(cache));
  return s;
}

Status ExtractStage::Process(const ImageBatch& batch, ReadyBatch* ready) {
  ready->batch_id = batch.batch_id;
  ready->skipped = batch.skipped;
  ready->images.clear();
  ready->forwarded = 0;
  if (!batch.images.empty()) {
    const int64_t n = static_cast<int64_t>(batch.images.size());
    torch::Tensor input = torch::from_blob(
        const_cast<char*>(batch.tensor.data()),
        {n, 3, static_cast<int64_t>(batch.height), static_cast<int64_t>(batch.width)},
        torch::kFloat32);
    auto t0 = std::chrono::steady_clock::now();
    ND_ASSIGN_OR_RETURN(std::vector<torch::Tensor> outputs, model_->Run(input));
    forward_seconds_ +=
        std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    std::vector<std::pair<std::string, std::string>> records;
    records.reserve(static_cast<size_t>(n) * layers_.size() + layers_.size());
    for (size_t l = 0; l < layers_.size(); ++l) {
      const torch::Tensor& out = outputs[l];  // float32 CPU [n, units, h, w], contiguous
      ActivationMap map;
      map.units = static_cast<int>(out.size(1));
      map.h = static_cast<int>(out.size(2));
      map.w = static_cast<int>(out.size(3));
      const size_t per_image = static_cast<size_t>(map.units) * map.plane();
      const float* base = out.data_ptr<float>();
      for (int64_t i = 0; i < n; ++i) {
        map.data.assign(base + i * per_image, base + (i + 1) * per_image);
        auto record = EncodeActivation(map, dtype_);
        if (!record.ok())
          return record.status().WithContext("layer " + layers_[l].layer + ", row " +
                                             std::to_string(batch.images[i].row));
        records.emplace_back(ActivationKey(prefixes_[l], batch.images[i].digest),
                             std::move(record).value());
      }
      if (!manifest_written_[l]) {
        LayerManifest m;
        m.model_path = config_.model.path;
        m.model_digest_hex = layers_[l].model_digest_hex;
        m.preprocess = layers_[l].preprocess;
        m.input_size = layers_[l].input_size;
        m.layer = layers_[l].layer;
        m.dtype = dtype_;
        m.units = map.units;
        m.h = map.h;
        m.w = map.w;
        records.emplace_back(ManifestKey(layers_[l]), EncodeLayerManifest(m));
        manifest_written_[l] = true;
      }
    }
    // One transaction for the whole batch, all layers: either every layer of these images is in
    // the cache or none is.
    ND_RETURN_IF_ERROR(cache_->PutBatch(records));
    forward_images_ += static_cast<uint64_t>(n);
    ready->forwarded = static_cast<uint32_t>(n);
  }
  ready->images = batch.images;
  ready->images.insert(ready->images.end(), batch.cached.begin(), batch.cached.end());
  std::sort(ready->images.begin(), ready->images.end(),
            [](const ImageRef& a, const ImageRef& b) { return a.row < b.row; });
  return Status::Ok();
}

}  // namespace nd
