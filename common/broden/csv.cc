#include "common/broden/csv.h"

#include <charconv>
#include <cmath>
#include <fstream>
#include <limits>
#include <sstream>
#include <unordered_set>

#include "common/base/atomic_file.h"

namespace nd {
namespace {

// Cell text for an error message: quoted, shortened so that the message stays one short line.
std::string Shown(std::string_view text) {
  constexpr size_t kMax = 60;
  std::string out = "'";
  for (char c : text.substr(0, kMax)) out += (c == '\n' || c == '\r') ? ' ' : c;
  if (text.size() > kMax) out += "...";
  return out + "'";
}

// `text` with line breaks replaced by spaces, so that an error message built from file contents
// (quoted CSV fields may span lines) stays one line.
std::string OneLine(std::string text) {
  for (char& c : text) {
    if (c == '\n' || c == '\r') c = ' ';
  }
  return text;
}

}  // namespace

bool ParseInt64(std::string_view text, int64_t* value) {
  size_t i = 0;
  bool negative = false;
  if (i < text.size() && text[i] == '-') {
    negative = true;
    ++i;
  }
  if (i == text.size()) return false;
  // Accumulate as a negative number so that INT64_MIN parses too.
  int64_t result = 0;
  constexpr int64_t kMin = std::numeric_limits<int64_t>::min();
  for (; i < text.size(); ++i) {
    const char c = text[i];
    if (c < '0' || c > '9') return false;
    const int digit = c - '0';
    if (result < (kMin + digit) / 10) return false;
    result = result * 10 - digit;
  }
  if (!negative) {
    if (result == kMin) return false;
    result = -result;
  }
  *value = result;
  return true;
}

StatusOr<CsvTable> CsvTable::ReadFile(const std::string& path, CsvBadRowPolicy policy) {
  ND_ASSIGN_OR_RETURN(const std::string text, ReadFileText(path));
  return Parse(text, path, policy);
}

StatusOr<CsvTable> CsvTable::Parse(std::string_view text, const std::string& name,
                                   CsvBadRowPolicy policy) {
  CsvTable table;
  table.name_ = name;
  size_t i = 0;
  const size_t n = text.size();
  if (text.substr(0, 3) == "\xEF\xBB\xBF") i = 3;
  int line = 1;
  size_t line_start = i;
  bool have_header = false;
  auto error = [&](int at_line, const std::string& what) {
    return InvalidArgument(name + ":" + std::to_string(at_line) + ": " + what);
  };
  // Consumes one line end at i (\r\n, \n or \r), if any.
  auto consume_eol = [&]() {
    if (i < n && text[i] == '\r') ++i;
    if (i < n && text[i] == '\n') ++i;
    ++line;
    line_start = i;
  };

  while (i < n) {
    if (text[i] == '\n' || text[i] == '\r') {  // blank line
      consume_eol();
      continue;
    }
    const int record_line = line;
    std::vector<std::string> fields;
    while (true) {
      std::string field;
      if (i < n && text[i] == '"') {
        const int quote_line = line;
        const size_t quote_column = i - line_start + 1;
        ++i;
        bool closed = false;
        while (i < n) {
          const char c = text[i];
          if (c == '"') {
            if (i + 1 < n && text[i + 1] == '"') {
              field += '"';
              i += 2;
              continue;
            }
            ++i;
            closed = true;
            break;
          }
          if (c == '\n') {
            ++line;
            line_start = i + 1;
          }
          field += c;
          ++i;
        }
        if (!closed) {
          return error(quote_line,
                       "column " + std::to_string(quote_column) + ": quoted field is never closed");
        }
        if (i < n && text[i] != ',' && text[i] != '\n' && text[i] != '\r') {
          Status bad = error(line, "column " + std::to_string(i - line_start + 1) +
                                       ": unexpected character after closing quote");
          if (policy == CsvBadRowPolicy::kFail || !have_header) return bad;
          // Skip to the end of this physical line and drop the row.
          while (i < n && text[i] != '\n' && text[i] != '\r') ++i;
          if (i < n) consume_eol();
          table.bad_rows_.push_back({record_line, bad.message()});
          fields.clear();
          break;
        }
      } else {
        const size_t start = i;
        while (i < n && text[i] != ',' && text[i] != '\n' && text[i] != '\r') ++i;
        field.assign(text.substr(start, i - start));
      }
      fields.push_back(std::move(field));
      if (i < n && text[i] == ',') {
        ++i;
        continue;
      }
      if (i < n) consume_eol();
      break;
    }

    if (!have_header) {
      std::unordered_set<std::string> seen;
      for (const std::string& column : fields) {
        if (!seen.insert(column).second) {
          return error(record_line, "duplicate column " + Shown(column));
        }
      }
      table.header_ = std::move(fields);
      table.header_line_ = record_line;
      have_header = true;
      continue;
    }
    if (fields.empty()) continue;  // a bad row already recorded (kSkip)
    if (fields.size() != table.header_.size()) {
      Status bad = error(record_line, "expected " + std::to_string(table.header_.size()) +
                                          " fields as in the header, found " +
                                          std::to_string(fields.size()));
      if (policy == CsvBadRowPolicy::kFail) return bad;
      table.bad_rows_.push_back({record_line, bad.message()});
      continue;
    }
    table.rows_.push_back(std::move(fields));
    table.lines_.push_back(record_line);
  }
  if (!have_header) return InvalidArgument(name + ":1: empty file, expected a header line");
  return table;
}

int CsvTable::ColumnIndex(std::string_view column) const {
  for (size_t k = 0; k < header_.size(); ++k) {
    if (header_[k] == column) return static_cast<int>(k);
  }
  return -1;
}

StatusOr<int> CsvTable::RequireColumn(std::string_view column) const {
  const int k = ColumnIndex(column);
  if (k >= 0) return k;
  // At most 32 names, each shortened: the message stays one readable line.
  constexpr size_t kMaxListed = 32;
  std::string columns;
  for (size_t k = 0; k < header_.size() && k < kMaxListed; ++k) {
    const std::string shown = Shown(header_[k]);
    columns += (k == 0 ? "" : ", ") + shown.substr(1, shown.size() - 2);
  }
  if (header_.size() > kMaxListed) {
    columns += ", ... (" + std::to_string(header_.size()) + " columns)";
  }
  return InvalidArgument(OneLine(name_ + ":" + std::to_string(header_line_) + ": missing column '" +
                                 std::string(column) + "'; columns are: " + columns));
}

StatusOr<int64_t> CsvTable::GetInt(size_t row, int column) const {
  int64_t value = 0;
  const std::string& text = cell(row, column);
  if (!ParseInt64(text, &value)) return CellError(row, column, Shown(text) + " is not an integer");
  return value;
}

StatusOr<int64_t> CsvTable::GetIntInRange(size_t row, int column, int64_t min_value,
                                          int64_t max_value) const {
  ND_ASSIGN_OR_RETURN(const int64_t value, GetInt(row, column));
  if (value < min_value || value > max_value) {
    return CellError(row, column,
                     std::to_string(value) + " is out of range [" + std::to_string(min_value) +
                         ", " + std::to_string(max_value) + "]");
  }
  return value;
}

StatusOr<double> CsvTable::GetDouble(size_t row, int column) const {
  const std::string& text = cell(row, column);
  // from_chars: locale-independent, unlike strtod.
  double value = 0;
  const char* end = text.data() + text.size();
  const std::from_chars_result result = std::from_chars(text.data(), end, value);
  const bool ok =
      !text.empty() && result.ec == std::errc() && result.ptr == end && std::isfinite(value);
  if (!ok) return CellError(row, column, Shown(text) + " is not a finite number");
  return value;
}

Status CsvTable::CellError(size_t row, int column, const std::string& what) const {
  return InvalidArgument(OneLine(name_ + ":" + std::to_string(lines_[row]) + ": column " +
                                 Shown(header_[column]) + ": " + what));
}

Status CsvTable::RowError(size_t row, const std::string& what) const {
  return InvalidArgument(OneLine(name_ + ":" + std::to_string(lines_[row]) + ": " + what));
}

}  // namespace nd
