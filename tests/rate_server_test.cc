// Issue 13, the rating server over real sockets: the HTTP server's additions, hostile requests
// against a real RateServer on 127.0.0.1, and kill -9 of the real `nd-pipeline rate` between (and
// during) answers.
#include "tools/rate/rate_server.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <map>
#include <regex>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "common/base/config.h"
#include "common/runtime/http_server.h"
#include "tests/testing/e2e_support.h"
#include "tests/testing/monitor_testing.h"
#include "tools/rate/answers_file.h"
#include "tools/rate/rate_stats.h"
#include "tools/rate/rate_study.h"
#include "tools/rate/rate_summary.h"
#include "tools/report/report_html.h"

namespace {

namespace fs = std::filesystem;
using nd_e2e::Read;
using nd_e2e::Sh;

// ---- Hostile requests against a real server on 127.0.0.1 ----

struct HttpReply {
  int status = 0;
  std::string head, body;
};

// Sends `raw` to 127.0.0.1:port and reads the reply until the server closes (5 s at most).
HttpReply Exchange(int port, const std::string& raw) {
  HttpReply r;
  const int fd = nd::testing::ConnectLoopback(port);
  if (fd < 0) return r;
  size_t sent = 0;
  while (sent < raw.size()) {
    const ssize_t n = ::send(fd, raw.data() + sent, raw.size() - sent, MSG_NOSIGNAL);
    if (n <= 0) break;  // the server may answer and close before reading everything
    sent += static_cast<size_t>(n);
  }
  std::string all;
  char buf[8192];
  for (;;) {
    const ssize_t n = ::recv(fd, buf, sizeof(buf), 0);
    if (n <= 0) break;
    all.append(buf, static_cast<size_t>(n));
  }
  ::close(fd);
  const size_t end = all.find("\r\n\r\n");
  r.head = all.substr(0, end);
  r.body = end == std::string::npos ? "" : all.substr(end + 4);
  if (all.rfind("HTTP/1.1 ", 0) == 0) r.status = std::stoi(all.substr(9, 3));
  return r;
}

std::string Get(int port, const std::string& target) {
  return "GET " + target + " HTTP/1.1\r\nHost: 127.0.0.1:" + std::to_string(port) + "\r\n\r\n";
}

std::string Post(int port, const std::string& body, const std::string& extra = "X-ND-Rate: 1\r\n") {
  return "POST /api/answer HTTP/1.1\r\nHost: 127.0.0.1:" + std::to_string(port) +
         "\r\nContent-Type: application/x-www-form-urlencoded\r\n" + extra +
         "Content-Length: " + std::to_string(body.size()) + "\r\n\r\n" + body;
}

// "%XX" for every byte but [A-Za-z0-9].
std::string UrlEncode(const std::string& s) {
  std::string out;
  for (unsigned char c : s) {
    if (std::isalnum(c)) {
      out += static_cast<char>(c);
    } else {
      char buf[4];
      std::snprintf(buf, sizeof(buf), "%%%02X", c);
      out += buf;
    }
  }
  return out;
}

// The value of "key" in a flat JSON object (strings unescaped only for \" and \\).
std::string JsonField(const std::string& json, const std::string& key) {
  const std::string k = "\"" + key + "\": ";
  size_t at = json.find(k);
  if (at == std::string::npos) return "";
  at += k.size();
  if (json[at] != '"') return json.substr(at, json.find_first_of(",}", at) - at);
  std::string out;
  for (size_t i = at + 1; i < json.size() && json[i] != '"'; ++i) {
    if (json[i] == '\\') ++i;
    out += json[i];
  }
  return out;
}

// The HTTP server's additions for the rating server: bodies (also when they arrive in pieces or
// after "100 Continue"), query strings, the bind address; ParseForm.
TEST(HttpServerTest, BodiesQueriesAndBindAddress) {
  nd::HttpServerOptions o;
  o.max_body = 64;
  o.what = "test";
  auto server = nd::HttpServer::Start(o, [](const nd::HttpRequest& r) {
    nd::HttpResponse out;
    out.body = r.method + "|" + r.path + "|" + r.query + "|" + r.body + "|" + r.Header("x-a");
    return out;
  });
  ASSERT_TRUE(server.ok()) << server.status().message();
  const int port = (*server)->port();
  HttpReply get = Exchange(port, "GET /p/../q?a=1&b=%2F HTTP/1.1\r\nX-A:  v v \r\n\r\n");
  EXPECT_EQ(get.body, "GET|/p/../q|a=1&b=%2F||v v") << "the path is passed on undecoded";
  // A body sent in two pieces, 200 ms apart.
  {
    const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_port = htons(static_cast<uint16_t>(port));
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    ASSERT_EQ(::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)), 0);
    const std::string head = "POST /x HTTP/1.1\r\nContent-Length: 10\r\n\r\nhello";
    ::send(fd, head.data(), head.size(), MSG_NOSIGNAL);
    std::this_thread::sleep_for(std::chrono::milliseconds(200));
    ::send(fd, "world", 5, MSG_NOSIGNAL);
    char buf[1024];
    std::string all;
    for (ssize_t n; (n = ::recv(fd, buf, sizeof(buf), 0)) > 0;) all.append(buf, n);
    ::close(fd);
    EXPECT_NE(all.find("POST|/x||helloworld|"), std::string::npos) << all;
  }
  // Expect: 100-continue (curl sends it for larger bodies) gets "100 Continue" before the body.
  {
    const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_port = htons(static_cast<uint16_t>(port));
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    ASSERT_EQ(::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)), 0);
    timeval tv{5, 0};
    ::setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
    const std::string head =
        "POST /y HTTP/1.1\r\nExpect: 100-continue\r\nContent-Length: 3\r\n\r\n";
    ::send(fd, head.data(), head.size(), MSG_NOSIGNAL);
    char buf[1024];
    const ssize_t n = ::recv(fd, buf, sizeof(buf), 0);
    ASSERT_GT(n, 0);
    EXPECT_EQ(std::string(buf, n), "HTTP/1.1 100 Continue\r\n\r\n");
    ::send(fd, "abc", 3, MSG_NOSIGNAL);
    std::string all;
    for (ssize_t m; (m = ::recv(fd, buf, sizeof(buf), 0)) > 0;) all.append(buf, m);
    ::close(fd);
    EXPECT_NE(all.find("POST|/y||abc|"), std::string::npos) << all;
  }
  EXPECT_EQ(Exchange(port, "POST /z HTTP/1.1\r\nContent-Length: 65\r\n\r\n").status, 413);
  // Bind addresses are IP literals.
  o.host = "localhost";
  auto named = nd::HttpServer::Start(o, [](const nd::HttpRequest&) { return nd::HttpResponse{}; });
  EXPECT_EQ(named.status().code(), nd::StatusCode::kInvalidArgument);
  EXPECT_NE(named.status().message().find("test: host 'localhost' is not an IP address"),
            std::string::npos)
      << named.status().message();
  // ParseForm.
  auto form = nd::ParseForm("a=1&b=x+y%21&&c&a=2&%41=%c3%a4");
  ASSERT_TRUE(form.ok());
  EXPECT_EQ(form->at("a"), "1") << "the first value wins";
  EXPECT_EQ(form->at("b"), "x y!");
  EXPECT_EQ(form->at("c"), "");
  EXPECT_EQ(form->at("A"), "\xc3\xa4");
  EXPECT_FALSE(nd::ParseForm("a=%4").ok());
  EXPECT_FALSE(nd::ParseForm("a=%zz").ok());
  EXPECT_FALSE(nd::ParseForm("a=%00").ok());
}

class RateServerTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::temp_directory_path() /
           ("nd_rate_server_" + std::to_string(::getpid()) + "_" +
            ::testing::UnitTest::GetInstance()->current_test_info()->name());
    fs::remove_all(dir_);
    answers_ = (dir_ / "answers.jsonl").string();
  }
  void TearDown() override {
    server_.reset();
    fs::remove_all(dir_);
  }
  void Start(const std::string& token = "") {
    nd::RateData data;
    data.layer = "layer4";
    for (int u = 1; u <= 3; ++u) {
      data.units.push_back({u, u == 2 ? "a<b>&c" : "sky", "object"});
      data.tiles[u] = {"JPEG" + std::to_string(u) + "a", "JPEG" + std::to_string(u) + "b"};
    }
    data.catch_pool = {{"red-c", "color"}};
    nd::RateConfig rate;
    rate.port = 0;
    rate.raters_per_unit = 2;
    rate.catch_every = 0;
    rate.token = token;
    auto answers = nd::AnswersFile::Open(answers_);
    ASSERT_TRUE(answers.ok()) << answers.status().message();
    auto server = nd::RateServer::Start(rate, std::move(data), std::move(*answers));
    ASSERT_TRUE(server.ok()) << server.status().message();
    server_ = std::move(*server);
    port_ = server_->port();
  }
  std::string Lines() { return Read(answers_); }

  fs::path dir_;
  std::string answers_;
  std::unique_ptr<nd::RateServer> server_;
  int port_ = 0;
};

