// nd-report: the pieces (top-K keeper, masked tiles, result-file readers, HTML escaping) on
// fixtures small enough to check by hand, then end to end: `nd-pipeline up` on a generated
// Broden with the planted colour model (tests/fixtures/make_planted_model.py), then nd-report, then
// the page itself, and, where /usr/bin/chromium exists, the page as a headless browser renders it.
#include <gtest/gtest.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <map>
#include <opencv2/core.hpp>
#include <opencv2/imgcodecs.hpp>
#include <random>
#include <regex>
#include <set>
#include <sstream>
#include <string>
#include <vector>

#include "common/broden/broden_dataset.h"
#include "tests/testing/e2e_support.h"
#include "tests/testing/status_assertions.h"
#include "tools/report/report_builder.h"
#include "tools/report/report_html.h"

namespace {

namespace fs = std::filesystem;
using nd_e2e::Read;
using nd_e2e::Result;
using nd_e2e::Sh;

size_t Count(const std::string& text, const std::string& needle) {
  size_t n = 0;
  for (size_t at = text.find(needle); at != std::string::npos; at = text.find(needle, at + 1)) ++n;
  return n;
}

// The number after "\"key\": " in summary.json.
long JsonInteger(const std::string& json, const std::string& key) {
  size_t at = json.find("\"" + key + "\": ");
  if (at == std::string::npos) return -1;
  return std::stol(json.substr(at + key.size() + 4));
}

// The value of attribute `attr` on the first element whose start tag contains `where`.
std::string Attribute(const std::string& html, const std::string& where, const std::string& attr) {
  size_t at = html.find(where);
  if (at == std::string::npos) return "";
  size_t start = html.rfind('<', at), end = html.find('>', at);
  std::string tag = html.substr(start, end - start);
  size_t a = tag.find(" " + attr + "=\"");
  if (a == std::string::npos) return "";
  a += attr.size() + 3;
  return tag.substr(a, tag.find('"', a) - a);
}

// ---- The pieces ----

TEST(UnitTopImagesTest, KeepsTheBestKByMaxThenRowWhateverTheOfferOrder) {
  std::mt19937 rng(7);
  std::uniform_int_distribution<int> value(0, 20);  // many ties, so the row tie-break matters
  std::vector<std::pair<float, uint32_t>> all;
  for (uint32_t row = 0; row < 200; ++row) all.emplace_back(static_cast<float>(value(rng)), row);
  std::vector<std::pair<float, uint32_t>> expected = all;
  std::sort(expected.begin(), expected.end(), [](const auto& a, const auto& b) {
    return nd::RanksBefore(a.first, a.second, b.first, b.second);
  });
  expected.resize(10);
  for (int trial = 0; trial < 5; ++trial) {
    std::shuffle(all.begin(), all.end(), rng);
    // Two shards merged, as the scan's threads do.
    nd::UnitTopImages a(10), b(10);
    for (size_t i = 0; i < all.size(); ++i) {
      const float map[2] = {all[i].first, static_cast<float>(all[i].second)};
      (i % 3 ? a : b).Offer(all[i].first, all[i].second, map, 2);
    }
    a.Merge(std::move(b));
    std::vector<nd::TopImage> got = a.Sorted();
    ASSERT_EQ(got.size(), 10u);
    for (size_t k = 0; k < 10; ++k) {
      EXPECT_EQ(got[k].max, expected[k].first) << "rank " << k;
      EXPECT_EQ(got[k].row, expected[k].second) << "rank " << k;
      // The map travels with its image.
      EXPECT_EQ(got[k].map[1], static_cast<float>(expected[k].second));
    }
  }
}

TEST(UnitTopImagesTest, MaxIgnoresNan) {
  const float v[4] = {NAN, 1.5f, NAN, -2.0f};
  EXPECT_EQ(nd::MaxIgnoringNan(v, 4), 1.5f);
  const float nans[2] = {NAN, NAN};
  EXPECT_TRUE(std::isinf(nd::MaxIgnoringNan(nans, 2)));
}

// A 2×2 map [[1,0],[0,0]] upsampled to a 4×4 photo (half-pixel centres, edge clamping) is
//   1     .75   .25  0
//   .75   .5625 .1875 0
//   .25   .1875 .0625 0
//   0     0     0     0
// so at T = 0.5 the mask is the top-left 2×2 block; the rest is dimmed to 20%.
TEST(RenderMaskedTileTest, KeepsTheMaskAndDimsTheRestToTwentyPercent) {
  cv::Mat photo(4, 4, CV_8UC3, cv::Scalar(200, 100, 50));
  const float map[4] = {1, 0, 0, 0};
  cv::Mat tile(4, 4, CV_8UC3);
  EXPECT_EQ(nd::RenderMaskedTile(photo, map, 2, 2, 0.5, tile), 4);
  for (int y = 0; y < 4; ++y) {
    for (int x = 0; x < 4; ++x) {
      const cv::Vec3b px = tile.at<cv::Vec3b>(y, x);
      if (y < 2 && x < 2) {
        EXPECT_EQ(px, cv::Vec3b(200, 100, 50)) << y << "," << x;
      } else {
        EXPECT_EQ(px, cv::Vec3b(40, 20, 10)) << y << "," << x;
      }
    }
  }
  // T at the map's maximum: the mask is empty (strict >), everything is dimmed.
  EXPECT_EQ(nd::RenderMaskedTile(photo, map, 2, 2, 1.0, tile), 0);
  EXPECT_EQ(tile.at<cv::Vec3b>(0, 0), cv::Vec3b(40, 20, 10));
}

TEST(RenderMaskedTileTest, LetterboxesAWidePhotoIntoTheSquare) {
  cv::Mat photo(2, 8, CV_8UC3, cv::Scalar(255, 255, 255));
  const float map[1] = {5};
  cv::Mat tile(8, 8, CV_8UC3);
  EXPECT_EQ(nd::RenderMaskedTile(photo, map, 1, 1, 0.0, tile), 16);
  EXPECT_EQ(tile.at<cv::Vec3b>(4, 4), cv::Vec3b(255, 255, 255));  // the photo, centred
  EXPECT_NE(tile.at<cv::Vec3b>(0, 4), cv::Vec3b(255, 255, 255));  // the band above it
}

class ResultFilesTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::temp_directory_path() / ("nd_report_files_" + std::to_string(::getpid()));
    fs::create_directories(dir_);
  }
  void TearDown() override { fs::remove_all(dir_); }
  fs::path dir_;
};

