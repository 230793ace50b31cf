// RelayPool: extract's stand-in when every image of a run is already cached (a rescore): the
// supervisor starts nd-stage-extract-relay, built from extract's main.cc with this pool instead of
// ExtractPool, so the run loads neither LibTorch (0.34 s and ~110 MB before the first message)
// nor the model. Each batch's cached references go on as a READY notice exactly as ExtractPool
// passes cached images on (sorted by row, forwarded 0, skipped rows kept).
//
// A batch with an image to forward means an image changed between the supervisor's check and
// decode's: Submit fails with one line naming the row (the run stops; `up` again forwards it).
//
// Thread-safety: as ExtractPool — Submit/Close/Abort from the receiving thread, Next from another.
#pragma once

#include <condition_variable>
#include <cstdint>
#include <deque>
#include <memory>
#include <mutex>
#include <string>

#include "common/base/config.h"
#include "common/base/status.h"
#include "common/runtime/wire.h"

namespace nd {

class RelayPool {
 public:
  enum class Event { kReady, kTimeout, kDrained };

  [[nodiscard]] static StatusOr<std::unique_ptr<RelayPool>> Open(const PipelineConfig& config);

  // Errors: FailedPrecondition when the batch holds an image to forward, or after Close.
  [[nodiscard]] Status Submit(ImageBatch batch);
  void Close();
  void Abort(const Status& reason);
  [[nodiscard]] StatusOr<Event> Next(int timeout_ms, ReadyBatch* ready);

  size_t in_flight() const;
  size_t workers() const { return 0; }
  uint64_t forward_images() const { return 0; }
  std::vector<uint64_t> model_forward_images() const { return std::vector<uint64_t>(models_, 0); }
  double forward_seconds() const { return 0; }

 private:
  RelayPool() = default;

  size_t models_ = 1;
  mutable std::mutex mu_;
  std::condition_variable ready_cv_;
  std::deque<ReadyBatch> ready_;
  bool closed_ = false;
  Status failure_;
};

}  // namespace nd
