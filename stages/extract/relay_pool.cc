#include "stages/extract/relay_pool.h"

#include <algorithm>
#include <chrono>
#include <utility>

namespace nd {

StatusOr<std::unique_ptr<RelayPool>> RelayPool::Open(const PipelineConfig& config) {
  std::unique_ptr<RelayPool> pool(new RelayPool());
  pool->models_ = ConfiguredModels(config).size();
  return pool;
}

Status RelayPool::Submit(ImageBatch batch) {
  if (!batch.images.empty()) {
    return FailedPrecondition(
        "extract relay: row " + std::to_string(batch.images.front().row) +
        " needs a forward pass (its image changed after the run was planned); `nd-pipeline up` "
        "again forwards it");
  }
  ReadyBatch ready;
  ready.batch_id = batch.batch_id;
  ready.skipped = std::move(batch.skipped);
  ready.forwarded = 0;
  ready.images = std::move(batch.cached);
  std::sort(ready.images.begin(), ready.images.end(),
            [](const ImageRef& a, const ImageRef& b) { return a.row < b.row; });
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (!failure_.ok()) return failure_;
    if (closed_) return FailedPrecondition("extract: batch submitted after the end of the stream");
    ready_.push_back(std::move(ready));
  }
  ready_cv_.notify_all();
  return Status::Ok();
}

void RelayPool::Close() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    closed_ = true;
  }
  ready_cv_.notify_all();
}

void RelayPool::Abort(const Status& reason) {
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (failure_.ok()) failure_ = reason.ok() ? Cancelled("extract: aborted") : reason;
  }
  ready_cv_.notify_all();
}

StatusOr<RelayPool::Event> RelayPool::Next(int timeout_ms, ReadyBatch* ready) {
  std::unique_lock<std::mutex> lock(mu_);
  auto done = [&] { return !failure_.ok() || !ready_.empty() || closed_; };
  if (!ready_cv_.wait_for(lock, std::chrono::milliseconds(timeout_ms), done)) {
    return Event::kTimeout;
  }
  if (!failure_.ok()) return failure_;
  if (!ready_.empty()) {
    *ready = std::move(ready_.front());
    ready_.pop_front();
    return Event::kReady;
  }
  return Event::kDrained;
}

size_t RelayPool::in_flight() const {
  std::lock_guard<std::mutex> lock(mu_);
  return ready_.size();
}

}  // namespace nd
