#include "common/maths/analyses.h"

#include <chrono>
#include <memory>
#include <set>

#include "common/maths/label_index.h"
#include "common/maths/layer_tables.h"

namespace nd {

std::vector<std::string> LabelNames(const BrodenDataset& dataset) {
  std::vector<std::string> names;
  for (const BrodenLabel& l : dataset.labels()) names.push_back(l.name);
  return names;
}

StatusOr<AnalysisOutcome> RunAnalyses(const BrodenDataset& dataset, const Dissector& stage,
                                      const std::vector<size_t>& rows, const ScoreReport& report,
                                      const std::vector<double>& thresholds,
                                      const Dissector::FetchFn& fetch,
                                      const AnalysisRequest& request) {
  using Clock = std::chrono::steady_clock;
  auto seconds = [](Clock::time_point t) {
    return std::chrono::duration<double>(Clock::now() - t).count();
  };
  std::set<size_t> skipped;
  for (const SkippedImage& s : report.skipped) skipped.insert(s.row);
  std::vector<size_t> used;
  for (size_t row : rows)
    if (!skipped.count(row)) used.push_back(row);
  std::vector<int> primary(dataset.num_labels());
  for (int l = 0; l < dataset.num_labels(); ++l) primary[l] = dataset.PrimaryCategory(l);
  const int num_categories = static_cast<int>(dataset.categories().size());

  AnalysisOutcome out;
  auto t0 = Clock::now();
  auto labels = [&](size_t i) -> StatusOr<std::shared_ptr<const LabelIndex>> {
    if (auto prepared = stage.PreparedLabelIndex(used[i])) return prepared;
    ND_ASSIGN_OR_RETURN(ImageLabels l, dataset.ReadLabels(used[i]));
    ND_ASSIGN_OR_RETURN(LabelIndex idx, LabelIndex::Build(l, primary, num_categories));
    return std::make_shared<const LabelIndex>(std::move(idx));
  };
  auto fetch_image = [&](size_t i, ActivationMap* acts) { return fetch(used[i], acts); };
  ND_ASSIGN_OR_RETURN(
      LayerTables tables,
      LayerTables::Build(used.size(), labels, fetch_image, thresholds, dataset.num_labels(),
                         num_categories, report.results.rule, request.workers));
  for (const SkippedTableImage& s : tables.skipped()) out.skipped_rows.push_back(used[s.image]);
  out.tables_seconds = seconds(t0);

  if (request.length > 0) {
    t0 = Clock::now();
    ExplainOptions eo;
    eo.length = request.length;
    eo.beam = request.beam;
    eo.workers = request.workers;
    ND_ASSIGN_OR_RETURN(ExplainReport x, ExplainUnits(tables, LabelNames(dataset), eo));
    out.explain = std::move(x);
    out.explain_seconds = seconds(t0);
  }
  if (request.bootstrap > 0 || request.permutations > 0) {
    t0 = Clock::now();
    StatsOptions so;
    so.bootstrap = request.bootstrap;
    so.permutations = request.permutations;
    so.seed = request.seed;
    so.max_null = request.max_null;
    so.workers = request.workers;
    ND_ASSIGN_OR_RETURN(LabelStatsReport st, ComputeLabelStats(tables, report.results, so));
    out.stats = std::move(st);
    out.stats_seconds = seconds(t0);
  }
  return out;
}

}  // namespace nd
