// The study report (tools/report/study_report.h) on hand-made result folders and training records:
// five models of one layer `conv` (a checkpoint series, a fine-tuned model, one with a broken
// record) and two rotation views (seeds 1 and 2) at alpha 0 and 1. Every expected number below is
// derived by hand from the files the test writes, never from the code's output.
#include "tools/report/study_report.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <map>
#include <sstream>
#include <string>
#include <tuple>
#include <utility>
#include <vector>

#include "common/base/config.h"
#include "common/results/result_files.h"
#include "tests/testing/status_assertions.h"
#include "tools/report/report_builder.h"
#include "tools/train/train_record_file.h"

namespace nd {
namespace {

namespace fs = std::filesystem;

void WriteText(const fs::path& path, const std::string& text) {
  fs::create_directories(path.parent_path());
  std::ofstream(path) << text;
}

std::string ReadText(const fs::path& path) {
  std::ifstream in(path);
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

// A CSV file as rows of fields (no quoting needed by these files' values).
std::vector<std::vector<std::string>> ReadCsv(const fs::path& path) {
  std::vector<std::vector<std::string>> rows;
  std::istringstream in(ReadText(path));
  std::string line;
  while (std::getline(in, line)) {
    std::vector<std::string> row;
    std::string field;
    std::istringstream l(line);
    while (std::getline(l, field, ',')) row.push_back(field);
    if (!line.empty() && line.back() == ',') row.push_back("");
    rows.push_back(row);
  }
  return rows;
}

// The data rows of `rows` whose column `key` (by header) equals `value`, as column -> field maps.
std::vector<std::map<std::string, std::string>> Where(
    const std::vector<std::vector<std::string>>& rows, const std::string& key,
    const std::string& value) {
  std::vector<std::map<std::string, std::string>> out;
  for (size_t r = 1; r < rows.size(); ++r) {
    std::map<std::string, std::string> m;
    for (size_t c = 0; c < rows[0].size() && c < rows[r].size(); ++c) m[rows[0][c]] = rows[r][c];
    if (m[key] == value) out.push_back(m);
  }
  return out;
}

size_t Count(const std::string& text, const std::string& what) {
  size_t n = 0;
  for (size_t at = text.find(what); at != std::string::npos; at = text.find(what, at + 1)) ++n;
  return n;
}

// summary.json of one set: counts, and (category, detectors, unique) triples.
void WriteSummary(const fs::path& dir, const std::string& layer, int64_t units, int64_t detectors,
                  int64_t unique, int64_t unique_top,
                  const std::vector<std::tuple<std::string, int64_t, int64_t>>& categories) {
  LayerSummary s;
  s.layer = layer;
  s.units = units;
  s.detectors = detectors;
  s.unique_detectors_paper = unique;
  s.unique_detectors_top_label = unique_top;
  for (const auto& [name, d, u] : categories) s.categories.push_back({name, d, u});
  WriteText(dir / "summary.json", FormatSummaryJson(s));
}

// tally.csv with one category column (object); units given in unit order as (label, IoU).
void WriteTally(const fs::path& dir, const std::vector<std::pair<std::string, double>>& units) {
  std::ostringstream t;
  t << "unit,category,label,score,object-label,object-truth,object-activation,object-intersect,"
       "object-iou\r\n";
  for (size_t u = 0; u < units.size(); ++u)
    t << u + 1 << ",object," << units[u].first << "," << units[u].second << "," << units[u].first
      << ",10.0,10.0,1.0," << units[u].second << "\r\n";
  WriteText(dir / "tally.csv", t.str());
}

void WriteRecord(const std::string& path, int64_t iteration, double train, double val,
                 uint64_t seed, const std::string& init_from = "") {
  TrainRecord r;
  r.model = fs::path(path).filename().string();
  r.iteration = iteration;
  r.total_iterations = 1000;
  r.train_accuracy = train;
  r.val_accuracy = val;
  r.seed = seed;
  r.init_from = init_from;
  ASSERT_TRUE(WriteTrainRecord(path, r).ok());
}

class StudyReportTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::path(::testing::TempDir()) / ("nd_study_" + std::to_string(::getpid()));
    fs::remove_all(dir_);
    fs::create_directories(dir_ / "models");
    out_ = dir_ / "out";
  }
  void TearDown() override { fs::remove_all(dir_); }

