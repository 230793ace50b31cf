// Regression (issue 16): the float16 cache silently destroyed small activations. A GoogLeNet
// inception5b at random init has values of ~1e-11; plain float16 stored them as 0, every threshold
// became 0 and the layer had no detector, without a warning. Through the real `nd-pipeline up`, on
// a seeded random convolutional network (tests/fixtures/make_random_conv_model.py: continuous
// activations, like a real network's) with its six units scaled to 1e-11, 1e+6 and a mix of
// magnitudes in one layer: the float16 cache gives the same label for every unit as float32 and
// IoUs within 1e-3, and both equal the unscaled network's float32 results (dissection does not
// depend on a unit's scale).
//
// Not the planted colour model: its activations take few distinct values (8-bit colours), so at
// the threshold float16's 11 significant bits merge values that float32 keeps apart, at any scale.
#include <gtest/gtest.h>
#include <unistd.h>

#include <cmath>
#include <filesystem>
#include <fstream>
#include <map>
#include <sstream>
#include <string>
#include <vector>

#include "tests/testing/e2e_support.h"

namespace nd {
namespace {

namespace fs = std::filesystem;
using nd_e2e::JsonNumber;
using nd_e2e::Read;
using nd_e2e::Result;
using nd_e2e::Sh;
using nd_e2e::Split;

struct UnitRow {
  std::string label;
  double iou = 0;
};

// unit (1-based) -> label and score, from tally.csv (the planted labels contain no comma).
std::map<int, UnitRow> Tally(const fs::path& path) {
  std::map<int, UnitRow> out;
  std::istringstream in(Read(path));
  std::string line;
  std::getline(in, line);  // header
  while (std::getline(in, line)) {
    if (line.empty() || line == "\r") continue;
    std::vector<std::string> cells = Split(line, ',');
    out[std::stoi(cells[0])] = UnitRow{cells[2], std::stod(cells[3])};
  }
  return out;
}

class Float16RangeE2eTest : public ::testing::Test {
 protected:
  void SetUp() override {
    root_ = fs::temp_directory_path() / ("nd_f16range_" + std::to_string(::getpid()));
    fs::remove_all(root_);
    fs::create_directories(root_);
    Result gen = Sh(std::string(ND_BIN_DIR) + "/nd-make-broden --out " +
                    (root_ / "broden").string() + " --images 48 --seed 11 --size 64 --threads 2");
    ASSERT_EQ(gen.code, 0) << gen.output;
  }
  void TearDown() override { fs::remove_all(root_); }

  // Dissects layer `detect` of the random network with its units scaled by `scales` into a cache of
  // `dtype`; returns the tally.
  std::map<int, UnitRow> Dissect(const std::string& name, const std::string& scales,
                                 const std::string& dtype) {
    const fs::path dir = root_ / name / dtype;
    fs::create_directories(dir);
    const fs::path model = root_ / name / "model.pt";
    if (!fs::exists(model)) {
      Result m = Sh("/usr/bin/python3 " + std::string(ND_SOURCE_DIR) +
                    "/tests/fixtures/make_random_conv_model.py " + model.string() + " " + scales);
      EXPECT_EQ(m.code, 0) << m.output;
    }
    std::ofstream(dir / "pipeline.toml")
        << "[dataset]\npath = \"" << (root_ / "broden").string() << "\"\n"
        << "[model]\npath = \"" << model.string() << "\"\n"
        << "layers = [\"detect\"]\ninput_size = 64\nbatch_size = 8\ndevice = \"cpu\"\n"
        << "[cache]\ndir = \"" << (dir / "cache").string() << "\"\ndtype = \"" << dtype << "\"\n"
        << "[output]\ndir = \"" << (dir / "out").string() << "\"\n"
        << "[run]\ntimeout_s = 60\n";
    Result r = Sh(std::string(ND_BIN_DIR) + "/nd-pipeline up --no-report -c " +
                  (dir / "pipeline.toml").string());
    EXPECT_EQ(r.code, 0) << r.output;
    EXPECT_EQ(JsonNumber(Read(dir / "out" / "detect" / "summary.json"), "images"), 48);
    return Tally(dir / "out" / "detect" / "tally.csv");
  }

  fs::path root_;
};

TEST_F(Float16RangeE2eTest, Float16AndFloat32GiveTheSameLabelsAtAnyMagnitude) {
  const std::map<int, UnitRow> plain = Dissect("unscaled", "1,1,1,1,1,1", "float32");
  ASSERT_EQ(plain.size(), 6u);
  int detectors = 0;
  for (const auto& [unit, row] : plain) detectors += row.iou > 0.04;
  ASSERT_GE(detectors, 1) << "the check needs a detector (plain float16 had none at 1e-11)";
  for (const auto& [name, scales] : std::vector<std::pair<std::string, std::string>>{
           {"tiny", "1e-11,1e-11,1e-11,1e-11,1e-11,1e-11"},
           {"huge", "1e6,1e6,1e6,1e6,1e6,1e6"},
           {"mixed", "1e-11,1e6,1,3e-9,2e5,7e-4"}}) {
    SCOPED_TRACE(name);
    const std::map<int, UnitRow> f32 = Dissect(name, scales, "float32");
    const std::map<int, UnitRow> f16 = Dissect(name, scales, "float16");
    ASSERT_EQ(f32.size(), 6u);
    ASSERT_EQ(f16.size(), 6u);
    for (const auto& [unit, row] : f32) {
      EXPECT_EQ(f16.at(unit).label, row.label) << "unit " << unit;
      EXPECT_NEAR(f16.at(unit).iou, row.iou, 1e-3) << "unit " << unit;
      // Scaling a unit scales its threshold: the unscaled network's labels.
      EXPECT_EQ(row.label, plain.at(unit).label) << "unit " << unit;
      EXPECT_NEAR(row.iou, plain.at(unit).iou, 1e-3) << "unit " << unit;
    }
  }
}

}  // namespace
}  // namespace nd
