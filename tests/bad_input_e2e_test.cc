// The bad-input matrix (issue 5), through the real launcher: every TEST damages one thing in a copy
// of a tiny generated Broden dataset (12 photos of 64x64, segmentation 32x32), its model or its
// cache, runs `nd-pipeline up` (four stage processes, ZeroMQ over ipc://, a real LMDB cache), and
// checks the contract of the issue:
//   - the exit code;
//   - one clear line naming the file / row / key (a regex on the output);
//   - where the damage touches single images, the run completes on the rest: tally.csv exists,
//     summary.json counts N-k images and lists each skipped row with its reason;
//   - nothing already committed is lost (the cache cases reopen the cache and count).
// The model is tests/fixtures/make_nonfinite_model.py: layer `detect`, 3 units, finite except for
// an all-black photo (+Inf) or an all-white photo (NaN).
#include <gtest/gtest.h>
#include <lmdb.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <array>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <opencv2/core.hpp>
#include <opencv2/imgcodecs.hpp>
#include <regex>
#include <sstream>
#include <string>
#include <vector>

#include "cache/activation_cache.h"
#include "tests/testing/e2e_support.h"
#include "tests/testing/status_assertions.h"

namespace {

namespace fs = std::filesystem;
using nd_e2e::JsonNumber;
using nd_e2e::Read;
using nd_e2e::Result;
using nd_e2e::Sh;
using nd_e2e::Split;

constexpr int kImages = 12;

void Write(const fs::path& p, const std::string& bytes) {
  std::ofstream(p, std::ios::binary | std::ios::trunc) << bytes;
}

std::vector<std::string> Lines(const std::string& text) {
  std::vector<std::string> out = Split(text, '\n');
  if (!out.empty() && out.back().empty()) out.pop_back();
  return out;
}

// The supervisor's final line ("nd-pipeline: ..."): the one line a failed run ends with.
std::string FinalLine(const std::string& output) {
  std::vector<std::string> lines = Lines(output);
  for (auto it = lines.rbegin(); it != lines.rend(); ++it)
    if (it->rfind("nd-pipeline:", 0) == 0) return *it;
  return "";
}

bool Matches(const std::string& text, const std::string& pattern) {
  return std::regex_search(text, std::regex(pattern));
}

// Escapes a literal for use inside a regex.
std::string Re(const std::string& literal) {
  static const std::regex special(R"([.^$|()\[\]{}*+?\\])");
  return std::regex_replace(literal, special, R"(\$&)");
}

class BadInputE2eTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    root_ = fs::temp_directory_path() / ("nd_bad_" + std::to_string(::getpid()));
    fs::remove_all(root_);
    fs::create_directories(root_);
    fixtures_ = SharedFixtures();
  }

  // The clean dataset and the model, made once per build tree and shared read-only by every test
  // process (ctest runs each TEST in its own process; importing torch alone takes seconds). Made
  // in a private folder and renamed into place, so concurrent test processes never see half of it.
  // Bump the version in the name when the fixture script or the dataset parameters change.
  static fs::path SharedFixtures() {
    const fs::path dir = fs::path(ND_BIN_DIR).parent_path() / "fixtures" / "bad_input_v1";
    if (fs::exists(dir / "ready")) return dir;
    const fs::path tmp = dir.string() + ".tmp" + std::to_string(::getpid());
    fs::remove_all(tmp);
    fs::create_directories(tmp);
    Result gen = Sh(std::string(ND_BIN_DIR) + "/nd-make-broden --out " + (tmp / "broden").string() +
                    " --images " + std::to_string(kImages) + " --seed 5 --size 64 --threads 1");
    EXPECT_EQ(gen.code, 0) << gen.output;
    Result model = Sh("/usr/bin/python3 " + std::string(ND_SOURCE_DIR) +
                      "/tests/fixtures/make_nonfinite_model.py " + (tmp / "model.pt").string());
    EXPECT_EQ(model.code, 0) << model.output;
    if (gen.code != 0 || model.code != 0) return tmp;
    std::ofstream(tmp / "ready") << "ok\n";
    std::error_code ec;
    fs::rename(tmp, dir, ec);  // fails when another process got there first: use theirs
    if (ec) fs::remove_all(tmp);
    return dir;
  }
  static void TearDownTestSuite() { fs::remove_all(root_); }

  // A copy of the clean dataset for this test, to damage.
  fs::path CopyDataset(const std::string& name) {
    fs::path dir = root_ / name / "broden";
    fs::create_directories(dir.parent_path());
    fs::copy(fixtures_ / "broden", dir, fs::copy_options::recursive);
    return dir;
  }

  // Row `row` (0-based) of index.csv, split into its cells, and the header.
  static std::vector<std::string> IndexRow(const fs::path& dataset, int row) {
    return Split(Lines(Read(dataset / "index.csv"))[row + 1], ',');
  }
  static int Column(const fs::path& dataset, const std::string& name) {
    std::vector<std::string> header = Split(Lines(Read(dataset / "index.csv"))[0], ',');
    for (size_t i = 0; i < header.size(); ++i)
      if (header[i] == name) return static_cast<int>(i);
    return -1;
  }
  // Replaces line `line` (1-based) of a CSV with `text`.
  static void ReplaceLine(const fs::path& csv, int line, const std::string& text) {
    std::vector<std::string> lines = Lines(Read(csv));
    lines[line - 1] = text;
    std::string out;
    for (const std::string& l : lines) out += l + "\n";
    Write(csv, out);
  }

  // Writes <root>/<name>/pipeline.toml and returns its path.
  fs::path Config(const std::string& name, const fs::path& dataset, const fs::path& cache,
                  const fs::path& model = {}) {
    fs::path dir = root_ / name;
    fs::create_directories(dir);
    std::ofstream(dir / "pipeline.toml")
        << "[dataset]\npath = \"" << dataset.string() << "\"\n"
        << "[model]\npath = \"" << (model.empty() ? fixtures_ / "model.pt" : model).string()
        << "\"\n"
        << "layers = [\"detect\"]\ninput_size = 64\nbatch_size = 4\n"
        << "[decode]\nworkers = 1\n[score]\nworkers = 1\n"
        << "[cache]\ndir = \"" << cache.string() << "\"\n"
        << "[output]\ndir = \"" << (dir / "out").string() << "\"\n"
        << "[run]\ntimeout_s = 60\n";
    return dir / "pipeline.toml";
  }

  // `up` for test `name` on `dataset` (default: a pristine copy) with its own cache.
  Result Up(const std::string& name, const fs::path& dataset, const std::string& prefix = "",
            const fs::path& model = {}, const std::string& options = "") {
    fs::path cfg = Config(name, dataset, root_ / name / "cache", model);
    return Sh(prefix + std::string(ND_BIN_DIR) + "/nd-pipeline up -c " + cfg.string() + options);
  }
  fs::path Out(const std::string& name) { return root_ / name / "out" / "detect"; }

  // The run completed on the rest: tally.csv has a row per unit, summary.json counts
  // kImages - skipped_rows.size() images and lists each skipped row with a reason matching the
  // given regex.
  void ExpectCompletedWithSkips(const std::string& name,
                                const std::vector<std::pair<int, std::string>>& skipped_rows) {
    ASSERT_TRUE(fs::exists(Out(name) / "tally.csv"));
    EXPECT_EQ(Lines(Read(Out(name) / "tally.csv")).size(), 1u + 3u);  // header + 3 units
    std::string summary = Read(Out(name) / "summary.json");
    EXPECT_EQ(JsonNumber(summary, "images"), kImages - static_cast<int>(skipped_rows.size()))
        << summary;
    EXPECT_EQ(JsonNumber(summary, "skipped"), static_cast<double>(skipped_rows.size())) << summary;
    for (const auto& [row, reason] : skipped_rows)
      EXPECT_TRUE(Matches(
          summary, "\\{\"row\": " + std::to_string(row) + ", \"reason\": \"[^\"\\n]*" + reason))
          << "row " << row << " /" << reason << "/ in " << summary;
  }

  // The run completed without the malformed index.csv rows: summary.json counts kImages - n images
  // and lists each left-out row's line with a reason matching the given regex; the log has each
  // reason with "(row skipped)".
  void ExpectCompletedWithoutIndexRows(const std::string& name, const Result& r,
                                       const std::vector<std::pair<int, std::string>>& lines) {
    ASSERT_EQ(r.code, 0) << r.output;
    ASSERT_TRUE(fs::exists(Out(name) / "tally.csv"));
    EXPECT_EQ(Lines(Read(Out(name) / "tally.csv")).size(), 1u + 3u);  // header + 3 units
    std::string summary = Read(Out(name) / "summary.json");
    const int n = static_cast<int>(lines.size());
    EXPECT_EQ(JsonNumber(summary, "images"), kImages - n) << summary;
    EXPECT_EQ(JsonNumber(summary, "images_total"), kImages - n) << summary;
    EXPECT_EQ(JsonNumber(summary, "index_rows_skipped"), n) << summary;
    EXPECT_EQ(JsonNumber(summary, "skipped"), 0) << summary;
    for (const auto& [line, reason] : lines) {
      EXPECT_TRUE(
          Matches(summary, "\\{\"line\": " + std::to_string(line) + ", \"reason\": \"" + reason))
          << "line " << line << " /" << reason << "/ in " << summary;
      EXPECT_TRUE(Matches(r.output, reason + " \\(row skipped\\)")) << r.output;
    }
  }

  // A failed run: non-zero exit, and its final line is one line matching `pattern`.
  void ExpectOneLineFailure(const Result& r, const std::string& pattern) {
    EXPECT_NE(r.code, 0) << r.output;
    std::string last = FinalLine(r.output);
    EXPECT_TRUE(Matches(last, pattern))
        << "final line: " << last << "\nexpected /" << pattern << "/\n"
        << r.output;
    EXPECT_EQ(r.output.substr(r.output.rfind("nd-pipeline:")), last + "\n") << r.output;
  }

  static fs::path root_;      // this process's scratch folder
  static fs::path fixtures_;  // the shared clean dataset (broden/) and model (model.pt)
};

