// End-to-end runs through the real launcher: `nd-pipeline up` starts the four stage processes,
// which talk over ZeroMQ (ipc://) and share a real LMDB cache, on a generated Broden dataset and
// real TorchScript models written by tests/fixtures/make_planted_model.py.
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <sys/wait.h>

#include <array>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <map>
#include <sstream>
#include <string>
#include <vector>

#include "tests/testing/e2e_support.h"
#include "tests/testing/monitor_testing.h"

namespace {

namespace fs = std::filesystem;
using nd_e2e::JsonNumber;
using nd_e2e::Read;
using nd_e2e::Result;
using nd_e2e::Sh;
using nd_e2e::Split;

// tally.csv rows keyed by 1-based unit, each a column-name → cell map.
std::map<int, std::map<std::string, std::string>> ReadTally(const fs::path& p) {
  std::istringstream in(Read(p));
  std::string line;
  std::getline(in, line);
  std::vector<std::string> header = Split(line, ',');
  std::map<int, std::map<std::string, std::string>> rows;
  while (std::getline(in, line)) {
    if (line.empty()) continue;
    auto cells = Split(line, ',');
    std::map<std::string, std::string> row;
    for (size_t i = 0; i < header.size() && i < cells.size(); ++i) row[header[i]] = cells[i];
    rows[std::stoi(row["unit"])] = row;
  }
  return rows;
}

class PipelineE2eTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    root_ = fs::temp_directory_path() / ("nd_e2e_" + std::to_string(::getpid()));
    fs::create_directories(root_);
    Result gen = Sh(std::string(ND_BIN_DIR) + "/nd-make-broden --out " +
                    (root_ / "broden").string() + " --images 48 --seed 11 --size 224");
    ASSERT_EQ(gen.code, 0) << gen.output;
    Result model = Sh("/usr/bin/python3 " + std::string(ND_SOURCE_DIR) +
                      "/tests/fixtures/make_planted_model.py " + (root_ / "planted.pt").string());
    ASSERT_EQ(model.code, 0) << model.output;
  }
  static void TearDownTestSuite() { fs::remove_all(root_); }

  // Writes a config for `name` (its own cache and output unless shared) and runs `up`.
  Result Up(const std::string& name, const std::string& extra = "",
            const std::string& dataset = "broden", const std::string& cache = "") {
    fs::path dir = root_ / name;
    fs::create_directories(dir);
    std::ofstream(dir / "pipeline.toml")
        << "[dataset]\npath = \"" << (root_ / dataset).string() << "\"\n"
        << "[model]\npath = \"" << (root_ / "planted.pt").string() << "\"\n"
        << "layers = [\"detect\"]\nbatch_size = 8\n"
        << "[cache]\ndir = \"" << (cache.empty() ? (dir / "cache").string() : cache) << "\"\n"
        << "[output]\ndir = \"" << (dir / "out").string() << "\"\n"
        << "[run]\ntimeout_s = 60\n"
        << extra;
    return Sh(std::string(ND_BIN_DIR) + "/nd-pipeline up -c " + (dir / "pipeline.toml").string());
  }

  // Fraction of all segmentation pixels carrying a colour label: coverage / images (c_color.csv).
  static double ColourFraction(const std::string& label) {
    std::istringstream in(Read(root_ / "broden" / "c_color.csv"));
    std::string line;
    std::getline(in, line);
    auto header = Split(line, ',');
    while (std::getline(in, line)) {
      auto cells = Split(line, ',');
      std::map<std::string, std::string> row;
      for (size_t i = 0; i < header.size(); ++i) row[header[i]] = cells[i];
      if (row["name"] == label) return std::stod(row["coverage"]) / 48.0;
    }
    return 0;
  }

  static fs::path root_;
};

fs::path PipelineE2eTest::root_;

