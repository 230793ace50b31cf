// ExtractPool: the extract stage's logic. One forward worker per entry of model.device (each its
// own ModelRunner, loaded from the model file, on its device), all fed from one input stream;
// every batch's activations are committed to the activation cache in one LMDB write transaction,
// and each commit yields one ReadyBatch (the READY notice main.cc forwards to calibrate).
//
// Inside (no sockets; main.cc owns them, calling Submit/Close from a receiving thread and Next
// from a sending thread):
//
//   Submit -> [pending] -> worker k: ModelRunner::Run on device k -> [forwarded]
//          -> writer thread: ActivationWriter::Encode, then Commit -> [ready] -> Next
//
// There are as many writer threads as workers, so encoding a batch (float16 conversion and
// CRC-32, on the CPU) never keeps a worker from its next forward pass; commits take turns
// (ActivationWriter::Commit serialises them). A batch is always forwarded whole by one worker.
//
// Order: with one worker, ReadyBatches come out in submission order, as from the single-threaded
// stage before. With several, in commit order, which may differ from submission order (calibrate
// and score do not depend on it). The cache contents do not depend on the number of workers: each
// image's activations come from the same batch, run whole, whichever worker runs it (on CPUs or
// identical GPUs; GPUs of different models may round differently).
//
// Back-pressure: at most capacity() = 3 x workers batches are in the pool (submitted and not yet
// returned by Next); Submit blocks while it is full.
//
// Errors: the first failure of any worker or commit, or an Abort, stops the pool: workers and
// writers finish the call they are in and exit, later Submit and Next calls return that Status
// (a worker's error reads "extract worker 2 of 2 (cuda:1): <reason>"). Batches not yet committed
// are dropped; committed ones stay in the cache (the next run finds them there).
//
// Devices and precision: see ModelOptions. model.precision applies to every worker; on a CPU
// worker fp16/bf16 fall back to fp32 (logged; precision() says what is used). Every worker returns
// float32 outputs and the cache's own conversion applies (per-unit scaled float16, see
// cache/FORMAT.md), so cache bytes do not depend on the device. LibTorch's intra-op thread count is
// process-wide and left to the caller (main.cc gives each CPU worker an equal share of the cores).
//
// Thread-safety: Submit and Close from one producer thread, Next from one consumer thread (which
// may be the same); Abort and the accessors from any thread. The destructor aborts (if the pool
// has not drained) and joins every thread; it must not race with other calls.
#pragma once

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "common/base/config.h"
#include "common/base/status.h"
#include "common/preprocess/normalize.h"
#include "common/runtime/wire.h"
#include "common/torch/model_runner.h"
#include "stages/extract/activation_writer.h"

namespace nd {

class ExtractPool {
 public:
  // What Next found.
  enum class Event {
    kReady,    // *ready holds the next committed batch
    kTimeout,  // nothing within timeout_ms
    kDrained,  // Close was called and every batch has been returned: the stream is done
  };

  // Loads one ModelRunner per entry of config.model.devices and model of the run
  // (ConfiguredModels: [model].path or every [[models]] table; model.layers, model.precision),
  // opens the cache, and starts the
  // worker and writer threads. Errors: those of ModelRunner::Load (bad file, unknown layer, bad or
  // missing device), with "extract worker k of n" context when n > 1, and of
  // ActivationWriter::Open.
  [[nodiscard]] static StatusOr<std::unique_ptr<ExtractPool>> Open(const PipelineConfig& config);

  ~ExtractPool();
  ExtractPool(const ExtractPool&) = delete;
  ExtractPool& operator=(const ExtractPool&) = delete;

  // Queues `batch` (float32 tensor [images, 3, height, width]; a batch with no images is passed
  // through to a ReadyBatch of its cached and skipped rows). Blocks while capacity() batches are
  // in the pool. Errors: the pool's failure; FailedPrecondition after Close.
  [[nodiscard]] Status Submit(ImageBatch batch);

  // No more batches: workers exit once the queue is empty, and Next reports kDrained once every
  // batch has been returned.
  void Close();

  // Stops the pool with `reason` (ignored if it already failed): Submit and Next return it.
  // REQUIRES: !reason.ok().
  void Abort(const Status& reason);

  // Waits up to timeout_ms for the next committed batch. Errors: the pool's failure (reported
  // before any ReadyBatch still queued).
  [[nodiscard]] StatusOr<Event> Next(int timeout_ms, ReadyBatch* ready);

  size_t workers() const { return runners_.size(); }
  size_t models() const { return runners_.front().size(); }
  size_t capacity() const { return capacity_; }
  // Batches submitted and not yet returned by Next.
  size_t in_flight() const;
  // The devices ("cpu", "cuda:0") and the precision the workers actually use.
  std::vector<std::string> devices() const;
  std::string precision() const { return runners_.front().front()->precision(); }
  // Images run through the network so far (committed batches only): through any model, and per
  // model. With several models, a batch skips every model whose records of all its images and
  // layers the cache already holds (a checkpoint added to a series runs only the new one).
  uint64_t forward_images() const;
  std::vector<uint64_t> model_forward_images() const;
  // Wall seconds during which at least one worker was in a forward pass (with one worker: the
  // sum of its forward passes).
  double forward_seconds() const;

 private:
  struct Forwarded {
    ImageBatch batch;                    // tensor released
    std::vector<torch::Tensor> outputs;  // model-major; undefined for the models skipped
    std::vector<bool> ran;               // per model
    size_t worker = 0;
  };

  ExtractPool() = default;
  void WorkerLoop(size_t k);
  // Runs `input` through every model of one worker that the cache lacks for `images` into *f.
  Status RunModels(const std::vector<std::unique_ptr<ModelRunner>>& runners,
                   const torch::Tensor& input, const std::vector<ImageRef>& images, Forwarded* f);
  void WriterLoop();
  void FailLocked(const Status& status);  // REQUIRES: mu_ held

  std::vector<std::vector<std::unique_ptr<ModelRunner>>> runners_;  // [worker][model]
  std::unique_ptr<ActivationWriter> writer_;
  Normalization normalization_;                    // of model.preprocess, for kRgb8 batches
  std::vector<std::vector<float>> input_buffers_;  // [worker]: a kRgb8 batch, normalised
  size_t capacity_ = 0;

  mutable std::mutex mu_;
  std::condition_variable room_;          // Submit: in_flight_ < capacity_, or failed
  std::condition_variable pending_cv_;    // workers: pending_ not empty, closed_, or failed
  std::condition_variable forwarded_cv_;  // writers: forwarded_ not empty, no workers, or failed
  std::condition_variable ready_cv_;      // Next: ready_ not empty, drained, or failed
  std::deque<ImageBatch> pending_;
  std::deque<Forwarded> forwarded_;
  std::deque<ReadyBatch> ready_;
  size_t in_flight_ = 0;
  size_t workers_running_ = 0;
  bool closed_ = false;
  Status failure_;  // OK until the pool fails
  uint64_t forward_images_ = 0;
  std::vector<uint64_t> model_forward_images_;
  int forwards_active_ = 0;
  std::chrono::steady_clock::time_point forwards_since_;
  double forward_seconds_ = 0;

  std::vector<std::thread> threads_;
};

}  // namespace nd