fs::path BadInputE2eTest::root_;
fs::path BadInputE2eTest::fixtures_;

// ---- Photos -------------------------------------------------------------------------------------

TEST_F(BadInputE2eTest, TruncatedJpegIsSkippedAndTheRunCompletes) {
  fs::path ds = CopyDataset("truncated_jpeg");
  const std::string image = IndexRow(ds, 5)[0];
  std::string bytes = Read(ds / "images" / image);
  Write(ds / "images" / image, bytes.substr(0, bytes.size() / 2));
  Result r = Up("truncated_jpeg", ds);
  ASSERT_EQ(r.code, 0) << r.output;
  EXPECT_TRUE(Matches(r.output, "skipped: " + Re(image) + ": truncated JPEG")) << r.output;
  ExpectCompletedWithSkips("truncated_jpeg", {{5, Re(image) + ": truncated JPEG"}});
}

TEST_F(BadInputE2eTest, CorruptJpegIsSkippedAndTheRunCompletes) {
  fs::path ds = CopyDataset("corrupt_jpeg");
  const std::string image = IndexRow(ds, 2)[0];
  Write(ds / "images" / image, "\xFF\xD8 this is not JPEG data at all \xFF\xD9");
  Result r = Up("corrupt_jpeg", ds);
  ASSERT_EQ(r.code, 0) << r.output;
  EXPECT_TRUE(Matches(r.output, "skipped: " + Re(image) + ": not a decodable image")) << r.output;
  ExpectCompletedWithSkips("corrupt_jpeg", {{2, Re(image) + ": not a decodable image"}});
}

