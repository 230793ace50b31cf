#include "stages/score/score_stage.h"

#include <algorithm>
#include <chrono>
#include <cstdlib>
#include <optional>

#include "cache/pipeline_keys.h"
#include "common/base/log.h"
#include "common/maths/analyses.h"
#include "common/results/analysis_files.h"
#include "common/results/result_files.h"
#include "common/results/shard_files.h"

namespace nd {
namespace {

// Label layers decoded ahead (~23 KiB per 112x112 image); beyond the budget they are decoded inside
// the Dissector's Run() and dropped after use, so the stage's memory does not grow with the
// dataset.
constexpr size_t kPreparedLabelBudgetBytes = size_t{256} << 20;

AnalysisRequest AnalysisRequestFor(const PipelineConfig& c) {
  AnalysisRequest analysis;
  analysis.length = c.explain.length;
  analysis.beam = c.explain.beam;
  analysis.bootstrap = c.stats.bootstrap;
  analysis.permutations = c.stats.permutations;
  analysis.seed = static_cast<uint64_t>(c.stats.seed);
  analysis.max_null = c.stats.max_null;
  analysis.workers = c.score.workers;
  return analysis;
}

}  // namespace

ScoreOptions ScoreOptionsFor(const PipelineConfig& c) {
  ScoreOptions so;
  so.union_rule = c.score.union_rule == "lite" ? UnionRule::kLite : UnionRule::kPaper;
  so.iou_threshold = c.score.iou_threshold;
  so.workers = c.score.workers;
  // score.device = "cuda" | "cuda:N" scores with the tensor scorer there (identical counts).
  so.engine = c.score.device == "cpu" ? ScoreEngine::kNative : ScoreEngine::kTensor;
  so.device = c.score.device;
  return so;
}

StatusOr<std::unique_ptr<ScoreStage>> ScoreStage::Create(const PipelineConfig& config,
                                                         const BrodenDataset* dataset,
                                                         ActivationCache* cache,
                                                         const ScoreOptions& options) {
  ND_ASSIGN_OR_RETURN(std::vector<LayerId> layers, ConfiguredLayers(config));
  ND_ASSIGN_OR_RETURN(std::vector<UnitSet> sets, ConfiguredUnitSets(config));
  ND_ASSIGN_OR_RETURN(std::unique_ptr<Dissector> dissector, Dissector::Create(dataset, options));
  return std::unique_ptr<ScoreStage>(new ScoreStage(config, dataset, cache, std::move(layers),
                                                    std::move(sets), std::move(dissector)));
}

ScoreStage::ScoreStage(const PipelineConfig& config, const BrodenDataset* dataset,
                       ActivationCache* cache, std::vector<LayerId> layers,
                       std::vector<UnitSet> sets, std::unique_ptr<Dissector> dissector)
    : config_(config),
      dataset_(dataset),
      cache_(cache),
      layers_(std::move(layers)),
      sets_(std::move(sets)),
      dissector_(std::move(dissector)) {
  for (const UnitSet& set : sets_)
    views_.push_back(
        set.is_view() ? std::make_unique<LinearView>(config_.views[set.view], set.alpha) : nullptr);
}

StatusOr<size_t> ScoreStage::Add(const ReadyBatch& ready) {
  std::vector<size_t> fresh;
  for (const ImageRef& r : ready.images) {
    if (r.row >= dataset_->images().size())
      return DataLoss("score: row " + std::to_string(r.row) + " is not in the dataset");
    if (digest_of_.emplace(r.row, r.digest).second) fresh.push_back(r.row);
  }
  for (const auto& s : ready.skipped) skipped_.emplace_back(s.row, s.reason);
  forwarded_ += ready.forwarded;
  const bool forward_phase = config_.shard.count > 0 && config_.shard.phase == "forward";
  if (!forward_phase && dissector_->PreparedLabelBytes() < kPreparedLabelBudgetBytes)
    ND_RETURN_IF_ERROR(dissector_->PrepareLabels(fresh));
  rows_.insert(rows_.end(), fresh.begin(), fresh.end());
  return fresh.size();
}

Status ScoreStage::PrepareAhead(const std::vector<size_t>& rows) {
  const bool forward_phase = config_.shard.count > 0 && config_.shard.phase == "forward";
  if (forward_phase) return Status::Ok();
  // In budget-sized pieces, so that a large dataset stops at the budget as Add() does.
  constexpr size_t kPiece = 256;
  for (size_t at = 0; at < rows.size(); at += kPiece) {
    if (dissector_->PreparedLabelBytes() >= kPreparedLabelBudgetBytes) break;
    const size_t end = std::min(rows.size(), at + kPiece);
    ND_RETURN_IF_ERROR(dissector_->PrepareLabels(std::vector<size_t>(
        rows.begin() + static_cast<ptrdiff_t>(at), rows.begin() + static_cast<ptrdiff_t>(end))));
  }
  return Status::Ok();
}

StatusOr<ScoreStage::Totals> ScoreStage::Finish(
    const EndOfStream& eos, const std::function<void(const std::string& dir)>& on_result) {
  std::sort(rows_.begin(), rows_.end());
  if (config_.shard.count > 0 && config_.shard.phase == "forward") {
    // A sharded run's forward task scores nothing: it records what its run forwarded and what
    // it found committed in its cache shard (common/results/shard_files.h).
    ForwardRecord record;
    record.shard = config_.shard.index;
    record.shards = config_.shard.count;
    if (const char* restart = std::getenv("SLURM_RESTART_COUNT"))
      record.restart = std::strtoll(restart, nullptr, 10);
    record.images = static_cast<int64_t>(eos.images);
    record.forward_images = static_cast<int64_t>(eos.forward_images);
    record.images_from_cache = record.images - std::min(record.images, record.forward_images);
    const std::string path = ForwardRecordPath(config_.shard.dir, config_.shard.index);
    ND_RETURN_IF_ERROR(WriteForwardRecord(path, record));
    LogInfo("shard " + std::to_string(record.shard) + ": " + std::to_string(record.images) +
            " images, " + std::to_string(record.forward_images) + " forwarded, " +
            std::to_string(record.images_from_cache) + " from the cache shard (restart " +
            std::to_string(record.restart) + ")");
    on_result(path);
    return Totals{};
  }
  // (An empty slice of a sharded run counts zeros: the merge needs every shard's file.)
  if (rows_.empty() && config_.shard.count == 0)
    return FailedPrecondition("score: no usable images");
  Totals totals;
  for (size_t set = 0; set < sets_.size(); ++set) {
    for (double q : config_.threshold.quantiles) {
      std::string dir;
      ND_ASSIGN_OR_RETURN(ScoreReport report, ScoreOne(set, q, eos, &dir));
      if (set == 0 && q == config_.threshold.quantiles.front()) {
        totals.images_scored = report.images_scored;
        totals.images_skipped = report.images_skipped;
        // One line per image score could not use (its label layers or activations), naming it.
        for (const auto& skip : report.skipped)
          LogWarning("skipped: row " + std::to_string(skip.row) + ": " + skip.reason);
      }
      on_result(dir);
    }
  }
  return totals;
}

StatusOr<ScoreReport> ScoreStage::ScoreOne(size_t set, double q, const EndOfStream& eos,
                                           std::string* dir) {
  const PipelineConfig& c = config_;
  const UnitSet& unit_set = sets_[set];
  const std::string prefix = LayerKeyPrefix(layers_[unit_set.source]);
  LinearView* view = views_[set].get();
  auto fetch = [&](size_t row, ActivationMap* out) {
    if (!view) return cache_->GetActivation(ActivationKey(prefix, digest_of_.at(row)), out);
    thread_local ActivationMap source;  // the layer's values, before the view's basis
    ND_RETURN_IF_ERROR(cache_->GetActivation(ActivationKey(prefix, digest_of_.at(row)), &source));
    return view->Apply(source, out);
  };
  const std::string& name = unit_set.name;
  const bool several = c.threshold.quantiles.size() > 1;
  std::vector<double> thresholds;
  if (c.shard.count > 0) {  // a sharded run's score task: the merge job's exact thresholds
    ND_ASSIGN_OR_RETURN(thresholds,
                        ReadThresholdsFile(MergedThresholdsPath(c.shard.dir, name, q, several)));
  } else {  // calibrate's, for exactly the images seen
    std::vector<std::string> digests;
    for (const auto& [row, digest] : digest_of_) digests.push_back(digest);
    std::string record;
    ND_RETURN_IF_ERROR(cache_->Get(ImageSetThresholdKey(unit_set.id, q, digests), &record)
                           .WithContext("score: thresholds of " + name));
    ND_RETURN_IF_ERROR(DecodeThresholdValues(record, &thresholds));
  }
  auto started = std::chrono::steady_clock::now();
  ND_ASSIGN_OR_RETURN(ScoreReport report, dissector_->Run(rows_, thresholds, fetch));
  const double score_s =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count();
  if (c.shard.count > 0) {  // counts for the final merge, no results (shard_files.h)
    const std::string path = CountsFilePath(c.shard.dir, c.shard.index, name, q, several);
    ND_RETURN_IF_ERROR(
        WriteCountsFile(path, CountsFromReport(report, name, q, c.shard.index, c.shard.count,
                                               static_cast<int64_t>(rows_.size()),
                                               static_cast<int64_t>(forwarded_), skipped_)));
    LogInfo(name + " (q=" + std::to_string(q) + "): shard " + std::to_string(c.shard.index) +
            " counted " + std::to_string(report.images_scored) + " images in " +
            std::to_string(score_s) + " s -> " + path);
    *dir = path;
    return report;
  }
  RunFacts facts;
  const ModelEntry model = ConfiguredModels(c)[unit_set.model];
  facts.model_path = model.path;
  facts.dataset_path = c.dataset.path;
  facts.layer = name.substr(ModelResultPrefix(model).size());
  facts.model_name = model.name;
  if (unit_set.is_view()) {
    const ViewConfig& v = c.views[unit_set.view];
    facts.view =
        ViewFacts{v.layer, v.basis, v.basis == "file" ? 0 : v.seed,
                  v.basis == "file" ? 1.0 : unit_set.alpha, v.basis == "file" ? v.path : ""};
  }
  facts.preprocess = c.model.preprocess;
  facts.cache_dtype = c.cache.dtype;
  facts.quantile = q;
  facts.images_total = dataset_->images().size();
  // Images run through this set's model (several models: each counts its own).
  const uint64_t forwarded = eos.model_forward_images.size() > unit_set.model
                                 ? eos.model_forward_images[unit_set.model]
                                 : eos.forward_images;
  facts.forward_images = forwarded;
  facts.images_from_cache =
      rows_.size() - std::min<uint64_t>(rows_.size(), eos.model_forward_images.size() > 1
                                                          ? forwarded
                                                          : forwarded_);
  facts.skipped = skipped_;
  for (const StageSeconds& t : eos.stage_seconds)
    facts.stage_seconds.emplace_back(t.stage, t.seconds);
  facts.stage_seconds.emplace_back("score", score_s);
  *dir = LayerResultDir(c.output.dir, name, q, c.threshold.quantiles.size() > 1);
  // Compositional explanations and label statistics ([explain], [stats]), from the cache.
  const AnalysisRequest analysis = AnalysisRequestFor(c);
  std::optional<AnalysisOutcome> analyzed;
  if (analysis.any()) {
    ND_ASSIGN_OR_RETURN(
        analyzed, RunAnalyses(*dataset_, *dissector_, rows_, report, thresholds, fetch, analysis));
    for (size_t row : analyzed->skipped_rows)
      LogWarning("analysis skipped: row " + std::to_string(row));
    facts.analysis = SummarizeAnalyses(*analyzed, analysis);
    LogInfo(name + ": analyses from the cache in " +
            std::to_string(analyzed->tables_seconds + analyzed->explain_seconds +
                           analyzed->stats_seconds) +
            " s (tables " + std::to_string(analyzed->tables_seconds) + " s, explain " +
            std::to_string(analyzed->explain_seconds) + " s, stats " +
            std::to_string(analyzed->stats_seconds) + " s)");
  }
  ND_RETURN_IF_ERROR(WriteLayerResultFiles(*dir, *dataset_, report, thresholds, facts));
  if (analyzed) ND_RETURN_IF_ERROR(WriteAnalysisFiles(*dir, *dataset_, *analyzed));
  const LayerResults& r = report.results;
  LogInfo(name + " (q=" + std::to_string(q) + "): " + std::to_string(r.detectors) + "/" +
          std::to_string(r.units) + " detectors, " + std::to_string(r.unique_detectors_paper) +
          " unique (paper rule), " + std::to_string(r.unique_detectors_top_label) +
          " unique (top label); " + std::to_string(report.images_scored) + " images");
  return report;
}

}  // namespace nd
