// nd-stage-calibrate: folds every ready image's cached activations into exact per-unit quantiles,
// stores the thresholds (and each unit's top tail, for later runs at other quantiles) in the cache,
// and passes the READY notices on to score (binds `scored`). A run over the images of an earlier
// one (the run plan's image_set) takes its thresholds from that run's tails without reading.
#include "cache/activation_cache.h"
#include "cache/pipeline_keys.h"
#include "common/base/log.h"
#include "common/broden/broden_dataset.h"
#include "common/maths/view_basis.h"
#include "common/results/shard_files.h"
#include "common/runtime/stage_process.h"
#include "common/runtime/stage_release.h"
#include "stages/calibrate/calibrate_stage.h"

namespace nd {
namespace {

// A sharded run's task at the end of its slice (config.h ShardConfig): the forward phase writes
// each layer's exact top tails (common/results/shard_files.h) for the merge job instead of
// thresholds; the score phase has nothing to write.
Status FinishShard(const PipelineConfig& c, const std::vector<UnitSet>& sets,
                   std::vector<CalibrateStage>& stages, uint64_t seen) {
  if (c.shard.phase == "score") return Status::Ok();
  for (size_t l = 0; l < sets.size(); ++l) {
    UnitTails tails;
    tails.layer = sets[l].name;
    tails.images = seen;
    tails.max_images = static_cast<uint64_t>(stages[l].options().max_images);
    if (seen > 0) {
      ND_RETURN_IF_ERROR(stages[l].TakeTails(&tails.counts, &tails.tops));
      tails.units = stages[l].units();
      tails.h = stages[l].h();
      tails.w = stages[l].w();
      tails.keep = static_cast<uint64_t>(stages[l].keep());
    }
    const std::string path = TailsFilePath(c.shard.dir, c.shard.index, sets[l].name);
    ND_RETURN_IF_ERROR(WriteTailsFile(path, tails));
    LogInfo("tails of " + sets[l].name + " (" + std::to_string(seen) + " images, keep " +
            std::to_string(tails.keep) + " per unit) -> " + path);
  }
  return Status::Ok();
}

// Thresholds (per set, per configured quantile) from the tails an earlier run stored for the
// plan's image set, when the plan names one (every image was cached at plan time) and every set's
// tails are there, decode, cover this image set and reach every quantile; nullopt otherwise (a
// damaged record is logged and the activations are read as usual).
std::optional<std::vector<std::vector<UnitThresholds>>> ThresholdsFromCachedTails(
    const StageProcess& p, const ActivationCache& cache, const std::vector<UnitSet>& sets) {
  const PipelineConfig& c = p.config();
  if (!p.plan() || p.plan()->image_set.empty() || c.shard.count > 0) return std::nullopt;
  std::vector<std::vector<UnitThresholds>> out;
  for (const UnitSet& set : sets) {
    const std::string key = TailsKey(set.id, p.plan()->image_set);
    std::string bytes;
    if (!cache.Get(key, &bytes).ok()) return std::nullopt;
    auto tails = DecodeTails(bytes, "cache record " + key);
    if (!tails.ok()) {
      LogWarning(tails.status().message() + " (reading the activations instead)");
      return std::nullopt;
    }
    if (tails->images != p.plan()->images) return std::nullopt;
    std::vector<UnitThresholds> per_q;
    for (double q : c.threshold.quantiles) {
      auto values = ThresholdsFromTails(*tails, q);
      if (!values.ok()) return std::nullopt;  // kept for a smaller quantile
      per_q.push_back(UnitThresholds{q, *std::move(values)});
    }
    out.push_back(std::move(per_q));
  }
  return out;
}

Status Run(StageProcess& p) {
  const PipelineConfig& c = p.config();
  ND_ASSIGN_OR_RETURN(std::vector<LayerId> layers, ConfiguredLayers(c));
  // Thresholds are computed for every unit set: the layers, then the views of them.
  ND_ASSIGN_OR_RETURN(std::vector<UnitSet> sets, ConfiguredUnitSets(c));
  ND_ASSIGN_OR_RETURN(BrodenDataset dataset,
                      BrodenDataset::Open(c.dataset.path, BrodenOptionsFor(c.dataset)));
  ND_RETURN_IF_ERROR(p.CheckDataset(dataset.images().size()));
  ND_ASSIGN_OR_RETURN(ActivationCache cache, ActivationCache::Open(CacheOptionsFor(c)));
  std::vector<std::string> prefixes;
  std::vector<CalibrateStage> stages;
  for (const LayerId& id : layers) prefixes.push_back(LayerKeyPrefix(id));
  std::vector<std::unique_ptr<LinearView>> views;  // per set; null for a layer
  for (const UnitSet& set : sets) {
    // The tails reach threshold.tail_quantile too, except in a sharded run (whose tails files
    // are sized by its quantiles alone).
    stages.emplace_back(CalibrateOptions{c.threshold.quantiles,
                                         static_cast<int64_t>(dataset.images().size()),
                                         c.shard.count == 0 ? c.threshold.tail_quantile : 0.0});
    views.push_back(set.is_view() ? std::make_unique<LinearView>(c.views[set.view], set.alpha)
                                  : nullptr);
  }
  ActivationMap viewed;  // one image's values in a view
  ND_ASSIGN_OR_RETURN(Channel in,
                      p.OpenChannel(zmq::socket_type::pull, p.endpoints().ready, /*bind=*/false));
  ND_ASSIGN_OR_RETURN(Channel out,
                      p.OpenChannel(zmq::socket_type::push, p.endpoints().scored, /*bind=*/true,
                                    /*high_water_mark=*/4, p.timeout_ms()));
  const bool score_phase = c.shard.count > 0 && c.shard.phase == "score";
  // A rescore over the images of an earlier run: thresholds from its stored tails, and the
  // activations are not read at all (score reads them).
  const std::optional<std::vector<std::vector<UnitThresholds>>> from_tails =
      ThresholdsFromCachedTails(p, cache, sets);
  uint64_t seen = 0;
  std::vector<std::string> digests;                // of the images the thresholds are computed over
  std::vector<ActivationMap> maps(layers.size());  // one image's maps, every layer
  uint64_t non_finite_images = 0;
  StageCounters& counters = p.counters();
  counters.items_total = dataset.images().size();
  if (c.shard.count > 0) {  // a sharded run's task sees its slice only
    const RowRange slice = ShardRows(dataset.images().size(), c.shard.index, c.shard.count);
    counters.items_total = slice.end - slice.begin;
  }
  for (;;) {
    ND_ASSIGN_OR_RETURN(const WireMessage msg, p.ReceiveFrom(in, "extract"));
    if (msg.type == MessageType::kEndOfStream) {
      EndOfStream eos;
      ND_RETURN_IF_ERROR(Decode(msg, &eos));
      std::vector<std::pair<std::string, std::string>> records;
      if (c.shard.count > 0) {
        ND_RETURN_IF_ERROR(FinishShard(c, sets, stages, seen));
        eos.stage_seconds.push_back({"calibrate", p.elapsed_s()});
        ScopedMicros waiting(counters.waiting_us);
        ND_RETURN_IF_ERROR(out.Send(Encode(eos), p.timeout_ms()));
        AwaitSupervisorRelease(p.timeout_ms());
        return Status::Ok();
      }
      if (from_tails && ImageSetDigest(digests) != p.plan()->image_set)
        return FailedPrecondition(
            "calibrate: the images received differ from the run plan's image set (" +
            std::to_string(seen) + " received, " + std::to_string(p.plan()->images) +
            " planned); `nd-pipeline up` again plans a new run");
      const std::string image_set = ImageSetDigest(digests);
      for (size_t l = 0; l < sets.size(); ++l) {
        std::vector<UnitThresholds> thresholds;
        if (from_tails) {
          thresholds = (*from_tails)[l];
        } else {
          if (stages[l].images() == 0) return FailedPrecondition("calibrate: no usable images");
          // The tails for later runs over these images: only when no image was skipped for
          // non-finite values, so that a run from the tails skips nothing either.
          if (non_finite_images == 0 && c.threshold.tail_quantile > 0) {
            UnitTails tails;
            tails.layer = sets[l].name;
            tails.images = seen;
            tails.max_images = static_cast<uint64_t>(stages[l].options().max_images);
            ND_RETURN_IF_ERROR(
                stages[l].TakeTails(&tails.counts, &tails.tops).WithContext(sets[l].name));
            tails.units = stages[l].units();
            tails.h = stages[l].h();
            tails.w = stages[l].w();
            tails.keep = static_cast<uint64_t>(stages[l].keep());
            records.emplace_back(TailsKey(sets[l].id, image_set), EncodeTails(tails));
          }
          auto finished = stages[l].Finish();
          if (!finished.ok()) return finished.status().WithContext(sets[l].name);
          thresholds = *std::move(finished);
          if (stages[l].nan_values() + stages[l].inf_values())  // (only if a check above failed)
            LogWarning(sets[l].name + ": " + std::to_string(stages[l].nan_values()) + " NaN and " +
                       std::to_string(stages[l].inf_values()) +
                       " infinite activation values excluded from the thresholds");
        }
        for (const UnitThresholds& t : thresholds)
          records.emplace_back(ImageSetThresholdKey(sets[l].id, t.quantile, digests),
                               EncodeThresholdValues(t.values));
      }
      ND_RETURN_IF_ERROR(cache.PutBatch(records));
      LogInfo("thresholds for " + std::to_string(sets.size()) + " layer(s) and view(s) from " +
              std::to_string(seen) + " images" + (from_tails ? " (from the cached tails)" : "") +
              (non_finite_images
                   ? "; " + std::to_string(non_finite_images) + " skipped for NaN/Inf activations"
                   : std::string()));
      eos.stage_seconds.push_back({"calibrate", p.elapsed_s()});
      ScopedMicros waiting(counters.waiting_us);  // done: from here on the stage is idle
      ND_RETURN_IF_ERROR(out.Send(Encode(eos), p.timeout_ms()));
      AwaitSupervisorRelease(p.timeout_ms());
      return Status::Ok();
    }
    ReadyBatch ready;
    ND_RETURN_IF_ERROR(Decode(msg, &ready));
    counters.items_in += ready.images.size();
    counters.skipped += ready.skipped.size();
    // An image whose activations hold NaN or ±Inf in any layer is skipped as a whole (one
    // warning line naming it, a skip with its reason in summary.json): it counts neither towards
    // the thresholds nor in score.
    std::vector<ImageRef> usable;
    for (ImageRef& image : ready.images) {
      if (from_tails) {  // the tails were stored only when no image had non-finite values
        digests.push_back(image.digest);
        ++seen;
        usable.push_back(std::move(image));
        continue;
      }
      std::string bad;
      for (size_t l = 0; l < layers.size(); ++l) {
        Status got = cache.GetActivation(ActivationKey(prefixes[l], image.digest), &maps[l]);
        if (!got.ok())
          return got.WithContext("calibrate: " + layers[l].layer + ", row " +
                                 std::to_string(image.row));
        const NonFiniteCounts counts = CountNonFinite(maps[l]);
        if (counts.any() && bad.empty()) {
          const std::string name = image.row < dataset.images().size()
                                       ? dataset.images()[image.row].image
                                       : "row " + std::to_string(image.row);
          bad = name + ": layer '" + layers[l].layer + "' has " + std::to_string(counts.nan) +
                " NaN and " + std::to_string(counts.inf) + " infinite activation values";
        }
      }
      if (!bad.empty()) {
        LogWarning("skipped: " + bad);
        ready.skipped.push_back({image.row, bad});
        ++counters.skipped;
        ++non_finite_images;
        continue;
      }
      // A sharded run's score task counts with the merged thresholds: no tails to keep.
      if (!score_phase)
        for (size_t l = 0; l < sets.size(); ++l) {
          const ActivationMap* values = &maps[sets[l].source];
          if (views[l]) {
            ND_RETURN_IF_ERROR(views[l]->Apply(*values, &viewed).WithContext(sets[l].name));
            values = &viewed;
          }
          ND_RETURN_IF_ERROR(stages[l].Consume(*values).WithContext(sets[l].name));
        }
      digests.push_back(image.digest);
      ++seen;
      usable.push_back(std::move(image));
    }
    ready.images = std::move(usable);
    Status sent;
    {
      ScopedMicros blocked(counters.blocked_us);
      sent = out.Send(Encode(ready), p.timeout_ms());
    }
    if (!sent.ok()) return sent.WithContext("calibrate: score is not taking notices");
    counters.items_out += ready.images.size();
    p.Report("progress", "", seen, dataset.images().size());
  }
}

}  // namespace
}  // namespace nd

int main(int argc, char** argv) {
  auto process = nd::StageProcess::Start("calibrate", argc, argv);
  if (!process.ok()) return nd::StageProcess::ExitCode(process.status());
  return (*process)->Finish(nd::Run(**process));
}
