// Issue 13, the human evaluation, without sockets: the statistics against textbook examples, the
// protocols (order, catch trials, no repeats, idempotent answers) and the answers file (torn tail,
// lock, escaping). The HTTP side is rate_server_test.cc; the browser end to end is
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
#include "tests/testing/e2e_support.h"
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
  for (const std::string& bad : {std::string(""), std::string(81, 'x'), std::string("a\nb"),
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

}  // namespace