TEST_F(ResultFilesTest, TallyIsReadByHeaderNameAndIndexedByUnit) {
  std::ofstream(dir_ / "tally.csv")
      << "unit,category,label,score,color-label,color-truth,color-activation,color-intersect,"
         "color-iou,object-label,object-truth,object-activation,object-intersect,object-iou\r\n"
      << "2,color,red-c,0.5,red-c,1.0,2.0,1.0,0.5,sky,3.0,4.0,1.0,0.1\r\n"
      << "1,object,sky,0.25,blue-c,1.0,2.0,0.0,0.0,sky,3.0,4.0,1.0,0.25\r\n";
  auto tally = nd::ReadTallyFile((dir_ / "tally.csv").string());
  ND_ASSERT_OK(tally);
  EXPECT_EQ(tally->categories, (std::vector<std::string>{"color", "object"}));
  ASSERT_EQ(tally->units.size(), 2u);
  EXPECT_EQ(tally->units[0].unit, 1);
  EXPECT_EQ(tally->units[0].label, "sky");
  EXPECT_EQ(tally->units[1].cat_label[1], "sky");
  EXPECT_DOUBLE_EQ(tally->units[1].cat_iou[1], 0.1);
}

TEST_F(ResultFilesTest, MissingOrMalformedFilesAreOneLineErrorsNamingTheFile) {
  auto missing = nd::ReadTallyFile((dir_ / "nope" / "tally.csv").string());
  ASSERT_FALSE(missing.ok());
  EXPECT_NE(missing.status().message().find("nope/tally.csv: not found"), std::string::npos)
      << missing.status().message();
  std::ofstream(dir_ / "tally.csv") << "unit,category,label,score\n1,color,red-c,0.5\n"
                                    << "1,color,red-c,0.5\n";
  auto repeated = nd::ReadTallyFile((dir_ / "tally.csv").string());
  ASSERT_FALSE(repeated.ok());
  EXPECT_NE(repeated.status().message().find("tally.csv:3"), std::string::npos)
      << repeated.status().message();
  std::ofstream(dir_ / "thresholds.csv") << "unit,threshold\n0,0.5\n2,abc\n";
  auto bad = nd::ReadThresholdsFile((dir_ / "thresholds.csv").string());
  ASSERT_FALSE(bad.ok());
  EXPECT_NE(bad.status().message().find("thresholds.csv:3"), std::string::npos)
      << bad.status().message();
  EXPECT_EQ(bad.status().message().find('\n'), std::string::npos);
}