TEST_F(BadInputE2eTest, MissingPhotoIsSkippedAndTheRunCompletes) {
  fs::path ds = CopyDataset("missing_photo");
  const std::string image = IndexRow(ds, 7)[0];
  fs::remove(ds / "images" / image);
  Result r = Up("missing_photo", ds);
  ASSERT_EQ(r.code, 0) << r.output;
  const std::string why = Re(image) + ": cannot open: No such file or directory";
  EXPECT_TRUE(Matches(r.output, "skipped: " + why)) << r.output;
  ExpectCompletedWithSkips("missing_photo", {{7, why}});
}

// ---- Segmentation layers ------------------------------------------------------------------------

TEST_F(BadInputE2eTest, CorruptAndTruncatedSegmentationPngsAreSkippedMidRun) {
  fs::path ds = CopyDataset("corrupt_png");
  const int color = Column(ds, "color");
  const std::string truncated = IndexRow(ds, 3)[color];
  const std::string corrupt = IndexRow(ds, 8)[color];
  std::string bytes = Read(ds / "images" / truncated);
  Write(ds / "images" / truncated, bytes.substr(0, bytes.size() / 2));
  bytes = Read(ds / "images" / corrupt);
  for (size_t i = 40; i < bytes.size() - 12; i += 7) bytes[i] = static_cast<char>(~bytes[i]);
  Write(ds / "images" / corrupt, bytes);
  Result r = Up("corrupt_png", ds);
  ASSERT_EQ(r.code, 0) << r.output;
  // Each skip is one log line naming the row, the PNG and the index.csv line.
  EXPECT_TRUE(Matches(
      r.output, "skipped: row 3: [^\\n]*" + Re(truncated) + "[^\\n]*index\\.csv:5, column 'color'"))
      << r.output;
  EXPECT_TRUE(Matches(
      r.output, "skipped: row 8: [^\\n]*" + Re(corrupt) + "[^\\n]*index\\.csv:10, column 'color'"))
      << r.output;
  ExpectCompletedWithSkips("corrupt_png", {{3, Re(truncated)}, {8, Re(corrupt)}});
}

