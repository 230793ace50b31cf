#include "stages/extract/extract_pool.h"

#include <utility>

#include "common/base/log.h"

namespace nd {
namespace {

std::string WorkerLabel(size_t k, size_t n, const std::string& device) {
  return "extract worker " + std::to_string(k + 1) + " of " + std::to_string(n) + " (" + device +
         ")";
}

std::string JoinLayers(const std::vector<std::string>& layers) {
  std::string l;
  for (const auto& x : layers) l += (l.empty() ? "" : ", ") + x;
  return l;
}

}  // namespace

StatusOr<std::unique_ptr<ExtractPool>> ExtractPool::Open(const PipelineConfig& config) {
  std::unique_ptr<ExtractPool> pool(new ExtractPool());
  const std::vector<std::string>& devices = config.model.devices;
  if (devices.empty()) return InvalidArgument("extract: model.device lists no device");
  ND_ASSIGN_OR_RETURN(pool->writer_, ActivationWriter::Open(config));
  ND_ASSIGN_OR_RETURN(pool->normalization_, NormalizationFor(config.model.preprocess));
  const std::vector<ModelEntry> models = ConfiguredModels(config);
  pool->model_forward_images_.assign(models.size(), 0);
  for (size_t k = 0; k < devices.size(); ++k) {
    pool->runners_.emplace_back();
    for (const ModelEntry& model : models) {
      ModelOptions mo;
      mo.path = model.path;
      mo.layers = config.model.layers;
      mo.device = devices[k];
      mo.precision = config.model.precision;
      // "auto" is channels_last on every device: LibTorch's CPU (oneDNN) and CUDA (cuDNN)
      // convolutions are faster on NHWC (ResNet-18 on the 2-core box: see README, Benchmarks).
      mo.channels_last = config.model.memory_format != "contiguous";
      StatusOr<ModelRunner> runner = ModelRunner::Load(mo);
      if (!runner.ok()) {
        Status s = model.name.empty() ? runner.status()
                                      : runner.status().WithContext("model " + model.name);
        if (devices.size() == 1) return s;
        return s.WithContext(WorkerLabel(k, devices.size(), devices[k]));
      }
      pool->runners_.back().push_back(std::make_unique<ModelRunner>(std::move(runner).value()));
      const ModelRunner& loaded = *pool->runners_.back().back();
      LogInfo("model " + (model.name.empty() ? "" : model.name + " ") + model.path + " on " +
              loaded.device() + ", " + loaded.precision() +
              "; layers: " + JoinLayers(config.model.layers) +
              (devices.size() > 1 ? " (worker " + std::to_string(k + 1) + " of " +
                                        std::to_string(devices.size()) + ")"
                                  : ""));
    }
  }
  const size_t n = pool->runners_.size();
  pool->input_buffers_.resize(n);
  pool->capacity_ = 3 * n;
  pool->workers_running_ = n;
  // No thread may outlive the pool: the destructor joins them (also on this function's errors).
  pool->threads_.reserve(2 * n);
  for (size_t k = 0; k < n; ++k)
    pool->threads_.emplace_back(&ExtractPool::WorkerLoop, pool.get(), k);
  for (size_t k = 0; k < n; ++k) pool->threads_.emplace_back(&ExtractPool::WriterLoop, pool.get());
  return pool;
}

ExtractPool::~ExtractPool() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    const bool drained = closed_ && in_flight_ == 0;
    if (!drained) FailLocked(Cancelled("extract: pool stopped"));
    closed_ = true;
  }
  pending_cv_.notify_all();
  forwarded_cv_.notify_all();
  room_.notify_all();
  ready_cv_.notify_all();
  for (std::thread& t : threads_) t.join();
}

void ExtractPool::FailLocked(const Status& status) {
  if (!failure_.ok()) return;
  failure_ = status;
  pending_.clear();
  forwarded_.clear();
  pending_cv_.notify_all();
  forwarded_cv_.notify_all();
  room_.notify_all();
  ready_cv_.notify_all();
}