TEST_F(PipelineE2eTest, PlantedColourDetectorsAreRecovered) {
  // Each planted unit is scored at the quantile that equals its colour's pixel share, so that its
  // mask can cover exactly that colour; one result set per quantile, from one pass.
  struct Planted {
    int unit;  // 1-based, as in tally.csv
    const char* label;
    double min_iou;
  } planted[] = {{1, "green-c", 0.5},
                 {2, "blue-c", 0.5},
                 {3, "red-c", 0.25},
                 {4, "white-c", 0.4},
                 {5, "black-c", 0.4}};
  std::string quantiles;
  std::vector<double> qs;
  for (const Planted& p : planted) {
    char q[32];
    std::snprintf(q, sizeof(q), "%.4f", std::min(0.5, ColourFraction(p.label)));
    qs.push_back(std::stod(q));
    quantiles += std::string(quantiles.empty() ? "" : ", ") + q;
  }
  Result r = Up("planted", "[threshold]\nquantile = [" + quantiles + "]\n");
  ASSERT_EQ(r.code, 0) << r.output;
  for (size_t k = 0; k < qs.size(); ++k) {
    char dir[32];
    std::snprintf(dir, sizeof(dir), "q%g", qs[k]);
    auto tally = ReadTally(root_ / "planted" / "out" / "detect" / dir / "tally.csv");
    ASSERT_EQ(tally.size(), 5u) << dir;
    const auto& row = tally[planted[k].unit];
    EXPECT_EQ(row.at("color-label"), planted[k].label) << "unit " << planted[k].unit;
    double iou = std::stod(row.at("color-iou"));
    EXPECT_GT(iou, planted[k].min_iou) << planted[k].label;
    // No other unit matches this colour as well as the unit built for it.
    for (const auto& [unit, other] : tally) {
      if (unit != planted[k].unit && other.at("color-label") == planted[k].label) {
        EXPECT_LT(std::stod(other.at("color-iou")), iou) << planted[k].label << " unit " << unit;
      }
    }
  }
}

TEST_F(PipelineE2eTest, SecondRunTakesEverythingFromTheCacheWithIdenticalResults) {
  Result first = Up("twice");
  ASSERT_EQ(first.code, 0) << first.output;
  std::string tally1 = Read(root_ / "twice" / "out" / "detect" / "tally.csv");
  std::string summary1 = Read(root_ / "twice" / "out" / "detect" / "summary.json");
  EXPECT_EQ(JsonNumber(summary1, "forward_images"), 48);
  EXPECT_EQ(JsonNumber(summary1, "images"), 48);
  Result second = Up("twice");
  ASSERT_EQ(second.code, 0) << second.output;
  std::string summary2 = Read(root_ / "twice" / "out" / "detect" / "summary.json");
  EXPECT_EQ(JsonNumber(summary2, "forward_images"), 0);
  EXPECT_EQ(JsonNumber(summary2, "images_from_cache"), 48);
  EXPECT_EQ(Read(root_ / "twice" / "out" / "detect" / "tally.csv"), tally1);
}

// The supervisor's run plan (common/runtime/run_plan.h) holds the facts, derived here with
// sha256sum; a stage started against a plan whose index.csv digest differs refuses to run.
TEST_F(PipelineE2eTest, TheRunPlanHoldsTheFactsEveryStageChecks) {
  Result r = Up("plan");
  ASSERT_EQ(r.code, 0) << r.output;
  const fs::path run_dir = root_ / "plan" / "out" / ".run";
  const std::string plan = Read(run_dir / "plan.toml");
  auto sha = [](const fs::path& p) {
    Result h = Sh("sha256sum " + p.string());
    return h.output.substr(0, 64);
  };
  EXPECT_NE(plan.find("images = 48\n"), std::string::npos) << plan;
  EXPECT_NE(plan.find("model_digest = \"" + sha(root_ / "planted.pt") + "\"\n"), std::string::npos)
      << plan;
  EXPECT_NE(plan.find("index_digest = \"" + sha(root_ / "broden" / "index.csv") + "\"\n"),
            std::string::npos)
      << plan;
  EXPECT_NE(plan.find("[[layers]]\nname = \"detect\""), std::string::npos) << plan;
  EXPECT_NE(plan.find("events = \"ipc://" + fs::absolute(run_dir).string() + "/events.sock\""),
            std::string::npos)
      << plan;

  // As if index.csv had been edited after the plan was made.
  std::string stale = plan;
  const size_t at = stale.find("index_digest = \"") + 16;
  stale.replace(at, 64, std::string(64, '0'));
  std::ofstream(root_ / "plan" / "stale_plan.toml") << stale;
  Result decode = Sh(std::string(ND_BIN_DIR) + "/nd-stage-decode --config " +
                     (run_dir / "config.toml").string() + " --plan " +
                     (root_ / "plan" / "stale_plan.toml").string());
  EXPECT_NE(decode.code, 0) << decode.output;
  EXPECT_NE(decode.output.find((root_ / "broden" / "index.csv").string() +
                               " changed since the run started"),
            std::string::npos)
      << decode.output;
}