TEST_F(BadInputE2eTest, MissingSegmentationPngIsSkipped) {
  fs::path ds = CopyDataset("missing_png");
  const std::string png = IndexRow(ds, 4)[Column(ds, "color")];
  fs::remove(ds / "images" / png);
  Result r = Up("missing_png", ds);
  ASSERT_EQ(r.code, 0) << r.output;
  EXPECT_TRUE(Matches(r.output, "skipped: row 4: [^\\n]*" + Re(png) + ": no such file"))
      << r.output;
  ExpectCompletedWithSkips("missing_png", {{4, Re(png) + ": no such file"}});
}

TEST_F(BadInputE2eTest, WrongSizeSegmentationIsSkipped) {
  fs::path ds = CopyDataset("wrong_size");
  const std::string png = IndexRow(ds, 6)[Column(ds, "color")];
  // A valid PNG, 20 rows x 24 columns where index.csv says sh x sw = 32x32.
  ASSERT_TRUE(
      cv::imwrite((ds / "images" / png).string(), cv::Mat(20, 24, CV_8UC3, cv::Scalar(0, 0, 1))));
  Result r = Up("wrong_size", ds);
  ASSERT_EQ(r.code, 0) << r.output;
  const std::string why = Re(png) + ": size 20x24 \\(rows x cols\\) differs from sh x sw = 32x32";
  EXPECT_TRUE(Matches(r.output, "skipped: row 6: [^\\n]*" + why)) << r.output;
  ExpectCompletedWithSkips("wrong_size", {{6, why}});
}

TEST_F(BadInputE2eTest, PixelLabelNotInLabelCsvIsSkipped) {
  fs::path ds = CopyDataset("pixel_label");
  const std::string png = IndexRow(ds, 1)[Column(ds, "color")];
  // Label 4000 = R + 256*G with R = 160, G = 15 (OpenCV writes B,G,R); label.csv has ~90 labels.
  ASSERT_TRUE(cv::imwrite((ds / "images" / png).string(),
                          cv::Mat(32, 32, CV_8UC3, cv::Scalar(0, 15, 160))));
  Result r = Up("pixel_label", ds);
  ASSERT_EQ(r.code, 0) << r.output;
  const std::string why =
      Re(png) + ": pixel \\(row 0, col 0\\) has label 4000 with no row in label\\.csv";
  EXPECT_TRUE(Matches(r.output, "skipped: row 1: [^\\n]*" + why)) << r.output;
  ExpectCompletedWithSkips("pixel_label", {{1, why}});
}

// ---- Metadata: a malformed index.csv data row is left out, logged and counted (dataset.on_bad_row
// = "skip", the default) or fails at start-up with file:line ("fail"); a bad row of any other CSV
// fails at start-up either way (nothing has run yet) ------------------------------------------

