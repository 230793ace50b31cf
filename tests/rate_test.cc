// Issue 13, the human evaluation: the statistics against textbook examples, the protocols
// (order, catch trials, no repeats, idempotent answers), the answers file (torn tail, lock,
// escaping), hostile HTTP requests against a real RateServer on 127.0.0.1, and kill -9 of the real
// `nd-pipeline rate` between (and during) answers. The browser end to end is
// tests/rate_browser_test.py.
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
#include "tests/e2e_support.h"
#include "tools/rate/answers_file.h"
#include "tools/rate/rate_server.h"
#include "tools/rate/rate_stats.h"
#include "tools/rate/rate_study.h"
#include "tools/rate/rate_summary.h"
#include "tools/report/report_html.h"

namespace {

namespace fs = std::filesystem;
using nd_e2e::Read;
using nd_e2e::Sh;

// ---- Statistics, against worked examples ----

// Fleiss' kappa, the worked example of the Wikipedia article "Fleiss' kappa" (10 subjects, 14
// raters, 5 categories): P̄ = 0.378, P̄_e = 0.213, κ = 0.210 (by hand: Σ P_i = 3.780219…,
// p_j = 0.143, 0.200, 0.279, 0.150, 0.229).
TEST(RateStatsTest, FleissKappaOfTheTextbookExample) {
  const std::vector<std::vector<int>> t = {
      {0, 0, 0, 0, 14}, {0, 2, 6, 4, 2}, {0, 0, 3, 5, 6}, {0, 3, 9, 2, 0}, {2, 2, 8, 1, 1},
      {7, 7, 0, 0, 0},  {3, 2, 6, 3, 0}, {2, 5, 3, 2, 2}, {6, 5, 2, 1, 0}, {0, 2, 2, 3, 7}};
  // P̄ = 3.78021978/10, P̄_e = 0.21275510; κ = (P̄ − P̄_e) / (1 − P̄_e).
  // Σ_j n_ij (n_ij − 1) per subject: 182, 46, 56, 80, 60, 84, 44, 32, 52, 52; over N·n·(n−1).
  const double p_bar = (182.0 + 46 + 56 + 80 + 60 + 84 + 44 + 32 + 52 + 52) / (10 * 14 * 13);
  // Column totals 20, 28, 39, 21, 32 of 140 ratings.
  const double p_e = (20.0 * 20 + 28 * 28 + 39 * 39 + 21 * 21 + 32 * 32) / (140.0 * 140);
  EXPECT_NEAR(p_bar, 0.378, 5e-4);
  EXPECT_NEAR(p_e, 0.213, 5e-4);
  EXPECT_NEAR(nd::FleissKappa(t), (p_bar - p_e) / (1 - p_e), 1e-12);
  EXPECT_NEAR(nd::FleissKappa(t), 0.210, 5e-4);
}

// Krippendorff's alpha, nominal, the example of Krippendorff (2011), "Computing Krippendorff's
// Alpha-Reliability", §C: 4 observers, 12 units, missing values; α = 0.743.
TEST(RateStatsTest, KrippendorffAlphaOfTheTextbookExample) {
  // Values per unit (observers A..D, '.' missing), as counts of the values 1..5.
  const std::vector<std::vector<int>> values = {
      {1, 1, 1},    {2, 2, 3, 2}, {3, 3, 3, 3}, {3, 3, 3, 3}, {2, 2, 2, 2}, {1, 2, 3, 4},
      {4, 4, 4, 4}, {1, 1, 2, 1}, {2, 2, 2, 2}, {5, 5, 5},    {1, 1},       {3}};
  std::vector<std::vector<int>> counts;
  for (const auto& unit : values) {
    std::vector<int> c(5, 0);
    for (int v : unit) ++c[v - 1];
    counts.push_back(c);
  }
  // n = 40 pairable values (unit 12 has one value and drops out); the paper's result is
  // α = 1 − (n − 1)·D/E = 0.743 with D/E = Σ_{c≠k} o_ck / Σ_{c≠k} n_c n_k = 1/152.
  EXPECT_NEAR(nd::KrippendorffAlphaNominal(counts), 0.743, 5e-4);
  EXPECT_NEAR(nd::KrippendorffAlphaNominal(counts), 1 - 39.0 * 10 / 1520, 1e-12);
}

// Two raters, yes/no, on five units: (2,0) (2,0) (1,1) (1,1) (0,2). By hand: κ = (0.6 − 0.52) /
// 0.48 = 1/6; α = 1 − 9·4 / (2·6·4) = 0.25 (the browser test's data).
TEST(RateStatsTest, TwoRatersByHand) {
  const std::vector<std::vector<int>> t = {{2, 0}, {2, 0}, {1, 1}, {1, 1}, {0, 2}};
  EXPECT_NEAR(nd::FleissKappa(t), 1.0 / 6, 1e-12);
  EXPECT_NEAR(nd::KrippendorffAlphaNominal(t), 0.25, 1e-12);
  nd::Agreement a = nd::MeasureAgreement(t);
  EXPECT_EQ(a.subjects, 5);
  EXPECT_EQ(a.min_raters, 2);
  EXPECT_EQ(a.max_raters, 2);
  // Subjects with one rating carry no agreement and are left out.
  std::vector<std::vector<int>> more = t;
  more.push_back({1, 0});
  EXPECT_NEAR(nd::FleissKappa(more), 1.0 / 6, 1e-12);
  EXPECT_EQ(nd::MeasureAgreement(more).subjects, 5);
  // Undefined: no pairable subject; one category only.
  EXPECT_TRUE(std::isnan(nd::FleissKappa({{1, 0}, {0, 1}})));
  EXPECT_TRUE(std::isnan(nd::KrippendorffAlphaNominal({{1, 0}})));
  EXPECT_TRUE(std::isnan(nd::FleissKappa({{3, 0}, {2, 0}})));
  EXPECT_TRUE(std::isnan(nd::KrippendorffAlphaNominal({{3, 0}, {2, 0}})));
}

// Wilson intervals: 0/10 → [0, 0.2775] (z²/n = 0.38415, centre = half = 0.19207/1.38415);
// 5/10 → 0.5 ± 1.96·√(0.025 + 0.0096)/1.38415 = [0.2366, 0.7634]; n = 0 → [0, 1].
TEST(RateStatsTest, WilsonIntervals) {
  nd::Interval a = nd::WilsonInterval(0, 10);
  EXPECT_DOUBLE_EQ(a.low, 0);
  EXPECT_NEAR(a.high, 0.2775, 1e-4);
  nd::Interval b = nd::WilsonInterval(5, 10);
  EXPECT_NEAR(b.low, 0.2366, 1e-4);
  EXPECT_NEAR(b.high, 0.7634, 1e-4);
  nd::Interval c = nd::WilsonInterval(10, 10);
  EXPECT_NEAR(c.low, 0.7225, 1e-4);
  EXPECT_DOUBLE_EQ(c.high, 1);
  nd::Interval d = nd::WilsonInterval(0, 0);
  EXPECT_EQ(d.low, 0);
  EXPECT_EQ(d.high, 1);
}

// ---- The protocols ----

nd::RateStudy MakeStudy(int units, int raters = 2, int catch_every = 3, int max_units = 0) {
  std::vector<nd::StudyUnit> u;
  for (int i = 1; i <= units; ++i)
    u.push_back({i, "label" + std::to_string(i), i % 2 ? "object" : "color"});
  std::vector<nd::CatchLabel> pool = {{"sky", "object"}, {"red-c", "color"}, {"grid", "texture"}};
  return nd::RateStudy({"layer4", 7, raters, 1, catch_every, max_units}, u, pool);
}

nd::AnswerRecord Answer(nd::RateStudy& s, const std::string& rater, nd::RateMode mode,
                        const std::string& answer, const std::string& name = "") {
  nd::Trial t = s.Next(rater, mode);
  EXPECT_FALSE(t.done);
  nd::Submission sub{rater, mode, t.unit, t.trial, mode == nd::RateMode::kName ? name : t.phrase,
                     answer};
  auto checked = s.Check(sub);
  EXPECT_TRUE(checked.ok()) << checked.status().message();
  EXPECT_FALSE(checked->already);
  checked->record.time = "t";
  s.Add(checked->record);
  return checked->record;
}

TEST(RateStudyTest, SeededOrderIsAPermutationAndEachRaterSeesEachUnitOncePerMode) {
  nd::RateStudy a = MakeStudy(20), b = MakeStudy(20);
  EXPECT_EQ(a.order(), b.order()) << "same seed, same order";
  std::set<int> all(a.order().begin(), a.order().end());
  EXPECT_EQ(all.size(), 20u);
  EXPECT_NE(a.order(), std::vector<int>(all.begin(), all.end())) << "shuffled";
  std::set<int> seen;
  int catches = 0, trials = 0;
  for (;;) {
    nd::Trial t = a.Next("ann", nd::RateMode::kLabel);
    if (t.done) break;
    ++trials;
    nd::AnswerRecord r = Answer(a, "ann", nd::RateMode::kLabel, "yes");
    if (r.is_catch) {
      ++catches;
      EXPECT_EQ(trials % 3, 0) << "every third label trial is a catch trial";
      EXPECT_NE(r.phrase, "label" + std::to_string(r.unit));
    } else {
      EXPECT_TRUE(seen.insert(r.unit).second) << "unit " << r.unit << " twice";
      EXPECT_EQ(r.phrase, "label" + std::to_string(r.unit));
    }
  }
  EXPECT_EQ(seen.size(), 20u);
  EXPECT_EQ(catches, 9);  // trials 3, 6, …, 27 of 29
  // Units are served in the seeded order, completed front to back.
  nd::RateStudy c = MakeStudy(20, 2, 0);
  EXPECT_EQ(c.Next("x", nd::RateMode::kLabel).unit, c.order()[0]);
  Answer(c, "x", nd::RateMode::kLabel, "no");
  EXPECT_EQ(c.Next("y", nd::RateMode::kLabel).unit, c.order()[0]) << "needs a second rater";
  EXPECT_EQ(c.Next("x", nd::RateMode::kLabel).unit, c.order()[1]);
  // max_units keeps the first units of the order.
  nd::RateStudy d = MakeStudy(20, 2, 0, 4);
  EXPECT_EQ(d.order(), std::vector<int>(a.order().begin(), a.order().begin() + 4));
  EXPECT_FALSE(d.InStudy(a.order()[10]));
}

TEST(RateStudyTest, CatchLabelsComeFromAnotherCategory) {
  nd::RateStudy s = MakeStudy(6, 1, 2);
  for (int i = 0; i < 6; ++i) {
    nd::Trial t = s.Next("ann", nd::RateMode::kLabel);
    if (t.done) break;
    nd::AnswerRecord r = Answer(s, "ann", nd::RateMode::kLabel, "no");
    if (!r.is_catch) continue;
    const std::string unit_category = r.unit % 2 ? "object" : "color";
    const std::string label_category = r.phrase == "sky"     ? "object"
                                       : r.phrase == "red-c" ? "color"
                                                             : "texture";
    EXPECT_NE(unit_category, label_category) << r.phrase << " on unit " << r.unit;
  }
}

TEST(RateStudyTest, ResubmissionIsIdempotentAndForeignTrialsAreRefused) {
  nd::RateStudy s = MakeStudy(5, 2, 0);
  nd::Trial t = s.Next("ann", nd::RateMode::kLabel);
  nd::Submission sub{"ann", nd::RateMode::kLabel, t.unit, t.trial, t.phrase, "yes"};
  auto first = s.Check(sub);
  ASSERT_TRUE(first.ok());
  s.Add(first->record);
  sub.answer = "no";  // a resubmission, even with another answer, is the first one
  auto again = s.Check(sub);
  ASSERT_TRUE(again.ok());
  EXPECT_TRUE(again->already);
  EXPECT_EQ(again->record.answer, "yes");
  // Another rater cannot use ann's trial id; a made-up id is refused; a wrong phrase too.
  nd::Submission bob = sub;
  bob.rater = "bob";
  EXPECT_EQ(s.Check(bob).status().code(), nd::StatusCode::kFailedPrecondition);
  nd::Trial tb = s.Next("bob", nd::RateMode::kLabel);
  nd::Submission wrong{"bob", nd::RateMode::kLabel, tb.unit, tb.trial, "sky", "yes"};
  EXPECT_EQ(s.Check(wrong).status().code(), nd::StatusCode::kFailedPrecondition);
  wrong.phrase = tb.phrase;
  wrong.trial = "0000000000000000";
  EXPECT_EQ(s.Check(wrong).status().code(), nd::StatusCode::kFailedPrecondition);
  wrong.trial = tb.trial;
  wrong.unit = 99;
  EXPECT_EQ(s.Check(wrong).status().code(), nd::StatusCode::kNotFound);
  wrong.unit = tb.unit;
  wrong.answer = "maybe";
  EXPECT_EQ(s.Check(wrong).status().code(), nd::StatusCode::kInvalidArgument);
  wrong.answer = "yes";
  wrong.rater = "bad\x01name";
  EXPECT_EQ(s.Check(wrong).status().code(), nd::StatusCode::kInvalidArgument);
}

TEST(RateStudyTest, HumanLabelsAreTheFirstNameAndNotJudgedByTheirAuthor) {
  nd::RateStudy s = MakeStudy(2, 2, 0);
  EXPECT_TRUE(s.Next("bob", nd::RateMode::kHuman).done) << "no names yet";
  nd::AnswerRecord n1 = Answer(s, "ann", nd::RateMode::kName, "", "<b>dogs</b>");
  EXPECT_EQ(n1.answer, "named");
  EXPECT_TRUE(s.Next("ann", nd::RateMode::kHuman).done) << "ann wrote the only name";
  nd::Trial t = s.Next("bob", nd::RateMode::kHuman);
  ASSERT_FALSE(t.done);
  EXPECT_EQ(t.unit, n1.unit);
  EXPECT_EQ(t.phrase, "<b>dogs</b>");
  nd::Submission own{"ann",    nd::RateMode::kHuman,
                     t.unit,   s.TrialId("ann", nd::RateMode::kHuman, t.unit, -1),
                     t.phrase, "yes"};
  EXPECT_EQ(s.Check(own).status().code(), nd::StatusCode::kFailedPrecondition);
  // Names are validated: empty, too long, control characters, broken UTF-8.
  for (const std::string bad : {std::string(""), std::string(81, 'x'), std::string("a\nb"),
                                std::string("\xc3"), std::string(" lead")}) {
    nd::Trial tn = s.Next("bob", nd::RateMode::kName);
    nd::Submission sub{"bob", nd::RateMode::kName, tn.unit, tn.trial, bad, "named"};
    EXPECT_EQ(s.Check(sub).status().code(), nd::StatusCode::kInvalidArgument) << bad;
  }
  EXPECT_TRUE(nd::ValidatePhrase("Gras & Wiese \xc3\xa4", "name").ok());
}

TEST(RateStudyTest, ReplayResumesWhereEachRaterWas) {
  nd::RateStudy a = MakeStudy(6, 2, 3);
  std::vector<nd::AnswerRecord> log;
  for (int i = 0; i < 4; ++i) log.push_back(Answer(a, "ann", nd::RateMode::kLabel, "yes"));
  log.push_back(Answer(a, "bob", nd::RateMode::kLabel, "no"));
  nd::RateStudy b = MakeStudy(6, 2, 3);
  b.Replay(log);
  for (const char* r : {"ann", "bob", "cat"}) {
    nd::Trial x = a.Next(r, nd::RateMode::kLabel), y = b.Next(r, nd::RateMode::kLabel);
    EXPECT_EQ(x.unit, y.unit) << r;
    EXPECT_EQ(x.trial, y.trial) << r;
    EXPECT_EQ(x.answered, y.answered) << r;
  }
}

// ---- Summary ----

TEST(RateSummaryTest, ExcludesRatersBelowTheCatchCutoffAndCountsMajorities) {
  auto rec = [](const std::string& rater, int unit, const std::string& mode,
                const std::string& answer, bool is_catch = false) {
    nd::AnswerRecord r;
    r.layer = "l";
    r.rater = rater;
    r.unit = unit;
    r.mode = mode;
    r.trial = rater + std::to_string(unit) + mode + (is_catch ? "c" : "");
    r.answer = answer;
    r.is_catch = is_catch;
    return r;
  };
  std::vector<nd::AnswerRecord> rs = {
      rec("a", 1, "label", "yes"),      rec("b", 1, "label", "yes"),
      rec("c", 1, "label", "no"),       rec("a", 2, "label", "yes"),
      rec("b", 2, "label", "no"),       rec("c", 2, "label", "no"),
      rec("a", 3, "label", "no"),       rec("c", 3, "label", "yes"),
      rec("a", 9, "label", "no", true), rec("c", 9, "label", "yes", true)};
  auto all = nd::SummarizeAnswers(rs, 0.5, {{"l", 4}});
  ASSERT_EQ(all.size(), 1u);
  // c (0/1 catch trials right) is excluded at 0.5; without c: unit 1 (2 yes) descriptive, unit 2
  // (1, 1) a tie -> not, unit 3 (0, 1) not.
  EXPECT_EQ(all[0].label.units, 3);
  EXPECT_EQ(all[0].label.positive, 1);
  EXPECT_EQ(all[0].study_units, 4);
  EXPECT_EQ(all[0].raters.size(), 3u);
  EXPECT_TRUE(all[0].raters[2].excluded) << "c: 0/1 catch trials right";
  EXPECT_FALSE(all[0].raters[0].excluded);
  EXPECT_FALSE(all[0].raters[1].excluded) << "b: no catch trials, not excluded";
  EXPECT_EQ(all[0].label.agreement.subjects, 2);
  const std::string csv = nd::FormatHumanSummaryCsv(all);
  EXPECT_NE(csv.find("\nl,4,10,3,1,0.5,3,1,0.333333,"), std::string::npos) << csv;
  EXPECT_NE(nd::FormatRatersCsv(all).find("l,c,3,0,0,1,0,0,1\n"), std::string::npos)
      << nd::FormatRatersCsv(all);
}

// ---- The answers file ----

class AnswersFileTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::temp_directory_path() /
           ("nd_rate_answers_" + std::to_string(::getpid()) + "_" +
            ::testing::UnitTest::GetInstance()->current_test_info()->name());
    fs::remove_all(dir_);
  }
  void TearDown() override { fs::remove_all(dir_); }
  fs::path dir_;
};

