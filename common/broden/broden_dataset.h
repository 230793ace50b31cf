// The Broden dataset reader (SPEC.md §1).
//
// A Broden directory holds index.csv, category.csv, label.csv, c_<category>.csv and images/.
// BrodenDataset::Open() parses all CSVs by header name (column order differs between releases),
// validates every row, and resolves each label's primary category among the selected categories
// (SPEC.md §2 step 4). ReadLabels() decodes one image's per-pixel label layers (PNG, label =
// R + 256*G, 0 = unlabeled) and its whole-image (scalar) labels.
//
// Category selection: only the columns of selected categories are read from index.csv rows, and
// a label's primary category is chosen among the selected categories in which the label has a row
// in c_<cat>.csv (largest coverage; ties go to the category later in category.csv). A label with
// no row in any selected category has no primary category (-1) and is never counted. Label 0 is
// never counted.
//
// Paths: every path named by index.csv is relative to <root>/images/ and must stay inside
// <root>/images/ after lexical normalisation ("a/../b.png" is fine); "../" escapes, absolute paths
// and empty items are errors, reported by Open() with the index.csv line. Symlinks are not
// resolved. The exact CSV formats are in FORMAT.md.
//
// Errors name the file and the 1-based line number (the header is line 1), and the column where
// it helps: "index.csv:17: column 'ih': 'abc' is not an integer".
//
// Thread-safety: a BrodenDataset is immutable after Open(); ReadLabels() is const and may be
// called concurrently from several threads.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "common/base/config.h"
#include "common/base/status.h"
#include "common/broden/csv.h"

namespace nd {

// What Open() does with a malformed *data row* of index.csv (a non-integer or out-of-range size,
// too few or too many cells, an unreadable cell, an unknown scalar label, a path leaving images/).
// Errors in index.csv's header, label.csv, category.csv and c_*.csv always fail Open().
enum class BadRowPolicy {
  kSkip,  // leave the row out, record it in skipped_index_rows() (config dataset.on_bad_row)
  kFail,  // fail Open() with the row's error
};

struct BrodenOptions {
  // Category names to use, any order; empty = all categories of category.csv. An unknown name is
  // an error naming it and listing the known ones. The dataset always keeps category.csv order.
  std::vector<std::string> categories;
  // The pipeline passes config dataset.on_bad_row (default "skip"); tools that read a dataset they
  // generated keep kFail.
  BadRowPolicy on_bad_row = BadRowPolicy::kFail;
};

// The options the pipeline's processes open the configured dataset with (categories, on_bad_row).
BrodenOptions BrodenOptionsFor(const DatasetConfig& config);

// An index.csv data row left out under BadRowPolicy::kSkip.
struct SkippedIndexRow {
  int line = 0;        // 1-based line of index.csv where the row starts
  std::string reason;  // one line: "<path>/index.csv:41: column 'iw': 'xx' is not an integer"
};

struct BrodenCategory {
  std::string name;
  int64_t first = 0, last = 0, count = 0, frequency = 0;  // as in category.csv
  bool selected = false;
};

struct BrodenLabel {
  int number = 0;  // global label number, 1..num_labels()-1
  std::string name;
  // Coverage in c_<cat>.csv per category (category.csv order); < 0 when the label has no row there.
  std::vector<double> coverage;
  int64_t frequency = 0;      // from label.csv
  double label_coverage = 0;  // "coverage" column of label.csv
  int primary_category = -1;  // category index, -1 when the label is in no selected category
  bool defined = false;       // label.csv has a row for this number (never for slot 0)
};

struct BrodenImage {
  int row = 0;   // 0-based position in images(): index.csv data rows in file order, skipped rows
                 // left out (equal to the data row number when none was skipped)
  int line = 0;  // 1-based line of index.csv where the row starts (for error messages)
  std::string image;   // path relative to images/
  std::string split;   // "train" / "val"
  int ih = 0, iw = 0;  // image size
  int sh = 0, sw = 0;  // segmentation size
  // Per category (category.csv order), for selected categories only (others stay empty):
  std::vector<std::vector<std::string>> pixel_layers;  // PNG paths relative to images/
  std::vector<std::vector<int>> scalar_labels;         // whole-image label numbers
};

// One image's labels. Each layer is sh*sw row-major label numbers (0 = unlabeled); every non-zero
// number has been checked to have a row in label.csv. layer_category[k] is the category of
// layer k. Scalar labels cover every pixel of the sh×sw grid.
struct ImageLabels {
  int sh = 0, sw = 0;
  std::vector<std::vector<uint16_t>> layers;
  std::vector<int> layer_category;
  std::vector<int> scalar_labels;
  std::vector<int> scalar_category;
};

class BrodenDataset {
 public:
  // Reads and validates the CSVs under `root`. Does not open any image.
  static StatusOr<BrodenDataset> Open(const std::string& root, const BrodenOptions& options = {});