TEST_F(RateServerTest, PathTraversalAndUnknownRoutesNeverReachTheFileSystem) {
  Start();
  for (const std::string target :
       {"/../../etc/passwd", "/%2e%2e/%2e%2e/etc/passwd", "//etc/passwd", "/tile/../../etc/passwd",
        "/api/../../../etc/passwd", "/index.html", "/api/next/../../etc/passwd", "/etc/passwd"}) {
    HttpReply r = Exchange(port_, Get(port_, target));
    EXPECT_EQ(r.status, 404) << target << "\n" << r.head;
    EXPECT_EQ(r.body.find("root:"), std::string::npos) << target;
  }
  for (const std::string target :
       {"/tile?unit=1&rank=../../etc/passwd", "/tile?unit=..%2f..%2fetc%2fpasswd&rank=1",
        "/tile?unit=-1&rank=1", "/tile?unit=1&rank=0", "/tile?unit=1&rank=99999999999"}) {
    HttpReply r = Exchange(port_, Get(port_, target));
    EXPECT_TRUE(r.status == 400 || r.status == 404) << target << " " << r.status;
  }
  HttpReply tile = Exchange(port_, Get(port_, "/tile?unit=2&rank=2"));
  EXPECT_EQ(tile.status, 200);
  EXPECT_EQ(tile.body, "JPEG2b") << "tiles come from memory";
  EXPECT_EQ(Exchange(port_, Get(port_, "/tile?unit=2&rank=3")).status, 404);
  EXPECT_EQ(Exchange(port_, Get(port_, "/tile?unit=7&rank=1")).status, 404);
  EXPECT_FALSE(fs::exists(answers_) && !Lines().empty());
}

