// nd-stage-score: collects READY notices from calibrate (building each image's label index while
// the network still runs), then, at the end of the stream, scores every layer and quantile from
// the cached activations and writes the result files. The work is ScoreStage's
// (stages/score/score_stage.h); this file wires it to the sockets, the counters and the events.
#include <optional>

#include "cache/activation_cache.h"
#include "cache/pipeline_keys.h"
#include "common/broden/broden_dataset.h"
#include "common/runtime/stage_process.h"
#include "stages/score/score_stage.h"
#ifdef ND_SCORE_TENSOR_ENGINE
#include "stages/score/tensor_scorer.h"
#endif

namespace nd {
namespace {

Status Run(StageProcess& p) {
  const PipelineConfig& c = p.config();
  ND_ASSIGN_OR_RETURN(BrodenDataset dataset,
                      BrodenDataset::Open(c.dataset.path, BrodenOptionsFor(c.dataset)));
  ND_RETURN_IF_ERROR(p.CheckDataset(dataset.images().size()));
  ND_ASSIGN_OR_RETURN(ActivationCache cache, ActivationCache::Open(CacheOptionsFor(c)));
  ScoreOptions so = ScoreOptionsFor(c);
#ifdef ND_SCORE_TENSOR_ENGINE
  so.tensor_engine = TensorEngine();
#endif
  ND_ASSIGN_OR_RETURN(std::unique_ptr<ScoreStage> stage,
                      ScoreStage::Create(c, &dataset, &cache, so));
  ND_ASSIGN_OR_RETURN(Channel in,
                      p.OpenChannel(zmq::socket_type::pull, p.endpoints().scored, /*bind=*/false));
  StageCounters& counters = p.counters();
  counters.items_total = dataset.images().size();
  if (c.shard.count > 0) {  // a sharded run's task sees its slice only
    const RowRange slice = ShardRows(dataset.images().size(), c.shard.index, c.shard.count);
    counters.items_total = slice.end - slice.begin;
  }
  // Every image known and cached at plan time (a rescore, the run plan's image set): every row
  // will come, so its labels are decoded now, while decode and calibrate pass the notices on.
  if (p.plan() && !p.plan()->image_set.empty() && c.shard.count == 0) {
    std::vector<size_t> rows(dataset.images().size());
    for (size_t r = 0; r < rows.size(); ++r) rows[r] = r;
    ND_RETURN_IF_ERROR(stage->PrepareAhead(rows));
  }
  EndOfStream eos;
  for (;;) {
    ND_ASSIGN_OR_RETURN(const WireMessage msg, p.ReceiveFrom(in, "calibrate"));
    if (msg.type == MessageType::kEndOfStream) {
      ND_RETURN_IF_ERROR(Decode(msg, &eos));
      break;
    }
    ReadyBatch ready;
    ND_RETURN_IF_ERROR(Decode(msg, &ready));
    ND_ASSIGN_OR_RETURN(const size_t fresh, stage->Add(ready));
    counters.items_in += fresh;
    counters.skipped += ready.skipped.size();
    p.Report("progress", "", stage->rows_seen(), dataset.images().size());
  }
  ND_ASSIGN_OR_RETURN(ScoreStage::Totals totals, stage->Finish(eos, [&p](const std::string& dir) {
    p.Report("result", dir);
  }));
  counters.items_out += totals.images_scored;
  counters.skipped += totals.images_skipped;
  return Status::Ok();
}

}  // namespace
}  // namespace nd

int main(int argc, char** argv) {
  auto process = nd::StageProcess::Start("score", argc, argv);
  if (!process.ok()) return nd::StageProcess::ExitCode(process.status());
  return (*process)->Finish(nd::Run(**process));
}
