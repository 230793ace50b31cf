// libFuzzer target for the Broden CSV reader (common/broden/csv.h): CsvTable::Parse on arbitrary
// bytes, then every typed accessor on every cell of the first rows. Besides the sanitizers'
// checks (address, undefined behaviour, leaks), it traps when a documented property breaks:
//   - a parsed table's rows all have exactly as many cells as the header;
//   - every error is ONE line (no '\n' or '\r' in the message) that starts with the file name;
//   - GetIntInRange never returns a value outside its range; GetDouble never a non-finite value.
// Built by -DND_FUZZ=ON (tools/fuzz.sh) and, without libFuzzer, replayed over the committed corpus
// by tests/fuzz/replay_main.cc (ctest csv_fuzz_replay).
#include <cmath>
#include <cstdint>
#include <cstdlib>
#include <string>
#include <string_view>

#include "common/broden/csv.h"

namespace {

constexpr const char* kName = "fuzz.csv";

void Check(bool ok) {
  if (!ok) __builtin_trap();
}

void CheckError(const nd::Status& s) {
  if (s.ok()) return;
  const std::string& m = s.message();
  Check(m.find('\n') == std::string::npos && m.find('\r') == std::string::npos);
  Check(m.rfind(kName, 0) == 0);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string_view text(reinterpret_cast<const char*>(data), size);
  nd::StatusOr<nd::CsvTable> parsed = nd::CsvTable::Parse(text, kName);
  if (!parsed.ok()) {
    CheckError(parsed.status());
    return 0;
  }
  const nd::CsvTable& table = *parsed;
  const int columns = static_cast<int>(table.header().size());
  Check(columns >= 1);
  CheckError(table.RequireColumn("image").status());
  CheckError(table.RequireColumn("number").status());
  for (int c = 0; c < columns; ++c) Check(table.ColumnIndex(table.header()[c]) == c);
  const size_t rows = table.num_rows() < 64 ? table.num_rows() : 64;
  for (size_t r = 0; r < rows; ++r) {
    Check(table.line(r) >= table.header_line());
    for (int c = 0; c < columns && c < 16; ++c) {
      const std::string& cell = table.cell(r, c);
      nd::StatusOr<int64_t> i = table.GetInt(r, c);
      CheckError(i.status());
      int64_t direct = 0;
      Check(i.ok() == nd::ParseInt64(cell, &direct));
      if (i.ok()) Check(*i == direct);
      nd::StatusOr<int64_t> ranged = table.GetIntInRange(r, c, 1, 65535);
      CheckError(ranged.status());
      if (ranged.ok()) Check(*ranged >= 1 && *ranged <= 65535);
      nd::StatusOr<double> d = table.GetDouble(r, c);
      CheckError(d.status());
      if (d.ok()) Check(std::isfinite(*d));
      CheckError(table.CellError(r, c, "x"));
    }
    CheckError(table.RowError(r, "x"));
  }
  return 0;
}
