// nd-stage-decode: reads the dataset's images, skips those already cached for every layer, and
// pushes normalised batches to extract (binds the `images` PUSH endpoint).
#include <memory>

#include "cache/activation_cache.h"
#include "cache/file_digest_memo.h"
#include "cache/pipeline_keys.h"
#include "common/base/log.h"
#include "common/broden/broden_dataset.h"
#include "common/runtime/stage_process.h"
#include "common/runtime/stage_release.h"
#include "stages/decode/decode_stage.h"

namespace nd {
namespace {

Status Run(StageProcess& p) {
  const PipelineConfig& c = p.config();
  ND_ASSIGN_OR_RETURN(BrodenDataset dataset,
                      BrodenDataset::Open(c.dataset.path, BrodenOptionsFor(c.dataset)));
  ND_RETURN_IF_ERROR(p.CheckDataset(dataset.images().size()));
  // decode is the first stage to read the dataset: it logs each malformed index.csv row that
  // on_bad_row = "skip" left out (score counts them in summary.json).
  for (const SkippedIndexRow& bad : dataset.skipped_index_rows()) {
    LogWarning(bad.reason + " (row skipped)");
  }
  ND_ASSIGN_OR_RETURN(std::vector<LayerId> layers, ConfiguredLayers(c));
  // decode only reads the cache (extract is its writer) but may be the first to open it.
  ND_ASSIGN_OR_RETURN(ActivationCache cache, ActivationCache::Open(CacheOptionsFor(c)));
  std::vector<std::string> prefixes;
  for (const LayerId& id : layers) prefixes.push_back(LayerKeyPrefix(id));
  auto is_cached = [&](const std::string& digest) {
    for (const std::string& prefix : prefixes) {
      auto hit = cache.ContainsCurrentActivation(ActivationKey(prefix, digest));
      if (!hit.ok() || !*hit) return false;
    }
    return true;
  };
  DecodeOptions options;
  options.input_size = c.model.input_size;
  options.preprocess = c.model.preprocess;
  options.batch_size = c.model.batch_size;
  options.workers = c.decode.workers;
  if (c.shard.count > 0) {  // a sharded run's task: only its slice of the rows
    const RowRange slice = ShardRows(dataset.images().size(), c.shard.index, c.shard.count);
    options.first_row = slice.begin;
    options.end_row = slice.end;
    LogInfo("shard " + std::to_string(c.shard.index) + " of " + std::to_string(c.shard.count) +
            ": rows " + std::to_string(slice.begin) + ".." + std::to_string(slice.end) + " of " +
            std::to_string(dataset.images().size()));
  }
  DecodeStage stage(dataset, options, is_cached);
  // The digest memo: unchanged files are neither read nor hashed again (decode.rehash = true
  // turns the lookups off; every file hashed is still recorded).
  FileDigestMemo memo(&cache);
  stage.SetDigestMemo([&](const std::string& path, const FileIdentity& id) {
    return c.decode.rehash ? std::string() : memo.Lookup(path, id);
  });

  ND_ASSIGN_OR_RETURN(Channel out,
                      p.OpenChannel(zmq::socket_type::push, p.endpoints().images, /*bind=*/true,
                                    /*high_water_mark=*/4, p.timeout_ms()));
  EndOfStream eos;
  uint64_t cached = 0;
  StageCounters& counters = p.counters();
  counters.items_total = stage.rows_total();
  while (auto batch = stage.Next()) {
    if (StageProcess::stop_requested()) return Cancelled("decode: stopped by signal");
    for (const auto& s : batch->skipped) LogWarning("skipped: " + s.reason);
    // Remembering digests only saves work later: a failure to store them is logged, not fatal.
    if (Status kept = memo.Record(stage.TakeHashedFiles()); !kept.ok()) {
      LogWarning("decode: file digests not remembered: " + kept.message());
    }
    eos.images += batch->images.size() + batch->cached.size();
    eos.skipped += batch->skipped.size();
    cached += batch->cached.size();
    counters.items_in += batch->images.size() + batch->cached.size() + batch->skipped.size();
    counters.skipped += batch->skipped.size();
    Status sent;
    {
      ScopedMicros blocked(counters.blocked_us);
      sent = out.Send(Encode(*batch), p.timeout_ms());
    }
    if (!sent.ok() && StageProcess::stop_requested()) return Cancelled("decode: stopped by signal");
    counters.items_out += batch->images.size() + batch->cached.size();
    if (!sent.ok()) return sent.WithContext("decode: extract is not taking batches");
    p.Report("progress", "", stage.rows_done(), stage.rows_total());
  }
  LogInfo("decoded " + std::to_string(eos.images - cached) + " images, " + std::to_string(cached) +
          " already cached (" + std::to_string(stage.rows_from_memo()) +
          " known unchanged, not read), " + std::to_string(eos.skipped) + " skipped");
  // Which model the cache was asked about: a changed model file is a new digest, hence 0 cached.
  std::string layer_names;
  for (const std::string& layer : c.model.layers)
    layer_names += (layer_names.empty() ? "" : ", ") + layer;
  const size_t models = ConfiguredModels(c).size();
  LogInfo(std::to_string(cached) + " of " + std::to_string(dataset.images().size()) +
          " images cached for " +
          (models == 1 ? "model " + layers.front().model_digest_hex.substr(0, 12)
                       : "all " + std::to_string(models) + " models") +
          (c.model.layers.size() == 1 ? " (layer " : " (layers ") + layer_names + ")");
  eos.stage_seconds = {{"decode", p.elapsed_s()}};
  ScopedMicros waiting(counters.waiting_us);  // done: from here on the stage is idle
  Status sent = out.Send(Encode(eos), p.timeout_ms());
  if (!sent.ok() && StageProcess::stop_requested()) return Cancelled("decode: stopped by signal");
  if (!sent.ok()) return sent.WithContext("decode: extract is not taking batches");
  AwaitSupervisorRelease(p.timeout_ms());
  return Status::Ok();
}

}  // namespace
}  // namespace nd

int main(int argc, char** argv) {
  auto process = nd::StageProcess::Start("decode", argc, argv);
  if (!process.ok()) return nd::StageProcess::ExitCode(process.status());
  return (*process)->Finish(nd::Run(**process));
}
