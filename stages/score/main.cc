// nd-stage-score: collects READY notices from calibrate (building each image's label index while
// the network still runs), then, at the end of the stream, scores every layer and quantile from
// the cached activations and writes the result files.
#include <algorithm>
#include <filesystem>
#include <map>
#include <optional>

#include "cache/activation_cache.h"
#include "cache/pipeline_keys.h"
#include "common/base/log.h"
#include "common/broden/broden_dataset.h"
#include "common/maths/dissector.h"
#include "common/results/analysis_files.h"
#include "common/results/result_files.h"
#include "common/runtime/stage_process.h"
#ifdef ND_SCORE_TENSOR_ENGINE
#include "stages/score/tensor_scorer.h"
#endif

namespace nd {
namespace {

namespace fs = std::filesystem;

constexpr size_t kPreparedLabelBudgetBytes = size_t{256} << 20;

Status Run(StageProcess& p) {
  const PipelineConfig& c = p.config();
  ND_ASSIGN_OR_RETURN(BrodenDataset dataset,
                      BrodenDataset::Open(c.dataset.path, BrodenOptionsFor(c.dataset)));
  ND_ASSIGN_OR_RETURN(std::vector<LayerId> layers, ConfiguredLayers(c));
  ND_ASSIGN_OR_RETURN(ActivationCache cache, ActivationCache::Open(CacheOptionsFor(c)));
  ScoreOptions so;
  so.union_rule = c.score.union_rule == "lite" ? UnionRule::kLite : UnionRule::kPaper;
  so.iou_threshold = c.score.iou_threshold;
  so.workers = c.score.workers;
  // score.device = "cuda" | "cuda:N" scores with the tensor scorer there (identical counts).
  so.engine = c.score.device == "cpu" ? ScoreEngine::kNative : ScoreEngine::kTensor;
  so.device = c.score.device;
#ifdef ND_SCORE_TENSOR_ENGINE
  so.tensor_engine = TensorEngine();
#endif
  ND_ASSIGN_OR_RETURN(std::unique_ptr<Dissector> stage, Dissector::Create(&dataset, so));
  ND_ASSIGN_OR_RETURN(Channel in, Channel::Open(p.context(), zmq::socket_type::pull,
                                                p.endpoints().scored, /*bind=*/false));

  std::vector<size_t> rows;
  std::map<size_t, std::string> digest_of;
  std::vector<std::pair<uint32_t, std::string>> skipped;
  uint64_t forwarded = 0;
  EndOfStream eos;
  StageCounters& counters = p.counters();
  counters.items_total = dataset.images().size();
  for (;;) {
    if (StageProcess::stop_requested()) return Cancelled("score: stopped by signal");
    StatusOr<std::optional<WireMessage>> received = std::optional<WireMessage>();
    {
      ScopedMicros waiting(counters.waiting_us);
      received = in.Receive(p.timeout_ms());
    }
    ND_ASSIGN_OR_RETURN(auto msg, std::move(received));
    if (!msg && StageProcess::stop_requested()) return Cancelled("score: stopped by signal");
    if (!msg)
      return Unavailable("score: no notice from calibrate for " + std::to_string(c.run.timeout_s) +
                         " s");
    if (msg->type == MessageType::kEndOfStream) {
      ND_RETURN_IF_ERROR(Decode(*msg, &eos));
      break;
    }
    ReadyBatch ready;
    ND_RETURN_IF_ERROR(Decode(*msg, &ready));
    std::vector<size_t> fresh;
    for (const ImageRef& r : ready.images) {
      if (r.row >= dataset.images().size())
        return DataLoss("score: row " + std::to_string(r.row) + " is not in the dataset");
      if (digest_of.emplace(r.row, r.digest).second) fresh.push_back(r.row);
    }
    for (const auto& s : ready.skipped) skipped.emplace_back(s.row, s.reason);
    forwarded += ready.forwarded;
    counters.items_in += fresh.size();
    counters.skipped += ready.skipped.size();
    // Label layers are decoded now, while the network is still busy with later batches, up to a
    // memory budget (~23 KiB per 112x112 image); beyond it they are decoded inside Run() and
    // dropped after use, so the stage's memory does not grow with the dataset.
    if (stage->PreparedLabelBytes() < kPreparedLabelBudgetBytes)
      ND_RETURN_IF_ERROR(stage->PrepareLabels(fresh));
    rows.insert(rows.end(), fresh.begin(), fresh.end());
    p.Report("progress", "", rows.size() + skipped.size(), dataset.images().size());
  }
  std::sort(rows.begin(), rows.end());
  if (rows.empty()) return FailedPrecondition("score: no usable images");

  std::vector<std::string> digests;
  for (const auto& [row, digest] : digest_of) digests.push_back(digest);
  for (const LayerId& layer : layers) {
    const std::string prefix = LayerKeyPrefix(layer);
    auto fetch = [&](size_t row, ActivationMap* out) {
      return cache.GetActivation(ActivationKey(prefix, digest_of.at(row)), out);
    };
    for (double q : c.threshold.quantiles) {
      std::string record;
      ND_RETURN_IF_ERROR(cache.Get(ImageSetThresholdKey(layer, q, digests), &record)
                             .WithContext("score: thresholds of " + layer.layer));
      std::vector<double> thresholds;
      ND_RETURN_IF_ERROR(DecodeThresholdValues(record, &thresholds));
      auto started = std::chrono::steady_clock::now();
      ND_ASSIGN_OR_RETURN(ScoreReport report, stage->Run(rows, thresholds, fetch));
      if (&layer == &layers.front() && q == c.threshold.quantiles.front()) {
        // Each image counts once, however many layers and quantiles it is scored for.
        counters.items_out += report.images_scored;
        counters.skipped += report.images_skipped;
        // One line per image score could not use (its label layers or activations), naming it.
        for (const auto& skip : report.skipped)
          LogWarning("skipped: row " + std::to_string(skip.row) + ": " + skip.reason);
      }
      double score_s =
          std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count();
      RunFacts facts;
      facts.model_path = c.model.path;
      facts.dataset_path = c.dataset.path;
      facts.layer = layer.layer;
      facts.preprocess = c.model.preprocess;
      facts.cache_dtype = c.cache.dtype;
      facts.quantile = q;
      facts.images_total = dataset.images().size();
      facts.forward_images = eos.forward_images;
      facts.images_from_cache = rows.size() - std::min<uint64_t>(rows.size(), forwarded);
      facts.skipped = skipped;
      for (const StageSeconds& t : eos.stage_seconds)
        facts.stage_seconds.emplace_back(t.stage, t.seconds);
      facts.stage_seconds.emplace_back("score", score_s);
      const std::string dir =
          LayerResultDir(c.output.dir, layer.layer, q, c.threshold.quantiles.size() > 1);
      // Compositional explanations and label statistics ([explain], [stats]), from the cache.
      AnalysisRequest analysis;
      analysis.length = c.explain.length;
      analysis.beam = c.explain.beam;
      analysis.bootstrap = c.stats.bootstrap;
      analysis.permutations = c.stats.permutations;
      analysis.seed = static_cast<uint64_t>(c.stats.seed);
      analysis.max_null = c.stats.max_null;
      analysis.workers = c.score.workers;
      std::optional<AnalysisOutcome> analyzed;
      if (analysis.any()) {
        ND_ASSIGN_OR_RETURN(
            analyzed, RunAnalyses(dataset, *stage, rows, report, thresholds, fetch, analysis));
        for (size_t row : analyzed->skipped_rows)
          LogWarning("analysis skipped: row " + std::to_string(row));
        facts.analysis = SummarizeAnalyses(*analyzed, analysis);
        LogInfo(layer.layer + ": analyses from the cache in " +
                std::to_string(analyzed->tables_seconds + analyzed->explain_seconds +
                               analyzed->stats_seconds) +
                " s (tables " + std::to_string(analyzed->tables_seconds) + " s, explain " +
                std::to_string(analyzed->explain_seconds) + " s, stats " +
                std::to_string(analyzed->stats_seconds) + " s)");
      }
      ND_RETURN_IF_ERROR(WriteLayerResultFiles(dir, dataset, report, thresholds, facts));
      if (analyzed) ND_RETURN_IF_ERROR(WriteAnalysisFiles(dir, dataset, *analyzed));
      const LayerResults& r = report.results;
      LogInfo(layer.layer + " (q=" + std::to_string(q) + "): " + std::to_string(r.detectors) + "/" +
              std::to_string(r.units) + " detectors, " + std::to_string(r.unique_detectors_paper) +
              " unique (paper rule), " + std::to_string(r.unique_detectors_top_label) +
              " unique (top label); " + std::to_string(report.images_scored) + " images");
      p.Report("result", dir);
    }
  }
  return Status::Ok();
}

}  // namespace
}  // namespace nd

int main(int argc, char** argv) {
  auto process = nd::StageProcess::Start("score", argc, argv);
  if (!process.ok()) return nd::StageProcess::ExitCode(process.status());
  return (*process)->Finish(nd::Run(**process));
}
