// Several models in one run ([[models]]) through the real launcher, on a generated dataset (40
// images, 128 px) and two fixture networks that share the layer name `detect`
// (tests/fixtures/make_planted_model.py: 5 colour detectors; make_random_conv_model.py: 6 random
// units). Checked: a two-model run decodes each image once and runs each model once per image
// (the stage logs, counted), and each model's results equal a single-model run of it in a fresh
// cache byte for byte; adding a third model to the series runs only the new one; the [[models]]
// tables' errors are one line naming the table and key.
#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <regex>
#include <sstream>
#include <string>
#include <utility>
#include <vector>

#include "common/base/config.h"
#include "tests/testing/e2e_support.h"
#include "tests/testing/files.h"

namespace nd {
namespace {

namespace fs = std::filesystem;
using nd_e2e::JsonNumber;
using nd_e2e::Read;
using nd_e2e::Result;
using nd_e2e::Sh;

constexpr int kImages = 40;

class ModelsE2eTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    root_ = fs::temp_directory_path() / ("nd_models_e2e_" + std::to_string(::getpid()));
    fs::create_directories(root_);
    Result gen = nd_e2e::MakeBroden(root_ / "broden", kImages, 11);
    ASSERT_EQ(gen.code, 0) << gen.output;
    for (const auto& [script, args] : std::vector<std::pair<std::string, std::string>>{
             {"make_planted_model.py", (root_ / "planted.pt").string()},
             {"make_random_conv_model.py", (root_ / "rand.pt").string()},
             {"make_random_conv_model.py", (root_ / "rand2.pt").string() + " 2,1,1,1,1,3"}}) {
      Result r = nd_e2e::RunFixture(script, args);
      ASSERT_EQ(r.code, 0) << r.output;
    }
  }
  static void TearDownTestSuite() { fs::remove_all(root_); }

  // A [[models]] table.
  static std::string Model(const std::string& name, const std::string& file) {
    return "[[models]]\nname = \"" + name + "\"\npath = \"" + (root_ / file).string() +
           "\"\ngroup = \"g\"\n";
  }

  // `nd-pipeline up --no-report` with `models` ([[models]] tables, or "" and `single` as
  // [model].path), the cache root_/caches/<cache>, results in root_/<name>/out.
  static Result Up(const std::string& name, const std::string& cache, const std::string& models,
                   const std::string& single = "") {
    fs::create_directories(root_ / name);
    std::ofstream(root_ / name / "pipeline.toml")
        << "[dataset]\npath = \"" << (root_ / "broden").string() << "\"\n"
        << "[model]\n"
        << (single.empty() ? "" : "path = \"" + (root_ / single).string() + "\"\n")
        << "layers = [\"detect\"]\nbatch_size = 8\ninput_size = 128\n"
        << "[cache]\ndir = \"" << (root_ / "caches" / cache).string() << "\"\n"
        << "[output]\ndir = \"" << (root_ / name / "out").string() << "\"\n"
        << "[run]\ntimeout_s = 60\n"
        << models;
    return Sh(std::string(ND_BIN_DIR) + "/nd-pipeline up --no-report -c " +
              (root_ / name / "pipeline.toml").string());
  }

  // summary.json without timings (they differ between any two runs) and the model's name (absent
  // without [[models]]).
  static std::string StableSummary(const fs::path& dir) {
    std::istringstream in(Read(dir / "summary.json"));
    std::string line, out;
    while (std::getline(in, line)) {
      bool keep = true;
      for (const char* key :
           {"model_name", "score_cpu_s", "score_cpu_ms_per_image", "stage_seconds"})
        if (line.find("  \"" + std::string(key) + "\": ") == 0) keep = false;
      if (keep) out += line + "\n";
    }
    return out;
  }

  // The number in the first match of `pattern` (one capture group) in `text`; -1 when none.
  static long Count(const std::string& text, const std::string& pattern) {
    std::smatch m;
    if (!std::regex_search(text, m, std::regex(pattern))) return -1;
    return std::stol(m[1].str());
  }

  static fs::path root_;
};

fs::path ModelsE2eTest::root_;

TEST_F(ModelsE2eTest, TwoModelsDecodeEachImageOnceAndEqualTwoSingleModelRuns) {
  Result two = Up("two", "two", Model("planted", "planted.pt") + Model("rand", "rand.pt"));
  ASSERT_EQ(two.code, 0) << two.output;
  // Decoded once per image, not once per model; each model ran every image once.
  EXPECT_EQ(Count(two.output, R"(decode: decoded (\d+) images)"), kImages) << two.output;
  EXPECT_EQ(Count(two.output, R"(extract: ran (\d+) images through the network)"), kImages);
  EXPECT_NE(
      two.output.find("planted " + std::to_string(kImages) + ", rand " + std::to_string(kImages)),
      std::string::npos)
      << two.output;
  for (const std::string model : {"planted", "rand"}) {
    Result one = Up("one_" + model, "one_" + model, "", model + ".pt");
    ASSERT_EQ(one.code, 0) << one.output;
    const fs::path a = root_ / "two" / "out" / model / "detect";
    const fs::path b = root_ / ("one_" + model) / "out" / "detect";
    const std::string tally = Read(a / "tally.csv");
    EXPECT_GT(std::count(tally.begin(), tally.end(), '\n'), 5) << a;
    EXPECT_EQ(tally, Read(b / "tally.csv")) << model;
    EXPECT_EQ(Read(a / "thresholds.csv"), Read(b / "thresholds.csv")) << model;
    EXPECT_EQ(StableSummary(a), StableSummary(b)) << model;
    EXPECT_EQ(JsonNumber(Read(a / "summary.json"), "forward_images"), kImages) << model;
  }
  const std::string summary = Read(root_ / "two" / "out" / "rand" / "detect" / "summary.json");
  EXPECT_NE(summary.find("\"layer\": \"detect\",\n  \"model\": \"" + (root_ / "rand.pt").string() +
                         "\",\n  \"model_name\": \"rand\",\n"),
            std::string::npos)
      << summary;
  // The two models are different networks: different unit counts.
  EXPECT_EQ(
      JsonNumber(Read(root_ / "two" / "out" / "planted" / "detect" / "summary.json"), "units"), 5);
  EXPECT_EQ(JsonNumber(Read(root_ / "two" / "out" / "rand" / "detect" / "summary.json"), "units"),
            6);
}

