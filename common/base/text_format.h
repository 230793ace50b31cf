// The project's one writer of text formats: JSON strings and numbers, CSV fields as Python's csv
// module writes them, Python's float repr (tally.csv's reals), HTML escaping. Every file format
// owner (common/results, the monitor's status.json, nd-train's metadata, the report, the dataset
// tools) formats through these, so a field is escaped the same way wherever it is written.
// Pure functions; thread-safe.
#pragma once

#include <string>
#include <vector>

namespace nd {

// A JSON string literal with its quotes: `"` and `\` escaped, \n \r \t by name, other control
// characters as \u00XX; bytes >= 0x80 pass through (UTF-8 stays UTF-8).
std::string JsonString(const std::string& s);

// printf("%.<significant>g", v): FormatG(v, 17) round-trips a double, FormatG(v, 6) is short.
std::string FormatG(double v, int significant);

// printf("%f", v), as std::to_string(double) writes it: "1.250000".
std::string FormatFixed(double v);

// One CSV field as Python's csv module writes it (QUOTE_MINIMAL): quoted, with `"` doubled, only
// when it holds `,` `"` CR or LF.
std::string CsvField(const std::string& s);

// Fields joined by `,` (each through CsvField), then `line_end`.
std::string CsvRow(const std::vector<std::string>& cells, const std::string& line_end);

// Python's repr() of a float64, e.g. 0.0, 1234.0, 0.07142857142857142, 3.2e-05, 1e+16, nan, inf.
std::string PythonFloatRepr(double v);

// Text safe inside HTML elements and quoted attributes: & < > " ' escaped.
std::string HtmlEscape(const std::string& s);

}  // namespace nd
