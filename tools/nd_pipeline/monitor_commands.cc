#include "tools/nd_pipeline/monitor_commands.h"

#include <poll.h>
#include <signal.h>
#include <termios.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <optional>
#include <sstream>
#include <thread>
#include <vector>

#include "common/base/args.h"
#include "common/base/atomic_file.h"
#include "common/base/config.h"
#include "common/base/status.h"
#include "tools/nd_pipeline/metrics_board.h"
#include "tools/nd_pipeline/run_files.h"

namespace nd {

const char kMonitorUsage[] =
    "  status     one-shot table of a running pipeline (--json: its status.json)\n"
    "  top        live view of a running pipeline, once per second (q or Ctrl-C quits;\n"
    "             --iterations N stops after N refreshes)\n"
    "  down       stop a running pipeline: SIGTERM to its supervisor, then wait\n"
    "             (--timeout S, default 30)\n";

namespace {

volatile sig_atomic_t g_quit = 0;
void OnQuit(int) { g_quit = 1; }

struct MonitorArgs {
  std::string config = "pipeline.toml";
  std::vector<std::string> overrides;
  bool json = false;
  long iterations = 0;  // 0 = until the pipeline ends
  double timeout_s = 30;
  bool help = false;
};

StatusOr<MonitorArgs> ParseMonitorArgs(const std::string& command, int argc, char** argv,
                                       int first) {
  MonitorArgs args;
  ArgParser parser;
  AddConfigOptions(&parser, &args.config, &args.overrides);
  if (command == "status") parser.Flag("--json", &args.json);
  if (command == "top") parser.Int("--iterations", &args.iterations, 1L);
  if (command == "down") {
    parser.Custom("--timeout", [&args](const std::string& v) {
      char* end = nullptr;
      const double t = std::strtod(v.c_str(), &end);
      if (v.empty() || *end != '\0' || !(t > 0) || t > 86400) {
        return InvalidArgument("'" + v + "' is not a number of seconds in (0, 86400]");
      }
      args.timeout_s = t;
      return Status::Ok();
    });
  }
  ND_RETURN_IF_ERROR(parser.Parse(argc, argv, first));
  args.help = parser.help();
  return args;
}

int Fail(const Status& s) {
  std::fprintf(stderr, "nd-pipeline: %s\n", s.message().c_str());
  return s.code() == StatusCode::kInvalidArgument ? 2 : 1;
}

Status NotRunning(const std::string& config) {
  return FailedPrecondition("no pipeline is running for " + config);
}

// Reads and parses status.json; nullopt when the file is absent.
StatusOr<std::optional<std::pair<BoardSnapshot, std::string>>> ReadBoard(const std::string& path) {
  StatusOr<std::string> text = ReadFileText(path);
  if (!text.ok()) return std::optional<std::pair<BoardSnapshot, std::string>>();
  ND_ASSIGN_OR_RETURN(BoardSnapshot board, BoardFromJson(*text, path));
  return std::optional<std::pair<BoardSnapshot, std::string>>(
      std::make_pair(std::move(board), std::move(*text)));
}

int ShowStatus(const MonitorArgs& args, const PipelineConfig& config) {
  auto read = ReadBoard(StatusFilePath(config));
  if (!read.ok()) return Fail(read.status());
  if (!read->has_value() || !SupervisorAlive((*read)->first.supervisor_pid))
    return Fail(NotRunning(args.config));
  if (args.json) {
    std::fputs((*read)->second.c_str(), stdout);
  } else {
    std::fputs(BoardTable((*read)->first).c_str(), stdout);
  }
  return 0;
}

// Puts the terminal in non-canonical, no-echo mode while alive so single keys can be read.
class RawTerminal {
 public:
  RawTerminal() {
    if (!::isatty(0) || ::tcgetattr(0, &saved_) != 0) return;
    termios raw = saved_;
    raw.c_lflag &= ~static_cast<tcflag_t>(ICANON | ECHO);
    raw.c_cc[VMIN] = 0;
    raw.c_cc[VTIME] = 0;
    active_ = ::tcsetattr(0, TCSANOW, &raw) == 0;
  }
  ~RawTerminal() {
    if (active_) ::tcsetattr(0, TCSANOW, &saved_);
  }
  RawTerminal(const RawTerminal&) = delete;
  RawTerminal& operator=(const RawTerminal&) = delete;
  bool active() const { return active_; }

