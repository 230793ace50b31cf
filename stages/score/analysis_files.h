// The result files of the analyses from the cache, beside tally.csv in <output.dir>/<layer>/ (or
// <layer>/q<q>/ with several quantiles). Written atomically (common/atomic_file.h).
//
// explanations.csv ([explain] length > 0; explain.h): header
//   unit,formula,iou,length,primitive,primitive_iou
// one row per unit in unit order; `unit` 1-based (as tally.csv); `formula` the explanation's text,
// e.g. `((water OR river) AND NOT blue-c)`; `iou` its IoU; `length` its number of leaves;
// `primitive` the best single label and `primitive_iou` its IoU (formula, primitive empty and IoUs
// 0.0 when no label occurs). Reals as tally.csv writes them (Python's repr of a float64); a field
// holding `,` `"` CR or LF is quoted as Python's csv module does; lines end with "\n".
//
// stats.csv ([stats] bootstrap > 0 or permutations > 0; label_stats.h): header
//   unit,label,iou,iou_low,iou_high,stability,p_value,q_value,null_mean,p_max,q_max
// one row per unit in unit order; `unit` 1-based; `label` the unit's label (tally.csv's) and `iou`
// its IoU; `iou_low`,`iou_high` the bootstrap 95% interval of that IoU; `stability` the share of
// resamples whose top label is still `label`; `p_value` (1 + #null ≥ observed) / (1 + P), `q_value`
// Benjamini–Hochberg over the layer's units, `null_mean` the mean null IoU; `p_max`,`q_max` the
// selection-corrected max null (label_stats.h). Bootstrap columns are empty when bootstrap = 0,
// permutation columns when permutations = 0, p_max/q_max unless max_null.
#pragma once

#include <optional>
#include <string>
#include <vector>

#include "common/broden/broden_dataset.h"
#include "common/status.h"
#include "stages/score/explain.h"
#include "stages/score/label_stats.h"
#include "stages/score/score_stage.h"

namespace nd {

// The explanations.csv text.
std::string FormatExplanationsCsv(const ExplainReport& report);
// The stats.csv text; `names[l]` is label l's name.
std::string FormatStatsCsv(const LabelStatsReport& report, const std::vector<std::string>& names);

// Writes explanations.csv / stats.csv into `dir` (which must exist). Errors: IoError naming the
// path.
Status WriteExplanationsCsv(const std::string& dir, const ExplainReport& report);
Status WriteStatsCsv(const std::string& dir, const LabelStatsReport& report,
                     const std::vector<std::string>& names);

// summary.json members (without a trailing comma) describing the analyses, e.g.
//   "explain": {"length": 3, "beam": 5, "seconds": 12.3},
//   "stats": {"bootstrap": 1000, "permutations": 1000, "seed": 1, "seconds": 4.5},
//   "significant_detectors": 12, "significant_units": 15
// (significant_* only with permutations; significant_detectors_max with the max null). Empty when
// neither ran. `explain`/`stats` may be null.
std::string AnalysisSummaryJson(const ExplainReport* explain, int length, int beam,
                                double explain_seconds, const LabelStatsReport* stats,
                                uint64_t seed, double stats_seconds);

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
  std::string summary_json;          // for RunFacts::analysis_json
  double tables_seconds = 0, explain_seconds = 0, stats_seconds = 0;
};

// Runs the requested analyses for one layer and quantile after `stage` scored `rows` into `report`:
// the tables are built over the rows the score stage used (rows minus report.skipped), with the
// stage's prepared label indexes where it has them, so the statistics describe exactly the
// dissection of `report`. REQUIRES: request.any().
StatusOr<AnalysisOutcome> RunAnalyses(const BrodenDataset& dataset, const ScoreStage& stage,
                                      const std::vector<size_t>& rows, const ScoreReport& report,
                                      const std::vector<double>& thresholds,
                                      const ScoreStage::FetchFn& fetch,
                                      const AnalysisRequest& request);

// Writes the files of `outcome` (explanations.csv, stats.csv) into `dir` (created if needed).
Status WriteAnalysisFiles(const std::string& dir, const BrodenDataset& dataset,
                          const AnalysisOutcome& outcome);

}  // namespace nd