// run.transport = "tcp" with CURVE forced on loopback (common/runtime/curve.h): the stages talk
// over authenticated, encrypted connections, and the results equal the ipc run's byte for byte.
TEST_F(PipelineE2eTest, TcpWithCurveEqualsTheIpcRun) {
  Result ipc = Up("curve_ipc");
  ASSERT_EQ(ipc.code, 0) << ipc.output;
  const int port = nd::testing::FreePort();
  Result tcp =
      Up("curve_tcp",
         "transport = \"tcp\"\ncurve = \"on\"\nbase_port = " + std::to_string(port) + "\n");
  ASSERT_EQ(tcp.code, 0) << tcp.output;
  EXPECT_EQ(tcp.output.find("refused"), std::string::npos) << tcp.output;
  for (const char* file : {"tally.csv", "thresholds.csv"}) {
    EXPECT_EQ(Read(root_ / "curve_tcp" / "out" / "detect" / file),
              Read(root_ / "curve_ipc" / "out" / "detect" / file))
        << file;
  }
  const fs::path run_dir = root_ / "curve_tcp" / "out" / ".run";
  struct stat st {};
  ASSERT_EQ(::stat((run_dir / "curve.keys").c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0600u);
  const std::string plan = Read(run_dir / "plan.toml");
  EXPECT_NE(plan.find("curve_keys = \"" + fs::absolute(run_dir / "curve.keys").string() + "\""),
            std::string::npos)
      << plan;
  EXPECT_NE(plan.find("events = \"tcp://127.0.0.1:" + std::to_string(port) + "\""),
            std::string::npos)
      << plan;
  // The ipc run has no keys.
  EXPECT_FALSE(fs::exists(root_ / "curve_ipc" / "out" / ".run" / "curve.keys"));
  EXPECT_NE(Read(root_ / "curve_ipc" / "out" / ".run" / "plan.toml").find("curve_keys = \"\""),
            std::string::npos);
}

TEST_F(PipelineE2eTest, UnknownLayerFailsAtStartupListingModulePaths) {
  Result r = Up("unknown_layer", "", "broden");
  ASSERT_EQ(r.code, 0) << r.output;  // the same config with a good layer works
  fs::path cfg = root_ / "unknown_layer" / "pipeline.toml";
  Result bad = Sh(std::string(ND_BIN_DIR) + "/nd-pipeline up -c " + cfg.string() +
                  " --set 'model.layers=[\"detect\", \"layer9\"]'");
  EXPECT_NE(bad.code, 0);
  EXPECT_NE(bad.output.find("nd-pipeline: stage extract failed:"), std::string::npos) << bad.output;
  EXPECT_NE(bad.output.find("layer 'layer9' not found"), std::string::npos) << bad.output;
  EXPECT_NE(bad.output.find("pool, detect, unused"), std::string::npos) << bad.output;
}

TEST_F(PipelineE2eTest, GarbageModelFileIsAOneLineErrorNamingIt) {
  fs::create_directories(root_ / "garbage");
  std::ofstream(root_ / "garbage" / "model.pt") << "this is not a zip archive";
  Result r = Up("garbage_run", "");
  ASSERT_EQ(r.code, 0) << r.output;
  Result bad = Sh(std::string(ND_BIN_DIR) + "/nd-pipeline up -c " +
                  (root_ / "garbage_run" / "pipeline.toml").string() +
                  " --set model.path=" + (root_ / "garbage" / "model.pt").string());
  EXPECT_NE(bad.code, 0);
  // The supervisor's last line names the stage, the file and the reason.
  std::string last = bad.output.substr(bad.output.rfind("nd-pipeline:"));
  EXPECT_NE(last.find("model.pt: not a TorchScript file"), std::string::npos) << bad.output;
  EXPECT_EQ(last.find('\n'), last.size() - 1) << "one line: " << last;
}

TEST_F(PipelineE2eTest, CorruptImageMidRunIsSkippedCountedAndReported) {
  // A copy of the dataset whose 6th photo is truncated to half its bytes.
  fs::copy(root_ / "broden", root_ / "corrupt", fs::copy_options::recursive);
  std::istringstream index(Read(root_ / "corrupt" / "index.csv"));
  std::string line;
  std::getline(index, line);
  for (int i = 0; i < 6; ++i) std::getline(index, line);
  std::string image = Split(line, ',')[0];
  fs::path photo = root_ / "corrupt" / "images" / image;
  std::string bytes = Read(photo);
  std::ofstream(photo, std::ios::binary | std::ios::trunc) << bytes.substr(0, bytes.size() / 3);
  Result r = Up("corrupt_run", "", "corrupt");
  ASSERT_EQ(r.code, 0) << r.output;
  std::string summary = Read(root_ / "corrupt_run" / "out" / "detect" / "summary.json");
  EXPECT_EQ(JsonNumber(summary, "skipped"), 1) << summary;
  EXPECT_EQ(JsonNumber(summary, "images"), 47) << summary;
  EXPECT_NE(summary.find("{\"row\": 5, \"reason\": \"" + image), std::string::npos) << summary;
  EXPECT_NE(r.output.find(image), std::string::npos) << "the skip is logged: " << r.output;
}

}  // namespace

