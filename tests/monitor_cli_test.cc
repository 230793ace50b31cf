// `nd-pipeline status|top|down` and the supervisor's start-up checks, run as the real executable
// against a run directory prepared by the test. A "fake supervisor" is /bin/sleep started under
// the name nd-pipeline-fake-supervisor, so it counts as a live supervisor and can be stopped.
#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <sstream>

#include "tests/testing/monitor_testing.h"
#include "tests/testing/status_assertions.h"
#include "tools/nd_pipeline/metrics_board.h"

namespace nd {
namespace {

namespace fs = std::filesystem;

struct CliRun {
  int code = -1;
  std::string output;
};

class MonitorCliTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::temp_directory_path() /
           ("nd_monitor_cli_" + std::to_string(::getpid()) + "_" +
            ::testing::UnitTest::GetInstance()->current_test_info()->name());
    fs::remove_all(dir_);
    fs::create_directories(dir_ / "out" / ".run");
    config_ = (dir_ / "pipeline.toml").string();
    WriteConfig("");
  }
  void TearDown() override {
    if (fake_ > 0) {
      ::kill(fake_, SIGKILL);
      testing::WaitExit(fake_, 10);
    }
    fs::remove_all(dir_);
  }

  void WriteConfig(const std::string& extra) {
    std::ofstream(config_) << "[dataset]\npath = \"broden\"\n[model]\npath = \"model.pt\"\n"
                           << "[cache]\ndir = \"cache\"\n[output]\ndir = \"out\"\n"
                           << extra;
  }

  // Runs nd-pipeline with `args`, at most 60 s.
  CliRun Pipeline(const std::vector<std::string>& args) {
    std::vector<std::string> argv{std::string(ND_BIN_DIR) + "/nd-pipeline"};
    argv.insert(argv.end(), args.begin(), args.end());
    const std::string log = (dir_ / "log.txt").string();
    fs::remove(log);
    CliRun r;
    r.code = testing::WaitExit(testing::Spawn(argv, log), 60);
    std::ifstream in(log);
    std::stringstream s;
    s << in.rdbuf();
    r.output = s.str();
    return r;
  }

  pid_t StartFakeSupervisor() {
    fake_ = testing::Spawn({"nd-pipeline-fake-supervisor", "60"}, "/dev/null", "/bin/sleep");
    // Wait (bounded) until the exec has happened, so /proc/<pid>/cmdline shows the new name.
    for (int i = 0; i < 500; ++i) {
      std::ifstream cmd("/proc/" + std::to_string(fake_) + "/cmdline");
      std::string text;
      std::getline(cmd, text, '\0');
      if (text == "nd-pipeline-fake-supervisor") break;
      usleep(10000);
    }
    return fake_;
  }

  void WriteStatus(int64_t pid) {
    MetricsBoard board({"decode", "extract"}, config_, (dir_ / "out" / ".run").string(), pid, 0);
    StageMetrics m;
    m.stage = "decode";
    m.pid = 5;
    m.items_out = 40;
    m.items_total = 40;
    m.uptime_s = 2;
    board.Update(m, 2);
    m.stage = "extract";
    m.items_out = 12;
    m.items_total = 0;
    board.Update(m, 2);
    ND_ASSERT_OK(WriteFileAtomically(StatusPath(), BoardToJson(board.Snapshot(2))));
  }

  std::string StatusPath() const { return (dir_ / "out" / ".run" / "status.json").string(); }
  std::string PidPath() const { return (dir_ / "out" / ".run" / "supervisor.pid").string(); }

  fs::path dir_;
  std::string config_;
  pid_t fake_ = -1;
};

TEST_F(MonitorCliTest, StatusWithoutARunSaysNoPipelineIsRunning) {
  CliRun r = Pipeline({"status", "-c", config_});
  EXPECT_EQ(r.code, 1);
  EXPECT_EQ(r.output, "nd-pipeline: no pipeline is running for " + config_ + "\n");
}