TEST(ReportHtmlTest, LabelsAndPathsAreEscaped) {
  nd::ReportPage page;
  page.model = "/m/<model>.pt";
  page.categories = {"object"};
  nd::ReportSection s;
  s.id = s.title = s.layer = "layer4";
  s.units = 1;
  s.unique_per_category = {0};
  s.detectors_per_category = {0};
  s.label_detectors = {{}};
  nd::UnitCard c;
  c.unit = 1;
  c.label = "a<b>&\"c";
  c.category = "object";
  s.cards.push_back(c);
  page.sections.push_back(s);
  const std::string html = nd::RenderReportHtml(page);
  EXPECT_EQ(html.find("a<b>"), std::string::npos);
  EXPECT_NE(html.find("a&lt;b&gt;&amp;&quot;c"), std::string::npos);
  EXPECT_NE(html.find("&lt;model&gt;"), std::string::npos);
  EXPECT_EQ(Count(html, "<article class=\"card"), 1u);
  EXPECT_EQ(html.find("http"), std::string::npos) << "no network references";
}

// Issue 14: explanations.csv and stats.csv are read when present (quoted formulas, empty columns
// of a part that did not run) and shown on the unit cards.
TEST_F(ResultFilesTest, AnalysisFilesAreReadWhenPresent) {
  std::vector<nd::UnitAnalysis> none(2);
  ND_ASSERT_OK(nd::ReadAnalysisFiles(dir_.string(), &none));
  EXPECT_TRUE(none[0].explanation.empty());
  EXPECT_FALSE(none[0].has_interval);
  std::ofstream(dir_ / "explanations.csv")
      << "unit,formula,iou,length,primitive,primitive_iou\n"
      << "1,\"(a,b OR sky)\",0.5,2,sky,0.25\n2,grass,0.125,1,grass,0.125\n";
  std::ofstream(dir_ / "stats.csv")
      << "unit,label,iou,iou_low,iou_high,stability,p_value,q_value,null_mean,p_max,q_max\n"
      << "1,sky,0.25,,,,0.001,0.002,0.01,0.01,0.02\n2,grass,0.125,,,,0.5,0.5,0.1,0.6,0.6\n";
  std::vector<nd::UnitAnalysis> a(2);
  ND_ASSERT_OK(nd::ReadAnalysisFiles(dir_.string(), &a));
  EXPECT_EQ(a[0].explanation, "(a,b OR sky)");
  EXPECT_EQ(a[0].explanation_length, 2);
  EXPECT_DOUBLE_EQ(a[1].explanation_iou, 0.125);
  EXPECT_FALSE(a[0].has_interval);
  EXPECT_TRUE(a[0].has_p);
  EXPECT_DOUBLE_EQ(a[0].q_value, 0.002);
  EXPECT_TRUE(a[1].has_max);
  EXPECT_DOUBLE_EQ(a[1].p_max, 0.6);
  std::vector<nd::UnitAnalysis> one(1);
  EXPECT_FALSE(nd::ReadAnalysisFiles(dir_.string(), &one).ok()) << "unit 2 outside 1..1";
}