nd::AnswerRecord Sample(int unit, const std::string& phrase) {
  nd::AnswerRecord r;
  r.layer = "layer4";
  r.rater = "ann \"the\" <rater>";
  r.unit = unit;
  r.mode = "name";
  r.trial = "00ff";
  r.phrase = phrase;
  r.answer = "named";
  r.time = nd::AnswerTimeNow();
  return r;
}

TEST_F(AnswersFileTest, LinesRoundTripEscapedAndATornTailIsCut) {
  const std::string path = (dir_ / "sub" / "answers.jsonl").string();
  {
    auto f = nd::AnswersFile::Open(path);
    ASSERT_TRUE(f.ok()) << f.status().message();
    ASSERT_TRUE(f->Append(Sample(1, "<script>alert(\"x\")</script>\\")).ok());
    ASSERT_TRUE(f->Append(Sample(2, "sky \xe2\x98\x81")).ok());
    // A second server on the same file is refused (flock).
    auto second = nd::AnswersFile::Open(path);
    EXPECT_EQ(second.status().code(), nd::StatusCode::kFailedPrecondition)
        << second.status().message();
  }
  const std::string text = Read(path);
  EXPECT_EQ(std::count(text.begin(), text.end(), '\n'), 2);
  EXPECT_NE(text.find(R"("phrase": "<script>alert(\"x\")</script>\\")"), std::string::npos) << text;
  // A crash in the middle of a write leaves a line without its '\n': readers ignore it, Open()
  // cuts it, and the next answer starts a clean line.
  const std::string torn = "{\"v\": 1, \"layer\": \"lay";
  std::ofstream(path, std::ios::app) << torn;
  auto read = nd::ReadAnswersFile(path);
  ASSERT_TRUE(read.ok()) << read.status().message();
  ASSERT_EQ(read->size(), 2u);
  EXPECT_EQ((*read)[0].phrase, "<script>alert(\"x\")</script>\\");
  EXPECT_EQ((*read)[0].rater, "ann \"the\" <rater>");
  EXPECT_EQ((*read)[1].phrase, "sky \xe2\x98\x81");
  {
    auto f = nd::AnswersFile::Open(path);
    ASSERT_TRUE(f.ok()) << f.status().message();
    EXPECT_EQ(f->torn_bytes(), static_cast<int64_t>(torn.size()));
    EXPECT_EQ(f->records().size(), 2u);
    ASSERT_TRUE(f->Append(Sample(3, "third")).ok());
  }
  auto after = nd::ReadAnswersFile(path);
  ASSERT_TRUE(after.ok()) << after.status().message();
  ASSERT_EQ(after->size(), 3u);
  EXPECT_EQ((*after)[2].phrase, "third");
}

TEST_F(AnswersFileTest, AMalformedCompleteLineIsDataLossNamingTheLine) {
  fs::create_directories(dir_);
  const std::string path = (dir_ / "answers.jsonl").string();
  std::ofstream(path) << nd::FormatAnswerLine(Sample(1, "a")) << "{not json}\n";
  auto read = nd::ReadAnswersFile(path);
  ASSERT_FALSE(read.ok());
  EXPECT_EQ(read.status().code(), nd::StatusCode::kDataLoss);
  EXPECT_NE(read.status().message().find("answers.jsonl:2: "), std::string::npos)
      << read.status().message();
  EXPECT_TRUE(nd::ReadAnswersFile((dir_ / "missing.jsonl").string())->empty());
}

// ---- Hostile requests against a real server on 127.0.0.1 ----

struct HttpReply {
  int status = 0;
  std::string head, body;
};

// Sends `raw` to 127.0.0.1:port and reads the reply until the server closes (5 s at most).
HttpReply Exchange(int port, const std::string& raw) {
  HttpReply r;
  const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  timeval tv{5, 0};
  ::setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
  ::setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(static_cast<uint16_t>(port));
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0) {
    ::close(fd);
    return r;
  }
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

}  // namespace