TEST_F(ModelsE2eTest, AddingACheckpointToTheSeriesRunsOnlyTheNewOne) {
  const std::string series = Model("planted", "planted.pt") + Model("rand", "rand.pt");
  Result first = Up("series1", "series", series);
  ASSERT_EQ(first.code, 0) << first.output;
  Result second = Up("series2", "series", series + Model("rand2", "rand2.pt"));
  ASSERT_EQ(second.code, 0) << second.output;
  EXPECT_NE(second.output.find("planted 0, rand 0, rand2 " + std::to_string(kImages)),
            std::string::npos)
      << second.output;
  const fs::path out = root_ / "series2" / "out";
  EXPECT_EQ(JsonNumber(Read(out / "planted" / "detect" / "summary.json"), "forward_images"), 0);
  EXPECT_EQ(JsonNumber(Read(out / "planted" / "detect" / "summary.json"), "images_from_cache"),
            kImages);
  EXPECT_EQ(JsonNumber(Read(out / "rand2" / "detect" / "summary.json"), "forward_images"), kImages);
  EXPECT_EQ(JsonNumber(Read(out / "rand2" / "detect" / "summary.json"), "images_from_cache"), 0);
  // The models already dissected give the same results from the cache.
  EXPECT_EQ(Read(out / "rand" / "detect" / "tally.csv"),
            Read(root_ / "series1" / "out" / "rand" / "detect" / "tally.csv"));
}

TEST(ModelsConfigTest, BadTablesGetOneLineNamingTheTableAndKey) {
  nd::testing::TempDir dir("modelscfg");
  const std::string base =
      "[dataset]\npath = \"/d\"\n[model]\nlayers = [\"layer4\"]\n[cache]\ndir = \"/c\"\n"
      "[output]\ndir = \"/o\"\n";
  const std::string one = "[[models]]\nname = \"a\"\npath = \"/a.pt\"\n";
  struct Case {
    std::string text, message;
  } cases[] = {
      {base, "[model].path: required (or [[models]] tables)"},
      {base + "[[models]]\nname = \"a\"\n", "[[models]] #1 .path: required"},
      {base + one + one, "[[models]] #2 .name: \"a\" is listed twice"},
      {base + "[[models]]\nname = \"layer4\"\npath = \"/a.pt\"\n",
       "[[models]] #1 .name: \"layer4\" is also a layer's name"},
      {base + one + "colour = 1\n", "[[models]] #1 .colour: unknown key; keys of [[models]] are"},
      {base + one + "accuracy = 1.5\n", "[[models]] #1 .accuracy: must be in [0, 1]"},
      {base + one + "digest = \"abc\"\n", "[[models]] #1 .digest: expected 64 lowercase hex"},
      {"[dataset]\npath = \"/d\"\n[model]\npath = \"/m.pt\"\n[cache]\ndir = \"/c\"\n[output]\n"
       "dir = \"/o\"\n" +
           one,
       "give either [model].path or [[models]] tables, not both"},
  };
  for (const Case& k : cases) {
    const std::string path = dir.path() + "/p.toml";
    nd::testing::WriteText(path, k.text);
    auto c = LoadConfig(path);
    ASSERT_FALSE(c.ok()) << k.text;
    EXPECT_NE(c.status().message().find(k.message), std::string::npos)
        << c.status().message() << "\nwanted: " << k.message;
    EXPECT_EQ(c.status().message().find('\n'), std::string::npos);
  }
  // A good series loads, round-trips through the run's config.toml and names its results.
  const std::string path = dir.path() + "/good.toml";
  nd::testing::WriteText(path, base + one +
                                   "group = \"base\"\nseed = 2\niteration = 100\naccuracy = 0.5\n" +
                                   "[[models]]\nname = \"b\"\npath = \"b.pt\"\n");
  auto c = LoadConfig(path);
  ASSERT_TRUE(c.ok()) << c.status().message();
  EXPECT_EQ(ResultSetNames(*c), (std::vector<std::string>{"a/layer4", "b/layer4"}));
  EXPECT_EQ(c->models[1].path, dir.path() + "/b.pt");
  const std::string again = dir.path() + "/again.toml";
  nd::testing::WriteText(again, ConfigToToml(*c));
  auto d = LoadConfig(again);
  ASSERT_TRUE(d.ok()) << d.status().message();
  ASSERT_EQ(d->models.size(), 2u);
  EXPECT_EQ(d->models[0].group, "base");
  EXPECT_EQ(d->models[0].seed, 2);
  EXPECT_EQ(d->models[0].iteration, 100);
  EXPECT_EQ(d->models[0].accuracy, 0.5);
  EXPECT_EQ(d->models[1].seed, -1);
}

}  // namespace
}  // namespace nd