TEST(ReportHtmlTest, CardsShowExplanationIntervalStabilityAndSignificance) {
  nd::ReportPage page;
  page.categories = {"object"};
  nd::ReportSection s;
  s.id = s.title = s.layer = "layer4";
  s.units = 1;
  s.significant_detectors = 1;
  s.unique_per_category = {0};
  s.detectors_per_category = {0};
  s.label_detectors = {{}};
  nd::UnitCard c;
  c.unit = 1;
  c.label = "sky";
  c.category = "object";
  c.analysis.explanation = "(sky AND NOT blue-c)";
  c.analysis.explanation_iou = 0.5;
  c.analysis.has_interval = true;
  c.analysis.iou_low = 0.125;
  c.analysis.iou_high = 0.25;
  c.analysis.stability = 0.75;
  c.analysis.has_p = true;
  c.analysis.p_value = 0.001;
  c.analysis.q_value = 0.01;
  c.analysis.has_max = true;
  c.analysis.p_max = 0.5;
  c.analysis.q_max = 0.5;
  s.cards.push_back(c);
  page.sections.push_back(s);
  const std::string html = nd::RenderReportHtml(page);
  EXPECT_NE(html.find("explained by <b>(sky AND NOT blue-c)</b> IoU 0.500"), std::string::npos);
  EXPECT_NE(html.find("95% interval 0.125&ndash;0.250 &middot; label stability 0.75"),
            std::string::npos);
  EXPECT_NE(html.find("data-q=\""), std::string::npos);
  EXPECT_NE(html.find("max null <span class=\"nonsig\">p 0.5, q 0.5</span>"), std::string::npos);
  EXPECT_NE(html.find("significant detectors (q &lt; 0.05)"), std::string::npos);
}

// ---- End to end ----

class ReportE2eTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    root_ = fs::temp_directory_path() / ("nd_report_e2e_" + std::to_string(::getpid()));
    fs::create_directories(root_);
    Result gen = Sh(std::string(ND_BIN_DIR) + "/nd-make-broden --out " +
                    (root_ / "broden").string() + " --images 48 --seed 11 --size 224");
    ASSERT_EQ(gen.code, 0) << gen.output;
    Result model = Sh("/usr/bin/python3 " + std::string(ND_SOURCE_DIR) +
                      "/tests/fixtures/make_planted_model.py " + (root_ / "planted.pt").string());
    ASSERT_EQ(model.code, 0) << model.output;
    std::ofstream(root_ / "pipeline.toml")
        << "[dataset]\npath = \"" << (root_ / "broden").string() << "\"\n"
        << "[model]\npath = \"" << (root_ / "planted.pt").string() << "\"\n"
        << "layers = [\"detect\"]\nbatch_size = 8\n"
        << "[threshold]\nquantile = 0.05\n"
        << "[cache]\ndir = \"" << (root_ / "cache").string() << "\"\n"
        << "[output]\ndir = \"" << (root_ / "out").string() << "\"\n"
        << "[run]\ntimeout_s = 60\n";
    Result up = Sh(std::string(ND_BIN_DIR) + "/nd-pipeline up -c " + Config());
    ASSERT_EQ(up.code, 0) << up.output;
    Result report = Sh(std::string(ND_BIN_DIR) + "/nd-report -c " + Config());
    ASSERT_EQ(report.code, 0) << report.output;
    report_output_ = report.output;
  }
  static void TearDownTestSuite() { fs::remove_all(root_); }
  static std::string Config() { return (root_ / "pipeline.toml").string(); }
  static fs::path Report() { return root_ / "out" / "report"; }

  static fs::path root_;
  static std::string report_output_;
};

fs::path ReportE2eTest::root_;
std::string ReportE2eTest::report_output_;