TEST_F(BadInputE2eTest, ScalarLabelNotInLabelCsvSkipsTheRowOrFailsNamingIt) {
  fs::path ds = CopyDataset("scalar_label");
  std::vector<std::string> row = IndexRow(ds, 9);
  row[Column(ds, "scene")] = "9999";
  std::string line;
  for (size_t i = 0; i < row.size(); ++i) line += (i ? "," : "") + row[i];
  ReplaceLine(ds / "index.csv", 11, line);
  const std::string why =
      Re((ds / "index.csv").string()) + ":11: column 'scene': label 9999 has no row in label\\.csv";
  ExpectCompletedWithoutIndexRows("scalar_label", Up("scalar_label", ds), {{11, why}});
  Result r = Up("scalar_label_fail", ds, "", {}, " --set dataset.on_bad_row=fail");
  ExpectOneLineFailure(r, why);
}

TEST_F(BadInputE2eTest, MalformedIndexRowsAreSkippedAndTheRestIsDissected) {
  // Regression (issue 16): one malformed row stopped a whole run at start-up.
  fs::path ds = CopyDataset("short_row");
  std::vector<std::string> row = IndexRow(ds, 6);
  row[Column(ds, "iw")] = "xx";
  std::string bad_size;
  for (size_t i = 0; i < row.size(); ++i) bad_size += (i ? "," : "") + row[i];
  ReplaceLine(ds / "index.csv", 8, bad_size);
  ReplaceLine(ds / "index.csv", 4, "synth/000003.jpg,train,64");
  const std::string index = Re((ds / "index.csv").string());
  ExpectCompletedWithoutIndexRows(
      "short_row", Up("short_row", ds),
      {{4, index + ":4: expected \\d+ fields as in the header, found 3"},
       {8, index + ":8: column 'iw': 'xx' is not an integer"}});
  // The same results as a dataset without those two rows (same image files).
  fs::path trimmed = root_ / "trimmed" / "broden";
  fs::create_directories(trimmed);
  for (const auto& e : fs::directory_iterator(ds)) {
    if (e.path().filename() == "index.csv") continue;
    fs::create_symlink(e.path(), trimmed / e.path().filename());
  }
  std::vector<std::string> lines = Lines(Read(ds / "index.csv"));
  std::string kept;
  for (size_t i = 0; i < lines.size(); ++i)
    if (i + 1 != 4 && i + 1 != 8 && !lines[i].empty()) kept += lines[i] + "\n";
  Write(trimmed / "index.csv", kept);
  Result t = Up("trimmed", trimmed);
  ASSERT_EQ(t.code, 0) << t.output;
  EXPECT_EQ(Read(Out("short_row") / "tally.csv"), Read(Out("trimmed") / "tally.csv"));
  EXPECT_EQ(Read(Out("short_row") / "thresholds.csv"), Read(Out("trimmed") / "thresholds.csv"));
  // on_bad_row = "fail": today's behaviour, the first bad row stops the run.
  Result r = Up("short_row_fail", ds, "", {}, " --set dataset.on_bad_row=fail");
  ExpectOneLineFailure(r, index + ":4: expected \\d+ fields as in the header, found 3");
}

TEST_F(BadInputE2eTest, MalformedLabelCsvRowFailsNamingTheCell) {
  fs::path ds = CopyDataset("label_row");
  ReplaceLine(ds / "label.csv", 3, "two,blue-c,color(9),9,2.247070,");
  Result r = Up("label_row", ds);
  ExpectOneLineFailure(
      r, Re((ds / "label.csv").string()) + ":3: column 'number': 'two' is not an integer");
}

TEST_F(BadInputE2eTest, UnterminatedQuoteFailsNamingTheLine) {
  fs::path ds = CopyDataset("quote");
  ReplaceLine(ds / "category.csv", 3, "\"object,12,32,21,63");
  Result r = Up("quote", ds);
  ExpectOneLineFailure(
      r, Re((ds / "category.csv").string()) + ":3: column 1: quoted field is never closed");
}