TEST_F(RateServerTest, MalformedOversizedAndForeignRequestsGet4xxAndWriteNothing) {
  Start();
  const std::string next = Exchange(port_, Get(port_, "/api/next?rater=ann&mode=label")).body;
  const std::string unit = JsonField(next, "unit"), trial = JsonField(next, "trial");
  const std::string phrase = JsonField(next, "phrase");
  ASSERT_FALSE(trial.empty()) << next;
  const std::string good = "rater=ann&mode=label&unit=" + unit + "&trial=" + trial +
                           "&phrase=" + UrlEncode(phrase) + "&answer=yes";
  struct Case {
    std::string what, raw;
    int status;
  };
  const std::vector<Case> cases = {
      {"huge body", Post(port_, std::string(1 << 20, 'x')), 413},
      {"huge declared length",
       "POST /api/answer HTTP/1.1\r\nHost: 127.0.0.1:" + std::to_string(port_) +
           "\r\nX-ND-Rate: 1\r\nContent-Length: 99999999999\r\n\r\n",
       413},
      {"chunked",
       "POST /api/answer HTTP/1.1\r\nHost: 127.0.0.1:" + std::to_string(port_) +
           "\r\nX-ND-Rate: 1\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n",
       411},
      {"bad length",
       "POST /api/answer HTTP/1.1\r\nHost: 127.0.0.1:" + std::to_string(port_) +
           "\r\nContent-Length: -5\r\n\r\n",
       400},
      {"head over 8 KiB",
       "GET / HTTP/1.1\r\nHost: 127.0.0.1:" + std::to_string(port_) +
           "\r\nX-Long: " + std::string(9000, 'a') + "\r\n\r\n",
       431},
      {"garbage request line", "\x16\x03\x01\x02\x05\x01\r\n\r\n", 400},
      {"header without colon", "GET / HTTP/1.1\r\nHost 127.0.0.1\r\n\r\n", 400},
      {"no X-ND-Rate (cross-site form)", Post(port_, good, ""), 403},
      {"DNS rebinding Host",
       "GET /api/next?rater=ann&mode=label HTTP/1.1\r\nHost: evil.example:" +
           std::to_string(port_) + "\r\n\r\n",
       403},
      {"wrong content type",
       "POST /api/answer HTTP/1.1\r\nHost: 127.0.0.1:" + std::to_string(port_) +
           "\r\nX-ND-Rate: 1\r\nContent-Type: text/plain\r\nContent-Length: 3\r\n\r\nabc",
       415},
      {"unknown mode", Post(port_, "rater=ann&mode=delete&unit=1&trial=x&answer=yes"), 400},
      {"unknown unit",
       Post(port_, "rater=ann&mode=label&unit=99&trial=" + trial + "&phrase=sky&answer=yes"), 404},
      {"unit not a number", Post(port_, "rater=ann&mode=label&unit=1e3&trial=x&answer=yes"), 400},
      {"foreign trial",
       Post(port_, "rater=ann&mode=label&unit=" + unit +
                       "&trial=0123456789abcdef&phrase=" + UrlEncode(phrase) + "&answer=yes"),
       409},
      {"someone else's trial",
       Post(port_, "rater=bob&mode=label&unit=" + unit + "&trial=" + trial +
                       "&phrase=" + UrlEncode(phrase) + "&answer=yes"),
       409},
      {"bad answer", Post(port_, good.substr(0, good.size() - 3) + "maybe"), 400},
      {"bad %-escape", Post(port_, good + "&x=%zz"), 400},
      {"NUL in a field", Post(port_, good + "&rater=%00"), 400},
      {"control character in the rater", Post(port_, "rater=a%0Ab&" + good.substr(10)), 400},
      {"rater too long", Post(port_, "rater=" + std::string(41, 'a') + "&" + good.substr(10)), 400},
      {"DELETE", "DELETE / HTTP/1.1\r\nHost: 127.0.0.1:" + std::to_string(port_) + "\r\n\r\n", 405},
      {"next without rater", Get(port_, "/api/next?mode=label"), 400},
      {"next with unknown mode", Get(port_, "/api/next?rater=ann&mode=x"), 400},
  };
  for (const Case& c : cases) {
    HttpReply r = Exchange(port_, c.raw);
    EXPECT_EQ(r.status, c.status) << c.what << "\n" << r.head << "\n" << r.body;
  }
  EXPECT_EQ(Lines(), "") << "nothing was written";
  // The good answer is recorded once; its resubmission is "already" and writes nothing.
  HttpReply ok = Exchange(port_, Post(port_, good));
  EXPECT_EQ(ok.status, 200) << ok.body;
  EXPECT_EQ(JsonField(ok.body, "already"), "false");
  HttpReply again = Exchange(port_, Post(port_, good));
  EXPECT_EQ(again.status, 200);
  EXPECT_EQ(JsonField(again.body, "already"), "true");
  auto records = nd::ReadAnswersFile(answers_);
  ASSERT_TRUE(records.ok());
  ASSERT_EQ(records->size(), 1u);
  EXPECT_EQ((*records)[0].rater, "ann");
  EXPECT_EQ((*records)[0].answer, "yes");
}

