// nd-stage-extract: pulls image batches from decode, runs the model once per batch, commits the
// activations to the cache, and pushes READY notices to calibrate (binds the `ready` endpoint).
#include <torch/torch.h>

#include "common/log.h"
#include "common/stage_process.h"
#include "common/stage_release.h"
#include "stages/extract/extract_stage.h"

namespace nd {
namespace {

Status Run(StageProcess& p) {
  // The model is loaded before any socket is opened: an unknown layer fails at startup.
  ND_ASSIGN_OR_RETURN(std::unique_ptr<ExtractStage> stage, ExtractStage::Open(p.config()));
  ND_ASSIGN_OR_RETURN(Channel in, Channel::Open(p.context(), zmq::socket_type::pull,
                                                p.endpoints().images, /*bind=*/false));
  ND_ASSIGN_OR_RETURN(Channel out, Channel::Open(p.context(), zmq::socket_type::push,
                                                 p.endpoints().ready, /*bind=*/true,
                                                 /*high_water_mark=*/4, p.timeout_ms()));
  uint64_t images = 0;
  StageCounters& counters = p.counters();
  for (;;) {
    if (StageProcess::stop_requested()) return Cancelled("extract: stopped by signal");
    StatusOr<std::optional<WireMessage>> received = std::optional<WireMessage>();
    {
      ScopedMicros waiting(counters.waiting_us);
      received = in.Receive(p.timeout_ms());
    }
    ND_ASSIGN_OR_RETURN(auto msg, std::move(received));
    if (!msg && StageProcess::stop_requested())
      return Cancelled("extract: stopped by signal");
    if (!msg)
      return Unavailable("extract: no batch from decode for " +
                         std::to_string(p.config().run.timeout_s) + " s");
    if (msg->type == MessageType::kEndOfStream) {
      EndOfStream eos;
      ND_RETURN_IF_ERROR(Decode(*msg, &eos));
      eos.forward_images = stage->forward_images();
      eos.stage_seconds += ", \"extract\": " + std::to_string(p.elapsed_s()) +
                           ", \"forward\": " + std::to_string(stage->forward_seconds());
      LogInfo("ran " + std::to_string(stage->forward_images()) + " images through the network");
      ScopedMicros waiting(counters.waiting_us);  // done: from here on the stage is idle
      ND_RETURN_IF_ERROR(out.Send(Encode(eos), p.timeout_ms()));
      AwaitSupervisorRelease(p.timeout_ms());
      return Status::Ok();
    }
    ImageBatch batch;
    ND_RETURN_IF_ERROR(Decode(*msg, &batch));
    ReadyBatch ready;
    counters.items_in += batch.images.size() + batch.cached.size();
    ND_RETURN_IF_ERROR(stage->Process(batch, &ready));
    images += ready.images.size() + ready.skipped.size();
    Status sent;
    {
      ScopedMicros blocked(counters.blocked_us);
      sent = out.Send(Encode(ready), p.timeout_ms());
    }
    counters.items_out += ready.images.size();
    if (!sent.ok()) return sent.WithContext("extract: calibrate is not taking notices");
    p.Report("progress", "", images, 0);
  }
}

}  // namespace
}  // namespace nd

int main(int argc, char** argv) {
  torch::set_num_threads(std::max(1, static_cast<int>(std::thread::hardware_concurrency())));
  auto process = nd::StageProcess::Start("extract", argc, argv);
  if (!process.ok()) return nd::StageProcess::ExitCode(process.status());
  return (*process)->Finish(nd::Run(**process));
}
