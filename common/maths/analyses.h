// The analyses from the cache that score runs after scoring a layer ([explain], [stats]):
// compositional explanations (explain.h) and label statistics (label_stats.h) over the layer's
// tables (layer_tables.h). No LibTorch, no sockets; their files are
// common/results/analysis_files.h.
#pragma once

#include <optional>
#include <string>
#include <vector>

#include "common/base/status.h"
#include "common/broden/broden_dataset.h"
#include "common/maths/dissector.h"
#include "common/maths/explain.h"
#include "common/maths/label_stats.h"

namespace nd {

// All label names of `dataset` by label number ("" for slot 0).
std::vector<std::string> LabelNames(const BrodenDataset& dataset);

// What the score process asks for ([explain] and [stats] of the config).
struct AnalysisRequest {
  int length = 0, beam = 5;             // explain; length 0 = off
  int bootstrap = 0, permutations = 0;  // stats; both 0 = off
  uint64_t seed = 1;
  bool max_null = false;
  int workers = 0;
  bool any() const { return length > 0 || bootstrap > 0 || permutations > 0; }
};

struct AnalysisOutcome {
  std::optional<ExplainReport> explain;
  std::optional<LabelStatsReport> stats;
  std::vector<size_t> skipped_rows;  // rows the tables could not use (also logged by the caller)
  double tables_seconds = 0, explain_seconds = 0, stats_seconds = 0;
};

// Runs the requested analyses for one layer and quantile after `stage` scored `rows` into `report`:
// the tables are built over the rows the score stage used (rows minus report.skipped), with the
// stage's prepared label indexes where it has them, so the statistics describe exactly the
// dissection of `report`. REQUIRES: request.any().
StatusOr<AnalysisOutcome> RunAnalyses(const BrodenDataset& dataset, const Dissector& stage,
                                      const std::vector<size_t>& rows, const ScoreReport& report,
                                      const std::vector<double>& thresholds,
                                      const Dissector::FetchFn& fetch,
                                      const AnalysisRequest& request);

}  // namespace nd