TEST_F(ReportE2eTest, PageHasOneAnchoredCardPerUnitAndCountsMatchSummary) {
  const std::string html = Read(Report() / "index.html");
  ASSERT_FALSE(html.empty()) << report_output_;
  EXPECT_EQ(Count(html, "<article class=\"card"), 5u);
  for (int unit = 1; unit <= 5; ++unit)
    EXPECT_EQ(Count(html, "id=\"detect-unit-" + std::to_string(unit) + "\""), 1u) << unit;
  EXPECT_EQ(Count(html, "id=\"detect-unit-0\""), 0u) << "units are 1-based";
  EXPECT_EQ(Attribute(html, "id=\"detect-unit-3\"", "data-unit"), "3");
  const std::string summary = Read(root_ / "out" / "detect" / "summary.json");
  const std::string section = "<section class=\"layer\" id=\"detect\"";
  EXPECT_EQ(std::stol(Attribute(html, section, "data-detectors")),
            JsonInteger(summary, "detectors"));
  EXPECT_EQ(std::stol(Attribute(html, section, "data-unique-paper")),
            JsonInteger(summary, "unique_detectors_paper"));
  EXPECT_EQ(std::stol(Attribute(html, section, "data-unique-top-label")),
            JsonInteger(summary, "unique_detectors_top_label"));
  // Each card carries its unit's label from tally.csv, and the planted green unit (unit 1) names
  // green-c: as its label, or among the runner-up labels when another category scores higher.
  std::istringstream tally(Read(root_ / "out" / "detect" / "tally.csv"));
  std::string line;
  std::getline(tally, line);
  size_t rows = 0;
  while (std::getline(tally, line)) {
    std::vector<std::string> cells;
    std::stringstream ss(line);
    std::string cell;
    while (std::getline(ss, cell, ',')) cells.push_back(cell);
    ASSERT_GE(cells.size(), 3u) << line;
    EXPECT_EQ(Attribute(html, "id=\"detect-unit-" + cells[0] + "\"", "data-label"), cells[2]);
    ++rows;
  }
  EXPECT_EQ(rows, 5u);
  const size_t card1 = html.find("id=\"detect-unit-1\"");
  ASSERT_NE(card1, std::string::npos);
  const std::string card = html.substr(card1, html.find("</article>", card1) - card1);
  EXPECT_NE(card.find("green-c"), std::string::npos) << card;
  EXPECT_EQ(html.find("http://"), std::string::npos);
  EXPECT_EQ(html.find("https://"), std::string::npos);
}

TEST_F(ReportE2eTest, EveryReferencedImageExistsAndIsLazy) {
  const std::string html = Read(Report() / "index.html");
  std::regex img("<img ([^>]*)>");
  size_t images = 0;
  for (auto it = std::sregex_iterator(html.begin(), html.end(), img); it != std::sregex_iterator();
       ++it) {
    const std::string attrs = (*it)[1];
    std::smatch src;
    ASSERT_TRUE(std::regex_search(attrs, src, std::regex("src=\"([^\"]+)\""))) << attrs;
    EXPECT_TRUE(fs::is_regular_file(Report() / src[1].str())) << src[1];
    EXPECT_NE(attrs.find("loading=\"lazy\""), std::string::npos) << attrs;
    ++images;
  }
  EXPECT_EQ(images, 5u);
  // Ten tiles of 112 px and nine 4-px gaps.
  cv::Mat strip = cv::imread((Report() / "img" / "detect" / "unit1.jpg").string());
  ASSERT_FALSE(strip.empty());
  EXPECT_EQ(strip.cols, 10 * 112 + 9 * nd::kTileGap);
  EXPECT_EQ(strip.rows, 112);
}

