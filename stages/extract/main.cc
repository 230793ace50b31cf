// nd-stage-extract: pulls image batches from decode, runs them through the model on one worker
// per entry of model.device (ExtractPool), commits the activations to the cache, and pushes READY
// notices to calibrate (binds the `ready` endpoint) as each batch commits.
//
// Two threads own one socket each: a receiving thread (images from decode -> ExtractPool::Submit,
// which blocks when the pool is full, so back-pressure reaches decode) and this one (Next ->
// READY to calibrate, then END_OF_STREAM once the pool has drained).
#ifndef ND_EXTRACT_RELAY
#include <torch/cuda.h>
#include <torch/torch.h>
#endif

#include <algorithm>
#include <atomic>
#include <chrono>
#include <thread>

#include "common/base/log.h"
#include "common/broden/broden_dataset.h"
#include "common/runtime/stage_process.h"
#include "common/runtime/stage_release.h"
#ifdef ND_EXTRACT_RELAY
#include "stages/extract/relay_pool.h"
#else
#include "common/torch/reusing_cpu_allocator.h"
#include "stages/extract/extract_pool.h"
#endif

namespace nd {
namespace {

constexpr int kPollMs = 100;  // how often each thread looks at stop requests

// nd-stage-extract-relay (every image already cached: no network, no LibTorch) is this file
// built with RelayPool; nd-stage-extract with ExtractPool (stages/extract/relay_pool.h).
#ifdef ND_EXTRACT_RELAY
using Pool = RelayPool;
#else
using Pool = ExtractPool;
#endif

// The receiving thread: submits batches until END_OF_STREAM (stored in *eos, then Close), an
// error, `stop`, or a signal. Decode's silence for run.timeout_s is an error.
Status ReceiveBatches(StageProcess& p, Channel& in, Pool& pool, const std::atomic<bool>& stop,
                      EndOfStream* eos) {
  StageCounters& counters = p.counters();
  auto heard = std::chrono::steady_clock::now();
  for (;;) {
    if (stop || StageProcess::stop_requested()) return Cancelled("extract: stopped");
    StatusOr<std::optional<WireMessage>> received = std::optional<WireMessage>();
    if (pool.in_flight() == 0) {
      ScopedMicros waiting(counters.waiting_us);  // idle: nothing to run until decode sends
      received = in.Receive(kPollMs);
    } else {
      received = in.Receive(kPollMs);
    }
    ND_ASSIGN_OR_RETURN(auto msg, std::move(received));
    const auto now = std::chrono::steady_clock::now();
    if (!msg) {
      if (now - heard > std::chrono::milliseconds(p.timeout_ms()))
        return Unavailable("extract: no batch from decode for " +
                           std::to_string(p.config().run.timeout_s) + " s");
      continue;
    }
    if (msg->type == MessageType::kEndOfStream) {
      ND_RETURN_IF_ERROR(Decode(*msg, eos));
      pool.Close();
      return Status::Ok();
    }
    ImageBatch batch;
    ND_RETURN_IF_ERROR(Decode(*msg, &batch));
    counters.items_in += batch.images.size() + batch.cached.size();
    ND_RETURN_IF_ERROR(pool.Submit(std::move(batch)));
    heard = std::chrono::steady_clock::now();  // time blocked on a full pool is not silence
  }
}

Status Run(StageProcess& p) {
  // The input is connected first: while the models load (LibTorch's first use, the weights),
  // decode already fills the sockets' queues (high-water marks) instead of waiting for a peer.
  // An unknown layer still fails here, at startup, before anything is received.
  ND_ASSIGN_OR_RETURN(Channel in,
                      p.OpenChannel(zmq::socket_type::pull, p.endpoints().images, /*bind=*/false));
  ND_ASSIGN_OR_RETURN(std::unique_ptr<Pool> pool, Pool::Open(p.config()));
  ND_ASSIGN_OR_RETURN(Channel out,
                      p.OpenChannel(zmq::socket_type::push, p.endpoints().ready, /*bind=*/true,
                                    /*high_water_mark=*/4, p.timeout_ms()));
  std::atomic<bool> stop_receiving{false};
  EndOfStream eos;
  std::thread receiver([&] {
    Status s = ReceiveBatches(p, in, *pool, stop_receiving, &eos);
    if (!s.ok()) pool->Abort(s);
  });
  // Whatever happens below, the receiver is stopped (also out of a Submit blocked on a full
  // pool: Abort wakes it) and joined before `in` and `pool` go. Aborting a drained pool is a no-op.
  struct JoinReceiver {
    Pool& pool;
    std::atomic<bool>& stop;
    std::thread& thread;
    ~JoinReceiver() {
      stop = true;
      pool.Abort(Cancelled("extract: stopping"));
      thread.join();
    }
  } join_receiver{*pool, stop_receiving, receiver};

  uint64_t images = 0;
  StageCounters& counters = p.counters();
  // The run's size, for progress and ETA: the plan's (decode checks the dataset against it and
  // reports one that cannot be read).
  if (p.plan()) {
    counters.items_total = p.plan()->images;
  } else if (auto dataset =
                 BrodenDataset::Open(p.config().dataset.path, BrodenOptionsFor(p.config().dataset));
             dataset.ok()) {
    counters.items_total = dataset->images().size();
  }
  for (;;) {
    if (StageProcess::stop_requested()) return Cancelled("extract: stopped by signal");
    ReadyBatch ready;
    ND_ASSIGN_OR_RETURN(Pool::Event event, pool->Next(kPollMs, &ready));
    if (event == Pool::Event::kTimeout) continue;
    if (event == Pool::Event::kDrained) break;
    images += ready.images.size() + ready.skipped.size();
    Status sent;
    {
      ScopedMicros blocked(counters.blocked_us);
      sent = out.Send(Encode(ready), p.timeout_ms());
    }
    counters.items_out += ready.images.size();
    if (!sent.ok()) return sent.WithContext("extract: calibrate is not taking notices");
    p.Report("progress", "", images, counters.items_total);
  }
  // Drained: the receiver stored END_OF_STREAM before closing the pool.
  eos.forward_images = pool->forward_images();
  eos.model_forward_images = pool->model_forward_images();
  eos.stage_seconds.push_back({"extract", p.elapsed_s()});
  eos.stage_seconds.push_back({"forward", pool->forward_seconds()});
  std::string per_model;  // several models: how many images each ran (0 = all cached)
  const std::vector<ModelEntry> models = ConfiguredModels(p.config());
  for (size_t m = 0; models.size() > 1 && m < models.size(); ++m)
    per_model += (per_model.empty() ? "; " : ", ") + models[m].name + " " +
                 std::to_string(eos.model_forward_images[m]);
  LogInfo("ran " + std::to_string(pool->forward_images()) + " images through the network on " +
          std::to_string(pool->workers()) + " worker(s)" + per_model);
  ScopedMicros waiting(counters.waiting_us);  // done: from here on the stage is idle
  ND_RETURN_IF_ERROR(out.Send(Encode(eos), p.timeout_ms()));
  AwaitSupervisorRelease(p.timeout_ms());
  return Status::Ok();
}

#ifndef ND_EXTRACT_RELAY
// LibTorch's intra-op threads are shared by the process: each CPU worker gets an equal share of
// the cores, so that two CPU workers do not each start a thread per core.
void SetIntraOpThreads(const PipelineConfig& config) {
  const int cores = std::max(1, static_cast<int>(std::thread::hardware_concurrency()));
  int cpu_workers = 0;
  for (const std::string& d : config.model.devices) {
    if (d == "cpu" || (d == "auto" && !torch::cuda::is_available())) ++cpu_workers;
  }
  torch::set_num_threads(std::max(1, cores / std::max(1, cpu_workers)));
}
#endif

}  // namespace
}  // namespace nd

int main(int argc, char** argv) {
  auto process = nd::StageProcess::Start("extract", argc, argv);
  if (!process.ok()) return nd::StageProcess::ExitCode(process.status());
#ifndef ND_EXTRACT_RELAY
  nd::SetIntraOpThreads((*process)->config());
  nd::InstallReusingCpuAllocator();  // forward passes reuse their large blocks: no page faults
#else
  nd::LogInfo("every image is cached: relaying them to calibrate without the network");
#endif
  return (*process)->Finish(nd::Run(**process));
}
