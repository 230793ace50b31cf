// Views ([[view]]) through the real launcher: `nd-pipeline up` on a generated dataset (40 images,
// 128 px) and tests/fixtures/make_planted_model.py's colour detectors (layer `detect`, 5 units),
// with an identity matrix file, a rotation sweep (alpha 0, 0.5, 1) and a random 3×5 matrix written
// by NumPy. Checked: the identity file and alpha 0 give the layer's own files byte for byte; the
// matrix view equals a brute-force dissection written here from SPEC.md (the cached activations
// multiplied by the matrix NumPy printed as text, in a naive loop; thresholds from a full sort;
// masks and counts from tests/testing/score_testing.h's per-pixel reference); rescoring views with
// a new quantile runs no forward pass; the report has a section per view; a matrix of the wrong
// width stops the run with one line naming the file.
#include <gtest/gtest.h>
#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <map>
#include <sstream>
#include <string>
#include <vector>

#include "cache/activation_cache.h"
#include "cache/pipeline_keys.h"
#include "common/base/config.h"
#include "common/base/digest.h"
#include "common/broden/broden_dataset.h"
#include "tests/testing/e2e_support.h"
#include "tests/testing/score_testing.h"
#include "tests/testing/status_assertions.h"

namespace nd {
namespace {

namespace fs = std::filesystem;
using nd_e2e::JsonNumber;
using nd_e2e::Read;
using nd_e2e::Result;
using nd_e2e::Sh;
using nd_e2e::Split;

constexpr int kImages = 40;
constexpr double kQuantile = 0.005;

class ViewE2eTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    root_ = fs::temp_directory_path() / ("nd_view_e2e_" + std::to_string(::getpid()));
    fs::create_directories(root_);
    Result gen = nd_e2e::MakeBroden(root_ / "broden", kImages, 11);
    ASSERT_EQ(gen.code, 0) << gen.output;
    Result model = nd_e2e::RunFixture("make_planted_model.py", (root_ / "planted.pt").string());
    ASSERT_EQ(model.code, 0) << model.output;
    // NumPy writes the matrices (.npy) and the random one's values as text for the reference.
    Result np =
        Sh("/usr/bin/python3 -c \"import numpy as np; r = np.random.default_rng(0); "
           "w = r.standard_normal((3, 5)).astype(np.float32); np.save('" +
           (root_ / "w.npy").string() + "', w); np.save('" + (root_ / "eye.npy").string() +
           "', np.eye(5)); np.save('" + (root_ / "w4.npy").string() +
           "', np.ones((2, 4), np.float32)); open('" + (root_ / "w.txt").string() +
           "', 'w').write(' '.join(repr(float(x)) for x in w.reshape(-1)))\"");
    ASSERT_EQ(np.code, 0) << np.output;
    Result up = Pipeline("up", "base", "base", kViews);
    ASSERT_EQ(up.code, 0) << up.output;
    ready_ = true;
  }
  static void TearDownTestSuite() { fs::remove_all(root_); }
  void SetUp() override { ASSERT_TRUE(ready_) << "the suite's base run failed"; }

  static constexpr const char* kViews =
      "[[view]]\nname = \"eye\"\nlayer = \"detect\"\nbasis = \"file\"\npath = \"eye.npy\"\n"
      "[[view]]\nname = \"rot\"\nlayer = \"detect\"\nbasis = \"rotation\"\nseed = 3\n"
      "alpha = [0, 0.5, 1]\n"
      "[[view]]\nname = \"w\"\nlayer = \"detect\"\nbasis = \"file\"\npath = \"w.npy\"\n";

  static fs::path ConfigPath(const std::string& name) { return root_ / name / "pipeline.toml"; }

  // `nd-pipeline <command>` with the dataset and model under root_, the cache root_/caches/<cache>
  // and results in root_/<name>/out; `views` are appended to the config (paths relative to root_).
  static Result Pipeline(const std::string& command, const std::string& name,
                         const std::string& cache, const std::string& views,
                         const std::string& sets = "") {
    fs::create_directories(root_ / name);
    std::ofstream(ConfigPath(name))
        << "[dataset]\npath = \"" << (root_ / "broden").string() << "\"\n"
        << "[model]\npath = \"" << (root_ / "planted.pt").string() << "\"\n"
        << "layers = [\"detect\"]\nbatch_size = 8\ninput_size = 128\n"
        << "[cache]\ndir = \"" << (root_ / "caches" / cache).string() << "\"\n"
        << "[output]\ndir = \"" << (root_ / name / "out").string() << "\"\n"
        << "[run]\ntimeout_s = 60\n"
        << views;
    // Matrix files are named relative to the config's folder: link them there.
    for (const char* f : {"w.npy", "eye.npy", "w4.npy"}) {
      std::error_code ec;
      fs::create_symlink(root_ / f, root_ / name / f, ec);
    }
    return Sh(std::string(ND_BIN_DIR) + "/nd-pipeline " + command + " -c " +
              ConfigPath(name).string() + " " + sets);
  }

