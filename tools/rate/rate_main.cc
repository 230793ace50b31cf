// nd-rate: the rating server of `nd-pipeline rate` (rate_server.h), in an executable of its own so
// that nd-pipeline links no OpenCV (the tiles are decoded and encoded with it). `nd-pipeline rate`
// parses its arguments, then execs this program in its place with the same configuration, layer
// and port: the process, its signals, output and exit code are the server's. Its messages read
// "nd-pipeline: ..." because that is the command the user ran. Serves until SIGINT or SIGTERM;
// exit code 0 then; 2 with one line for bad flags or configuration; 1 for other failures.
#include <pthread.h>
#include <signal.h>

#include <chrono>
#include <cstdio>
#include <string>
#include <vector>

#include "common/base/args.h"
#include "common/base/config.h"
#include "common/base/log.h"
#include "common/base/status.h"
#include "tools/rate/answers_file.h"
#include "tools/rate/rate_server.h"

namespace {

constexpr char kUsage[] =
    "usage: nd-rate [-c pipeline.toml] [--set section.key=value ...] [--layer L] [--port P]\n"
    "\n"
    "The rating server of `nd-pipeline rate` (run it through that command; see its --help):\n"
    "serves the human-evaluation page of a dissected layer ([rate] in the config; answers go\n"
    "to rate.answers) until Ctrl-C.\n"
    "\n"
    "options:\n"
    "  -c, --config FILE   configuration file (default: pipeline.toml)\n"
    "  --set KEY=VALUE     override one configuration key (as nd-pipeline)\n"
    "  --layer L           the layer to rate (default: the first of model.layers)\n"
    "  --port P            overrides rate.port\n"
    "  -h, --help          this help\n";

struct Args {
  std::string config = "pipeline.toml";
  std::vector<std::string> overrides;
  std::string layer;  // "" = the first of model.layers
  int port = -1;      // overrides rate.port when >= 0
  bool help = false;
};

int Fail(const nd::Status& s) {
  std::fprintf(stderr, "nd-pipeline: %s\n", s.message().c_str());
  return s.code() == nd::StatusCode::kInvalidArgument ? 2 : 1;
}

}  // namespace

int main(int argc, char** argv) {
  Args args;
  nd::ArgParser parser;
  nd::AddConfigOptions(&parser, &args.config, &args.overrides);
  parser.String("--layer", &args.layer).Int("--port", &args.port, 0, 65535);
  if (nd::Status parsed = parser.Parse(argc, argv); !parsed.ok()) return Fail(parsed);
  if (parser.help()) {
    std::fputs(kUsage, stdout);
    return 0;
  }
  auto config = nd::LoadConfig(args.config, args.overrides);
  if (!config.ok()) return Fail(config.status());
  nd::SetLogComponent("rate");
  const std::string layer = args.layer.empty() ? config->model.layers.front() : args.layer;
  // Block the stop signals before any thread starts, so that only sigwait below receives them.
  sigset_t stop;
  sigemptyset(&stop);
  sigaddset(&stop, SIGINT);
  sigaddset(&stop, SIGTERM);
  pthread_sigmask(SIG_BLOCK, &stop, nullptr);
  const auto started = std::chrono::steady_clock::now();
  auto answers = nd::AnswersFile::Open(nd::RateAnswersPath(*config));
  if (!answers.ok()) return Fail(answers.status());
  auto data = nd::LoadRateData(*config, layer);
  if (!data.ok()) return Fail(data.status());
  const size_t units = data->units.size();
  const size_t recorded = answers->records().size();
  const std::string answers_path = answers->path();
  auto server =
      nd::RateServer::Start(config->rate, std::move(*data), std::move(*answers), args.port);
  if (!server.ok()) return Fail(server.status());
  const double ready_s =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count();
  std::string host = config->rate.host;
  if (host.find(':') != std::string::npos) host = "[" + host + "]";
  std::printf(
      "rate: layer %s, %zu units in the study (%d per rater at most), %zu answers on record in "
      "%s; ready in %.1f s\n",
      layer.c_str(), units, static_cast<int>((*server)->study().order().size()), recorded,
      answers_path.c_str(), ready_s);
  std::printf("rate: serving http://%s:%d/%s (Ctrl-C to stop)\n", host.c_str(), (*server)->port(),
              config->rate.token.empty() ? "" : ("?token=" + config->rate.token).c_str());
  std::fflush(stdout);
  int signal = 0;
  sigwait(&stop, &signal);
  (*server).reset();
  std::printf("rate: stopped (%s)\n", signal == SIGINT ? "SIGINT" : "SIGTERM");
  return 0;
}
