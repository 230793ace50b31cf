// A small CSV reader for the Broden metadata files (FORMAT.md, "CSV dialect").
//
// RFC 4180 with Python-csv leniency: comma separator, `"`-quoted fields with `""` escapes, quoted
// fields may span lines, `\r\n` or `\n` line ends, blank lines skipped, a UTF-8 BOM skipped. A `"`
// inside an unquoted field is literal (as Python reads it). The first non-blank line is the header;
// rows are addressed by header name. Every data row must have exactly as many fields as the header.
// With CsvBadRowPolicy::kSkip a data row that breaks a row-local rule (a field count other than the
// header's, a character after a closing quote) is left out of the table and recorded in bad_rows()
// with its one-line error, and parsing goes on at the next line; an unclosed quote (nothing after
// it can be trusted), an empty file and a bad header stay errors.
//
// Errors are one line, "<name>:<line>: <what>", with 1-based physical line numbers (the header is
// line 1 unless blank lines precede it); a row's line is the line where the row starts.
//
// CsvTable is an immutable value after Parse()/ReadFile(); const methods are thread-safe.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "common/base/status.h"

namespace nd {

enum class CsvBadRowPolicy { kFail, kSkip };

// A data row left out under CsvBadRowPolicy::kSkip.
struct CsvBadRow {
  int line = 0;         // 1-based line where the row starts
  std::string message;  // "<name>:<line>: <what>", the error kFail would have returned
};

class CsvTable {
 public:
  // Parses `text`. `name` is used in error messages (usually the file path).
  static StatusOr<CsvTable> Parse(std::string_view text, const std::string& name,
                                  CsvBadRowPolicy policy = CsvBadRowPolicy::kFail);
  // Reads and parses the file at `path`; errors name `path`.
  static StatusOr<CsvTable> ReadFile(const std::string& path,
                                     CsvBadRowPolicy policy = CsvBadRowPolicy::kFail);

  const std::string& name() const { return name_; }
  const std::vector<std::string>& header() const { return header_; }
  size_t num_rows() const { return rows_.size(); }
  // 1-based line number where data row `row` (0-based) starts.
  int line(size_t row) const { return lines_[row]; }
  int header_line() const { return header_line_; }
  // Rows left out under CsvBadRowPolicy::kSkip, in file order (always empty under kFail).
  const std::vector<CsvBadRow>& bad_rows() const { return bad_rows_; }

  // Index of a header column, -1 when absent.
  int ColumnIndex(std::string_view column) const;
  // Index of a required column, or "<name>:<header line>: missing column 'x'; columns are: a, b".
  StatusOr<int> RequireColumn(std::string_view column) const;

  // REQUIRES: row < num_rows(), 0 <= column < header().size().
  const std::string& cell(size_t row, int column) const { return rows_[row][column]; }

  // Typed access with errors "<name>:<line>: column 'ih': 'abc' is not an integer".
  // Integers: optional '-', then decimal digits only, in range of int64_t.
  StatusOr<int64_t> GetInt(size_t row, int column) const;
  // Like GetInt, and the value must lie in [min_value, max_value].
  StatusOr<int64_t> GetIntInRange(size_t row, int column, int64_t min_value,
                                  int64_t max_value) const;
  // A finite real number, the whole cell parsed by std::from_chars (locale-independent).
  StatusOr<double> GetDouble(size_t row, int column) const;

  // "<name>:<line of row>: column '<column>': <what>", for callers' own checks.
  Status CellError(size_t row, int column, const std::string& what) const;
  // "<name>:<line of row>: <what>".
  Status RowError(size_t row, const std::string& what) const;

 private:
  std::string name_;
  int header_line_ = 1;
  std::vector<std::string> header_;
  std::vector<std::vector<std::string>> rows_;
  std::vector<int> lines_;
  std::vector<CsvBadRow> bad_rows_;
};

// Parses a whole string as a decimal integer (optional '-', digits only); false on any other
// text or overflow. Shared by CsvTable and the Broden reader.
bool ParseInt64(std::string_view text, int64_t* value);

}  // namespace nd