TEST_F(BadInputE2eTest, PathEscapingTheDatasetRootSkipsTheRowOrFailsNamingIt) {
  fs::path ds = CopyDataset("escape");
  std::vector<std::string> row = IndexRow(ds, 0);
  row[0] = "../../../etc/passwd";
  std::string line;
  for (size_t i = 0; i < row.size(); ++i) line += (i ? "," : "") + row[i];
  ReplaceLine(ds / "index.csv", 2, line);
  const std::string why = Re((ds / "index.csv").string()) +
                          ":2: column 'image': path '\\.\\./\\.\\./\\.\\./etc/passwd' escapes "
                          "the images/ directory";
  ExpectCompletedWithoutIndexRows("escape", Up("escape", ds), {{2, why}});
  Result r = Up("escape_fail", ds, "", {}, " --set dataset.on_bad_row=fail");
  ExpectOneLineFailure(r, why);
}

// ---- Model
// ----------------------------------------------------------------------------------------

TEST_F(BadInputE2eTest, NonTorchScriptModelFailsNamingTheFile) {
  fs::create_directories(root_ / "garbage_model");
  Write(root_ / "garbage_model" / "model.pt", "this is not a zip archive");
  Result r = Up("garbage_model", fixtures_ / "broden", "", root_ / "garbage_model" / "model.pt");
  ExpectOneLineFailure(r, "stage extract failed: [^\\n]*" +
                              Re((root_ / "garbage_model" / "model.pt").string()) +
                              ": not a TorchScript file");
}

TEST_F(BadInputE2eTest, TruncatedModelFileFailsNamingTheFile) {
  fs::create_directories(root_ / "truncated_model");
  const std::string bytes = Read(fixtures_ / "model.pt");
  Write(root_ / "truncated_model" / "model.pt", bytes.substr(0, bytes.size() / 2));
  Result r =
      Up("truncated_model", fixtures_ / "broden", "", root_ / "truncated_model" / "model.pt");
  ExpectOneLineFailure(
      r, "stage extract failed: [^\\n]*" + Re((root_ / "truncated_model" / "model.pt").string()));
}

TEST_F(BadInputE2eTest, UnknownLayerFailsListingTheModulePaths) {
  fs::path cfg = Config("unknown_layer", fixtures_ / "broden", root_ / "unknown_layer" / "cache");
  Result r = Sh(std::string(ND_BIN_DIR) + "/nd-pipeline up -c " + cfg.string() +
                " --set 'model.layers=[\"detect\", \"layer9\"]'");
  ExpectOneLineFailure(r, "layer 'layer9' not found[^\\n]*pool, detect");
}

// ---- Activations
// ----------------------------------------------------------------------------------

TEST_F(BadInputE2eTest, NanAndInfActivationsSkipTheirImagesAndTheRunCompletes) {
  fs::path ds = CopyDataset("nonfinite");
  // Row 2 all black (+Inf in unit 1), row 10 all white (NaN in unit 2).
  const std::string black = IndexRow(ds, 2)[0], white = IndexRow(ds, 10)[0];
  ASSERT_TRUE(
      cv::imwrite((ds / "images" / black).string(), cv::Mat(64, 64, CV_8UC3, cv::Scalar(0, 0, 0))));
  ASSERT_TRUE(cv::imwrite((ds / "images" / white).string(),
                          cv::Mat(64, 64, CV_8UC3, cv::Scalar(255, 255, 255))));
  Result r = Up("nonfinite", ds);
  ASSERT_EQ(r.code, 0) << r.output;
  const std::string inf =
      Re(black) + ": layer 'detect' has 0 NaN and 1024 infinite activation values";
  const std::string nan =
      Re(white) + ": layer 'detect' has 1024 NaN and 0 infinite activation values";
  EXPECT_TRUE(Matches(r.output, "skipped: " + inf)) << r.output;
  EXPECT_TRUE(Matches(r.output, "skipped: " + nan)) << r.output;
  ExpectCompletedWithSkips("nonfinite", {{2, inf}, {10, nan}});
  // The thresholds are finite: taken over the 10 finite images only.
  for (const std::string& line : Lines(Read(Out("nonfinite") / "thresholds.csv"))) {
    if (line.rfind("unit", 0) == 0) continue;
    const double t = std::stod(Split(line, ',')[1]);
    EXPECT_TRUE(std::isfinite(t)) << line;
  }
}