namespace {

TEST_F(PipelineE2eTest, CacheStatsVerifyAndGcSeeWhatTheRunWrote) {
  Result r = Up("cache_cmds");
  ASSERT_EQ(r.code, 0) << r.output;
  std::string cfg = " -c " + (root_ / "cache_cmds" / "pipeline.toml").string();
  std::string bin = std::string(ND_BIN_DIR) + "/nd-pipeline cache ";
  Result stats = Sh(bin + "stats" + cfg);
  ASSERT_EQ(stats.code, 0) << stats.output;
  // One activation record per image for the one layer, named through its manifest.
  EXPECT_NE(stats.output.find("activ.   detect"), std::string::npos) << stats.output;
  EXPECT_NE(stats.output.find(" 48 "), std::string::npos) << stats.output;
  Result verify = Sh(bin + "verify" + cfg);
  EXPECT_EQ(verify.code, 0) << verify.output;
  EXPECT_NE(verify.output.find("0 bad"), std::string::npos) << verify.output;
  // Keeping only another model deletes this model's records; keeping this one deletes nothing.
  fs::path other = root_ / "cache_cmds" / "other.pt";
  std::ofstream(other) << "another model's bytes";
  Result keep = Sh(bin + "gc --keep-model " + (root_ / "planted.pt").string() + cfg);
  EXPECT_NE(keep.output.find("deleted 0 records"), std::string::npos) << keep.output;
  Result gc = Sh(bin + "gc --keep-model " + other.string() + cfg);
  ASSERT_EQ(gc.code, 0) << gc.output;
  // 48 activations + one threshold record + calibrate's tails (q/) + the manifest.
  EXPECT_NE(gc.output.find("deleted 51 records"), std::string::npos) << gc.output;
  Result after = Sh(bin + "stats" + cfg);
  EXPECT_EQ(after.output.find("detect"), std::string::npos) << after.output;
}

}  // namespace
