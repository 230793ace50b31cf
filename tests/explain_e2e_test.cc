// [explain] and [stats] through the real launcher: `nd-pipeline up` with explain.length = 2 and a
// few bootstrap resamples and permutations on a generated dataset (nd-make-broden, 128 px) and
// tests/fixtures/make_planted_model.py's colour-detector network (layer `detect`, 5 units) writes
// explanations.csv (documented header, one row per unit in unit order) and stats.csv beside
// tally.csv, and summary.json reports significant detectors; a rescore from the cache with two
// quantiles writes both files into each quantile folder.
#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include "tests/testing/e2e_support.h"

namespace {

namespace fs = std::filesystem;
using nd_e2e::JsonNumber;
using nd_e2e::Read;
using nd_e2e::Result;
using nd_e2e::Sh;
using nd_e2e::Split;

std::vector<std::string> Lines(const std::string& text) {
  std::vector<std::string> out;
  std::istringstream in(text);
  std::string line;
  while (std::getline(in, line)) {
    if (!line.empty() && line.back() == '\r') line.pop_back();
    if (!line.empty()) out.push_back(line);
  }
  return out;
}

void ExpectExplanations(const fs::path& dir, int units, int length) {
  const std::vector<std::string> lines = Lines(Read(dir / "explanations.csv"));
  ASSERT_EQ(lines.size(), static_cast<size_t>(units + 1)) << dir;
  EXPECT_EQ(lines[0], "unit,formula,iou,length,primitive,primitive_iou");
  for (int u = 1; u <= units; ++u) {
    const std::vector<std::string> cells = Split(lines[u], ',');
    ASSERT_EQ(cells.size(), 6u) << lines[u];
    EXPECT_EQ(cells[0], std::to_string(u));
    EXPECT_FALSE(cells[1].empty());
    const double iou = std::stod(cells[2]), primitive_iou = std::stod(cells[5]);
    EXPECT_GE(iou, 0.0);
    EXPECT_LE(iou, 1.0);
    EXPECT_GE(iou, primitive_iou) << "the beam keeps the best single label";
    const int leaves = std::stoi(cells[3]);
    EXPECT_GE(leaves, 1);
    EXPECT_LE(leaves, length);
    EXPECT_EQ(leaves == 1, cells[1].find('(') == std::string::npos) << cells[1];
    EXPECT_FALSE(cells[4].empty());
  }
}

void ExpectStats(const fs::path& dir, int units) {
  const std::vector<std::string> lines = Lines(Read(dir / "stats.csv"));
  ASSERT_EQ(lines.size(), static_cast<size_t>(units + 1)) << dir;
  EXPECT_EQ(lines[0],
            "unit,label,iou,iou_low,iou_high,stability,p_value,q_value,null_mean,p_max,q_max");
  for (int u = 1; u <= units; ++u) {
    const std::vector<std::string> cells = Split(lines[u], ',');
    ASSERT_EQ(cells.size(), 11u) << lines[u];
    EXPECT_EQ(cells[0], std::to_string(u));
    const double lo = std::stod(cells[3]), hi = std::stod(cells[4]), p = std::stod(cells[6]);
    EXPECT_LE(lo, hi);
    EXPECT_GE(std::stod(cells[9]), p) << "p_max >= p";
    EXPECT_GT(p, 0.0);
    EXPECT_LE(p, 1.0);
  }
}

TEST(ExplainE2eTest, UpWritesExplanationsAndStatsBesideTally) {
  const fs::path root = fs::temp_directory_path() / ("nd_explain_e2e_" + std::to_string(getpid()));
  fs::create_directories(root);
  Result gen = Sh(std::string(ND_BIN_DIR) + "/nd-make-broden --out " + (root / "broden").string() +
                  " --images 24 --seed 11 --size 128 --threads 2");
  ASSERT_EQ(gen.code, 0) << gen.output;
  Result model = Sh("/usr/bin/python3 " + std::string(ND_SOURCE_DIR) +
                    "/tests/fixtures/make_planted_model.py " + (root / "planted.pt").string());
  ASSERT_EQ(model.code, 0) << model.output;
  std::ofstream(root / "pipeline.toml")
      << "[dataset]\npath = \"" << (root / "broden").string() << "\"\n"
      << "[model]\npath = \"" << (root / "planted.pt").string() << "\"\n"
      << "layers = [\"detect\"]\nbatch_size = 8\ninput_size = 128\n"
      << "[explain]\nlength = 2\nbeam = 3\n"
      << "[stats]\nbootstrap = 20\npermutations = 30\nseed = 5\nmax_null = true\n"
      << "[cache]\ndir = \"" << (root / "cache").string() << "\"\n"
      << "[output]\ndir = \"" << (root / "out").string() << "\"\n"
      << "[run]\ntimeout_s = 60\n";
  const std::string pipeline = std::string(ND_BIN_DIR) + "/nd-pipeline ";
  Result up = Sh(pipeline + "up --no-report -c " + (root / "pipeline.toml").string());
  ASSERT_EQ(up.code, 0) << up.output;
  const fs::path out = root / "out" / "detect";
  ASSERT_TRUE(fs::exists(out / "tally.csv"));
  ExpectExplanations(out, 5, 2);
  ExpectStats(out, 5);
  const std::string summary = Read(out / "summary.json");
  EXPECT_GE(JsonNumber(summary, "significant_detectors"), 0) << summary;
  EXPECT_LE(JsonNumber(summary, "significant_detectors"), JsonNumber(summary, "detectors"));
  EXPECT_NE(summary.find("\"explain\": {\"length\": 2, \"beam\": 3"), std::string::npos) << summary;
  EXPECT_GE(JsonNumber(summary, "significant_detectors_max"), 0) << summary;

  // Rescore from the cache with two quantiles: both files in each quantile folder.
  Result re = Sh(pipeline + "rescore --no-report -c " + (root / "pipeline.toml").string() +
                 " --set 'threshold.quantile=[0.005, 0.02]' --set explain.length=3");
  ASSERT_EQ(re.code, 0) << re.output;
  for (const char* q : {"q0.005", "q0.02"}) {
    SCOPED_TRACE(q);
    ASSERT_TRUE(fs::exists(out / q / "tally.csv"));
    ExpectExplanations(out / q, 5, 3);
    ExpectStats(out / q, 5);
  }
  EXPECT_EQ(JsonNumber(Read(out / "q0.02" / "summary.json"), "forward_images"), 0);
  fs::remove_all(root);
}

}  // namespace
