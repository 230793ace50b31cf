// The page of nd-report: one self-contained index.html (inline CSS, inline JS, inline SVG charts;
// no network, no external file but the strip JPEGs it names by relative URL).
//
// Layout: a header (model, dataset, rules, numbering note, category legend), the
// "interpretability by layer" chart (unique detectors per category, paper rule, one stacked bar
// per section), then per section: the counts, a bar chart of unique detectors per category, a bar
// chart of detectors per label grouped by category (the paper's figure), and one card per unit.
//
// DOM contract (tests and scripts rely on it):
//   <body data-sections="S" data-cards="C" data-strips="I" data-loaded="L">: L is set by the inline
//     script to the number of <img class="strip"> with complete && naturalWidth > 0, updated as
//     they load; data-failed counts images that errored.
//   <section class="layer" id="<section id>" data-units data-detectors data-unique-paper
//     data-unique-top-label>
//   <article class="card" id="<section id>-unit-<N>" data-unit="N" data-iou data-label
//     data-category data-detector="0|1">, exactly one per unit, N 1-based as in tally.csv.
//   Where explanations.csv / stats.csv exist, a card also holds <div class="explain"> (formula and
//     IoU) and <div class="trust"> (95% interval, stability, p and q), and the article carries
//     data-explanation, data-stability, data-q.
//   Strips are <img class="strip" loading="lazy">; the query parameter ?eager=1 switches them to
//     eager loading (for headless checks, where nothing scrolls).
// Cards are in tally.csv order (IoU descending) as written; the script sorts them by unit, IoU or
// label and filters by category and by "detectors only". Opening "#<section>-unit-<N>" clears the
// filters and highlights that card.
//
// Thread-safety: pure functions.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "common/base/text_format.h"
#include "common/results/analysis_files.h"
#include "tools/rate/rate_summary.h"

namespace nd {

struct RunnerUp {
  std::string label, category;
  double iou = 0;
};

struct CardTile {
  std::string image;  // path relative to the dataset's images/
  uint32_t row = 0;   // 0-based index.csv row
  float max = 0;      // the unit's max activation on it
};

struct UnitCard {
  int unit = 0;  // 1-based
  std::string label, category;
  double iou = 0;
  bool detector = false;
  double threshold = 0;           // T_u
  std::vector<RunnerUp> runners;  // best labels of the other categories, IoU > 0, descending
  std::string strip;              // URL relative to index.html; "" when the unit has no images
  int strip_width = 0, strip_height = 0;
  std::vector<CardTile> tiles;  // best first
  UnitAnalysis analysis;
};

struct ReportSection {
  std::string id;     // anchor/file id: the layer, or "<layer>-q<q>"
  std::string title;  // "layer4" or "layer4 (q = 0.005)"
  std::string layer;
  double quantile = 0;
  int64_t images = -1;  // images scored (summary.json), -1 when unknown
  int units = 0, detectors = 0, unique_paper = 0, unique_top_label = 0;
  int significant_detectors = -1;        // summary.json's (q < 0.05), -1 when no permutations ran
  std::vector<int> unique_per_category;  // paper rule, per page category
  std::vector<int> detectors_per_category;  // detectors whose category is c
  // Per page category: (label, detectors whose label it is), descending count, then name.
  std::vector<std::vector<std::pair<std::string, int>>> label_detectors;
  std::vector<UnitCard> cards;  // tally.csv order
  // The human evaluation of this layer (`nd-pipeline rate`), when the answers file has answers for
  // it; shown as a "Human evaluation" panel (<div class="human" data-units data-descriptive
  // data-kappa data-alpha data-consistency>).
  bool has_human = false;
  LayerHumanEval human;
};

struct ReportPage {
  std::string model, dataset, union_rule, cache_dtype, preprocess;
  double iou_threshold = 0.04;
  int top_images = 10;
  std::vector<std::string> categories;  // selected categories, category.csv order
  std::vector<ReportSection> sections;
};

// A number for SVG coordinates: one decimal, without a trailing ".0" ("12", "12.5").
std::string SvgNumber(double v);

// A colour per category: fixed for the six Broden categories, from a palette otherwise.
std::string CategoryColour(const std::string& category, int index);

// The whole index.html.
std::string RenderReportHtml(const ReportPage& page);

}  // namespace nd