// ---- Cache
// ----------------------------------------------------------------------------------------

TEST_F(BadInputE2eTest, CacheDirWhoseParentIsAFileFailsNamingTheDir) {
  Write(root_ / "a_file", "not a directory");
  fs::path cache = root_ / "a_file" / "cache";
  fs::path cfg = Config("parent_file", fixtures_ / "broden", cache);
  Result r = Sh(std::string(ND_BIN_DIR) + "/nd-pipeline up -c " + cfg.string());
  // (The supervisor creates the cache directory before it starts a stage, so it reports this.)
  ExpectOneLineFailure(r, Re(cache.string()) + "'?: cannot create[^\\n]*: Not a directory");
}

TEST_F(BadInputE2eTest, CacheDirNotWritableFailsNamingTheDir) {
  // root ignores permission bits: run `up` as nobody (uid 65534) then, in a run directory only it
  // can write, against a cache directory it cannot.
  fs::path dir = root_ / "not_writable";
  fs::path cache = dir / "cache";
  fs::create_directories(cache);
  fs::permissions(cache, fs::perms(0555));
  fs::path cfg = Config("not_writable", fixtures_ / "broden", cache);
  fs::create_directories(dir / "out");
  fs::permissions(dir / "out", fs::perms(0777));
  std::string prefix;
  if (::geteuid() == 0) {
    if (!fs::exists("/usr/bin/setpriv")) GTEST_SKIP() << "running as root without setpriv";
    prefix = "setpriv --reuid=65534 --regid=65534 --clear-groups ";
  }
  Result r = Sh(prefix + std::string(ND_BIN_DIR) + "/nd-pipeline up -c " + cfg.string());
  ExpectOneLineFailure(r,
                       "cache dir '" + Re(cache.string()) + "' is not writable: Permission denied");
  EXPECT_FALSE(fs::exists(cache / "data.mdb"));
}

// Counts the a/ records of a cache and checks that every one decodes.
uint64_t CountActivations(const fs::path& dir) {
  nd::CacheOptions options;
  options.dir = dir.string();
  options.read_only = true;
  auto cache = nd::ActivationCache::Open(options);
  ND_EXPECT_OK(cache);
  if (!cache.ok()) return 0;
  uint64_t n = 0;
  std::vector<std::string> keys;
  EXPECT_TRUE(cache
                  ->Scan("a/",
                         [&](std::string_view key, std::string_view) {
                           keys.emplace_back(key);
                           return true;
                         })
                  .ok());
  nd::ActivationMap map;
  for (const std::string& key : keys) {
    nd::Status s = cache->GetActivation(key, &map);
    ND_EXPECT_OK(s);
    n += s.ok();
  }
  return n;
}

TEST_F(BadInputE2eTest, DiskFullIsOneLineAndKeepsCommittedBatchesAndEarlierResults) {
  // A complete run first, whose result files must survive the failing run below.
  Result good = Up("disk_full", fixtures_ / "broden");
  ASSERT_EQ(good.code, 0) << good.output;
  const std::string tally = Read(Out("disk_full") / "tally.csv");
  const std::string summary = Read(Out("disk_full") / "summary.json");
  // Same output, a fresh cache, and no file may grow past 100 KiB (RLIMIT_FSIZE: writes beyond it
  // fail, as on a full disk). Each image's record (3x32x32 float16 + 24 bytes) takes two 4 KiB
  // LMDB overflow pages, so a batch of 4 adds ~36 KiB to data.mdb: one or two batches commit
  // before the limit, never all three.
  fs::path cache = root_ / "disk_full" / "small_cache";
  fs::path cfg = Config("disk_full", fixtures_ / "broden", cache);
  Result full = Sh("prlimit --fsize=102400 " + std::string(ND_BIN_DIR) + "/nd-pipeline up -c " +
                   cfg.string());
  ExpectOneLineFailure(full, "cache '" + Re(cache.string()) + "': disk full \\(File too large");
  // Every committed batch is intact (whole batches of 4), the earlier results untouched.
  const uint64_t committed = CountActivations(cache);
  EXPECT_GT(committed, 0u);
  EXPECT_LT(committed, static_cast<uint64_t>(kImages));
  EXPECT_EQ(committed % 4, 0u) << committed;
  EXPECT_EQ(Read(Out("disk_full") / "tally.csv"), tally);
  EXPECT_EQ(Read(Out("disk_full") / "summary.json"), summary);
  Result verify = Sh(std::string(ND_BIN_DIR) + "/nd-pipeline cache verify -c " + cfg.string());
  EXPECT_EQ(verify.code, 0) << verify.output;
  EXPECT_TRUE(Matches(verify.output, "\\b0 bad")) << verify.output;
  // With room again, the run completes and only the missing images go through the network.
  Result again = Sh(std::string(ND_BIN_DIR) + "/nd-pipeline up -c " + cfg.string());
  ASSERT_EQ(again.code, 0) << again.output;
  EXPECT_EQ(JsonNumber(Read(Out("disk_full") / "summary.json"), "forward_images"),
            static_cast<double>(kImages - committed));
}

