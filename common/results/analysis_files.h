// The result files of the analyses from the cache, beside tally.csv in <output.dir>/<layer>/ (or
// <layer>/q<q>/ with several quantiles). Written atomically (common/base/atomic_file.h).
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

#include "common/base/status.h"
#include "common/broden/broden_dataset.h"
#include "common/maths/analyses.h"
#include "common/maths/dissector.h"
#include "common/maths/explain.h"
#include "common/maths/label_stats.h"

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

// What summary.json says about the analyses: the members
//   "explain": {"length": 3, "beam": 5, "seconds": 12.3},
//   "stats": {"bootstrap": 1000, "permutations": 1000, "seed": 1, "max_null": false,
//             "seconds": 4.5},
//   "significant_detectors": 12, "significant_units": 15, "significant_detectors_max": 9
// (explain's seconds include building the tables; significant_* only with permutations,
// significant_detectors_max only with the max null).
struct AnalysisSummary {
  bool explained = false;
  int length = 0, beam = 0;
  double explain_seconds = 0;
  bool stats = false;
  int bootstrap = 0, permutations = 0;
  uint64_t seed = 0;
  bool max_null = false;
  double stats_seconds = 0;
  int64_t significant_detectors = -1, significant_units = -1;  // -1: absent
  int64_t significant_detectors_max = -1;
};

// The summary of `outcome`, run for `request`.
AnalysisSummary SummarizeAnalyses(const AnalysisOutcome& outcome, const AnalysisRequest& request);

// The summary.json members above, without a trailing comma; "" when neither analysis ran.
std::string FormatAnalysisSummary(const AnalysisSummary& s);

// Writes the files of `outcome` (explanations.csv, stats.csv) into `dir` (created if needed).
Status WriteAnalysisFiles(const std::string& dir, const BrodenDataset& dataset,
                          const AnalysisOutcome& outcome);

// explanations.csv and stats.csv of one unit, as the report reads them back.
struct UnitAnalysis {
  std::string explanation;  // the compositional explanation, "" when none
  double explanation_iou = 0;
  int explanation_length = 0;
  bool has_interval = false;  // bootstrap columns present
  double iou_low = 0, iou_high = 0, stability = 0;
  bool has_p = false;  // permutation columns present
  double p_value = 1, q_value = 1;
  bool has_max = false;  // max-null columns present
  double p_max = 1, q_max = 1;
};

// Reads explanations.csv and stats.csv in `dir` when they exist (absent files leave `out`
// unchanged) into out[unit - 1]. Errors (DataLoss naming the file and line): a missing column, a
// bad number, a unit outside 1..out->size().
[[nodiscard]] Status ReadAnalysisFiles(const std::string& dir, std::vector<UnitAnalysis>* out);

}  // namespace nd
