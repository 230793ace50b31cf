// Compositional explanations (Mu & Andreas 2020) of every unit of a layer, from LayerTables
// (layer_tables.h): no forward pass. Configured by [explain] length / beam (common/base/config.h);
// written to explanations.csv (analysis_files.h).
//
// Specification (issue 14; SPEC.md §5), implemented exactly:
//  - unit mask M per image: the dissection's own (unit_mask.h);
//  - label mask per image: label L's pixels in any layer of any (selected) category, a pixel
//    counted once; a scalar label covers the whole sh×sw grid. Labels LabelIndex ignores (label 0,
//    labels without a primary category among the selected categories) are not candidates;
//  - formulas are left-deep over labels with OR (union), AND (intersection) and AND NOT (F minus
//  L),
//    written `(F OR L)`, `(F AND L)`, `(F AND NOT L)` with label.csv names;
//  - IoU(F) = Σ_images |M ∩ F| / Σ_images |M ∪ F| over every used image, no category restriction,
//    0 when the union is 0. Counts are exact int64; IoUs are compared exactly (128-bit
//    cross-multiplication), never as rounded doubles;
//  - candidates: every label present in at least one used image (LayerTables::occurring_labels);
//  - round 1 scores every candidate label; the beam is the best `beam` of them. Each further round
//    (up to `length` leaves) extends every formula of the beam by every candidate label that is
//    not already one of its leaves, with each of the three operators; the new beam is the best
//    `beam` of the old beam and all these candidates (a formula already in the old beam counts
//    once);
//  - order ("best"): higher IoU, then fewer leaves, then the formula text ascending (bytewise),
//    then — only for two distinct labels with the same name — the leaves' label numbers and
//    operators ascending;
//  - the unit's explanation is the first formula of the final beam; its primitive is the best
//    single label (the first of round 1).
//
// How it is computed (by counting, not by merging masks per candidate): with M, F, L the masks and
// |·| summed over images, every extension of a beam formula F follows from |M|, |M∩F|, |F| (known
// from when F was scored), |M∩L| (round 1, per unit), |L| (global), and two per-label histograms:
// |M∩F∩L| (per unit, over the images where M is non-empty) and |F∩L| (per formula, over every
// image; shared by all units whose beam holds F):
//    OR:      |M∩G| = |M∩F| + |M∩L| − |M∩F∩L|,   |G| = |F| + |L| − |F∩L|
//    AND:     |M∩G| = |M∩F∩L|,                   |G| = |F∩L|
//    AND NOT: |M∩G| = |M∩F| − |M∩F∩L|,           |G| = |F| − |F∩L|
//    and |M∪G| = |M| + |G| − |M∩G|.
// Rounds are synchronous over units: the distinct beam formulas of all units are counted once
// (threads over formulas), then every unit extends its beam (threads over units).
//
// Thread-safety: ExplainUnits is a pure function of its arguments; it uses `workers` threads.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "common/base/status.h"
#include "common/maths/layer_tables.h"

namespace nd {

enum class FormulaOp : uint8_t { kOr = 0, kAnd = 1, kAndNot = 2 };

// A left-deep formula: labels[0] op[0] labels[1] op[1] labels[2] ..., evaluated left to right.
struct Formula {
  std::vector<int> labels;     // global label numbers, at least one
  std::vector<FormulaOp> ops;  // ops.size() == labels.size() - 1
  int leaves() const { return static_cast<int>(labels.size()); }
  bool operator==(const Formula& o) const { return labels == o.labels && ops == o.ops; }
};

// " OR ", " AND ", " AND NOT ".
const char* FormulaOpText(FormulaOp op);
// The text of `f`: a leaf is names[label]; (F OR L), (F AND L), (F AND NOT L).
// REQUIRES: every label < names.size().
std::string FormulaText(const Formula& f, const std::vector<std::string>& names);

struct ExplainOptions {
  int length = 3;   // config [explain] length: the most leaves of a formula (>= 1)
  int beam = 5;     // config [explain] beam: formulas kept per round (>= 1)
  int workers = 0;  // threads; 0 = all hardware threads
};

struct UnitExplanation {
  Formula formula;           // empty (no labels) when no label occurs in the used images
  std::string text;          // FormulaText(formula)
  int64_t intersection = 0;  // Σ |M ∩ F|
  int64_t union_area = 0;    // Σ |M ∪ F|
  double iou = 0;            // intersection / union_area, 0 when union_area is 0
  int primitive = -1;        // the best single label, -1 when none
  std::string primitive_text;
  int64_t primitive_intersection = 0, primitive_union = 0;
  double primitive_iou = 0;
};

struct ExplainReport {
  std::vector<UnitExplanation> units;  // one per unit, unit order
  int64_t candidates_scored = 0;       // formulas whose IoU was computed, all units and rounds
  int64_t beam_formulas_counted = 0;   // distinct beam formulas whose |F∩L| histograms were made
  double formula_seconds = 0;          // wall time of the per-formula histograms
  double unit_seconds = 0;             // wall time of the per-unit work
};

// Explains every unit of `tables`. `names[l]` is label l's name (label.csv), one per label slot.
// Errors: length < 1, beam < 1, workers < 0, names.size() < tables.num_labels().
StatusOr<ExplainReport> ExplainUnits(const LayerTables& tables,
                                     const std::vector<std::string>& names,
                                     const ExplainOptions& options);

}  // namespace nd