TEST_F(RateServerTest, ScriptInAPhraseIsStoredVerbatimAndNeverServedAsMarkup) {
  Start();
  const std::string hostile = "<script>alert('x')</script>\"><img src=x onerror=alert(1)>";
  const std::string next = Exchange(port_, Get(port_, "/api/next?rater=ann&mode=name")).body;
  HttpReply named =
      Exchange(port_, Post(port_, "rater=ann&mode=name&unit=" + JsonField(next, "unit") +
                                      "&trial=" + JsonField(next, "trial") +
                                      "&phrase=" + UrlEncode(hostile) + "&answer=named"));
  ASSERT_EQ(named.status, 200) << named.body;
  auto records = nd::ReadAnswersFile(answers_);
  ASSERT_TRUE(records.ok());
  ASSERT_EQ(records->size(), 1u);
  EXPECT_EQ((*records)[0].phrase, hostile);
  // Another rater is asked about it: JSON (escaped, nosniff), which the page shows as text.
  HttpReply human = Exchange(port_, Get(port_, "/api/next?rater=bob&mode=human"));
  EXPECT_EQ(human.status, 200);
  EXPECT_NE(human.head.find("Content-Type: application/json"), std::string::npos);
  EXPECT_NE(human.head.find("X-Content-Type-Options: nosniff"), std::string::npos);
  EXPECT_EQ(JsonField(human.body, "phrase"), hostile);
  // The page itself: no external reference, text put in with textContent, a strict CSP.
  HttpReply page = Exchange(port_, Get(port_, "/"));
  EXPECT_EQ(page.status, 200);
  EXPECT_EQ(page.body.find("http://"), std::string::npos);
  EXPECT_EQ(page.body.find("https://"), std::string::npos);
  EXPECT_EQ(page.body.find("innerHTML"), std::string::npos);
  EXPECT_NE(page.head.find("Content-Security-Policy: default-src 'none'"), std::string::npos);
  // The report's "Human evaluation" section escapes rater names (the only free text it shows).
  nd::AnswerRecord r = (*records)[0];
  r.rater = "<script>x</script>";
  nd::ReportPage report;
  nd::ReportSection section;
  section.id = section.title = section.layer = "layer4";
  section.has_human = true;
  section.human = nd::SummarizeAnswers({r}, 0.75, {}).at(0);
  report.sections.push_back(section);
  const std::string html = nd::RenderReportHtml(report);
  EXPECT_NE(html.find("<h2>Human evaluation</h2>"), std::string::npos);
  EXPECT_NE(html.find("&lt;script&gt;x&lt;/script&gt;"), std::string::npos);
  EXPECT_EQ(html.find("<script>x"), std::string::npos);
}

TEST_F(RateServerTest, TokenIsRequiredWhenConfigured) {
  Start("s3cret");
  EXPECT_EQ(Exchange(port_, Get(port_, "/")).status, 403);
  EXPECT_EQ(Exchange(port_, Get(port_, "/?token=wrong1")).status, 403);
  EXPECT_EQ(Exchange(port_, Get(port_, "/?token=s3cret")).status, 200);
  EXPECT_EQ(Exchange(port_, Get(port_, "/tile?unit=1&rank=1")).status, 403);
  const std::string next =
      Exchange(port_, Get(port_, "/api/next?rater=ann&mode=label&token=s3cret")).body;
  EXPECT_NE(next.find("/tile?unit=1&rank=1&token=s3cret"), std::string::npos) << next;
  const std::string body = "rater=ann&mode=label&unit=" + JsonField(next, "unit") +
                           "&trial=" + JsonField(next, "trial") +
                           "&phrase=" + UrlEncode(JsonField(next, "phrase")) + "&answer=no";
  EXPECT_EQ(Exchange(port_, Post(port_, body)).status, 403);
  EXPECT_EQ(Lines(), "");
  EXPECT_EQ(Exchange(port_, Post(port_, body + "&token=s3cret")).status, 200);
}

// ---- kill -9 of the real `nd-pipeline rate` ----

class RateKillTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    root_ = fs::temp_directory_path() / ("nd_rate_kill_" + std::to_string(::getpid()));
    fs::remove_all(root_);
    fs::create_directories(root_);
    auto gen = Sh(std::string(ND_BIN_DIR) + "/nd-make-broden --out " + (root_ / "broden").string() +
                  " --images 40 --seed 5 --size 224");
    ASSERT_EQ(gen.code, 0) << gen.output;
    auto model = Sh("/usr/bin/python3 " + std::string(ND_SOURCE_DIR) +
                    "/tests/fixtures/make_planted_model.py " + (root_ / "planted.pt").string());
    ASSERT_EQ(model.code, 0) << model.output;
    std::ofstream(root_ / "pipeline.toml")
        << "[dataset]\npath = \"broden\"\n[model]\npath = \"planted.pt\"\nlayers = [\"detect\"]\n"
        << "batch_size = 8\n[threshold]\nquantile = 0.05\n[cache]\ndir = \"cache\"\n"
        << "[output]\ndir = \"out\"\n[run]\ntimeout_s = 60\n"
        << "[rate]\nport = 0\nraters_per_unit = 50\ndetectors_only = false\ncatch_every = 4\n";
    auto up = Sh(std::string(ND_BIN_DIR) + "/nd-pipeline up --no-report -c " +
                 (root_ / "pipeline.toml").string());
    ASSERT_EQ(up.code, 0) << up.output;
  }
  static void TearDownTestSuite() { fs::remove_all(root_); }

  // Starts `nd-pipeline rate` and returns its pid and port (bounded wait: 30 s).
  static std::pair<pid_t, int> Launch() {
    // stdout goes to a file (not a pipe that the test would close: the server's last line on
    // SIGTERM would then die of SIGPIPE).
    static int launches = 0;
    const std::string log = (root_ / ("rate_" + std::to_string(++launches) + ".log")).string();
    const pid_t pid = ::fork();
    if (pid == 0) {
      const int fd = ::open(log.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
      ::dup2(fd, 1);
      ::close(fd);
      const std::string bin = std::string(ND_BIN_DIR) + "/nd-pipeline";
      const std::string cfg = (root_ / "pipeline.toml").string();
      ::execl(bin.c_str(), bin.c_str(), "rate", "-c", cfg.c_str(), static_cast<char*>(nullptr));
      ::_exit(127);
    }
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(30);
    std::smatch m;
    const std::regex serving("serving http://127\\.0\\.0\\.1:(\\d+)/");
    std::string text;
    while (std::chrono::steady_clock::now() < deadline) {
      text = Read(log);
      if (std::regex_search(text, m, serving)) return {pid, std::stoi(m[1])};
      if (::waitpid(pid, nullptr, WNOHANG) == pid) {
        ADD_FAILURE() << "nd-pipeline rate ended: " << text;
        return {-1, 0};
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
    ::kill(pid, SIGKILL);
    ::waitpid(pid, nullptr, 0);
    ADD_FAILURE() << "nd-pipeline rate did not start within 30 s: " << text;
    return {-1, 0};
  }

  static void Kill9(pid_t pid) {
    ::kill(pid, SIGKILL);
    int status = 0;
    ::waitpid(pid, &status, 0);
    EXPECT_TRUE(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL);
  }

  // Answers the rater's next label trial; returns the reply (status 0 when the server is gone).
  static HttpReply AnswerNext(int port, const std::string& rater, std::string* body_out) {
    HttpReply next = Exchange(port, Get(port, "/api/next?rater=" + rater + "&mode=label"));
    if (next.status != 200 || JsonField(next.body, "done") == "true") return next;
    *body_out = "rater=" + rater + "&mode=label&unit=" + JsonField(next.body, "unit") +
                "&trial=" + JsonField(next.body, "trial") +
                "&phrase=" + UrlEncode(JsonField(next.body, "phrase")) + "&answer=yes";
    return Exchange(port, Post(port, *body_out));
  }

  static fs::path root_;
};
fs::path RateKillTest::root_;

TEST_F(RateKillTest, Kill9BetweenAnswersLosesNothingAndResumes) {
  const std::string answers = (root_ / "out" / "rate" / "answers.jsonl").string();
  fs::remove(answers);
  std::vector<std::string> confirmed;
  for (int i = 0; i < 6; ++i) {
    auto [pid, port] = Launch();
    ASSERT_GT(pid, 0);
    // Where the rater was: the answers so far are known to the restarted server.
    HttpReply next = Exchange(port, Get(port, "/api/next?rater=kim&mode=label"));
    EXPECT_EQ(next.status, 200);
    const int real = static_cast<int>(confirmed.size()) - static_cast<int>(confirmed.size()) / 4;
    EXPECT_EQ(JsonField(next.body, "answered"), std::to_string(real)) << next.body;
    // A resubmission of the last confirmed answer after the restart writes nothing.
    if (!confirmed.empty()) {
      HttpReply again = Exchange(port, Post(port, confirmed.back()));
      EXPECT_EQ(again.status, 200);
      EXPECT_EQ(JsonField(again.body, "already"), "true") << again.body;
    }
    std::string body;
    HttpReply r = AnswerNext(port, "kim", &body);
    Kill9(pid);  // right after the page was told "recorded"
    ASSERT_EQ(r.status, 200) << r.body;
    confirmed.push_back(body);
    auto records = nd::ReadAnswersFile(answers);
    ASSERT_TRUE(records.ok()) << records.status().message();
    EXPECT_EQ(records->size(), confirmed.size());
    const std::string text = Read(answers);
    EXPECT_EQ(text.back(), '\n');
  }
}

TEST_F(RateKillTest, Kill9DuringAFloodOfAnswersKeepsEveryConfirmedOneAndTheFileWhole) {
  const std::string answers = (root_ / "out" / "rate" / "answers.jsonl").string();
  fs::remove(answers);
  size_t confirmed = 0;
  for (int round = 0; round < 3; ++round) {
    auto [pid, port] = Launch();
    ASSERT_GT(pid, 0);
    std::atomic<size_t> ok{0};
    std::atomic<bool> stop{false};
    std::thread client([&, port = port] {
      for (int k = 0; !stop; ++k) {
        std::string body;
        HttpReply r =
            AnswerNext(port, "r" + std::to_string(round) + "_" + std::to_string(k % 7), &body);
        if (r.status == 200 && JsonField(r.body, "recorded") == "true" &&
            JsonField(r.body, "already") == "false")
          ++ok;
        if (r.status == 0) break;  // killed
      }
    });
    std::this_thread::sleep_for(std::chrono::milliseconds(300 + 150 * round));
    Kill9(pid);
    stop = true;
    client.join();
    confirmed += ok;
    auto records = nd::ReadAnswersFile(answers);
    ASSERT_TRUE(records.ok()) << records.status().message();
    // Every confirmed answer is there; at most one more (written, killed before replying).
    EXPECT_GE(records->size(), confirmed) << "round " << round;
    EXPECT_LE(records->size(), confirmed + 1) << "round " << round;
    confirmed = records->size();
    EXPECT_GT(ok.load(), 0u) << "the flood got answers through";
  }
  // And a restarted server reads the whole file.
  auto [pid, port] = Launch();
  ASSERT_GT(pid, 0);
  EXPECT_EQ(Exchange(port, Get(port, "/api/next?rater=r0_0&mode=label")).status, 200);
  ::kill(pid, SIGTERM);
  int status = 0;
  ::waitpid(pid, &status, 0);
  EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0);
}

// nd-pipeline links no OpenCV: it runs the report as nd-report and execs nd-rate for the server,
// both from its own folder. A missing one is named in one line: the report's is a warning
// (`rate --summary` exits 0, the statistics stand), the server's an error (exit 1).
TEST(RateExecutables, MissingOnesAreNamed) {
  const fs::path root =
      fs::path(ND_BIN_DIR).parent_path() / ("rate_missing_exe_" + std::to_string(::getpid()));
  fs::remove_all(root);
  fs::create_directories(root / "bin");
  const fs::path bin = root / "bin";
  // A hard link (same file system as the build folder): /proc/self/exe then names this folder.
  std::error_code ec;
  fs::create_hard_link(fs::path(ND_BIN_DIR) / "nd-pipeline", bin / "nd-pipeline", ec);
  if (ec) fs::copy_file(fs::path(ND_BIN_DIR) / "nd-pipeline", bin / "nd-pipeline");
  std::ofstream(root / "pipeline.toml")
      << "[dataset]\npath = \"broden\"\n[model]\npath = \"m.pt\"\nlayers = [\"detect\"]\n"
      << "[cache]\ndir = \"cache\"\n[output]\ndir = \"out\"\n";
  const std::string cfg = (root / "pipeline.toml").string();
  auto summary = Sh((bin / "nd-pipeline").string() + " rate --summary -c " + cfg);
  EXPECT_EQ(summary.code, 0) << summary.output;
  EXPECT_NE(summary.output.find("nd-pipeline: warning: the HTML report was not written: " +
                                (bin / "nd-report").string() + ": no such executable"),
            std::string::npos)
      << summary.output;
  auto rate = Sh((bin / "nd-pipeline").string() + " rate -c " + cfg);
  EXPECT_EQ(rate.code, 1) << rate.output;
  EXPECT_NE(rate.output.find("nd-pipeline: " + (bin / "nd-rate").string() + ": no such executable"),
            std::string::npos)
      << rate.output;
  fs::remove_all(root);
}

}  // namespace
