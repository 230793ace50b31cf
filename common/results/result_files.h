// The result files of one scored layer and where they live: the one owner of the result layout and
// of tally.csv, thresholds.csv and summary.json (written by score, read by the report, the bench
// and the rating server). Every file is written to a temporary name and renamed, so a reader never
// sees half a file (common/base/atomic_file.h).
//
// Layout: <output.dir>/<layer>/ holds a layer's files; with several quantiles
// (threshold.quantile a list) each quantile has its own folder <output.dir>/<layer>/q<q>/, q
// printed with %g (q0.005).
//
// thresholds.csv: header `unit,threshold`, one row per unit in unit order, unit 0-based (as in the
// model), T_u printed with 17 significant digits (exact), lines end with "\n".
//
// summary.json: one object, keys in the order of LayerSummary below, two-space indentation; reals
// with 17 significant digits except the timings (6, or %f for stage_seconds).
#pragma once

#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "common/base/status.h"
#include "common/broden/broden_dataset.h"
#include "common/maths/dissector.h"
#include "common/maths/layer_results.h"
#include "common/results/analysis_files.h"

namespace nd {

// ---- Layout ----

// "q" + q printed with %g: "q0.005".
std::string QuantileDirName(double q);

// <output_dir>/<layer>, or <output_dir>/<layer>/q<q> when `several_quantiles`.
std::string LayerResultDir(const std::string& output_dir, const std::string& layer, double q,
                           bool several_quantiles);

// ---- tally.csv ----

// Writes NetDissect-Lite's tally.csv (SPEC.md §3) to `path`, atomically (a temp file next to it,
// then rename). Matches NetDissect-Lite's writer (feature_operation.py, FeatureOperator.tally:
// csv.DictWriter, Python 3):
//  - header `unit,category,label,score` then, for each *selected* category in category.csv order
//    (NetDissect-Lite drops unselected categories from its category list),
//    `<cat>-label,<cat>-truth,<cat>-activation,<cat>-intersect,<cat>-iou`;
//  - one row per unit, sorted by score descending, ties by lower unit first; `unit` is 1-based;
//  - `category`,`label`: the unit's category and label names; `score`: its IoU;
//  - per category: the best-in-category label's name, G, U[u,c], I and IoU;
//  - reals as Python's repr of a float64 (shortest round-trip: `0.0`, `0.123`, `3.2e-05`); the
//    counts, which NetDissect-Lite holds as float64, as integers with `.0` (`1234.0`);
//  - a category without labels (best label -1) gets an empty name and 0.0 counts. Where all of a
//    category's IoUs are 0, NetDissect-Lite's argmax lands on label 0 and writes its empty name;
//    nd-pipeline writes the category's lowest label (the SPEC's first-index rule) with its real
//    counts, so every row satisfies iou = intersect / (activation + truth - intersect);
//  - fields quoted as Python's csv module does (only when they hold `,` `"` CR or LF);
//    lines end with "\r\n" (csv's default).
// Errors: results and dataset disagree (labels, categories); the file cannot be written (IoError
// naming the path).
Status WriteTallyCsv(const LayerResults& results, const BrodenDataset& dataset,
                     const std::string& path);

// The tally.csv text itself (what WriteTallyCsv writes). REQUIRES: results and dataset agree.
StatusOr<std::string> FormatTallyCsv(const LayerResults& results, const BrodenDataset& dataset);

// One row of tally.csv as readers use it.
struct TallyUnit {
  int unit = 0;  // 1-based
  std::string category, label;
  double iou = 0;
  std::vector<std::string> cat_label;  // per category of `categories`, "" when none
  std::vector<double> cat_iou;
};
struct TallyFile {
  std::vector<std::string> categories;  // from the header's "<cat>-label" columns, in order
  std::vector<TallyUnit> units;         // indexed by unit - 1
};
// Parses tally.csv (by header name). Errors name the path and line: a missing column, a bad
// number, a unit out of range or repeated, units not exactly 1..n; NotFound for a missing file.
[[nodiscard]] StatusOr<TallyFile> ReadTallyFile(const std::string& path);

// ---- thresholds.csv ----

std::string FormatThresholdsCsv(const std::vector<double>& thresholds);
// Parses thresholds.csv: "unit,threshold", units exactly 0..n-1 in any order.
[[nodiscard]] StatusOr<std::vector<double>> ReadThresholdsFile(const std::string& path);

// ---- summary.json ----

struct SkippedNote {
  uint64_t at = 0;  // skipped_images: the index.csv data row; skipped_index_rows: the line
  std::string reason;
};

// A view's definition in summary.json ("view": {...}, present for views only; config.h
// ViewConfig): the layer it is read from, the basis and its parameters.
struct ViewFacts {
  std::string layer;  // "" = not a view
  std::string basis;  // "rotation" | "file"
  int64_t seed = 0;   // rotation
  double alpha = 1;   // rotation
  std::string path;   // file
  bool present() const { return !layer.empty(); }
};

struct LayerSummary {
  // layer: the layer's or view's name (the result folder's last component); model: the model file;
  // model_name: its [[models]] name ("" for [model].path, then absent from summary.json).
  std::string layer, model, dataset, preprocess, cache_dtype;
  std::string model_name;
  ViewFacts view;
  double quantile = 0;
  std::string union_rule;  // "union": "paper" or "lite"
  double iou_threshold = 0;
  uint64_t images_total = 0;  // rows of index.csv
  uint64_t images = 0;        // images scored
  uint64_t forward_images = 0, images_from_cache = 0;
  int64_t units = 0, detectors = 0, unique_detectors_paper = 0, unique_detectors_top_label = 0;
  struct Category {
    std::string name;
    int64_t detectors = 0, unique_detectors_paper = 0;
  };
  std::vector<Category> categories;             // selected categories, category.csv order
  std::vector<SkippedNote> skipped_images;      // "skipped" is their count
  std::vector<SkippedNote> skipped_index_rows;  // "index_rows_skipped" is their count
  uint64_t label_pixels_in_several_layers = 0;
  uint64_t mask_maps = 0, mask_maps_skipped_by_max = 0;  // "masks": {"maps", "skipped_by_max"}
  double score_cpu_s = 0, score_cpu_ms_per_image = 0;
  AnalysisSummary analysis;  // members present only for the analyses that ran
  std::vector<std::pair<std::string, double>> stage_seconds;  // decode, extract, forward, ...
};

std::string FormatSummaryJson(const LayerSummary& s);
// Parses summary.json (Boost.PropertyTree). Absent members keep their defaults (files of older
// versions); malformed JSON or a member of the wrong type is DataLoss naming the path.
[[nodiscard]] StatusOr<LayerSummary> ReadSummaryFile(const std::string& path);

// ---- Writing a layer's files ----

// What the score process knows about the run beyond the scoring itself.
struct RunFacts {
  std::string model_path, dataset_path, layer, preprocess, cache_dtype;
  std::string model_name;  // [[models]] name; "" for [model].path
  ViewFacts view;
  double quantile = 0;
  uint64_t images_total = 0;    // rows of index.csv
  uint64_t forward_images = 0;  // run through the network in this invocation
  uint64_t images_from_cache = 0;
  std::vector<std::pair<uint32_t, std::string>> skipped;      // upstream skips (decode, extract)
  std::vector<std::pair<std::string, double>> stage_seconds;  // including score's own
  AnalysisSummary analysis;
};

// The summary of one scored layer.
LayerSummary SummarizeLayer(const BrodenDataset& dataset, const ScoreReport& report,
                            const RunFacts& facts);

// Writes tally.csv, thresholds.csv and summary.json into `dir` (created if needed).
[[nodiscard]] Status WriteLayerResultFiles(const std::string& dir, const BrodenDataset& dataset,
                                           const ScoreReport& report,
                                           const std::vector<double>& thresholds,
                                           const RunFacts& facts);

}  // namespace nd
