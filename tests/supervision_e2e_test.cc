// Supervision through the real launcher: `nd-pipeline up` on a generated Broden dataset and the
// planted colour-detector model (tests/fixtures/make_planted_model.py), with stages killed under
// it. Checked here:
// - kill -9 of each stage mid-run: up restarts the pipeline, exits 0, and tally.csv /
//   thresholds.csv are byte-identical to an uninterrupted reference run; the last generation
//   forwards exactly the images decode found uncached, and nothing committed before the kill is
//   forwarded again;
// - SIGINT, then up again: exit 130 in bounded time, no nd-stage-* process of the run left, K > 0
//   activations committed; the second run forwards exactly N − K images and gives identical files;
// - the restart bound (a stage killed in every generation fails the run after run.max_restarts
//   with a clear line) and no restart for a deterministic failure (unknown layer);
// - a stage stopped with SIGSTOP loses its heartbeat, is killed and the run completes.
// "Mid-run" is observed from <run dir>/status.json (rewritten every second from the stages'
// per-second metrics), so the dataset is large enough that a run lasts several seconds.
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <functional>
#include <optional>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "tests/testing/e2e_support.h"
#include "tests/testing/monitor_testing.h"
#include "tools/nd_pipeline/metrics_board.h"

namespace nd {
namespace {

namespace fs = std::filesystem;
using nd_e2e::JsonNumber;
using nd_e2e::Read;
using nd_e2e::Result;
using nd_e2e::Sh;
using Clock = std::chrono::steady_clock;

constexpr int kImages = 600;
constexpr int kBatch = 4;

int Count(const std::string& text, const std::string& what) {
  int n = 0;
  for (size_t at = text.find(what); at != std::string::npos; at = text.find(what, at + 1)) ++n;
  return n;
}

// Kills a background `up` that a failed assertion left running (SIGKILL: its stages follow
// through PR_SET_PDEATHSIG).
struct UpGuard {
  pid_t pid;
  ~UpGuard() {
    int code;
    if (testing::StillRunning(pid, &code)) {
      ::kill(pid, SIGKILL);
      ::waitpid(pid, nullptr, 0);
    }
  }
};

class SupervisionTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    root_ = fs::temp_directory_path() / ("nd_supervision_" + std::to_string(::getpid()));
    fs::create_directories(root_);
    Result gen = nd_e2e::MakeBroden(root_ / "broden", kImages, 5);
    ASSERT_EQ(gen.code, 0) << gen.output;
    Result model = nd_e2e::RunFixture("make_planted_model.py", (root_ / "planted.pt").string());
    ASSERT_EQ(model.code, 0) << model.output;
    ready_ = true;
  }
  static void TearDownTestSuite() { fs::remove_all(root_); }
  void SetUp() override { ASSERT_TRUE(ready_) << "the dataset or the model was not generated"; }

  // The uninterrupted run every result is compared with (once per test process; only the tests
  // that compare results pay for it).
  static void MakeReference() {
    if (fs::exists(root_ / "reference" / "out" / "detect" / "tally.csv")) return;
    Result ref = Sh(Bin() + " up --no-report -c " + WriteConfig("reference").string());
    ASSERT_EQ(ref.code, 0) << ref.output;
    ASSERT_EQ(JsonNumber(Summary("reference"), "forward_images"), kImages) << ref.output;
  }

  static std::string Bin() { return std::string(ND_BIN_DIR) + "/nd-pipeline"; }

  // <root>/<name>/pipeline.toml: its own cache and output, the shared dataset and model.
  static fs::path WriteConfig(const std::string& name, const std::string& run_extra = "") {
    fs::path dir = root_ / name;
    fs::create_directories(dir);
    std::ofstream(dir / "pipeline.toml")
        << "[dataset]\npath = \"" << (root_ / "broden").string() << "\"\n"
        << "[model]\npath = \"" << (root_ / "planted.pt").string() << "\"\n"
        << "layers = [\"detect\"]\ninput_size = 128\nbatch_size = " << kBatch << "\n"
        << "[decode]\nworkers = 1\n"
        << "[cache]\ndir = \"" << (dir / "cache").string() << "\"\n"
        << "[output]\ndir = \"" << (dir / "out").string() << "\"\n"
        << "[run]\ntimeout_s = 60\n"
        << run_extra;
    return dir / "pipeline.toml";
  }
  static std::string Summary(const std::string& name) {
    return Read(root_ / name / "out" / "detect" / "summary.json");
  }
  static fs::path RunDir(const std::string& name) { return root_ / name / "out" / ".run"; }