  static fs::path Out(const std::string& name, const std::string& set) {
    return root_ / name / "out" / set;
  }

  // summary.json without the lines that name the result set or describe the invocation.
  static std::string ResultSummary(const fs::path& dir) {
    std::istringstream in(Read(dir / "summary.json"));
    std::string line, out;
    while (std::getline(in, line)) {
      bool keep = true;
      for (const char* key :
           {"layer", "view", "score_cpu_s", "score_cpu_ms_per_image", "stage_seconds"})
        if (line.find("  \"" + std::string(key) + "\": ") == 0) keep = false;
      if (keep) out += line + "\n";
    }
    return out;
  }

  static fs::path root_;
  static bool ready_;
};

fs::path ViewE2eTest::root_;
bool ViewE2eTest::ready_ = false;

TEST_F(ViewE2eTest, IdentityFileAndAlphaZeroEqualTheLayerByteForByte) {
  const fs::path layer = Out("base", "detect");
  ASSERT_GT(Read(layer / "tally.csv").size(), 100u);
  for (const char* set : {"eye", "rot-a0"}) {
    EXPECT_EQ(Read(Out("base", set) / "tally.csv"), Read(layer / "tally.csv")) << set;
    EXPECT_EQ(Read(Out("base", set) / "thresholds.csv"), Read(layer / "thresholds.csv")) << set;
    EXPECT_EQ(ResultSummary(Out("base", set)), ResultSummary(layer)) << set;
  }
  // The other angles are other bases: other thresholds.
  EXPECT_NE(Read(Out("base", "rot-a0.5") / "thresholds.csv"), Read(layer / "thresholds.csv"));
  EXPECT_NE(Read(Out("base", "rot-a1") / "thresholds.csv"),
            Read(Out("base", "rot-a0.5") / "thresholds.csv"));
  const std::string summary = Read(Out("base", "rot-a0.5") / "summary.json");
  EXPECT_NE(summary.find("\"view\": {\"layer\": \"detect\", \"basis\": \"rotation\", \"seed\": 3, "
                         "\"alpha\": 0.5}"),
            std::string::npos)
      << summary;
  EXPECT_EQ(JsonNumber(summary, "units"), 5);
  EXPECT_EQ(JsonNumber(summary, "forward_images"), kImages);
  // The report shows every view as a section of its own.
  const std::string html = Read(root_ / "base" / "out" / "report" / "index.html");
  for (const char* id : {"detect", "eye", "rot-a0", "rot-a0.5", "rot-a1", "w"})
    EXPECT_NE(html.find("href=\"#" + std::string(id) + "\""), std::string::npos) << id;
}