Status ExtractPool::Submit(ImageBatch batch) {
  std::unique_lock<std::mutex> lock(mu_);
  room_.wait(lock, [&] { return !failure_.ok() || in_flight_ < capacity_; });
  if (!failure_.ok()) return failure_;
  if (closed_) return FailedPrecondition("extract: batch submitted after the end of the stream");
  ++in_flight_;
  pending_.push_back(std::move(batch));
  lock.unlock();
  pending_cv_.notify_one();
  return Status::Ok();
}

void ExtractPool::Close() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    closed_ = true;
  }
  pending_cv_.notify_all();
  ready_cv_.notify_all();
}

void ExtractPool::Abort(const Status& reason) {
  std::lock_guard<std::mutex> lock(mu_);
  FailLocked(reason.ok() ? Cancelled("extract: aborted") : reason);
}

StatusOr<ExtractPool::Event> ExtractPool::Next(int timeout_ms, ReadyBatch* ready) {
  std::unique_lock<std::mutex> lock(mu_);
  auto done = [&] { return !failure_.ok() || !ready_.empty() || (closed_ && in_flight_ == 0); };
  if (!ready_cv_.wait_for(lock, std::chrono::milliseconds(timeout_ms), done)) {
    return Event::kTimeout;
  }
  if (!failure_.ok()) return failure_;
  if (ready_.empty()) return Event::kDrained;
  *ready = std::move(ready_.front());
  ready_.pop_front();
  --in_flight_;
  lock.unlock();
  room_.notify_one();
  return Event::kReady;
}

size_t ExtractPool::in_flight() const {
  std::lock_guard<std::mutex> lock(mu_);
  return in_flight_;
}

std::vector<std::string> ExtractPool::devices() const {
  std::vector<std::string> d;
  for (const auto& r : runners_) d.push_back(r.front()->device());
  return d;
}

uint64_t ExtractPool::forward_images() const {
  std::lock_guard<std::mutex> lock(mu_);
  return forward_images_;
}

std::vector<uint64_t> ExtractPool::model_forward_images() const {
  std::lock_guard<std::mutex> lock(mu_);
  return model_forward_images_;
}

double ExtractPool::forward_seconds() const {
  std::lock_guard<std::mutex> lock(mu_);
  return forward_seconds_;
}

Status ExtractPool::RunModels(const std::vector<std::unique_ptr<ModelRunner>>& runners,
                              const torch::Tensor& input, const std::vector<ImageRef>& images,
                              Forwarded* f) {
  const size_t layers = writer_->layers_per_model();
  for (size_t m = 0; m < runners.size(); ++m) {
    // With one model, decode sent only images the cache lacks; with several, a model whose
    // records of these images are all present is skipped.
    bool cached = false;
    if (runners.size() > 1) {
      ND_ASSIGN_OR_RETURN(cached, writer_->HasAllRecords(m, images));
    }
    f->ran.push_back(!cached);
    if (cached) {
      f->outputs.resize(f->outputs.size() + layers);
      continue;
    }
    ND_ASSIGN_OR_RETURN(std::vector<torch::Tensor> outputs, runners[m]->Run(input));
    for (torch::Tensor& t : outputs) f->outputs.push_back(std::move(t));
  }
  return Status::Ok();
}

