// The statistics of `nd-pipeline rate --summary`, per layer, from the answers file alone.
//
// Per layer:
//  - per rater: answers per mode, catch trials and how many were answered "no" (correct); a rater
//    with at least one catch trial and a catch accuracy below `min_catch_accuracy` is excluded:
//    none of their answers of that layer count below (names they wrote stay the units' human
//    labels; that is what the other raters judged);
//  - label check: units with at least one counted answer ("units rated"); units whose Network
//    Dissection label the majority judges descriptive (strictly more "yes" than "no"; a tie is not
//    a majority); their share with its 95% Wilson interval; agreement (rate_stats.h) over the units
//    with two or more answers, with how many raters each had;
//  - human check: the same for the human labels ("human consistency");
//  - names: how many were written, for how many units.
// Catch trials never count as answers on their unit.
//
// Files (tools/rate/FORMAT.md): summary.csv (one row per layer) and raters.csv (one row per rater
// and layer); reals with 6 significant digits, an undefined value (no data, NaN) as an empty cell.
//
// Thread-safety: pure functions.
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "tools/rate/answers_file.h"
#include "tools/rate/rate_stats.h"

namespace nd {

struct RaterSummary {
  std::string rater;
  int64_t label = 0, name = 0, human = 0;  // real answers per mode
  int64_t catch_trials = 0, catch_correct = 0;
  double catch_accuracy = 0;  // NaN without catch trials
  bool excluded = false;
};

struct ShareSummary {
  int64_t units = 0;     // units with at least one counted answer
  int64_t positive = 0;  // of which the majority said "yes"
  double share = 0;      // positive / units; NaN when units == 0
  Interval interval;     // 95% Wilson
  Agreement agreement;
};

struct LayerHumanEval {
  std::string layer;
  int64_t study_units = -1;          // units in the study (-1 when unknown)
  int64_t answers = 0;               // records of this layer, catch trials included
  std::vector<RaterSummary> raters;  // by name
  ShareSummary label, human;
  int64_t names = 0, units_named = 0;
  double min_catch_accuracy = 0;
};

// One entry per layer that has records, in order of first appearance. `study_units` by layer
// fills LayerHumanEval::study_units where known.
std::vector<LayerHumanEval> SummarizeAnswers(const std::vector<AnswerRecord>& records,
                                             double min_catch_accuracy,
                                             const std::map<std::string, int64_t>& study_units);

std::string FormatHumanSummaryCsv(const std::vector<LayerHumanEval>& layers);
std::string FormatRatersCsv(const std::vector<LayerHumanEval>& layers);
// What `rate --summary` prints: a few lines per layer.
std::string FormatHumanSummaryText(const std::vector<LayerHumanEval>& layers);

}  // namespace nd