  const std::string& root() const { return root_; }
  const std::vector<BrodenCategory>& categories() const { return categories_; }
  // Index of a category by name, -1 if absent.
  int CategoryIndex(const std::string& name) const;
  // Number of label slots: max label number in label.csv + 1 (slot 0 = unlabeled).
  int num_labels() const { return static_cast<int>(labels_.size()); }
  // Indexed by label number; labels()[0] is the unlabeled slot (number 0, no primary category).
  const std::vector<BrodenLabel>& labels() const { return labels_; }
  int PrimaryCategory(int label) const { return labels_[label].primary_category; }
  const std::vector<BrodenImage>& images() const { return images_; }
  // Malformed index.csv data rows left out under BadRowPolicy::kSkip, by line.
  const std::vector<SkippedIndexRow>& skipped_index_rows() const { return skipped_rows_; }

  // Path (<root>/images/<normalised relative>) of a file named in index.csv, checked to stay
  // inside <root>/images/.
  StatusOr<std::string> ResolveImagePath(const std::string& relative) const;

  // Decodes image i's label layers and scalar labels (selected categories only).
  // Errors: missing/unreadable/corrupt PNG, PNG size != sh×sw, label number with no label.csv
  // row; each names the PNG file and the index.csv line.
  StatusOr<ImageLabels> ReadLabels(size_t i) const;

 private:
  struct IndexColumns {
    int image = -1, split = -1, ih = -1, iw = -1, sh = -1, sw = -1;
    std::vector<int> category;  // per category; -1 when not selected
  };
  // Parses data row r of index.csv into *out (all fields but `row`).
  Status ParseIndexRow(const CsvTable& table, size_t r, const IndexColumns& columns,
                       BrodenImage* out) const;
  // The steps of Open(), in order; `dir` is root_ + "/".
  Status ReadCategoryCsv(const std::string& dir);
  Status SelectCategories(const BrodenOptions& options, const std::string& dir);
  Status ReadLabelCsv(const std::string& dir);
  Status ReadCategoryCoverage(const std::string& dir);
  void AssignPrimaryCategories();
  Status ReadIndexCsv(const std::string& dir, const BrodenOptions& options);

  std::string root_;
  std::vector<BrodenCategory> categories_;
  std::vector<BrodenLabel> labels_;
  std::vector<BrodenImage> images_;
  std::vector<SkippedIndexRow> skipped_rows_;
  // 65536 entries; [v] = 1 when a PNG pixel may carry value v: 0 (unlabeled) or a number with a
  // label.csv row.
  std::vector<uint8_t> pixel_value_ok_;
};

// Decodes a Broden label PNG (8-bit RGB or RGBA; label = R + 256*G) into `out` (rows*cols,
// row-major; its capacity is reused). Grayscale 8/16-bit PNGs are read as the label number
// directly. Non-interlaced PNGs of these formats without tRNS (every Broden layer) take a built-in
// fast path (~4x faster than libpng: libdeflate, chunk CRCs and the zlib checksum verified); any
// other file, damaged ones included, goes to libpng, set up as OpenCV's cv::imread(path,
// IMREAD_UNCHANGED) sets it up (the decoder used before): palette PNGs give RGB (RGBA with tRNS),
// gray below 8 bits is scaled to 8 bits (2-bit 1 -> 85), gray+alpha gives gray + 256*gray,
// 16-bit colour is an unsupported pixel format, no gamma is applied. Files that are not PNGs are
// not decodable. Errors name `path` on one line: NotFound (no file), DataLoss (not decodable,
// with libpng's reason), InvalidArgument (size differs from expected_rows x expected_cols,
// unsupported pixel format), IoError. Thread-safe. When `used_fast_path` is given, it tells which
// decoder produced `out`.
Status DecodeLabelPng(const std::string& path, int expected_rows, int expected_cols,
                      std::vector<uint16_t>* out, bool* used_fast_path = nullptr);

// DecodeLabelPng on bytes already in memory (the fuzz target's entry point); `path` only names the
// data in errors. A PNG whose IHDR names a size other than expected_rows x expected_cols is refused
// (InvalidArgument) before any pixel is allocated, whichever decoder would handle it.
// REQUIRES: data points to `size` readable bytes (may be null when size is 0).
Status DecodeLabelPngBytes(const uint8_t* data, size_t size, const std::string& path,
                           int expected_rows, int expected_cols, std::vector<uint16_t>* out,
                           bool* used_fast_path = nullptr);

}  // namespace nd
