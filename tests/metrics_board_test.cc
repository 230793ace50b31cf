// The supervisor's metrics board: derived fields, status.json, the Prometheus text, and the HTTP
// endpoint on an ephemeral 127.0.0.1 port.
#include "tools/nd_pipeline/metrics_board.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <map>
#include <set>
#include <sstream>

#include "common/runtime/http_server.h"
#include "tests/testing/monitor_testing.h"
#include "tests/testing/status_assertions.h"

namespace nd {
namespace {

HttpRequest Request(const std::string& method, const std::string& path) {
  HttpRequest r;
  r.method = method;
  r.path = path;
  return r;
}

namespace fs = std::filesystem;

StageMetrics Metrics(const std::string& stage, uint64_t seq, double uptime, uint64_t out,
                     uint64_t total, double blocked, double waiting) {
  StageMetrics m;
  m.stage = stage;
  m.pid = 1000;
  m.sequence = seq;
  m.uptime_s = uptime;
  m.items_in = out;
  m.items_out = out;
  m.items_total = total;
  m.blocked_s = blocked;
  m.waiting_s = waiting;
  m.rss_bytes = 50u << 20;
  m.rate_instant = 4;
  m.rate_average = uptime > 0 ? out / uptime : 0;
  return m;
}

// A board with known numbers: decode finished, extract busy (the bottleneck), calibrate and
// score waiting on it.
BoardSnapshot KnownBoard() {
  MetricsBoard board({"decode", "extract", "calibrate", "score"}, "/x/pipeline.toml", "/x/.run", 77,
                     0);
  board.Update(Metrics("decode", 0, 1, 20, 40, 0.0, 0), 1);
  board.Update(Metrics("decode", 1, 2, 40, 40, 0.9, 0), 2);  // blocked most of the second
  board.Update(Metrics("extract", 0, 1, 8, 0, 0, 0.5), 1);
  board.Update(Metrics("extract", 1, 2, 16, 0, 0, 0.55), 2);  // busy 95% of the second
  board.Update(Metrics("calibrate", 0, 1, 8, 40, 0, 0.5), 1);
  board.Update(Metrics("calibrate", 1, 2, 16, 40, 0, 1.45), 2);  // waiting 95%
  board.Update(Metrics("score", 0, 2, 0, 40, 0, 1.9), 2);
  board.SetStageProcess("decode", 1000, "done", 0);
  return board.Snapshot(2.5);
}

TEST(MetricsBoardTest, DerivesBusyShareEtaAndBottleneck) {
  BoardSnapshot b = KnownBoard();
  ASSERT_EQ(b.stages.size(), 4u);
  const StageBoardRow* extract = b.Find("extract");
  ASSERT_NE(extract, nullptr);
  EXPECT_NEAR(extract->busy_share, 0.95, 1e-9);
  EXPECT_EQ(extract->total, 40u) << "extract knows no total; the pipeline's is used";
  EXPECT_NEAR(extract->rate_recent, 8, 1e-9);  // 8 more images in the last second
  EXPECT_NEAR(extract->eta_s, (40 - 16) / 8.0, 1e-9);
  EXPECT_TRUE(extract->bottleneck);
  EXPECT_EQ(b.bottleneck, "extract");
  EXPECT_NEAR(b.Find("calibrate")->busy_share, 0.05, 1e-9);
  EXPECT_FALSE(b.Find("calibrate")->bottleneck);
  EXPECT_EQ(b.Find("decode")->eta_s, 0);  // done
  EXPECT_EQ(b.Find("score")->eta_s, -1);  // no rate yet
  EXPECT_NEAR(b.eta_s, 3.0, 1e-9);        // the largest known ETA among unfinished stages
  EXPECT_EQ(b.supervisor_pid, 77);
}

TEST(MetricsBoardTest, AStageThatPassedOnEverythingIsNotTheBottleneck) {
  // decode has sent all 40 images and is busy only flushing its last message; extract is busy
  // with real work.
  MetricsBoard board({"decode", "extract"}, "c", "r", 1, 0);
  board.Update(Metrics("decode", 0, 1, 40, 40, 0, 0), 1);
  board.Update(Metrics("decode", 1, 2, 40, 40, 0, 0), 2);  // busy 100%, nothing left to do
  board.Update(Metrics("extract", 0, 1, 8, 0, 0, 0), 1);
  board.Update(Metrics("extract", 1, 2, 16, 0, 0, 0.3), 2);  // busy 70%
  BoardSnapshot b = board.Snapshot(2);
  EXPECT_EQ(b.Find("decode")->busy_share, 1.0);
  EXPECT_EQ(b.bottleneck, "extract");
  EXPECT_FALSE(b.Find("decode")->bottleneck);
}

TEST(MetricsBoardTest, LateAndDuplicateSnapshotsAreIgnored) {
  MetricsBoard board({"decode"}, "c", "r", 1, 0);
  board.Update(Metrics("decode", 5, 5, 30, 40, 0, 0), 5);
  board.Update(Metrics("decode", 4, 4, 20, 40, 0, 0), 5);  // older
  board.Update(Metrics("decode", 5, 5, 99, 40, 0, 0), 5);  // duplicate sequence
  board.Update(Metrics("nosuchstage", 9, 9, 1, 1, 0, 0), 5);
  BoardSnapshot b = board.Snapshot(6);
  ASSERT_EQ(b.stages.size(), 1u);
  EXPECT_EQ(b.stages[0].metrics.items_out, 30u);
  EXPECT_EQ(b.stages[0].state, "running");
  EXPECT_FALSE(board.AllFinal());
  StageMetrics last = Metrics("decode", 6, 6, 40, 40, 0, 0);
  last.final = true;
  board.Update(last, 6);
  EXPECT_TRUE(board.AllFinal());
}

TEST(MetricsBoardTest, StatusJsonRoundTrips) {
  BoardSnapshot b = KnownBoard();
  b.error = "stage \"x\" failed:\tbad\n";
  auto back = BoardFromJson(BoardToJson(b), "status.json");
  ND_ASSERT_OK(back);
  EXPECT_EQ(back->config, "/x/pipeline.toml");
  EXPECT_EQ(back->supervisor_pid, 77);
  EXPECT_EQ(back->error, b.error);
  EXPECT_EQ(back->bottleneck, "extract");
  ASSERT_EQ(back->stages.size(), 4u);
  EXPECT_EQ(back->stages[0].stage, "decode");  // pipeline order survives
  EXPECT_EQ(back->stages[3].stage, "score");
  const StageBoardRow* e = back->Find("extract");
  EXPECT_EQ(e->metrics.items_out, 16u);
  EXPECT_EQ(e->total, 40u);
  EXPECT_EQ(e->metrics.rss_bytes, 50u << 20);
  EXPECT_NEAR(e->busy_share, 0.95, 1e-9);
  EXPECT_TRUE(e->bottleneck);
  EXPECT_EQ(back->Find("decode")->state, "done");
  // Rendering the parsed board gives the same table as the original.
  EXPECT_EQ(BoardTable(*back), BoardTable(b));
}

TEST(MetricsBoardTest, MalformedStatusJsonIsDataLossNamingTheFile) {
  auto bad = BoardFromJson("{\"format\": 1, \"stages\": ", "/r/status.json");
  EXPECT_EQ(bad.status().code(), StatusCode::kDataLoss);
  EXPECT_NE(bad.status().message().find("/r/status.json"), std::string::npos);
  EXPECT_EQ(BoardFromJson("{\"format\": 2}", "s").status().code(), StatusCode::kDataLoss);
}

TEST(MetricsBoardTest, WriteFileAtomicallyReplacesTheFile) {
  fs::path dir = fs::temp_directory_path() / ("nd_board_" + std::to_string(::getpid()));
  fs::create_directories(dir);
  const std::string path = (dir / "status.json").string();
  ND_ASSERT_OK(WriteFileAtomically(path, "one"));
  ND_ASSERT_OK(WriteFileAtomically(path, "two"));
  std::ifstream in(path);
  std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  EXPECT_EQ(text, "two");
  EXPECT_EQ(std::distance(fs::directory_iterator(dir), fs::directory_iterator()), 1);
  EXPECT_FALSE(WriteFileAtomically((dir / "no" / "such" / "dir").string(), "x").ok());
  fs::remove_all(dir);
}

// A line-by-line reader of the Prometheus text format, strict enough for what we emit:
// "# HELP name text", "# TYPE name counter|gauge", then samples `name{stage="x"} value`.
struct Exposition {
  std::map<std::string, std::string> types;
  std::map<std::string, std::map<std::string, double>> samples;  // name → stage → value
  std::vector<std::string> errors;
};

Exposition ParseExposition(const std::string& text) {
  Exposition e;
  std::set<std::string> helped;
  std::istringstream in(text);
  std::string line;
  int n = 0;
  while (std::getline(in, line)) {
    ++n;
    auto err = [&](const std::string& why) {
      e.errors.push_back("line " + std::to_string(n) + ": " + why + ": " + line);
    };
    if (line.rfind("# HELP ", 0) == 0) {
      std::string rest = line.substr(7);
      size_t sp = rest.find(' ');
      if (sp == std::string::npos || sp + 1 >= rest.size()) err("HELP without text");
      helped.insert(rest.substr(0, sp));
      continue;
    }
    if (line.rfind("# TYPE ", 0) == 0) {
      std::istringstream t(line.substr(7));
      std::string name, type;
      t >> name >> type;
      if (type != "counter" && type != "gauge") err("unknown type");
      if (!helped.count(name)) err("TYPE before HELP");
      if (e.types.count(name)) err("second TYPE");
      e.types[name] = type;
      continue;
    }
    if (line.empty() || line[0] == '#') {
      err("unexpected line");
      continue;
    }
    size_t brace = line.find("{stage=\"");
    size_t close = line.find("\"} ");
    if (brace == std::string::npos || close == std::string::npos || close < brace) {
      err("not name{stage=\"x\"} value");
      continue;
    }
    std::string name = line.substr(0, brace);
    std::string stage = line.substr(brace + 8, close - brace - 8);
    std::string value = line.substr(close + 3);
    for (char c : name)
      if (!(std::isalnum(static_cast<unsigned char>(c)) || c == '_' || c == ':'))
        err("bad metric name");
    if (!e.types.count(name)) err("sample before its TYPE");
    if (e.types[name] == "counter" && name.size() > 6 &&
        name.compare(name.size() - 6, 6, "_total") != 0)
      err("counter without _total");
    char* end = nullptr;
    double v = std::strtod(value.c_str(), &end);
    if (value.empty() || *end != '\0') err("value is not a number");
    if (e.samples[name].count(stage)) err("duplicate sample");
    e.samples[name][stage] = v;
  }
  if (text.empty() || text.back() != '\n') e.errors.push_back("text does not end with a newline");
  return e;
}

TEST(PrometheusTextTest, KnownBoardParsesLineByLine) {
  Exposition e = ParseExposition(BoardToPrometheus(KnownBoard()));
  EXPECT_TRUE(e.errors.empty()) << e.errors[0];
  for (const char* counter : {"nd_stage_items_in_total", "nd_stage_items_out_total",
                              "nd_stage_skipped_total", "nd_stage_errors_total",
                              "nd_stage_blocked_seconds_total", "nd_stage_waiting_seconds_total"})
    EXPECT_EQ(e.types[counter], "counter") << counter;
  for (const char* gauge : {"nd_stage_items_per_second", "nd_stage_rss_bytes"})
    EXPECT_EQ(e.types[gauge], "gauge") << gauge;
  for (const auto& [name, by_stage] : e.samples)
    EXPECT_EQ(by_stage.size(), 4u) << name << ": one sample per stage";
  EXPECT_EQ(e.samples["nd_stage_items_out_total"]["decode"], 40);
  EXPECT_EQ(e.samples["nd_stage_items_out_total"]["extract"], 16);
  EXPECT_EQ(e.samples["nd_stage_items_out_total"]["score"], 0);
  EXPECT_EQ(e.samples["nd_stage_items_in_total"]["calibrate"], 16);
  EXPECT_EQ(e.samples["nd_stage_rss_bytes"]["extract"], 50 << 20);
  EXPECT_DOUBLE_EQ(e.samples["nd_stage_waiting_seconds_total"]["calibrate"], 1.45);
  EXPECT_DOUBLE_EQ(e.samples["nd_stage_blocked_seconds_total"]["decode"], 0.9);
  EXPECT_EQ(e.samples["nd_stage_items_per_second"]["extract"], 4);
}

TEST(PrometheusTextTest, ParserRejectsMalformedText) {
  // The test's own parser must be able to fail, or the test above proves nothing.
  EXPECT_FALSE(ParseExposition("nd_x_total{stage=\"a\"} 1\n").errors.empty());  // no TYPE
  EXPECT_FALSE(ParseExposition("# HELP a b\n# TYPE a counter\na{stage=\"s\"} x\n").errors.empty());
  EXPECT_FALSE(ParseExposition("# TYPE a gauge\n").errors.empty());  // no HELP
}

TEST(ProgressLineTest, MarksTheBottleneckAndShowsProgressAndEta) {
  std::string line = ProgressLine(KnownBoard());
  EXPECT_NE(line.find("decode done"), std::string::npos) << line;
  EXPECT_NE(line.find("extract* 40% 8.0/s"), std::string::npos) << line;
  EXPECT_NE(line.find("ETA 0:03"), std::string::npos) << line;
  EXPECT_EQ(FormatDuration(3725), "1:02:05");
  EXPECT_EQ(FormatDuration(-1), "-");
}

TEST(ServeBoardTest, RoutesAndMethods) {
  BoardSnapshot b = KnownBoard();
  EXPECT_EQ(ServeBoard(b, Request("GET", "/metrics")).status, 200);
  EXPECT_EQ(ServeBoard(b, Request("GET", "/status")).content_type, "application/json");
  EXPECT_EQ(ServeBoard(b, Request("GET", "/")).status, 404);
  EXPECT_EQ(ServeBoard(b, Request("POST", "/metrics")).status, 405);
}

TEST(HttpServerTest, AnswersMetricsStatusAnd404OnAnEphemeralPort) {
  const BoardSnapshot board = KnownBoard();
  auto server =
      HttpServer::Start(0, [&](const HttpRequest& request) { return ServeBoard(board, request); });
  ND_ASSERT_OK(server);
  const int port = (*server)->port();
  ASSERT_GT(port, 0);

  auto metrics = testing::HttpGet(port, "/metrics");
  ASSERT_EQ(metrics.status, 200) << metrics.head;
  EXPECT_NE(metrics.head.find("Content-Type: text/plain; version=0.0.4"), std::string::npos);
  EXPECT_EQ(metrics.body, BoardToPrometheus(board));
  Exposition e = ParseExposition(metrics.body);
  EXPECT_TRUE(e.errors.empty()) << e.errors[0];

  auto status = testing::HttpGet(port, "/status?pretty=1");  // the query string is ignored
  ASSERT_EQ(status.status, 200);
  auto parsed = BoardFromJson(status.body, "GET /status");
  ND_ASSERT_OK(parsed);
  EXPECT_EQ(parsed->bottleneck, "extract");

  EXPECT_EQ(testing::HttpGet(port, "/nope").status, 404);
  EXPECT_EQ(testing::HttpRequest(port, "DELETE", "/metrics").status, 405);
  auto head = testing::HttpRequest(port, "HEAD", "/metrics");
  EXPECT_EQ(head.status, 200);
  EXPECT_TRUE(head.body.empty());

  (*server)->Stop();
  EXPECT_EQ(testing::HttpGet(port, "/metrics").status, -1) << "still answering after Stop()";
}

TEST(HttpServerTest, GarbageRequestLineIs400AndServerKeepsServing) {
  auto server = HttpServer::Start(0, [](const HttpRequest&) { return HttpResponse{}; });
  ND_ASSERT_OK(server);
  EXPECT_EQ(testing::HttpRequest((*server)->port(), "hello", "world\r\nX: y").status, 400);
  EXPECT_EQ(testing::HttpGet((*server)->port(), "/").status, 200);
}

TEST(HttpServerTest, PortInUseIsAOneLineError) {
  testing::Listener taken;
  ASSERT_GT(taken.port(), 0);
  auto server = HttpServer::Start(taken.port(), [](const HttpRequest&) { return HttpResponse{}; });
  ASSERT_FALSE(server.ok());
  EXPECT_EQ(server.status().message(),
            "run.http_port " + std::to_string(taken.port()) + ": address already in use");
  EXPECT_EQ(
      HttpServer::Start(70000, [](const HttpRequest&) { return HttpResponse{}; }).status().code(),
      StatusCode::kInvalidArgument);
}

}  // namespace
}  // namespace nd