TEST_F(MonitorCliTest, StatusOfADeadSupervisorIsStale) {
  pid_t gone = testing::Spawn({"/bin/true"}, "/dev/null");
  ASSERT_EQ(testing::WaitExit(gone, 10), 0);  // reaped: its pid names no live process
  WriteStatus(gone);
  CliRun r = Pipeline({"status", "-c", config_});
  EXPECT_EQ(r.code, 1);
  EXPECT_NE(r.output.find("no pipeline is running for"), std::string::npos) << r.output;
}

TEST_F(MonitorCliTest, StatusPrintsTheTableOrTheJson) {
  WriteStatus(StartFakeSupervisor());
  CliRun table = Pipeline({"status", "-c", config_});
  ASSERT_EQ(table.code, 0) << table.output;
  EXPECT_NE(table.output.find("STAGE"), std::string::npos) << table.output;
  EXPECT_NE(table.output.find("40/40"), std::string::npos) << table.output;
  EXPECT_NE(table.output.find("12/40"), std::string::npos) << "extract gets the pipeline total";
  CliRun json = Pipeline({"status", "-c", config_, "--json"});
  ASSERT_EQ(json.code, 0) << json.output;
  std::ifstream in(StatusPath());
  std::stringstream file;
  file << in.rdbuf();
  EXPECT_EQ(json.output, file.str());
}

TEST_F(MonitorCliTest, TopWithoutATerminalPrintsBoundedSnapshots) {
  WriteStatus(StartFakeSupervisor());
  CliRun r = Pipeline({"top", "-c", config_, "--iterations", "2"});
  ASSERT_EQ(r.code, 0) << r.output;
  size_t first = r.output.find("STAGE");
  ASSERT_NE(first, std::string::npos) << r.output;
  size_t second = r.output.find("STAGE", first + 1);
  EXPECT_NE(second, std::string::npos) << r.output;
  EXPECT_EQ(r.output.find("STAGE", second + 1), std::string::npos) << "more than 2 snapshots";
  EXPECT_EQ(r.output.find("\033["), std::string::npos) << "terminal codes without a terminal";
}

TEST_F(MonitorCliTest, TopRejectsABadIterationCount) {
  CliRun r = Pipeline({"top", "-c", config_, "--iterations", "0"});
  EXPECT_EQ(r.code, 2);
  EXPECT_NE(r.output.find("--iterations"), std::string::npos) << r.output;
}

TEST_F(MonitorCliTest, DownSignalsTheSupervisorAndWaits) {
  pid_t pid = StartFakeSupervisor();
  std::ofstream(PidPath()) << pid << "\n";
  CliRun r = Pipeline({"down", "-c", config_});
  EXPECT_EQ(r.code, 0) << r.output;
  EXPECT_NE(r.output.find("stopped the pipeline"), std::string::npos) << r.output;
  EXPECT_EQ(testing::WaitExit(pid, 10), 128 + SIGTERM);
  fake_ = -1;
  CliRun again = Pipeline({"down", "-c", config_});
  EXPECT_EQ(again.code, 1);
  EXPECT_NE(again.output.find("no pipeline is running for"), std::string::npos) << again.output;
}

TEST_F(MonitorCliTest, UpRefusesASecondSupervisorForTheSameRunDirectory) {
  pid_t pid = StartFakeSupervisor();
  std::ofstream(PidPath()) << pid << "\n";
  CliRun r = Pipeline({"up", "-c", config_});
  EXPECT_EQ(r.code, 1);
  EXPECT_NE(r.output.find("already running"), std::string::npos) << r.output;
  EXPECT_NE(r.output.find(std::to_string(pid)), std::string::npos) << r.output;
}

TEST_F(MonitorCliTest, UpWithTheHttpPortInUseFailsAtStartWithOneLine) {
  testing::Listener taken;
  ASSERT_GT(taken.port(), 0);
  WriteConfig("[run]\nhttp_port = " + std::to_string(taken.port()) + "\n");
  CliRun r = Pipeline({"up", "-c", config_});
  EXPECT_EQ(r.code, 1);
  EXPECT_EQ(r.output, "nd-pipeline: run.http_port " + std::to_string(taken.port()) +
                          ": address already in use\n");
  EXPECT_FALSE(fs::exists(StatusPath())) << "no stage should have been started";
  EXPECT_FALSE(fs::exists(PidPath())) << "the pid file outlived the supervisor";
}

}  // namespace
}  // namespace nd
