// Tests of the CSV reader used for the Broden metadata (common/broden/csv.h).
#include "common/broden/csv.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <string>

#include "tests/testing/status_assertions.h"

namespace nd {
namespace {

::testing::AssertionResult Contains(const std::string& text, const std::string& part) {
  if (text.find(part) != std::string::npos) return ::testing::AssertionSuccess();
  return ::testing::AssertionFailure() << "'" << text << "' does not contain '" << part << "'";
}

TEST(CsvTest, ReadsColumnsByHeaderName) {
  StatusOr<CsvTable> t = CsvTable::Parse("b,a,c\n1,2,3\n4,5,6\n", "t.csv");
  ND_ASSERT_OK(t);
  ASSERT_EQ(t->num_rows(), 2u);
  EXPECT_EQ(t->ColumnIndex("a"), 1);
  EXPECT_EQ(t->ColumnIndex("zzz"), -1);
  EXPECT_EQ(t->cell(0, t->ColumnIndex("a")), "2");
  EXPECT_EQ(t->cell(1, t->ColumnIndex("b")), "4");
  EXPECT_EQ(t->line(0), 2);
  EXPECT_EQ(t->line(1), 3);
}

TEST(CsvTest, ToleratesCrlfBomBlankLinesAndMissingFinalNewline) {
  StatusOr<CsvTable> t = CsvTable::Parse("\xEF\xBB\xBFx,y\r\n\r\n1,2\r\n\n3,4", "t.csv");
  ND_ASSERT_OK(t);
  EXPECT_EQ(t->header()[0], "x");  // BOM not part of the name
  ASSERT_EQ(t->num_rows(), 2u);
  EXPECT_EQ(t->cell(0, 1), "2");  // no stray '\r'
  EXPECT_EQ(t->cell(1, 1), "4");
  EXPECT_EQ(t->line(0), 3);
  EXPECT_EQ(t->line(1), 5);
}

TEST(CsvTest, QuotedFieldsWithCommasQuotesAndNewlines) {
  StatusOr<CsvTable> t = CsvTable::Parse(
      "name,syns\n\"a,b\",\"say \"\"hi\"\"\"\n\"two\nlines\",x\nlast,\"\"\n", "t.csv");
  ND_ASSERT_OK(t);
  ASSERT_EQ(t->num_rows(), 3u);
  EXPECT_EQ(t->cell(0, 0), "a,b");
  EXPECT_EQ(t->cell(0, 1), "say \"hi\"");
  EXPECT_EQ(t->cell(1, 0), "two\nlines");
  EXPECT_EQ(t->line(1), 3);
  EXPECT_EQ(t->line(2), 5);  // line counting continues after the embedded newline
  EXPECT_EQ(t->cell(2, 1), "");
}

TEST(CsvTest, EmptyFieldsAndTrailingEmptyField) {
  StatusOr<CsvTable> t = CsvTable::Parse("a,b,c\n,,\n1,,\n", "t.csv");
  ND_ASSERT_OK(t);
  ASSERT_EQ(t->num_rows(), 2u);
  EXPECT_EQ(t->cell(0, 0), "");
  EXPECT_EQ(t->cell(1, 0), "1");
  EXPECT_EQ(t->cell(1, 2), "");
}

TEST(CsvTest, WrongFieldCountNamesFileAndLine) {
  StatusOr<CsvTable> t = CsvTable::Parse("a,b\n1,2\n1,2,3\n", "dir/x.csv");
  ASSERT_FALSE(t.ok());
  EXPECT_TRUE(Contains(t.status().message(), "dir/x.csv:3:"));
  EXPECT_TRUE(Contains(t.status().message(), "expected 2 fields"));
}

TEST(CsvTest, UnterminatedQuoteNamesStartLine) {
  StatusOr<CsvTable> t = CsvTable::Parse("a,b\n1,2\n3,\"open\n\n", "x.csv");
  ASSERT_FALSE(t.ok());
  EXPECT_TRUE(Contains(t.status().message(), "x.csv:3:"));
  EXPECT_TRUE(Contains(t.status().message(), "never closed"));
}

TEST(CsvTest, GarbageAfterClosingQuoteIsAnError) {
  StatusOr<CsvTable> t = CsvTable::Parse("a\n\"x\"y\n", "x.csv");
  ASSERT_FALSE(t.ok());
  EXPECT_TRUE(Contains(t.status().message(), "x.csv:2: column 4"));
}

TEST(CsvTest, EmptyFileAndDuplicateColumnsAreErrors) {
  StatusOr<CsvTable> empty = CsvTable::Parse("", "e.csv");
  ASSERT_FALSE(empty.ok());
  EXPECT_TRUE(Contains(empty.status().message(), "e.csv:1:"));
  StatusOr<CsvTable> dup = CsvTable::Parse("a,b,a\n", "d.csv");
  ASSERT_FALSE(dup.ok());
  EXPECT_TRUE(Contains(dup.status().message(), "d.csv:1: duplicate column 'a'"));
}

TEST(CsvTest, RequireColumnListsTheColumns) {
  StatusOr<CsvTable> t = CsvTable::Parse("a,b\n", "h.csv");
  ND_ASSERT_OK(t);
  StatusOr<int> b = t->RequireColumn("b");
  ND_ASSERT_OK(b);
  EXPECT_EQ(*b, 1);
  StatusOr<int> z = t->RequireColumn("z");
  ASSERT_FALSE(z.ok());
  EXPECT_EQ(z.status().message(), "h.csv:1: missing column 'z'; columns are: a, b");
}

TEST(CsvTest, TypedCellsAndTheirErrors) {
  StatusOr<CsvTable> t = CsvTable::Parse("n,x\n42,4.225474\n-7,1e-05\nabc, 1\n99,nan\n", "v.csv");
  ND_ASSERT_OK(t);
  EXPECT_EQ(*t->GetInt(0, 0), 42);
  EXPECT_EQ(*t->GetInt(1, 0), -7);
  EXPECT_DOUBLE_EQ(*t->GetDouble(0, 1), 4.225474);
  EXPECT_DOUBLE_EQ(*t->GetDouble(1, 1), 1e-05);
  StatusOr<int64_t> bad = t->GetInt(2, 0);
  ASSERT_FALSE(bad.ok());
  EXPECT_EQ(bad.status().message(), "v.csv:4: column 'n': 'abc' is not an integer");
  EXPECT_FALSE(t->GetDouble(2, 1).ok());  // leading space
  EXPECT_FALSE(t->GetDouble(3, 1).ok());  // not finite
  StatusOr<int64_t> range = t->GetIntInRange(3, 0, 0, 10);
  ASSERT_FALSE(range.ok());
  EXPECT_TRUE(Contains(range.status().message(), "v.csv:5: column 'n': 99 is out of range"));
}

TEST(CsvTest, ParseInt64RejectsOverflowAndNonDigits) {
  int64_t v = 0;
  EXPECT_TRUE(ParseInt64("9223372036854775807", &v));
  EXPECT_EQ(v, INT64_MAX);
  EXPECT_TRUE(ParseInt64("-9223372036854775808", &v));
  EXPECT_EQ(v, INT64_MIN);
  EXPECT_FALSE(ParseInt64("9223372036854775808", &v));
  EXPECT_FALSE(ParseInt64("", &v));
  EXPECT_FALSE(ParseInt64("-", &v));
  EXPECT_FALSE(ParseInt64("+1", &v));
  EXPECT_FALSE(ParseInt64("1 ", &v));
  EXPECT_FALSE(ParseInt64("1.0", &v));
}

TEST(CsvTest, ReadFileMissingFileNamesThePath) {
  StatusOr<CsvTable> t = CsvTable::ReadFile("/nonexistent/dir/label.csv");
  ASSERT_FALSE(t.ok());
  EXPECT_EQ(t.status().code(), StatusCode::kNotFound);
  EXPECT_TRUE(Contains(t.status().message(), "/nonexistent/dir/label.csv"));
}

TEST(CsvTest, ReadFileReadsFromDisk) {
  const std::filesystem::path path = std::filesystem::temp_directory_path() /
                                     ("nd_csv_test_" + std::to_string(::getpid()) + ".csv");
  {
    std::ofstream out(path, std::ios::binary);
    out << "a,b\r\n1,\"x,y\"\r\n";
  }
  StatusOr<CsvTable> t = CsvTable::ReadFile(path.string());
  std::filesystem::remove(path);
  ND_ASSERT_OK(t);
  ASSERT_EQ(t->num_rows(), 1u);
  EXPECT_EQ(t->cell(0, 1), "x,y");
  EXPECT_EQ(t->name(), path.string());
}

}  // namespace
}  // namespace nd
