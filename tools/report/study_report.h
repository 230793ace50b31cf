// The study report: one page comparing the result sets of a run with several models ([[models]])
// or views ([[view]]), for the paper's questions (README "Studies"): how interpretable each model
// and layer is, how that changes over training iterations, whether it survives a rotation of the
// basis (axis alignment), and what fine-tuning does to each unit's concept. Read only from the
// result files and the training records; no cache, no LibTorch, no forward pass.
//
// What BuildStudyReport() reads:
//   - the configuration: ConfiguredModels (name, path, group, seed, iteration, accuracy) and
//     ConfiguredUnitSets (every scored set: model, layer or view, alpha), in that order;
//   - per set, at the first configured quantile (LayerResultDir): summary.json (counts, categories,
//     the view) and tally.csv (each unit's top label and IoU: transitions only);
//   - per model, its nd-train record when there is one (TrainRecordPathFor(model path),
//     tools/train/train_record_file.h): iteration, train/val accuracy, task, seed, init_from.
//   [[models]] values win over the record's (iteration, seed; accuracy = validation accuracy).
//
// What it writes, under <report dir> (default <output.dir>/report; index.html and img/ are the
// main report's and are not touched):
//   study.html               self-contained: inline CSS, inline JS, inline SVG, no network; links
//                            the main report's strips img/<section>/unit<N>.jpg only when
//                            options.link_strips (the main report was written in the same run)
//   study_runs.csv, study_categories.csv, study_iterations.csv, study_rotation.csv,
//   study_transitions.csv     the numbers of every chart, for plotting elsewhere (FORMAT below)
//
// The page, in order (each figure has an id; a chart that has no data is replaced by one
// <p class="missing" data-chart="<id>"> line saying why):
//   #chart-categories  unique detectors per category (paper rule: summary.json
//                      categories[].unique_detectors_paper), one stacked bar per model x layer
//                      (<g class="bar"> per bar, one <rect class="seg"> per non-zero category),
//                      category colours as the main report's, with a legend;
//   #chart-iterations  detectors and unique detectors (paper rule) against training iteration on
//                      a log axis (iteration 0, the initialisation, drawn at the axis' left end
//                      and labelled 0), validation accuracy on the right axis; one series per
//                      group x layer (<g class="series">, <circle class="pt"> per model), for
//                      models with an iteration; a group's accuracy as a dashed line;
//   #chart-rotation    unique detectors (paper rule) against alpha for rotation views: mean over
//                      seeds with a min-max bar, one series per model x source layer;
//   #transitions       per model pair and layer (<div class="pair">): units that keep their top
//                      label, the 10 most frequent label changes, example strips before/after;
//   #runs              a table, one <tr class="run"> per result set.
// Problems that leave one piece out (a malformed summary.json or record, units that differ
// between a pair) are one line each in <ul id="notes"> and in StudyStats::notes; the rest goes on.
//
// FORMAT of the CSV files: header row, then data rows; "," separated, fields quoted as Python's
// csv module does (CsvField), lines end with "\n"; reals in the shortest form that reads back
// exactly (0.5, 0.6875); an unknown value is an empty field.
//   study_runs.csv: one row per result set read, in ConfiguredUnitSets order:
//     model            [[models]] name (the model file's name without [[models]])
//     group, seed, iteration   [[models]] values, else the record's (seed, iteration); "" unknown
//     train_accuracy   the record's (fraction in [0, 1])
//     val_accuracy     [[models]].accuracy, else the record's val_accuracy
//     task             the record's training task (scene/object/texture)
//     set              the result folder name under output.dir ("m1/layer4", "m1/rot-a0.5")
//     layer            the layer (for a view: its source layer)
//     view             the view's name ("" for a layer); basis, view_seed, alpha: the view's
//                      (view_seed and alpha only for rotation)
//     units, detectors, unique_detectors_paper, unique_detectors_top_label   from summary.json
//   study_categories.csv: one row per result set and selected category (category.csv order):
//     model, set, layer, view, category, detectors (detectors whose best label is of it),
//     unique_detectors_paper (distinct labels among them, summary.json)
//   study_iterations.csv: one row per layer (not view) of a model with an iteration, ordered by
//     group, layer, iteration, model:
//     group, layer, iteration, model, detectors, unique_detectors_paper, train_accuracy,
//     val_accuracy
//   study_rotation.csv: one row per model, source layer and alpha of its rotation views, ordered
//     by model (configuration order), layer, alpha; over the views' seeds (one value per view):
//     model, layer, alpha, seeds (how many), unique_mean, unique_sd (sample standard deviation,
//     n - 1; "" when seeds = 1), unique_min, unique_max, detectors_mean
//   study_transitions.csv: one row per model pair (model_a = before, model_b = after), layer and
//     (from_label, to_label) seen, from_label being a unit's top label (tally.csv `label`) in
//     model_a and to_label the same unit's in model_b, every unit counted (kept ones are the rows
//     with from_label == to_label); ordered by pair, layer, units descending, from, to:
//     model_a, model_b, layer, from_label, to_label, units, detector_units (those of them that are
//     detectors, IoU > score.iou_threshold, in both models)
//
// Thread-safety: pure functions over files; BuildStudyReport may run concurrently for different
// report directories.
#pragma once

#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "common/base/config.h"
#include "common/base/status.h"

namespace nd {

struct StudyOptions {
  std::string out_dir;  // "" = <output.dir>/report
  // Model pairs (before, after) by [[models]] name to compare unit by unit, besides those found
  // from the records (a model whose record's init_from is another model's file).
  std::vector<std::pair<std::string, std::string>> compare;
  // The main report (index.html, img/) was written to out_dir in this run: link its strips.
  bool link_strips = false;
  int example_units = 4;  // units shown with strips per pair and layer
};

struct StudyStats {
  std::string study_path;          // study.html
  std::vector<std::string> files;  // the CSV files written
  int runs = 0;                    // result sets read
  int pairs = 0;                   // model pairs compared
  std::vector<std::string> notes;  // one line per piece left out (also on the page)
};

// True when the configuration asks for a study ([[models]] or [[view]] tables).
bool WantsStudyReport(const PipelineConfig& config);

// Parses "A,B" (the --compare flag) into (A, B). Errors: InvalidArgument naming the value.
[[nodiscard]] StatusOr<std::pair<std::string, std::string>> ParseComparePair(
    const std::string& value);

// Reads what the header lists and writes study.html and the CSV files. Errors: InvalidArgument for
// a --compare name that is not a configured model; NotFound when no result set has a summary.json
// ("run nd-pipeline up first"); IoError for unwritable output. Everything else is a note.
[[nodiscard]] StatusOr<StudyStats> BuildStudyReport(const PipelineConfig& config,
                                                    const StudyOptions& options);

}  // namespace nd
