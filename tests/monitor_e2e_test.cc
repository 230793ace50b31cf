// Monitoring end to end, through the real launcher: `nd-pipeline up` with run.http_port set runs
// the four stage processes on a generated 40-image Broden (64 px) and the ResNet-18 TorchScript
// fixture (tests/fixtures/make_test_models.py). While it runs, the test scrapes GET /metrics and
// asks `nd-pipeline status`; afterwards the final status.json must carry every stage's final
// counters, and its items_out must account for every image.
#include <gtest/gtest.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <thread>

#include "tests/testing/monitor_testing.h"
#include "tests/testing/status_assertions.h"
#include "tools/nd_pipeline/metrics_board.h"

namespace nd {
namespace {

namespace fs = std::filesystem;

constexpr int kImages = 40;

std::string ReadText(const fs::path& p) {
  std::ifstream in(p);
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

class MonitorE2eTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::temp_directory_path() / ("nd_monitor_e2e_" + std::to_string(::getpid()));
    fs::remove_all(dir_);
    fs::create_directories(dir_);
    model_ = std::string(ND_TEST_MODELS_DIR) + "/resnet18_traced.pt";
    ASSERT_TRUE(fs::exists(model_)) << model_ << " missing: run ctest (fixture test_models)";
    pid_t gen = testing::Spawn(
        {std::string(ND_BIN_DIR) + "/nd-make-broden", "--out", (dir_ / "broden").string(),
         "--images", std::to_string(kImages), "--seed", "3", "--size", "64"},
        (dir_ / "gen.log").string());
    ASSERT_EQ(testing::WaitExit(gen, 120), 0) << ReadText(dir_ / "gen.log");
  }
  void TearDown() override { fs::remove_all(dir_); }

  fs::path dir_;
  std::string model_;
};

TEST_F(MonitorE2eTest, MetricsAreServedDuringTheRunAndFinalCountsCoverEveryImage) {
  const int port = testing::FreePort();
  ASSERT_GT(port, 0);
  const std::string config = (dir_ / "pipeline.toml").string();
  std::ofstream(config) << "[dataset]\npath = \"broden\"\n"
                        << "[model]\npath = \"" << model_ << "\"\nlayers = [\"layer4\"]\n"
                        << "input_size = 64\nbatch_size = 8\ndevice = \"cpu\"\n"
                        << "[cache]\ndir = \"cache\"\n[output]\ndir = \"out\"\n"
                        << "[run]\ntimeout_s = 60\nhttp_port = " << port << "\n";
  const std::string bin = std::string(ND_BIN_DIR) + "/nd-pipeline";
  const std::string log = (dir_ / "up.log").string();
  pid_t up = testing::Spawn({bin, "up", "-c", config}, log);

  // Scrape while it runs (bounded: the whole run is given 240 s).
  int scrapes = 0, scrapes_with_all_stages = 0, status_ok_while_running = 0;
  std::string last_metrics;
  int exit_code = -1;
  auto until = std::chrono::steady_clock::now() + std::chrono::seconds(240);
  while (testing::StillRunning(up, &exit_code)) {
    if (std::chrono::steady_clock::now() > until) {
      ::kill(up, SIGKILL);
      testing::WaitExit(up, 10);
      FAIL() << "nd-pipeline up did not finish within 240 s:\n" << ReadText(log);
    }
    auto r = testing::HttpGet(port, "/metrics");
    if (r.status == 200) {
      ++scrapes;
      last_metrics = r.body;
      bool all = true;
      for (const char* stage : {"decode", "extract", "calibrate", "score"})
        all = all && r.body.find(std::string("nd_stage_items_out_total{stage=\"") + stage +
                                 "\"} ") != std::string::npos;
      if (all) ++scrapes_with_all_stages;
      if (status_ok_while_running == 0) {
        pid_t status =
            testing::Spawn({bin, "status", "-c", config}, (dir_ / "status.log").string());
        int status_code = testing::WaitExit(status, 30);
        // Only meaningful if `up` outlived the status call; then it must have found the run.
        int ignored = -1;
        if (testing::StillRunning(up, &ignored)) {
          EXPECT_EQ(status_code, 0) << ReadText(dir_ / "status.log");
          ++status_ok_while_running;
        } else {
          exit_code = ignored;
          break;
        }
      }
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  const std::string up_log = ReadText(log);
  ASSERT_EQ(exit_code, 0) << up_log;
  EXPECT_GT(scrapes, 0) << "GET /metrics never answered during the run\n" << up_log;
  EXPECT_EQ(scrapes_with_all_stages, scrapes) << last_metrics;
  EXPECT_NE(last_metrics.find("# TYPE nd_stage_items_out_total counter"), std::string::npos);

  // After the run: the final board, with each stage's final snapshot.
  const fs::path status_path = dir_ / "out" / ".run" / "status.json";
  auto board = BoardFromJson(ReadText(status_path), status_path.string());
  ND_ASSERT_OK(board);
  EXPECT_EQ(board->state, "done");
  ASSERT_EQ(board->stages.size(), 4u);
  for (const StageBoardRow& row : board->stages) {
    SCOPED_TRACE(row.stage);
    EXPECT_EQ(row.state, "done");
    EXPECT_TRUE(row.has_metrics);
    EXPECT_TRUE(row.metrics.final) << "the final snapshot did not reach the supervisor";
    EXPECT_EQ(row.metrics.errors, 0u);
    EXPECT_GT(row.metrics.rss_bytes, 0u);
    // Every image passed every stage once (one layer, one quantile, nothing cached or skipped):
    // out + skipped accounts for the whole dataset.
    EXPECT_EQ(row.metrics.items_out + row.metrics.skipped, static_cast<uint64_t>(kImages));
  }
  EXPECT_FALSE(fs::exists(dir_ / "out" / ".run" / "supervisor.pid"));

  // The run is over: status says so.
  pid_t after = testing::Spawn({bin, "status", "-c", config}, (dir_ / "after.log").string());
  EXPECT_EQ(testing::WaitExit(after, 30), 1);
  EXPECT_NE(ReadText(dir_ / "after.log").find("no pipeline is running for " + config),
            std::string::npos);
  // The HTTP endpoint went away with the supervisor.
  EXPECT_EQ(testing::HttpGet(port, "/metrics").status, -1);
}

}  // namespace
}  // namespace nd