TEST_F(ReportE2eTest, PlantedGreenUnitsTopTileIsAnImageWithGreenKeptBright) {
  // images.csv: unit,rank,row,image,max_activation; unit 1 is the green-c unit.
  std::istringstream index(Read(Report() / "img" / "detect" / "images.csv"));
  std::string line;
  std::getline(index, line);
  EXPECT_EQ(line, "unit,rank,row,image,max_activation");
  int top_row = -1;
  std::vector<double> maxes;
  size_t rows = 0;
  while (std::getline(index, line)) {
    ++rows;
    std::vector<std::string> cells;
    std::stringstream ss(line);
    std::string cell;
    while (std::getline(ss, cell, ',')) cells.push_back(cell);
    ASSERT_EQ(cells.size(), 5u) << line;
    if (cells[0] != "1") continue;
    maxes.push_back(std::stod(cells[4]));
    if (cells[1] == "1") top_row = std::stoi(cells[2]);
  }
  EXPECT_EQ(rows, 50u) << "5 units x 10 images";
  ASSERT_GE(top_row, 0);
  EXPECT_TRUE(std::is_sorted(maxes.rbegin(), maxes.rend())) << "best first";
  // The image's colour labels contain green-c.
  auto dataset = nd::BrodenDataset::Open((root_ / "broden").string());
  ND_ASSERT_OK(dataset);
  int green = -1;
  for (const auto& l : dataset->labels())
    if (l.name == "green-c") green = l.number;
  auto labels = dataset->ReadLabels(top_row);
  ND_ASSERT_OK(labels);
  const int color = dataset->CategoryIndex("color");
  size_t green_pixels = 0;
  for (size_t k = 0; k < labels->layers.size(); ++k)
    if (labels->layer_category[k] == color)
      green_pixels += std::count(labels->layers[k].begin(), labels->layers[k].end(), green);
  EXPECT_GT(green_pixels, 0u) << "row " << top_row;
  // And the first tile shows green at full brightness (inside the mask) and dimmed pixels
  // (outside it): dimmed pixels are at most 20% of 255.
  cv::Mat strip = cv::imread((Report() / "img" / "detect" / "unit1.jpg").string());
  ASSERT_FALSE(strip.empty());
  cv::Mat tile = strip(cv::Rect(0, 0, 112, 112));
  int bright_green = 0, dim = 0;
  for (int y = 0; y < tile.rows; ++y)
    for (int x = 0; x < tile.cols; ++x) {
      const cv::Vec3b p = tile.at<cv::Vec3b>(y, x);  // BGR
      if (p[1] > 110 && p[1] > p[2] + 40 && p[1] > p[0] + 40) ++bright_green;
      if (std::max({p[0], p[1], p[2]}) < 60) ++dim;
    }
  EXPECT_GT(bright_green, 20);
  EXPECT_GT(dim, 20);
}

TEST_F(ReportE2eTest, SeveralQuantilesGiveOneSectionEach) {
  Result up =
      Sh(std::string(ND_BIN_DIR) + "/nd-pipeline up -c " + Config() +
         " --set 'threshold.quantile=[0.05, 0.1]' --set output.dir=" + (root_ / "out2").string());
  ASSERT_EQ(up.code, 0) << up.output;
  Result report =
      Sh(std::string(ND_BIN_DIR) + "/nd-report -c " + Config() +
         " --set 'threshold.quantile=[0.05, 0.1]' --set output.dir=" + (root_ / "out2").string() +
         " --top 3");
  ASSERT_EQ(report.code, 0) << report.output;
  const std::string html = Read(root_ / "out2" / "report" / "index.html");
  EXPECT_EQ(Count(html, "<article class=\"card"), 10u);
  EXPECT_EQ(Count(html, "id=\"detect-q0.1-unit-5\""), 1u);
  EXPECT_TRUE(
      fs::is_regular_file(root_ / "out2" / "report" / "img" / "detect-q0.05" / "unit5.jpg"));
  cv::Mat strip =
      cv::imread((root_ / "out2" / "report" / "img" / "detect-q0.1" / "unit2.jpg").string());
  EXPECT_EQ(strip.cols, 3 * 112 + 2 * nd::kTileGap);
}