 private:
  termios saved_{};
  bool active_ = false;
};

// Waits up to `ms`; true when the user asked to quit (q, Q or Ctrl-C).
bool WaitForQuit(const RawTerminal& terminal, int ms) {
  auto until = std::chrono::steady_clock::now() + std::chrono::milliseconds(ms);
  while (!g_quit && std::chrono::steady_clock::now() < until) {
    int left = static_cast<int>(std::chrono::duration_cast<std::chrono::milliseconds>(
                                    until - std::chrono::steady_clock::now())
                                    .count());
    if (terminal.active()) {
      pollfd p{0, POLLIN, 0};
      if (::poll(&p, 1, std::max(0, std::min(left, 100))) > 0) {
        char c = 0;
        if (::read(0, &c, 1) == 1 && (c == 'q' || c == 'Q')) return true;
      }
    } else {
      std::this_thread::sleep_for(std::chrono::milliseconds(std::max(0, std::min(left, 100))));
    }
  }
  return g_quit != 0;
}

int Top(const MonitorArgs& args, const PipelineConfig& config) {
  const std::string path = StatusFilePath(config);
  auto first = ReadBoard(path);
  if (!first.ok()) return Fail(first.status());
  if (!first->has_value() || !SupervisorAlive((*first)->first.supervisor_pid))
    return Fail(NotRunning(args.config));
  struct sigaction sa {};
  sa.sa_handler = OnQuit;
  ::sigaction(SIGINT, &sa, nullptr);
  ::sigaction(SIGTERM, &sa, nullptr);
  const bool tty = ::isatty(1);
  RawTerminal terminal;
  for (long n = 1;; ++n) {
    auto read = ReadBoard(path);
    if (!read.ok()) return Fail(read.status());
    if (!read->has_value()) return Fail(NotRunning(args.config));
    const BoardSnapshot& board = (*read)->first;
    const bool alive = SupervisorAlive(board.supervisor_pid);
    std::string text = BoardTable(board);
    if (tty) {
      std::printf("\033[H\033[2J%s%s", text.c_str(),
                  alive ? "q quits\n" : "the pipeline has ended\n");
    } else {
      std::printf("%s\n", text.c_str());
    }
    std::fflush(stdout);
    if (!alive || board.state != "running") return 0;
    if (args.iterations > 0 && n >= args.iterations) return 0;
    if (WaitForQuit(terminal, 1000)) return 0;
  }
}

int Down(const MonitorArgs& args, const PipelineConfig& config) {
  auto pid = ReadPidFile(SupervisorPidPath(config));
  if (pid.status().code() == StatusCode::kNotFound) return Fail(NotRunning(args.config));
  if (!pid.ok()) return Fail(pid.status());
  if (!SupervisorAlive(*pid)) return Fail(NotRunning(args.config));
  if (::kill(static_cast<pid_t>(*pid), SIGTERM) != 0)
    return Fail(IoError("cannot signal supervisor pid " + std::to_string(*pid) + ": " +
                        std::strerror(errno)));
  auto until = std::chrono::steady_clock::now() +
               std::chrono::milliseconds(static_cast<long>(args.timeout_s * 1000));
  while (SupervisorAlive(*pid)) {
    if (std::chrono::steady_clock::now() >= until)
      return Fail(Unavailable("supervisor pid " + std::to_string(*pid) +
                              " is still running after " + std::to_string(long(args.timeout_s)) +
                              " s"));
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  std::printf("nd-pipeline: stopped the pipeline of %s (supervisor pid %lld)\n",
              args.config.c_str(), static_cast<long long>(*pid));
  return 0;
}

}  // namespace

int RunMonitorCommand(const std::string& command, int argc, char** argv, int first,
                      const std::function<int(const PipelineConfig&)>& sharded_status) {
  auto args = ParseMonitorArgs(command, argc, argv, first);
  if (!args.ok()) return Fail(args.status());
  if (args->help) {
    std::printf("usage: nd-pipeline %s [-c pipeline.toml] [--set section.key=value ...]%s\n\n%s",
                command.c_str(),
                command == "status" ? " [--json]"
                : command == "top"  ? " [--iterations N]"
                                    : " [--timeout S]",
                kMonitorUsage);
    return 0;
  }
  auto config = LoadConfig(args->config, args->overrides);
  if (!config.ok()) return Fail(config.status());
  if (command == "status" && !args->json && sharded_status) {
    const int shown = sharded_status(*config);
    if (shown >= 0) return shown;
  }
  if (command == "status") return ShowStatus(*args, *config);
  if (command == "top") return Top(*args, *config);
  if (command == "down") return Down(*args, *config);
  return Fail(InvalidArgument("unknown command '" + command + "'"));
}

}  // namespace nd
