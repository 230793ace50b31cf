// The files of one scored layer, in <output.dir>/<layer>/ (or <layer>/q<q>/ when several
// quantiles are requested): tally.csv (SPEC.md §3, unit 1-based), thresholds.csv (unit 0-based,
// threshold printed exactly with 17 significant digits) and summary.json. Every file is written to
// a temporary name and renamed, so a reader never sees half a file.
#pragma once

#include <string>
#include <vector>

#include "common/broden/broden_dataset.h"
#include "common/status.h"
#include "stages/score/score_stage.h"

namespace nd {

struct RunFacts {
  std::string model_path, dataset_path, layer, preprocess, cache_dtype;
  double quantile = 0;
  uint64_t images_total = 0;    // rows of index.csv
  uint64_t forward_images = 0;  // run through the network in this invocation
  uint64_t images_from_cache = 0;
  std::vector<std::pair<uint32_t, std::string>> skipped;  // upstream skips (decode, extract)
  std::string stage_seconds;  // JSON members, e.g. "decode": 1.2, "extract": 3.4
  std::string analysis_json;  // top-level JSON members of the analyses (analysis_files.h), or ""
};

// Writes tally.csv, thresholds.csv and summary.json into `dir` (created if needed).
Status WriteLayerResultFiles(const std::string& dir, const BrodenDataset& dataset,
                             const ScoreReport& report, const std::vector<double>& thresholds,
                             const RunFacts& facts);

// JSON string literal with escapes.
std::string JsonString(const std::string& s);

}  // namespace nd