TEST_F(BadInputE2eTest, LmdbLeftByACrashedWriterIsUsable) {
  Result first = Up("crashed_writer", fixtures_ / "broden");
  ASSERT_EQ(first.code, 0) << first.output;
  fs::path cache = root_ / "crashed_writer" / "cache";
  ASSERT_EQ(CountActivations(cache), static_cast<uint64_t>(kImages));
  // A writer that dies (SIGKILL) inside a write transaction, holding LMDB's write lock, after
  // putting records it never commits.
  const std::string ghost = "a/00000000000000000000000000000000/" + std::string(64, 'f');
  int ready[2];
  ASSERT_EQ(::pipe(ready), 0);
  pid_t child = ::fork();
  ASSERT_GE(child, 0);
  if (child == 0) {
    MDB_env* env = nullptr;
    MDB_txn* txn = nullptr;
    MDB_dbi dbi;
    if (mdb_env_create(&env) || mdb_env_set_mapsize(env, size_t{1} << 30) ||
        mdb_env_set_maxreaders(env, 1024) ||
        mdb_env_open(env, cache.c_str(), MDB_NOTLS | MDB_NOMETASYNC, 0664) ||
        mdb_txn_begin(env, nullptr, 0, &txn) || mdb_dbi_open(txn, nullptr, 0, &dbi))
      ::_exit(3);
    std::string value(4096, 'x');
    MDB_val k{ghost.size(), const_cast<char*>(ghost.data())}, v{value.size(), value.data()};
    if (mdb_put(txn, dbi, &k, &v, 0)) ::_exit(4);
    if (::write(ready[1], "k", 1) != 1) ::_exit(5);
    for (;;) ::pause();
  }
  ::close(ready[1]);
  char byte = 0;
  ASSERT_EQ(::read(ready[0], &byte, 1), 1);
  ::close(ready[0]);
  ::kill(child, SIGKILL);
  int status = 0;
  ::waitpid(child, &status, 0);
  ASSERT_TRUE(WIFSIGNALED(status));
  // `up` on that cache: succeeds, everything committed is still there (no forward pass), the
  // uncommitted record is absent, and `cache verify` passes.
  Result again = Up("crashed_writer", fixtures_ / "broden");
  ASSERT_EQ(again.code, 0) << again.output;
  EXPECT_EQ(JsonNumber(Read(Out("crashed_writer") / "summary.json"), "forward_images"), 0);
  EXPECT_EQ(JsonNumber(Read(Out("crashed_writer") / "summary.json"), "images"), kImages);
  EXPECT_EQ(CountActivations(cache), static_cast<uint64_t>(kImages));
  {
    nd::CacheOptions options;
    options.dir = cache.string();
    options.read_only = true;
    auto opened = nd::ActivationCache::Open(options);
    ND_ASSERT_OK(opened);
    auto has = opened->Contains(ghost);
    ND_ASSERT_OK(has);
    EXPECT_FALSE(*has);
  }
  Result verify = Sh(std::string(ND_BIN_DIR) + "/nd-pipeline cache verify -c " +
                     (root_ / "crashed_writer" / "pipeline.toml").string());
  EXPECT_EQ(verify.code, 0) << verify.output;
  EXPECT_TRUE(Matches(verify.output, "\\b0 bad")) << verify.output;
}

}  // namespace
