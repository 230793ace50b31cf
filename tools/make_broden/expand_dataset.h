// ExpandDataset: writes an *expanded concept set* of an existing Broden directory: the same images
// (byte-identical, hard-linked when possible) with more labels, so that `nd-pipeline rescore` on
// the new directory takes every activation from the cache and runs no forward pass (the cache key
// holds the SHA-256 of each image file's bytes, not its path). The format is documented in
// README.md, section "Expanded concept sets"; in short:
//
// New labels, derived deterministically from each image's first layer of the source category
// (options.source_category, default "object"), label values read as in SPEC.md §1:
//   - in the EXISTING category options.part_category (default "part"), one more PNG layer per
//     image, `<stem>_part_<k>.png` (k = the image's part layer count + 1, or the next k whose name
//     is unused), carrying two labels:
//       upper-half  pixels of source label l (l != 0) in the upper half of l's row extent in this
//                   image: with top = first row holding l, height = last row − top + 1, pixel
//                   (i, j) is upper-half when 2*(i − top) < height;
//       lower-half  the other pixels of source label l (l != 0).
//     Every labelled source pixel carries exactly one of the two.
//   - a NEW category options.new_category (default "edge"), appended as the last row of
//     category.csv and the last column of index.csv, with two PNG layers per image,
//     `<stem>_edge_1.png` and `<stem>_edge_2.png`, carrying:
//       horizontal-edge (layer 1)  the source label at (i, j) differs from the one at (i−1, j) or
//                                  (i+1, j) (neighbours inside the grid only);
//       vertical-edge   (layer 2)  it differs from (i, j−1) or (i, j+1).
//     A pixel can carry both, one per layer.
//   <stem> is the photo path (index.csv `image`) without its extension. A layer with no labelled
//   pixel is not written (and not named in index.csv); an image without a source layer (texture
//   images) gets no new layer and an empty new column.
//
// Label numbers: upper-half = M+1, lower-half = M+2, horizontal-edge = M+3, vertical-edge = M+4,
// where M is the largest number in the source label.csv (so every label of the source keeps its
// number, and the new numbers are fixed by the source alone). Names must not already exist.
//
// Files: every file that the source index.csv names (photos and layers) is hard-linked into the
// new images/ (copied when linking fails, e.g. across file systems): byte-identical. label.csv
// and c_<part>.csv are the source files' bytes plus appended rows for the new labels (in the
// source header's column order; line ends as in the source); c_<new>.csv is new; category.csv
// and index.csv are rewritten row by row: the part row's first/last/count/frequency and the new
// category row are recomputed, every other row keeps its cells (re-quoted only where a cell needs
// quotes). Statistics of the new labels follow common/broden/FORMAT.md and the generator
// (broden_generator.h): frequency = images having the label in the category; coverage = sum over
// images of pixels/(sh*sw), printed %f; label.csv category "part(n)" / "edge(n)".
//
// Crash safety: written into "<out_dir>.partial-<pid>", renamed to out_dir at the end.
// Deterministic: the output depends on the source directory only (not on the thread count).
// Thread-compatible: one Run() at a time per instance.
#pragma once

#include <cstdint>
#include <string>

#include "common/base/status.h"

namespace nd {

struct ExpandOptions {
  std::string source_dir;  // required: a Broden directory (index.csv, category.csv, ...)
  std::string out_dir;     // required: must not exist, or be empty (see overwrite)
  std::string source_category = "object";  // layers the new labels are derived from
  std::string part_category = "part";      // existing category that gets upper/lower-half
  std::string new_category = "edge";       // new category for horizontal/vertical-edge
  int threads = 0;                         // 0 = std::thread::hardware_concurrency()
  // Replace an existing out_dir that holds a dataset (has index.csv) or is empty; never a
  // non-empty directory without index.csv, and never the source itself.
  bool overwrite = false;
};

// Label numbers and per-label statistics of one new label.
struct ExpandedLabel {
  int number = 0;
  std::string name;
  std::string category;
  int64_t frequency = 0;  // images having the label
  double coverage = 0;    // whole images
};

struct ExpandSummary {
  int64_t images = 0;
  int64_t files_linked = 0, files_copied = 0;
  int64_t layers_written = 0;
  ExpandedLabel labels[4];  // upper-half, lower-half, horizontal-edge, vertical-edge
  double seconds = 0;
};

class DatasetExpander {
 public:
  explicit DatasetExpander(ExpandOptions options);

  // Writes the expanded dataset. Errors name the source file and line (through the Broden
  // reader) or the output path; on error out_dir is left untouched.
  StatusOr<ExpandSummary> Run();

 private:
  ExpandOptions options_;
};

// One line per new label, for the CLI.
std::string FormatExpandSummary(const ExpandOptions& options, const ExpandSummary& summary);

}  // namespace nd