TEST_F(ReportE2eTest, MissingResultsAreAOneLineErrorNamingTheFile) {
  Result r = Sh(std::string(ND_BIN_DIR) + "/nd-report -c " + Config() +
                " --set output.dir=" + (root_ / "never_run").string());
  EXPECT_EQ(r.code, 1);
  EXPECT_NE(r.output.find("nd-report: " + (root_ / "never_run" / "detect" / "tally.csv").string() +
                          ": not found"),
            std::string::npos)
      << r.output;
  EXPECT_EQ(Count(r.output, "\n"), 1u) << r.output;
  Result bad = Sh(std::string(ND_BIN_DIR) + "/nd-report -c " + Config() + " --top 0");
  EXPECT_EQ(bad.code, 2) << bad.output;
  EXPECT_NE(bad.output.find("--top"), std::string::npos) << bad.output;
}

TEST_F(ReportE2eTest, PhotoChangedSinceTheRunIsLeftOutAndCounted) {
  // A changed file has another digest, so its cached activation is not found: the report leaves
  // the image out, says so, and still has every card.
  auto dataset = nd::BrodenDataset::Open((root_ / "broden").string());
  ND_ASSERT_OK(dataset);
  const fs::path photo = root_ / "broden" / "images" / dataset->images()[0].image;
  const std::string bytes = Read(photo);
  std::ofstream(photo, std::ios::binary | std::ios::app) << "trailing bytes";
  Result r = Sh(std::string(ND_BIN_DIR) + "/nd-report -c " + Config() + " --out " +
                (root_ / "changed").string());
  std::ofstream(photo, std::ios::binary | std::ios::trunc) << bytes;  // restore for other tests
  ASSERT_EQ(r.code, 0) << r.output;
  EXPECT_NE(r.output.find("1 image(s) without cached activations left out"), std::string::npos)
      << r.output;
  EXPECT_EQ(Count(Read(root_ / "changed" / "index.html"), "<article class=\"card"), 5u);
  const std::string index = Read(root_ / "changed" / "img" / "detect" / "images.csv");
  EXPECT_EQ(index.find(",0," + dataset->images()[0].image + ","), std::string::npos) << index;
  EXPECT_EQ(Count(index, "\n"), 51u);
}

TEST_F(ReportE2eTest, HeadlessChromiumRendersEveryCardAndLoadsEveryImage) {
  if (!fs::exists("/usr/bin/chromium")) GTEST_SKIP() << "no /usr/bin/chromium";
  const fs::path profile = root_ / "chromium-profile";
  const std::string flags =
      "/usr/bin/chromium --headless --no-sandbox --disable-gpu --disable-quic --no-first-run "
      "--disable-background-networking --disable-component-update --disable-sync "
      "--disable-dev-shm-usage --user-data-dir=" +
      profile.string() + " --virtual-time-budget=5000 ";
  const std::string url = "file://" + (Report() / "index.html").string();
  Result dom = Sh(flags + "--dump-dom '" + url + "?eager=1'", 120);
  ASSERT_EQ(dom.code, 0) << dom.output;
  EXPECT_EQ(Count(dom.output, "<article class=\"card"), 5u) << dom.output.substr(0, 2000);
  EXPECT_EQ(Attribute(dom.output, "<body", "data-loaded"), "5") << dom.output.substr(0, 600);
  EXPECT_EQ(Attribute(dom.output, "<body", "data-failed"), "0");
  // The script ran: it wrote how many cards each section shows.
  EXPECT_NE(dom.output.find("showing 5 of 5 units"), std::string::npos);
  // A screenshot into the build tree, for people to look at.
  const fs::path shot = fs::path(ND_BIN_DIR).parent_path() / "report_test_screenshot.png";
  fs::remove(shot);
  Result png =
      Sh(flags + "--window-size=1400,1000 --screenshot=" + shot.string() + " '" + url + "'", 120);
  EXPECT_EQ(png.code, 0) << png.output;
  EXPECT_TRUE(fs::is_regular_file(shot)) << png.output;
}

}  // namespace