TEST_F(ViewE2eTest, MatrixFileViewEqualsABruteForceDissection) {
  // W as NumPy printed it (3 × 5, float32 values widened exactly).
  std::vector<double> w;
  {
    std::istringstream in(Read(root_ / "w.txt"));
    double v;
    while (in >> v) w.push_back(v);
  }
  ASSERT_EQ(w.size(), 15u);
  ND_ASSERT_OK_AND_ASSIGN(PipelineConfig config, LoadConfig(ConfigPath("base")));
  ND_ASSERT_OK_AND_ASSIGN(std::vector<LayerId> layers, ConfiguredLayers(config));
  ND_ASSERT_OK_AND_ASSIGN(BrodenDataset dataset,
                          BrodenDataset::Open((root_ / "broden").string(), BrodenOptions{}));
  ND_ASSERT_OK_AND_ASSIGN(ActivationCache cache,
                          ActivationCache::Open(CacheOptionsFor(config, /*read_only=*/true)));
  const std::string prefix = LayerKeyPrefix(layers[0]);
  // Every image's view values v_i(p) = sum_c W[i,c] a_c(p), in double, rounded to float.
  std::vector<ActivationMap> views;
  for (size_t row = 0; row < dataset.images().size(); ++row) {
    ND_ASSERT_OK_AND_ASSIGN(
        std::string digest,
        Sha256File((root_ / "broden" / "images" / dataset.images()[row].image).string()));
    ActivationMap a;
    ND_ASSERT_OK(cache.GetActivation(ActivationKey(prefix, digest), &a));
    ASSERT_EQ(a.units, 5);
    ActivationMap v{3, a.h, a.w, std::vector<float>(3 * a.plane())};
    for (int i = 0; i < 3; ++i)
      for (size_t p = 0; p < a.plane(); ++p) {
        double sum = 0;
        for (int c = 0; c < 5; ++c) sum += w[i * 5 + c] * double(a.unit(c)[p]);
        v.unit(i)[p] = static_cast<float>(sum);
      }
    views.push_back(std::move(v));
  }
  // Thresholds: numpy's linear quantile at 1 - q of every value, from a full sort.
  std::vector<double> thresholds;
  for (int i = 0; i < 3; ++i) {
    std::vector<double> all;
    for (const ActivationMap& v : views)
      for (size_t p = 0; p < v.plane(); ++p) all.push_back(v.unit(i)[p]);
    std::sort(all.begin(), all.end());
    const double pos = (all.size() - 1) * (1 - kQuantile);
    const size_t lo = static_cast<size_t>(std::floor(pos));
    const double g = pos - lo, a = all[lo], b = all[std::min(lo + 1, all.size() - 1)];
    thresholds.push_back(g < 0.5 ? a + (b - a) * g : b - (b - a) * (1 - g));
  }
  std::vector<int> primary(dataset.num_labels(), -1);
  for (int l = 1; l < dataset.num_labels(); ++l) primary[l] = dataset.PrimaryCategory(l);
  testing_score::RefCounts ref;
  for (size_t row = 0; row < views.size(); ++row) {
    ND_ASSERT_OK_AND_ASSIGN(ImageLabels labels, dataset.ReadLabels(row));
    testing_score::RefAddImage(labels, views[row], thresholds, primary, UnionRule::kPaper, &ref);
  }
  const int num_categories = static_cast<int>(dataset.categories().size());
  const testing_score::RefResults want =
      testing_score::RefCompute(ref, 3, dataset.num_labels(), num_categories, primary, 0.04);

  // thresholds.csv: unit,threshold (0-based units).
  std::istringstream th(Read(Out("base", "w") / "thresholds.csv"));
  std::string line;
  std::getline(th, line);
  for (int i = 0; i < 3; ++i) {
    ASSERT_TRUE(std::getline(th, line));
    const auto cells = Split(line, ',');
    ASSERT_EQ(cells.size(), 2u) << line;
    EXPECT_EQ(cells[0], std::to_string(i));
    EXPECT_NEAR(std::stod(cells[1]), thresholds[i], 1e-6 * std::max(1.0, std::abs(thresholds[i])))
        << "direction " << i;
  }
  // tally.csv: each direction's label, category and IoU.
  std::istringstream tally(Read(Out("base", "w") / "tally.csv"));
  std::getline(tally, line);
  int rows = 0;
  while (std::getline(tally, line) && !line.empty() && line != "\r") {
    const auto cells = Split(line, ',');
    const int u = std::stoi(cells[0]) - 1;
    ASSERT_GE(u, 0);
    ASSERT_LT(u, 3);
    ++rows;
    EXPECT_NEAR(std::stod(cells[3]), want.unit_iou[u], 1e-9) << "direction " << u;
    if (want.label[u] > 0 && want.unit_iou[u] > 0) {
      EXPECT_EQ(cells[2], dataset.labels()[want.label[u]].name) << "direction " << u;
      EXPECT_EQ(cells[1], dataset.categories()[want.category[u]].name) << "direction " << u;
    }
  }
  EXPECT_EQ(rows, 3);
  int detectors = 0;
  for (int u = 0; u < 3; ++u) detectors += want.unit_iou[u] > 0.04;
  EXPECT_EQ(JsonNumber(Read(Out("base", "w") / "summary.json"), "detectors"), detectors);
}

TEST_F(ViewE2eTest, RescoringViewsWithANewQuantileRunsNoForwardPass) {
  fs::create_directories(root_ / "caches" / "rescore");
  fs::copy_file(root_ / "caches" / "base" / "data.mdb", root_ / "caches" / "rescore" / "data.mdb");
  Result re = Pipeline("rescore", "rescore", "rescore", kViews,
                       "--no-report --set threshold.quantile=0.01");
  ASSERT_EQ(re.code, 0) << re.output;
  for (const char* set : {"detect", "rot-a0.5", "w"}) {
    const std::string summary = Read(Out("rescore", set) / "summary.json");
    EXPECT_EQ(JsonNumber(summary, "forward_images"), 0) << set << summary;
    EXPECT_EQ(JsonNumber(summary, "images_from_cache"), kImages) << set << summary;
    EXPECT_EQ(JsonNumber(summary, "quantile"), 0.01) << set;
    EXPECT_NE(Read(Out("rescore", set) / "thresholds.csv"),
              Read(Out("base", set) / "thresholds.csv"))
        << set;
  }
}

TEST_F(ViewE2eTest, AMatrixOfTheWrongWidthStopsTheRunWithOneLineNamingTheFile) {
  Result up = Pipeline("up", "bad", "base",
                       "[[view]]\nname = \"w4\"\nlayer = \"detect\"\nbasis = \"file\"\n"
                       "path = \"w4.npy\"\n",
                       "--no-report");
  EXPECT_NE(up.code, 0) << up.output;
  EXPECT_NE(up.output.find((root_ / "bad" / "w4.npy").string() + ": 4 columns, detect has 5 units"),
            std::string::npos)
      << up.output;
}

}  // namespace
}  // namespace nd