  // A model file (its bytes only matter for its digest) and its [[models]] entry.
  ModelEntry Model(const std::string& name, const std::string& file) {
    ModelEntry m;
    m.name = name;
    m.path = (dir_ / "models" / file).string();
    WriteText(m.path, "model " + name);
    return m;
  }

  PipelineConfig BaseConfig() {
    PipelineConfig c;
    c.output.dir = out_.string();
    c.model.layers = {"conv"};
    c.threshold.quantiles = {0.005};
    c.score.iou_threshold = 0.04;
    return c;
  }

  fs::path dir_, out_;
};

TEST_F(StudyReportTest, SeriesRotationAndTransitionsFromHandMadeResults) {
  PipelineConfig c = BaseConfig();
  // Series "base": three checkpoints of one run (iterations from their records but the last,
  // whose [[models]] iteration, seed and accuracy win over its record's).
  ModelEntry m10 = Model("ckpt-10", "run.pt.ckpt-10.pt");
  m10.group = "base";
  ModelEntry m100 = Model("ckpt-100", "run.pt.ckpt-100.pt");
  m100.group = "base";
  ModelEntry fin = Model("final", "run.pt");
  fin.group = "base";
  fin.iteration = 1000;
  fin.seed = 7;
  fin.accuracy = 0.75;
  ModelEntry tuned = Model("tuned", "tuned.pt");
  tuned.group = "finetune";
  ModelEntry broken = Model("broken", "broken.pt");
  c.models = {m10, m100, fin, tuned, broken};
  WriteRecord((dir_ / "models" / "run.pt.ckpt-10.json").string(), 10, 0.3, 0.25, 3);
  WriteRecord((dir_ / "models" / "run.pt.ckpt-100.json").string(), 100, 0.4, 0.5, 3);
  WriteRecord((dir_ / "models" / "run.pt.json").string(), 999, 0.8, 0.7, 3);
  // The fine-tuned model names the final one as its source: found without --compare.
  WriteRecord((dir_ / "models" / "tuned.pt.json").string(), 50, 0.6, 0.55, 4, fin.path);
  WriteText(dir_ / "models" / "broken.pt.json", "{not json");

  ViewConfig rot;
  rot.name = "rot";
  rot.layer = "conv";
  rot.basis = "rotation";
  rot.seed = 1;
  rot.alpha = {0, 1};
  ViewConfig rot2 = rot;
  rot2.name = "rot2";
  rot2.seed = 2;
  c.views = {rot, rot2};

  // Layer results: categories object, part, color.
  WriteSummary(out_ / "ckpt-10/conv", "conv", 8, 2, 2, 2,
               {{"object", 1, 1}, {"part", 0, 0}, {"color", 1, 1}});
  WriteSummary(out_ / "ckpt-100/conv", "conv", 3, 4, 3, 3,
               {{"object", 2, 1}, {"part", 1, 1}, {"color", 1, 1}});
  WriteSummary(out_ / "final/conv", "conv", 8, 5, 4, 4,
               {{"object", 3, 2}, {"part", 1, 1}, {"color", 1, 1}});
  WriteSummary(out_ / "tuned/conv", "conv", 8, 3, 2, 2,
               {{"object", 2, 1}, {"part", 0, 0}, {"color", 1, 1}});
  WriteSummary(out_ / "broken/conv", "conv", 8, 0, 0, 0,
               {{"object", 0, 0}, {"part", 0, 0}, {"color", 0, 0}});
  // Views: final's by hand; every other model 1 unique detector, 1 detector at every alpha, but
  // ckpt-100's rot-a0 is malformed and broken's rot2-a1 missing (each one note, left out).
  for (const char* m : {"ckpt-10", "ckpt-100", "tuned", "broken"})
    for (const char* v : {"rot-a0", "rot-a1", "rot2-a0", "rot2-a1"})
      WriteSummary(out_ / m / v, v, 8, 1, 1, 1, {{"object", 1, 1}});
  WriteText(out_ / "ckpt-100/rot-a0/summary.json", "{\"units\": ");
  fs::remove_all(out_ / "broken/rot2-a1");
  WriteSummary(out_ / "final/rot-a0", "rot-a0", 8, 5, 4, 4, {{"object", 3, 2}});
  WriteSummary(out_ / "final/rot2-a0", "rot2-a0", 8, 5, 4, 4, {{"object", 3, 2}});
  WriteSummary(out_ / "final/rot-a1", "rot-a1", 8, 2, 1, 1, {{"object", 2, 1}});
  WriteSummary(out_ / "final/rot2-a1", "rot2-a1", 8, 3, 2, 2, {{"object", 3, 2}});

  // Tallies of final (before) and tuned (after): 8 units each, (label, IoU), cut-off 0.04.
  WriteTally(out_ / "final/conv", {{"dog", 0.2},
                                   {"dog", 0.1},
                                   {"sky", 0.08},
                                   {"red", 0.05},
                                   {"wheel", 0.06},
                                   {"grass", 0.01},
                                   {"dog", 0.12},
                                   {"red", 0.09}});
  WriteTally(out_ / "tuned/conv", {{"dog", 0.15},
                                   {"cat", 0.09},
                                   {"sky", 0.03},
                                   {"blue", 0.07},
                                   {"wheel", 0.05},
                                   {"grass", 0.02},
                                   {"cat", 0.11},
                                   {"blue", 0.02}});
  // --compare ckpt-100,final: 3 units against 8, one note.
  WriteTally(out_ / "ckpt-100/conv", {{"dog", 0.2}, {"sky", 0.1}, {"red", 0.05}});

  StudyOptions options;
  options.compare = {{"ckpt-100", "final"}};
  ND_ASSERT_OK_AND_ASSIGN(StudyStats stats, BuildStudyReport(c, options));
  const fs::path report = out_ / "report";
  EXPECT_EQ(stats.study_path, (report / "study.html").string());
  EXPECT_EQ(stats.files.size(), 5u);
  // 5 models x (1 layer + 4 view sets) = 25 sets, two left out.
  EXPECT_EQ(stats.runs, 23);
  EXPECT_EQ(stats.pairs, 2);  // --compare's, then final -> tuned from tuned's record

  auto has_note = [&](const std::string& part) {
    return std::any_of(stats.notes.begin(), stats.notes.end(),
                       [&](const std::string& n) { return n.find(part) != std::string::npos; });
  };
  EXPECT_TRUE(has_note((dir_ / "models" / "broken.pt.json").string()));
  EXPECT_TRUE(has_note((out_ / "ckpt-100/rot-a0/summary.json").string()));
  EXPECT_TRUE(has_note((out_ / "broken/rot2-a1/summary.json").string()));
  EXPECT_TRUE(has_note("3 vs 8 units"));
  EXPECT_EQ(stats.notes.size(), 4u);

  // study_runs.csv: final's layer row, [[models]] values over the record's; broken: no record.
  const auto runs = ReadCsv(report / "study_runs.csv");
  ASSERT_FALSE(runs.empty());
  EXPECT_EQ(runs[0], (std::vector<std::string>{
                         "model", "group", "seed", "iteration", "train_accuracy", "val_accuracy",
                         "task", "set", "layer", "view", "basis", "view_seed", "alpha", "units",
                         "detectors", "unique_detectors_paper", "unique_detectors_top_label"}));
  EXPECT_EQ(runs.size(), 24u);
  const auto final_conv = Where(runs, "set", "final/conv");
  ASSERT_EQ(final_conv.size(), 1u);
  EXPECT_EQ(final_conv[0].at("group"), "base");
  EXPECT_EQ(final_conv[0].at("seed"), "7");
  EXPECT_EQ(final_conv[0].at("iteration"), "1000");
  EXPECT_EQ(final_conv[0].at("train_accuracy"), "0.8");
  EXPECT_EQ(final_conv[0].at("val_accuracy"), "0.75");
  EXPECT_EQ(final_conv[0].at("task"), "scene");
  EXPECT_EQ(final_conv[0].at("units"), "8");
  EXPECT_EQ(final_conv[0].at("detectors"), "5");
  EXPECT_EQ(final_conv[0].at("unique_detectors_paper"), "4");
  const auto ck10 = Where(runs, "set", "ckpt-10/conv");
  ASSERT_EQ(ck10.size(), 1u);
  EXPECT_EQ(ck10[0].at("seed"), "3");
  EXPECT_EQ(ck10[0].at("iteration"), "10");
  EXPECT_EQ(ck10[0].at("val_accuracy"), "0.25");
  const auto broken_conv = Where(runs, "set", "broken/conv");
  ASSERT_EQ(broken_conv.size(), 1u);
  EXPECT_EQ(broken_conv[0].at("iteration"), "");
  EXPECT_EQ(broken_conv[0].at("val_accuracy"), "");
  const auto final_rot = Where(runs, "set", "final/rot2-a1");
  ASSERT_EQ(final_rot.size(), 1u);
  EXPECT_EQ(final_rot[0].at("layer"), "conv");
  EXPECT_EQ(final_rot[0].at("view"), "rot2");
  EXPECT_EQ(final_rot[0].at("basis"), "rotation");
  EXPECT_EQ(final_rot[0].at("view_seed"), "2");
  EXPECT_EQ(final_rot[0].at("alpha"), "1.0");

  // study_categories.csv: unique detectors per category (paper rule) of every set.
  const auto cats = ReadCsv(report / "study_categories.csv");
  const auto final_cats = Where(cats, "set", "final/conv");
  ASSERT_EQ(final_cats.size(), 3u);
  EXPECT_EQ(final_cats[0].at("category"), "object");
  EXPECT_EQ(final_cats[0].at("detectors"), "3");
  EXPECT_EQ(final_cats[0].at("unique_detectors_paper"), "2");
  EXPECT_EQ(final_cats[1].at("category"), "part");
  EXPECT_EQ(final_cats[1].at("unique_detectors_paper"), "1");
  EXPECT_EQ(final_cats[2].at("category"), "color");
  EXPECT_EQ(final_cats[2].at("unique_detectors_paper"), "1");

  // study_iterations.csv: group, layer, iteration order; broken (no iteration) left out.
  const auto iters = ReadCsv(report / "study_iterations.csv");
  const std::vector<std::vector<std::string>> expected_iters = {
      {"group", "layer", "iteration", "model", "detectors", "unique_detectors_paper",
       "train_accuracy", "val_accuracy"},
      {"base", "conv", "10", "ckpt-10", "2", "2", "0.3", "0.25"},
      {"base", "conv", "100", "ckpt-100", "4", "3", "0.4", "0.5"},
      {"base", "conv", "1000", "final", "5", "4", "0.8", "0.75"},
      {"finetune", "conv", "50", "tuned", "3", "2", "0.6", "0.55"}};
  EXPECT_EQ(iters, expected_iters);

  // study_rotation.csv: final by hand: alpha 0: 4, 4 -> mean 4, sd 0; alpha 1: 1, 2 -> mean 1.5,
  // sd sqrt(((1-1.5)^2 + (2-1.5)^2) / 1) = sqrt(0.5); detectors 5, 5 and 2, 3.
  const auto rotation = ReadCsv(report / "study_rotation.csv");
  EXPECT_EQ(rotation[0],
            (std::vector<std::string>{"model", "layer", "alpha", "seeds", "unique_mean",
                                      "unique_sd", "unique_min", "unique_max", "detectors_mean"}));
  EXPECT_EQ(rotation.size(), 11u);  // 5 models x 2 alphas
  const auto final_rotation = Where(rotation, "model", "final");
  ASSERT_EQ(final_rotation.size(), 2u);
  EXPECT_EQ(final_rotation[0].at("alpha"), "0.0");
  EXPECT_EQ(final_rotation[0].at("seeds"), "2");
  EXPECT_EQ(final_rotation[0].at("unique_mean"), "4.0");
  EXPECT_EQ(final_rotation[0].at("unique_sd"), "0.0");
  EXPECT_EQ(final_rotation[0].at("unique_min"), "4");
  EXPECT_EQ(final_rotation[0].at("unique_max"), "4");
  EXPECT_EQ(final_rotation[0].at("detectors_mean"), "5.0");
  EXPECT_EQ(final_rotation[1].at("alpha"), "1.0");
  EXPECT_EQ(final_rotation[1].at("unique_mean"), "1.5");
  EXPECT_EQ(std::stod(final_rotation[1].at("unique_sd")), std::sqrt(0.5));
  EXPECT_EQ(final_rotation[1].at("unique_min"), "1");
  EXPECT_EQ(final_rotation[1].at("unique_max"), "2");
  EXPECT_EQ(final_rotation[1].at("detectors_mean"), "2.5");
  // One seed left at ckpt-100's alpha 0 and broken's alpha 1: no standard deviation.
  const auto ck100_rotation = Where(rotation, "model", "ckpt-100");
  ASSERT_EQ(ck100_rotation.size(), 2u);
  EXPECT_EQ(ck100_rotation[0].at("seeds"), "1");
  EXPECT_EQ(ck100_rotation[0].at("unique_sd"), "");
  EXPECT_EQ(ck100_rotation[1].at("seeds"), "2");
  const auto broken_rotation = Where(rotation, "model", "broken");
  ASSERT_EQ(broken_rotation.size(), 2u);
  EXPECT_EQ(broken_rotation[1].at("seeds"), "1");

  // study_transitions.csv, final -> tuned, unit by unit:
  //   1 dog->dog (both detectors), 2 dog->cat (both), 3 sky->sky (after 0.03: no), 4 red->blue
  //   (both), 5 wheel->wheel (both), 6 grass->grass (neither), 7 dog->cat (both), 8 red->blue
  //   (after 0.02: no). Counts: dog->cat 2 (2), red->blue 2 (1), then 1 each by name.
  const auto trans = ReadCsv(report / "study_transitions.csv");
  const std::vector<std::vector<std::string>> expected_trans = {
      {"model_a", "model_b", "layer", "from_label", "to_label", "units", "detector_units"},
      {"final", "tuned", "conv", "dog", "cat", "2", "2"},
      {"final", "tuned", "conv", "red", "blue", "2", "1"},
      {"final", "tuned", "conv", "dog", "dog", "1", "1"},
      {"final", "tuned", "conv", "grass", "grass", "1", "0"},
      {"final", "tuned", "conv", "sky", "sky", "1", "0"},
      {"final", "tuned", "conv", "wheel", "wheel", "1", "1"}};
  EXPECT_EQ(trans, expected_trans);

  // The page: every chart, counted; kept = units 1, 3, 5, 6 = 4 of 8; of the 5 units that are
  // detectors in both (1, 2, 4, 5, 7) units 1 and 5 keep their label.
  const std::string html = ReadText(report / "study.html");
  EXPECT_NE(html.find("id=\"chart-categories\" data-bars=\"5\""), std::string::npos);
  EXPECT_EQ(Count(html, "<g class=\"bar\""), 5u);
  EXPECT_NE(html.find("id=\"chart-iterations\" data-series=\"2\" data-points=\"4\""),
            std::string::npos);
  EXPECT_NE(html.find("id=\"chart-rotation\" data-series=\"5\" data-points=\"10\""),
            std::string::npos);
  EXPECT_EQ(Count(html, "<div class=\"pair\""), 1u);
  EXPECT_NE(html.find("data-a=\"final\" data-b=\"tuned\" data-layer=\"conv\" data-units=\"8\" "
                      "data-kept=\"4\""),
            std::string::npos);
  EXPECT_NE(html.find("among the 5 units that are detectors in both, 2 keep it"),
            std::string::npos);
  EXPECT_EQ(Count(html, "<tr class=\"change\""), 2u);  // dog->cat, red->blue
  EXPECT_EQ(Count(html, "<tr class=\"run\""), 23u);
  EXPECT_EQ(Count(html, "<li class=\"note\""), 4u);
  // No strips without the main report in this run: one line says so, no <img>.
  EXPECT_NE(html.find("data-chart=\"strips\""), std::string::npos);
  EXPECT_EQ(html.find("<img"), std::string::npos);
  EXPECT_EQ(html.find("http://"), std::string::npos);
  EXPECT_EQ(html.find("https://"), std::string::npos);
}

TEST_F(StudyReportTest, StripsOfTheMainReportAreLinkedWhenItWasWrittenInTheSameRun) {
  PipelineConfig c = BaseConfig();
  c.models = {Model("a", "a.pt"), Model("b", "b.pt")};
  for (const char* m : {"a", "b"})
    WriteSummary(out_ / m / "conv", "conv", 2, 2, 1, 1, {{"object", 2, 1}});
  WriteTally(out_ / "a/conv", {{"dog", 0.3}, {"cat", 0.2}});
  WriteTally(out_ / "b/conv", {{"dog", 0.3}, {"sky", 0.25}});
  // The main report's strips of both units of both models ("a/conv" is section id a/conv).
  for (const char* section : {"a/conv", "b/conv"})
    for (int unit : {1, 2}) WriteText(out_ / "report" / StripPath(section, unit), "jpeg");
  StudyOptions options;
  options.compare = {{"a", "b"}};
  options.link_strips = true;
  options.example_units = 1;
  ND_ASSERT_OK_AND_ASSIGN(StudyStats stats, BuildStudyReport(c, options));
  const std::string html = ReadText(stats.study_path);
  // One example: unit 2, the one whose label changed (cat -> sky), before and after.
  EXPECT_EQ(Count(html, "<img class=\"strip\""), 2u);
  EXPECT_NE(html.find("src=\"img/a_conv/unit2.jpg\""), std::string::npos);
  EXPECT_NE(html.find("src=\"img/b_conv/unit2.jpg\""), std::string::npos);
  EXPECT_EQ(html.find("data-chart=\"strips\""), std::string::npos);
}

TEST_F(StudyReportTest, MissingPiecesLeaveTheirChartOutWithOneLine) {
  PipelineConfig c = BaseConfig();
  c.models = {Model("only", "only.pt")};  // no record, no iteration, no views, no pair
  WriteSummary(out_ / "only/conv", "conv", 4, 1, 1, 1, {{"object", 1, 1}});
  ND_ASSERT_OK_AND_ASSIGN(StudyStats stats, BuildStudyReport(c, StudyOptions{}));
  const std::string html = ReadText(stats.study_path);
  EXPECT_NE(html.find("id=\"chart-categories\" data-bars=\"1\""), std::string::npos);
  EXPECT_NE(html.find("<p class=\"missing\" data-chart=\"chart-iterations\">"), std::string::npos);
  EXPECT_NE(html.find("<p class=\"missing\" data-chart=\"chart-rotation\">"), std::string::npos);
  EXPECT_NE(html.find("<p class=\"missing\" data-chart=\"transitions\">"), std::string::npos);
  EXPECT_EQ(html.find("id=\"chart-iterations\""), std::string::npos);
  EXPECT_EQ(ReadCsv(fs::path(stats.study_path).parent_path() / "study_iterations.csv").size(), 1u);
  EXPECT_TRUE(stats.notes.empty());
}

TEST_F(StudyReportTest, ErrorsNameTheProblem) {
  PipelineConfig c = BaseConfig();
  c.models = {Model("a", "a.pt"), Model("b", "b.pt")};
  // Nothing scored yet.
  auto none = BuildStudyReport(c, StudyOptions{});
  ASSERT_FALSE(none.ok());
  EXPECT_EQ(none.status().code(), StatusCode::kNotFound);
  EXPECT_NE(none.status().message().find("run nd-pipeline up first"), std::string::npos);
  // A --compare name that is not a model.
  WriteSummary(out_ / "a/conv", "conv", 1, 0, 0, 0, {});
  StudyOptions options;
  options.compare = {{"a", "c"}};
  auto bad = BuildStudyReport(c, options);
  ASSERT_FALSE(bad.ok());
  EXPECT_EQ(bad.status().code(), StatusCode::kInvalidArgument);
  EXPECT_NE(bad.status().message().find("no model \"c\"; the models are: a, b"), std::string::npos);
  EXPECT_FALSE(ParseComparePair("a").ok());
  EXPECT_FALSE(ParseComparePair("a,b,c").ok());
  EXPECT_FALSE(ParseComparePair(",b").ok());
  ND_ASSERT_OK_AND_ASSIGN(auto pair, ParseComparePair("a,b"));
  EXPECT_EQ(pair, std::make_pair(std::string("a"), std::string("b")));
}

TEST(TrainRecordPathForTest, CheckpointsAndFinalModels) {
  EXPECT_EQ(TrainRecordPathFor("m/run.pt"), "m/run.pt.json");
  EXPECT_EQ(TrainRecordPathFor("m/run.pt.ckpt-120.pt"), "m/run.pt.ckpt-120.json");
  EXPECT_EQ(TrainRecordPathFor("m/run.ckpt-x.pt"), "m/run.ckpt-x.pt.json");
  EXPECT_EQ(TrainRecordPathFor("m/run.ckpt-.pt"), "m/run.ckpt-.pt.json");
  EXPECT_EQ(TrainRecordPathFor("model.onnx"), "model.onnx.json");
}

}  // namespace
}  // namespace nd