void ExtractPool::WorkerLoop(size_t k) {
  const std::vector<std::unique_ptr<ModelRunner>>& runners = runners_[k];
  const std::string device = runners.front()->device();
  for (;;) {
    ImageBatch batch;
    {
      std::unique_lock<std::mutex> lock(mu_);
      pending_cv_.wait(lock, [&] { return !failure_.ok() || !pending_.empty() || closed_; });
      if (!failure_.ok() || pending_.empty()) break;  // failed, or closed and drained
      batch = std::move(pending_.front());
      pending_.pop_front();
      if (!batch.images.empty() && forwards_active_++ == 0) {
        forwards_since_ = std::chrono::steady_clock::now();
      }
    }
    Forwarded f;
    f.worker = k;
    Status status = Status::Ok();
    if (!batch.images.empty()) {
      const int64_t n = static_cast<int64_t>(batch.images.size());
      const int64_t h = batch.height, w = batch.width;
      const bool rgb8 = batch.pixel_format == ImageBatch::kRgb8;
      const size_t expected =
          static_cast<size_t>(n * 3 * h * w) * (rgb8 ? sizeof(uint8_t) : sizeof(float));
      if (batch.tensor.size() != expected) {
        status = InvalidArgument("extract: batch " + std::to_string(batch.batch_id) + " carries " +
                                 std::to_string(batch.tensor.size()) + " tensor bytes for " +
                                 std::to_string(n) + " images of 3x" + std::to_string(h) + "x" +
                                 std::to_string(w) + (rgb8 ? " uint8" : " float32"));
      } else {
        // 8-bit RGB is normalised here as decode would have (normalize.h), into this worker's
        // buffer; float32 is wrapped by from_blob without a copy. Both live until Run returns.
        const char* data = batch.tensor.data();
        if (rgb8) {
          std::vector<float>& input_buffer = input_buffers_[k];
          const size_t plane = static_cast<size_t>(h * w);
          input_buffer.resize(static_cast<size_t>(n) * 3 * plane);
          for (int64_t i = 0; i < n; ++i)
            NormalizeRgb8(reinterpret_cast<const uint8_t*>(data) + i * 3 * plane, plane,
                          normalization_, input_buffer.data() + i * 3 * plane);
          data = reinterpret_cast<const char*>(input_buffer.data());
        }
        torch::Tensor input =
            torch::from_blob(const_cast<char*>(data), {n, 3, h, w}, torch::kFloat32);
        status = RunModels(runners, input, batch.images, &f);
      }
      std::lock_guard<std::mutex> lock(mu_);
      if (--forwards_active_ == 0) {
        forward_seconds_ +=
            std::chrono::duration<double>(std::chrono::steady_clock::now() - forwards_since_)
                .count();
      }
    }
    batch.tensor.clear();
    batch.tensor.shrink_to_fit();
    f.batch = std::move(batch);
    {
      std::lock_guard<std::mutex> lock(mu_);
      if (!status.ok()) {
        FailLocked(workers() == 1 ? status : status.WithContext(WorkerLabel(k, workers(), device)));
        break;
      }
      if (!failure_.ok()) break;
      forwarded_.push_back(std::move(f));
    }
    forwarded_cv_.notify_one();
  }
  {
    std::lock_guard<std::mutex> lock(mu_);
    --workers_running_;
  }
  forwarded_cv_.notify_all();
}

void ExtractPool::WriterLoop() {
  for (;;) {
    Forwarded f;
    {
      std::unique_lock<std::mutex> lock(mu_);
      forwarded_cv_.wait(
          lock, [&] { return !failure_.ok() || !forwarded_.empty() || workers_running_ == 0; });
      if (!failure_.ok() || forwarded_.empty()) return;  // failed, or every worker is done
      f = std::move(forwarded_.front());
      forwarded_.pop_front();
    }
    const size_t forwarded_images = f.batch.images.size();
    const std::vector<bool> ran = std::move(f.ran);
    ReadyBatch ready;
    Status status = Status::Ok();
    StatusOr<EncodedBatch> encoded = writer_->Encode(std::move(f.batch), f.outputs);
    f.outputs.clear();  // return pinned buffers to their allocator before committing
    if (encoded.ok()) {
      status = writer_->Commit(std::move(encoded).value(), &ready);
    } else {
      status = encoded.status();
    }
    {
      std::lock_guard<std::mutex> lock(mu_);
      if (!status.ok()) {
        FailLocked(status);
        return;
      }
      if (!failure_.ok()) return;
      forward_images_ += forwarded_images;
      for (size_t m = 0; m < ran.size(); ++m)
        if (ran[m]) model_forward_images_[m] += forwarded_images;
      ready_.push_back(std::move(ready));
    }
    ready_cv_.notify_one();
  }
}

}  // namespace nd