  // `up` in the background, its output in <root>/<name>/<log>.
  static pid_t StartUp(const std::string& name, const std::string& log = "up.log") {
    return testing::Spawn({Bin(), "up", "--no-report", "-c", (root_ / name / "pipeline.toml")},
                          (root_ / name / log).string());
  }

  static std::optional<BoardSnapshot> Board(const std::string& name) {
    fs::path path = RunDir(name) / "status.json";
    std::string text = Read(path);
    if (text.empty()) return std::nullopt;
    auto board = BoardFromJson(text, path.string());
    if (!board.ok()) return std::nullopt;
    return *board;
  }

  // Polls status.json every 50 ms until `ready` holds for the row of `stage` (true), `up` exits
  // or `limit_s` passes (false). *row is the row that satisfied it.
  static bool WaitForStage(const std::string& name, const std::string& stage, pid_t up,
                           const std::function<bool(const StageBoardRow&)>& ready,
                           StageBoardRow* row, int limit_s = 120) {
    auto until = Clock::now() + std::chrono::seconds(limit_s);
    while (Clock::now() < until) {
      if (::kill(up, 0) != 0 || Zombie(up)) return false;  // up ended
      if (auto board = Board(name)) {
        const StageBoardRow* r = board->Find(stage);
        if (r && r->pid > 0 && ready(*r)) {
          *row = *r;
          return true;
        }
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
    }
    return false;
  }

  static bool Zombie(pid_t pid) {
    std::string stat = Read(fs::path("/proc") / std::to_string(pid) / "stat");
    size_t close = stat.rfind(')');
    return close != std::string::npos && close + 2 < stat.size() && stat[close + 2] == 'Z';
  }

  // Live nd-stage-* processes started for the run <root>/<name> (their --config names its run
  // directory), from /proc.
  static std::vector<std::string> StageProcessesOf(const std::string& name) {
    std::vector<std::string> found;
    const std::string run_config = (RunDir(name) / "config.toml").string();
    std::error_code ec;
    for (const auto& entry : fs::directory_iterator("/proc", ec)) {
      std::string cmdline = Read(entry.path() / "cmdline");
      for (char& c : cmdline)
        if (c == '\0') c = ' ';
      if (cmdline.find("nd-stage-") == std::string::npos) continue;
      if (cmdline.find(run_config) == std::string::npos) continue;
      if (Zombie(std::atoi(entry.path().filename().c_str())))
        continue;  // exited, not yet reaped by its parent: not running
      found.push_back(entry.path().filename().string() + ": " + cmdline);
    }
    return found;
  }

  // Activation records of layer `detect` in <root>/<name>/cache, by `nd-pipeline cache stats`.
  static int CachedActivations(const std::string& name) {
    Result stats = Sh(Bin() + " cache stats -c " + (root_ / name / "pipeline.toml").string(), 60);
    std::istringstream in(stats.output);
    std::string line;
    while (std::getline(in, line)) {
      if (line.rfind("activ.", 0) != 0 || line.find("detect") == std::string::npos) continue;
      // "activ. detect <model> <preprocess> <size> <shape> <dtype> <entries> <bytes> …"
      std::istringstream words(line);
      std::string word;
      while (words >> word)
        if (word == "float16" || word == "float32") {
          long count = -1;
          words >> count;
          return static_cast<int>(count);
        }
    }
    ADD_FAILURE() << "no activation line for detect in:\n" << stats.output;
    return -1;
  }

  // The result files equal the reference's byte for byte.
  static void ExpectReferenceResults(const std::string& name) {
    for (const char* file : {"tally.csv", "thresholds.csv"}) {
      SCOPED_TRACE(file);
      std::string got = Read(root_ / name / "out" / "detect" / file);
      ASSERT_FALSE(got.empty());
      EXPECT_TRUE(got == Read(root_ / "reference" / "out" / "detect" / file));
    }
  }

  // The number X of the last "X of <N> images cached" line decode logged (its cache probe at
  // the start of the last generation), -1 when absent.
  static int LastCachedByDecode(const std::string& log) {
    const std::string tail = " of " + std::to_string(kImages) + " images cached";
    size_t at = log.rfind(tail);
    if (at == std::string::npos) return -1;
    size_t begin = log.find_last_not_of("0123456789", at - 1);
    return std::stoi(log.substr(begin + 1, at - begin - 1));
  }

  // Holds the run mid-way, however fast the machine is: decode is stopped (SIGSTOP) as soon as
  // status.json names it, then let go for 100 ms at a time, each time followed by 2.5 s for the
  // stages to drain what is queued (every hop has a high-water mark of 4) and for status.json
  // to show it, until extract has committed some batches. Returns decode's pid, stopped (SIGCONT
  // it to go on), or -1 when that did not happen within two minutes. *last_status: the last
  // status.json it read (for the failure message).
  static pid_t HoldMidRun(const std::string& name, pid_t up, std::string* last_status = nullptr) {
    StageBoardRow row;
    if (!WaitForStage(
            name, "decode", up, [](const StageBoardRow&) { return true; }, &row))
      return -1;
    const pid_t decode = static_cast<pid_t>(row.pid);
    if (::kill(decode, SIGSTOP) != 0) return -1;
    auto until = Clock::now() + std::chrono::seconds(120);
    while (Clock::now() < until) {
      ::kill(decode, SIGCONT);
      std::this_thread::sleep_for(std::chrono::milliseconds(100));
      ::kill(decode, SIGSTOP);
      std::this_thread::sleep_for(std::chrono::milliseconds(2500));
      if (::kill(up, 0) != 0 || Zombie(up)) return -1;
      if (last_status) *last_status = Read(RunDir(name) / "status.json");
      auto board = Board(name);
      if (!board) continue;
      uint64_t committed = board->Find("extract")->metrics.items_out;
      if (committed > 0) return committed + 100 < static_cast<uint64_t>(kImages) ? decode : -1;
    }
    return -1;
  }

  // kill -9 of `stage` mid-run (the input held by HoldMidRun, the stage seen with work in
  // progress); the run must complete as if nothing happened.
  void KillMidRun(const std::string& stage) {
    SCOPED_TRACE("kill -9 " + stage);
    const std::string name = "kill_" + stage;
    WriteConfig(name, "heartbeat_timeout_s = 30\n");
    pid_t up = StartUp(name);
    UpGuard guard{up};
    std::string last_status;
    pid_t decode = HoldMidRun(name, up, &last_status);
    ASSERT_GT(decode, 0) << "extract never seen mid-run\n"
                         << Read(root_ / name / "up.log") << "\nlast status.json read:\n"
                         << last_status;
    // The stage has work in progress and the input is held short of the end.
    // (Decode is mid-run by construction: extract has some of its images, not all; its own
    // counters may not have reached status.json, as it runs only in short bursts.)
    StageBoardRow row;
    row.pid = decode;
    bool mid_run = stage == "decode" || WaitForStage(
                                            name, stage, up,
                                            [&](const StageBoardRow& r) {
                                              uint64_t n = stage == "extract" ? r.metrics.items_out
                                                                              : r.metrics.items_in;
                                              return n > 0 && n < static_cast<uint64_t>(kImages);
                                            },
                                            &row, 30);
    // Extract's items_out counts batches committed and passed on (a lower bound at the kill).
    uint64_t committed = 0;
    if (auto board = Board(name)) committed = board->Find("extract")->metrics.items_out;
    if (mid_run) ::kill(static_cast<pid_t>(row.pid), SIGKILL);
    if (stage != "decode") ::kill(decode, SIGCONT);
    ASSERT_TRUE(mid_run) << stage << " never seen mid-run\n" << Read(root_ / name / "up.log");
    int code = testing::WaitExit(up, 180);
    const std::string log = Read(root_ / name / "up.log");
    ASSERT_EQ(code, 0) << log;
    EXPECT_NE(log.find("stage " + stage + " killed by signal 9"), std::string::npos) << log;
    EXPECT_NE(log.find("(restart 1/3)"), std::string::npos) << log;
    ExpectReferenceResults(name);
    auto board = Board(name);
    ASSERT_TRUE(board.has_value());
    EXPECT_EQ(board->state, "done");
    EXPECT_GE(board->restarts, 1);
    // The last generation forwarded exactly what decode found uncached, and that excluded
    // everything committed before the kill: no committed batch ran through the network twice.
    const std::string summary = Summary(name);
    const int cached = LastCachedByDecode(log);
    EXPECT_GT(committed, 0u);
    EXPECT_GE(cached, static_cast<int>(committed)) << log;
    EXPECT_EQ(JsonNumber(summary, "forward_images"), kImages - cached) << summary;
    EXPECT_EQ(JsonNumber(summary, "images_from_cache"), cached) << summary;
    EXPECT_EQ(CachedActivations(name), kImages);
    EXPECT_TRUE(StageProcessesOf(name).empty());
  }

  static fs::path root_;
  static bool ready_;
};

fs::path SupervisionTest::root_;
bool SupervisionTest::ready_ = false;

TEST_F(SupervisionTest, KillNineOfEachStageMidRunGivesTheUninterruptedResults) {
  ASSERT_NO_FATAL_FAILURE(MakeReference());
  // Score collects notices while the network runs and does its real work at the end of the
  // stream; killed while collecting, everything it had is redone from the cache.
  for (const char* stage : {"decode", "extract", "calibrate", "score"}) KillMidRun(stage);
}

TEST_F(SupervisionTest, InterruptThenResumeForwardsOnlyWhatIsMissing) {
  ASSERT_NO_FATAL_FAILURE(MakeReference());
  const std::string name = "interrupt";
  WriteConfig(name, "heartbeat_timeout_s = 30\n");
  pid_t up = StartUp(name);
  UpGuard guard{up};
  pid_t decode = HoldMidRun(name, up);
  ASSERT_GT(decode, 0) << Read(root_ / name / "up.log");
  auto sent = Clock::now();
  ASSERT_EQ(::kill(up, SIGINT), 0);
  ::kill(decode, SIGCONT);  // so that it sees the supervisor's SIGTERM
  int code = testing::WaitExit(up, 60);
  double took_s = std::chrono::duration<double>(Clock::now() - sent).count();
  const std::string log = Read(root_ / name / "up.log");
  ASSERT_EQ(code, 130) << log;
  EXPECT_LT(took_s, 15) << "stopping took too long";
  EXPECT_NE(log.find("interrupted"), std::string::npos) << log;
  EXPECT_NE(log.find("resumes"), std::string::npos) << log;
  std::vector<std::string> left = StageProcessesOf(name);
  EXPECT_TRUE(left.empty()) << left.front();
  EXPECT_FALSE(fs::exists(RunDir(name) / "supervisor.pid"));
  auto board = Board(name);
  ASSERT_TRUE(board.has_value());
  EXPECT_EQ(board->state, "stopped");

  const int committed = CachedActivations(name);
  ASSERT_GT(committed, 0);
  ASSERT_LT(committed, kImages);
  Result again = Sh(Bin() + " up --no-report -c " + (root_ / name / "pipeline.toml").string());
  ASSERT_EQ(again.code, 0) << again.output;
  const std::string summary = Summary(name);
  EXPECT_EQ(JsonNumber(summary, "forward_images"), kImages - committed) << summary;
  EXPECT_EQ(JsonNumber(summary, "images_from_cache"), committed) << summary;
  ExpectReferenceResults(name);
  EXPECT_TRUE(StageProcessesOf(name).empty());
}

TEST_F(SupervisionTest, AStageThatKeepsDyingFailsTheRunAfterMaxRestarts) {
  const std::string name = "keeps_dying";
  WriteConfig(name, "max_restarts = 2\nheartbeat_timeout_s = 30\n");
  pid_t up = StartUp(name);
  UpGuard guard{up};
  std::vector<int64_t> killed;
  int code = -1;
  auto until = Clock::now() + std::chrono::seconds(180);
  while (testing::StillRunning(up, &code) && Clock::now() < until) {
    // Each generation's extract is killed as soon as status.json names it.
    if (auto board = Board(name)) {
      const StageBoardRow* r = board->Find("extract");
      if (r && r->pid > 0 && (r->state == "starting" || r->state == "running") &&
          (killed.empty() || killed.back() != r->pid)) {
        if (::kill(static_cast<pid_t>(r->pid), SIGKILL) == 0) killed.push_back(r->pid);
      }
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  if (code == -1) code = testing::WaitExit(up, 5);
  const std::string log = Read(root_ / name / "up.log");
  ASSERT_EQ(code, 1) << log;
  EXPECT_EQ(killed.size(), 3u) << log;
  EXPECT_NE(log.find("(restart 1/2)"), std::string::npos) << log;
  EXPECT_NE(log.find("(restart 2/2)"), std::string::npos) << log;
  EXPECT_EQ(log.find("(restart 3/"), std::string::npos) << log;
  EXPECT_NE(log.find("nd-pipeline: stage extract killed by signal 9"), std::string::npos) << log;
  EXPECT_NE(log.find("gave up after 2 restart(s) (run.max_restarts = 2)"), std::string::npos)
      << log;
  auto board = Board(name);
  ASSERT_TRUE(board.has_value());
  EXPECT_EQ(board->state, "failed");
  EXPECT_EQ(board->restarts, 2);
  EXPECT_TRUE(StageProcessesOf(name).empty());
}

TEST_F(SupervisionTest, ADeterministicFailureIsNotRestarted) {
  fs::path config = WriteConfig("unknown_layer");
  Result r = Sh(Bin() + " up --no-report -c " + config.string() +
                " --set 'model.layers=[\"detect\", \"layer9\"]'");
  EXPECT_EQ(r.code, 1) << r.output;
  // One attempt: extract reports the missing layer once, the supervisor repeats it once.
  EXPECT_EQ(Count(r.output, "layer 'layer9' not found"), 2) << r.output;
  EXPECT_NE(r.output.find("nd-pipeline: stage extract failed: "), std::string::npos) << r.output;
  EXPECT_EQ(r.output.find("restart"), std::string::npos) << r.output;
  auto board = Board("unknown_layer");
  ASSERT_TRUE(board.has_value());
  EXPECT_EQ(board->restarts, 0);
  EXPECT_TRUE(StageProcessesOf("unknown_layer").empty());
}

TEST_F(SupervisionTest, SupervisionKeysHaveDefaultsAndBounds) {
  fs::path config = WriteConfig("keys");
  Result shown = Sh(Bin() + " validate -c " + config.string(), 30);
  ASSERT_EQ(shown.code, 0) << shown.output;
  EXPECT_NE(shown.output.find("heartbeat_timeout_s = 10\n"), std::string::npos) << shown.output;
  EXPECT_NE(shown.output.find("max_restarts = 3\n"), std::string::npos) << shown.output;
  Result zero = Sh(Bin() + " validate -c " + config.string() + " --set run.max_restarts=0", 30);
  EXPECT_EQ(zero.code, 0) << zero.output;
  Result negative =
      Sh(Bin() + " validate -c " + config.string() + " --set run.max_restarts=-1", 30);
  EXPECT_EQ(negative.code, 2);
  EXPECT_NE(negative.output.find("[run].max_restarts: must be in [0, 100], got -1"),
            std::string::npos)
      << negative.output;
  Result tiny =
      Sh(Bin() + " validate -c " + config.string() + " --set run.heartbeat_timeout_s=1", 30);
  EXPECT_EQ(tiny.code, 2);
  EXPECT_NE(tiny.output.find("[run].heartbeat_timeout_s: must be in [2, 86400], got 1"),
            std::string::npos)
      << tiny.output;
}

TEST_F(SupervisionTest, AStoppedStageLosesItsHeartbeatAndIsReplaced) {
  ASSERT_NO_FATAL_FAILURE(MakeReference());
  const std::string name = "sigstop";
  constexpr int kHeartbeatS = 8;  // above HoldMidRun's 2.5 s pauses of decode
  WriteConfig(name, "heartbeat_timeout_s = " + std::to_string(kHeartbeatS) + "\n");
  pid_t up = StartUp(name);
  UpGuard guard{up};
  pid_t decode = HoldMidRun(name, up);
  ASSERT_GT(decode, 0) << Read(root_ / name / "up.log");
  // Calibrate has not seen the end of the stream: it is mid-run when stopped.
  auto board = Board(name);
  ASSERT_TRUE(board.has_value());
  StageBoardRow row = *board->Find("calibrate");
  ASSERT_EQ(::kill(static_cast<pid_t>(row.pid), SIGSTOP), 0);
  ::kill(decode, SIGCONT);
  auto stopped = Clock::now();
  // The supervisor replaces it: status.json names a new calibrate process.
  StageBoardRow next;
  bool replaced = WaitForStage(
      name, "calibrate", up, [&](const StageBoardRow& r) { return r.pid != row.pid; }, &next, 60);
  double took_s = std::chrono::duration<double>(Clock::now() - stopped).count();
  int code = testing::WaitExit(up, 180);
  const std::string log = Read(root_ / name / "up.log");
  EXPECT_TRUE(replaced) << log;
  // Detection needs kHeartbeatS plus up to a second of snapshot spacing; then up to 5 s of
  // grace for the other stages and a second until status.json shows the new process.
  EXPECT_LT(took_s, kHeartbeatS + 15) << log;
  ASSERT_EQ(code, 0) << log;
  EXPECT_NE(log.find("stage calibrate sent no heartbeat for"), std::string::npos) << log;
  EXPECT_NE(log.find("(restart 1/3)"), std::string::npos) << log;
  // The stopped process was killed, not left behind.
  EXPECT_NE(::kill(static_cast<pid_t>(row.pid), 0), 0);
  ExpectReferenceResults(name);
  EXPECT_TRUE(StageProcessesOf(name).empty());
}

// The listening socket's inode for 127.0.0.1:<port> from /proc/net/tcp, "" when none listens.
std::string ListenerInode(int port) {
  std::istringstream in(Read("/proc/net/tcp"));
  std::string line;
  char want[32];
  std::snprintf(want, sizeof(want), "0100007F:%04X", port);
  std::getline(in, line);  // header
  while (std::getline(in, line)) {
    std::istringstream f(line);
    std::string slot, local, remote, state, queues, timer, retr, uid, timeout, inode;
    f >> slot >> local >> remote >> state >> queues >> timer >> retr >> uid >> timeout >> inode;
    if (local == want && state == "0A") return inode;  // 0A = LISTEN
  }
  return "";
}

// readlink of every descriptor of `pid`.
std::vector<std::string> Descriptors(pid_t pid) {
  std::vector<std::string> out;
  std::error_code ec;
  for (const auto& e : fs::directory_iterator(fs::path("/proc") / std::to_string(pid) / "fd", ec)) {
    std::error_code rec;
    out.push_back(fs::read_symlink(e.path(), rec).string());
  }
  return out;
}

// Regression (issue 16): with run.http_port set, every stage held the supervisor's HTTP listening
// socket and a second descriptor of the cache's data.mdb, inherited through fork/exec.
TEST_F(SupervisionTest, RunningStagesHoldOnlyTheDescriptorsTheyOpened) {
  const std::string name = "descriptors";
  const int port = testing::FreePort();
  ASSERT_GT(port, 0);
  WriteConfig(name, "http_port = " + std::to_string(port) + "\n");
  pid_t up = StartUp(name);
  UpGuard guard{up};
  pid_t decode = HoldMidRun(name, up);
  ASSERT_GT(decode, 0) << Read(root_ / name / "up.log");
  const std::string listener = ListenerInode(port);
  ASSERT_FALSE(listener.empty()) << "nothing listens on " << port;
  const std::string listener_link = "socket:[" + listener + "]";
  const std::string data_mdb = (root_ / name / "cache" / "data.mdb").string();
  // The supervisor holds the listener (the check below is not vacuous).
  const auto own = Descriptors(up);
  EXPECT_EQ(std::count(own.begin(), own.end(), listener_link), 1);
  auto board = Board(name);
  ASSERT_TRUE(board.has_value());
  int stages = 0;
  for (const char* stage : {"decode", "extract", "calibrate", "score"}) {
    const StageBoardRow* row = board->Find(stage);
    ASSERT_NE(row, nullptr) << stage;
    const auto fds = Descriptors(static_cast<pid_t>(row->pid));
    ASSERT_FALSE(fds.empty()) << stage;
    ++stages;
    EXPECT_EQ(std::count(fds.begin(), fds.end(), listener_link), 0)
        << stage << " holds the supervisor's HTTP listener";
    // No socket of the supervisor's (its HTTP listener, its ZeroMQ sockets) is shared: an
    // inherited socket has the same inode in both processes.
    for (const std::string& fd : fds) {
      if (fd.rfind("socket:", 0) != 0) continue;
      EXPECT_EQ(std::count(own.begin(), own.end(), fd), 0) << stage << " shares " << fd;
    }
    // The stage's own LMDB environment: LMDB opens data.mdb twice (the read/write descriptor and
    // the O_DSYNC one it writes meta pages with); an inherited environment would add more.
    EXPECT_LE(std::count(fds.begin(), fds.end(), data_mdb), 2) << stage;
  }
  EXPECT_EQ(stages, 4);
  ::kill(decode, SIGCONT);
  EXPECT_EQ(testing::WaitExit(up, 180), 0) << Read(root_ / name / "up.log");
}

}  // namespace
}  // namespace nd
