// Incremental re-dissection through the real launcher: after one run has filled the activation
// cache, `nd-pipeline rescore` under a new quantile, IoU cut-off, union rule, category selection,
// an expanded concept set (nd-make-broden --expand-from) or several quantiles at once runs no
// forward pass, and its tally.csv / thresholds.csv are byte-identical to a cold run of the same
// settings in a fresh cache. A dataset with more images runs only the new ones; a changed model
// file runs everything. Datasets are generated here (nd-make-broden, 128 px) and the model is
// tests/fixtures/make_planted_model.py's colour-detector network (layer `detect`, 5 units). One
// cold run in SetUpTestSuite fills a cache; each test rescores from its own copy of it.
#include <gtest/gtest.h>
#include <sys/wait.h>
#include <unistd.h>

#include <array>
#include <atomic>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <ctime>
#include <filesystem>
#include <fstream>
#include <map>
#include <set>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "cache/activation_cache.h"
#include "cache/cache_keys.h"
#include "tests/testing/e2e_support.h"
#include "tests/testing/status_assertions.h"

namespace {

namespace fs = std::filesystem;
using nd_e2e::JsonNumber;
using nd_e2e::Read;
using nd_e2e::Result;
using nd_e2e::Sh;
using nd_e2e::Split;

constexpr int kImages = 40;      // the base dataset
constexpr int kMoreImages = 48;  // the same seed, more images
constexpr int kSegPixels = 64 * 64;

// Rows of a simple (unquoted) CSV, each a column-name → cell map.
std::vector<std::map<std::string, std::string>> ReadCsv(const fs::path& p) {
  std::istringstream in(Read(p));
  std::string line;
  std::getline(in, line);
  std::vector<std::string> header = Split(line, ',');
  std::vector<std::map<std::string, std::string>> rows;
  while (std::getline(in, line)) {
    if (line.empty()) continue;
    auto cells = Split(line, ',');
    std::map<std::string, std::string> row;
    for (size_t i = 0; i < header.size() && i < cells.size(); ++i) row[header[i]] = cells[i];
    rows.push_back(row);
  }
  return rows;
}

// The first line, without its line end (tally.csv ends lines with "\r\n").
std::string FirstLine(const std::string& text) {
  std::string line = text.substr(0, text.find('\n'));
  if (!line.empty() && line.back() == '\r') line.pop_back();
  return line;
}

// tally.csv rows keyed by 1-based unit.
std::map<std::string, std::map<std::string, std::string>> TallyByUnit(const fs::path& p) {
  std::map<std::string, std::map<std::string, std::string>> rows;
  for (const auto& row : ReadCsv(p)) rows[row.at("unit")] = row;
  return rows;
}

// summary.json without the lines that describe this invocation rather than the result (what ran
// through the network, timings) and without `also_drop` keys.
std::string StableSummary(const fs::path& dir, const std::vector<std::string>& also_drop = {}) {
  std::vector<std::string> drop = {"forward_images", "images_from_cache", "score_cpu_s",
                                   "score_cpu_ms_per_image", "stage_seconds"};
  drop.insert(drop.end(), also_drop.begin(), also_drop.end());
  std::istringstream in(Read(dir / "summary.json"));
  std::string line, out;
  while (std::getline(in, line)) {
    bool keep = true;
    for (const std::string& key : drop)
      if (line.find("  \"" + key + "\": ") == 0) keep = false;
    if (keep) out += line + "\n";
  }
  return out;
}

// SHA-256 of a file's bytes by coreutils (independent of nd's digest code): 64 hex digits.
std::string Sha256(const fs::path& p) {
  Result r = Sh("sha256sum " + p.string());
  return r.code == 0 ? r.output.substr(0, 64) : "";
}

class RescoreTest : public ::testing::Test {
 protected:
  // One dataset, one model and one cold run ("base": quantile 0.005, paper union, all
  // categories, cache caches/base) that every test starts from.
  static void SetUpTestSuite() {
    root_ = fs::temp_directory_path() / ("nd_rescore_" + std::to_string(::getpid()));
    fs::create_directories(root_);
    ASSERT_EQ(Generate("broden", kImages), 0);
    Result model = Sh("/usr/bin/python3 " + std::string(ND_SOURCE_DIR) +
                      "/tests/fixtures/make_planted_model.py " + (root_ / "planted.pt").string());
    ASSERT_EQ(model.code, 0) << model.output;
    Result base = Pipeline("up", "base", "broden", "base");
    ASSERT_EQ(base.code, 0) << base.output;
    ASSERT_EQ(JsonNumber(Summary("base"), "forward_images"), kImages) << Summary("base");
    ASSERT_NE(base.output.find(CachedLine(0, kImages, root_ / "planted.pt")), std::string::npos)
        << base.output;
    ready_ = true;
  }
  static void TearDownTestSuite() { fs::remove_all(root_); }
  void SetUp() override { ASSERT_TRUE(ready_) << "the suite's base run failed"; }

  static int Generate(const std::string& name, int images) {
    Result gen = Sh(std::string(ND_BIN_DIR) + "/nd-make-broden --out " + (root_ / name).string() +
                    " --images " + std::to_string(images) + " --seed 11 --size 128 --threads 2");
    EXPECT_EQ(gen.code, 0) << gen.output;
    return gen.code;
  }

  // A copy of the base run's cache as caches/<name> (each test warms its own, so tests do not
  // depend on each other's writes); returns `name`.
  static std::string WarmCache(const std::string& name) {
    fs::create_directories(root_ / "caches" / name);
    fs::copy_file(root_ / "caches" / "base" / "data.mdb", root_ / "caches" / name / "data.mdb",
                  fs::copy_options::overwrite_existing);
    return name;
  }

  // Runs `nd-pipeline <command>` (up or rescore) with a config for `name`: dataset and model under
  // root_, the cache root_/caches/<cache>, results in root_/<name>/out; `sets` are extra
  // command-line arguments (--set key=value ...).
  static Result Pipeline(const std::string& command, const std::string& name,
                         const std::string& dataset, const std::string& cache,
                         const std::string& sets = "") {
    fs::path dir = root_ / name;
    fs::create_directories(dir);
    std::ofstream(dir / "pipeline.toml")
        << "[dataset]\npath = \"" << (root_ / dataset).string() << "\"\n"
        << "[model]\npath = \"" << (root_ / "planted.pt").string() << "\"\n"
        << "layers = [\"detect\"]\nbatch_size = 8\ninput_size = 128\n"
        << "[cache]\ndir = \"" << (root_ / "caches" / cache).string() << "\"\n"
        << "[output]\ndir = \"" << (dir / "out").string() << "\"\n"
        << "[run]\ntimeout_s = 60\n";
    return Sh(std::string(ND_BIN_DIR) + "/nd-pipeline " + command + " --no-report -c " +
              (dir / "pipeline.toml").string() + " " + sets);
  }

  // The results of run `name` (one quantile): root_/<name>/out/detect.
  static fs::path Out(const std::string& name) { return root_ / name / "out" / "detect"; }
  static std::string Summary(const std::string& name) { return Read(Out(name) / "summary.json"); }

  // The decode log line that says how much of the dataset the cache held for this model.
  static std::string CachedLine(int cached, int total, const fs::path& model) {
    return "decode: " + std::to_string(cached) + " of " + std::to_string(total) +
           " images cached for model " + Sha256(model).substr(0, 12) + " (layer detect)";
  }

  // tally.csv, thresholds.csv and the result part of summary.json are identical.
  static void ExpectSameResults(const fs::path& a, const fs::path& b,
                                const std::vector<std::string>& also_drop = {}) {
    const std::string tally = Read(a / "tally.csv");
    EXPECT_GT(std::count(tally.begin(), tally.end(), '\n'), 5) << a << ": header + 5 units";
    EXPECT_EQ(tally, Read(b / "tally.csv")) << a << " vs " << b;
    const std::string thresholds = Read(a / "thresholds.csv");
    EXPECT_GT(std::count(thresholds.begin(), thresholds.end(), '\n'), 5) << a;
    EXPECT_EQ(thresholds, Read(b / "thresholds.csv")) << a << " vs " << b;
    EXPECT_EQ(StableSummary(a, also_drop), StableSummary(b, also_drop)) << a << " vs " << b;
  }

  static fs::path root_;
  static bool ready_;
};

fs::path RescoreTest::root_;
bool RescoreTest::ready_ = false;

TEST_F(RescoreTest, NewQuantileRescoresFromTheCacheLikeAColdRun) {
  Result re =
      Pipeline("rescore", "q_rescore", "broden", WarmCache("q"), "--set threshold.quantile=0.01");
  ASSERT_EQ(re.code, 0) << re.output;
  const std::string summary = Summary("q_rescore");
  EXPECT_EQ(JsonNumber(summary, "forward_images"), 0) << summary;
  EXPECT_EQ(JsonNumber(summary, "images_from_cache"), kImages) << summary;
  EXPECT_EQ(JsonNumber(summary, "quantile"), 0.01) << summary;
  EXPECT_NE(re.output.find(CachedLine(kImages, kImages, root_ / "planted.pt")), std::string::npos)
      << re.output;
  // The new quantile took effect: other thresholds than the base run's (0.005).
  EXPECT_NE(Read(Out("q_rescore") / "thresholds.csv"), Read(Out("base") / "thresholds.csv"));

  Result cold = Pipeline("up", "q_cold", "broden", "q_cold", "--set threshold.quantile=0.01");
  ASSERT_EQ(cold.code, 0) << cold.output;
  EXPECT_EQ(JsonNumber(Summary("q_cold"), "forward_images"), kImages);
  ExpectSameResults(Out("q_rescore"), Out("q_cold"));
}

// Issue 17: calibrate stores every unit's exact top tail down to threshold.tail_quantile (0.01 by
// default) under the image set; a rescore of the same images at a quantile within it takes the
// thresholds from those tails without reading an activation, and equals a cold run. A quantile
// beyond the tails reads the activations, as before.
TEST_F(RescoreTest, NewQuantileWithinTheCachedTailsReadsNoActivations) {
  const std::string cache = WarmCache("tails");
  // Digests recorded within 2 s of a file's last change are not trusted (racy-clean rule): after
  // the wait, one rescore records them, so that the next ones know every image in advance.
  std::this_thread::sleep_for(std::chrono::milliseconds(2100));
  Result first = Pipeline("rescore", "tails1", "broden", cache);
  ASSERT_EQ(first.code, 0) << first.output;
  const std::string from_tails =
      "from " + std::to_string(kImages) + " images (from the cached tails)";
  Result within = Pipeline("rescore", "tails2", "broden", cache, "--set threshold.quantile=0.0075");
  ASSERT_EQ(within.code, 0) << within.output;
  EXPECT_NE(within.output.find(from_tails), std::string::npos) << within.output;
  EXPECT_EQ(JsonNumber(Summary("tails2"), "forward_images"), 0);
  Result cold =
      Pipeline("up", "tails_cold", "broden", "tails_cold", "--set threshold.quantile=0.0075");
  ASSERT_EQ(cold.code, 0) << cold.output;
  EXPECT_EQ(cold.output.find("(from the cached tails)"), std::string::npos) << cold.output;
  ExpectSameResults(Out("tails2"), Out("tails_cold"));

  Result beyond = Pipeline("rescore", "tails3", "broden", cache, "--set threshold.quantile=0.02");
  ASSERT_EQ(beyond.code, 0) << beyond.output;
  EXPECT_EQ(beyond.output.find("(from the cached tails)"), std::string::npos) << beyond.output;
  EXPECT_NE(beyond.output.find("from " + std::to_string(kImages) + " images"), std::string::npos)
      << beyond.output;
  EXPECT_EQ(JsonNumber(Summary("tails3"), "quantile"), 0.02);
}

// Issue 17: a rescore does not read or hash an image file whose stat identity (device, inode,
// size, mtime, ctime) is unchanged since it was hashed (git's index rule); a touched file is read
// and hashed again, and decode.rehash = true hashes everything. Results never change.
TEST_F(RescoreTest, UnchangedImageFilesAreNotReadOrHashedAgain) {
  const std::string cache = WarmCache("memo");
  // Digests recorded within 2 s of a file's last change are not trusted (racy-clean rule): let the
  // generated files settle first, then one rescore records their digests.
  std::this_thread::sleep_for(std::chrono::milliseconds(2100));
  Result first = Pipeline("rescore", "memo1", "broden", cache);
  ASSERT_EQ(first.code, 0) << first.output;
  Result second = Pipeline("rescore", "memo2", "broden", cache);
  ASSERT_EQ(second.code, 0) << second.output;
  const std::string all = "(" + std::to_string(kImages) + " known unchanged, not read)";
  EXPECT_NE(second.output.find(all), std::string::npos) << second.output;
  // Every image known unchanged and cached: extract's LibTorch-free relay stands in for it.
  const std::string relay = "every image is cached: relaying them to calibrate without the network";
  EXPECT_NE(second.output.find(relay), std::string::npos) << second.output;
  ExpectSameResults(Out("memo2"), Out("base"));
  // One photo touched: its identity changed, so it is read and hashed again (same bytes: cached).
  const std::string photo = ReadCsv(root_ / "broden" / "index.csv").at(3).at("image");
  fs::last_write_time(root_ / "broden" / "images" / photo, fs::file_time_type::clock::now());
  Result touched = Pipeline("rescore", "memo3", "broden", cache);
  ASSERT_EQ(touched.code, 0) << touched.output;
  EXPECT_NE(touched.output.find("(" + std::to_string(kImages - 1) + " known unchanged, not read)"),
            std::string::npos)
      << touched.output;
  EXPECT_EQ(JsonNumber(Summary("memo3"), "forward_images"), 0);
  // The supervisor hashes the one image the memo does not know, finds its bytes cached, and the
  // relay stands in for extract all the same (decode hashes it again: its memo entry is racy).
  EXPECT_NE(touched.output.find(relay), std::string::npos) << touched.output;
  ExpectSameResults(Out("memo3"), Out("base"));
  Result forced = Pipeline("rescore", "memo4", "broden", cache, "--set decode.rehash=true");
  ASSERT_EQ(forced.code, 0) << forced.output;
  EXPECT_NE(forced.output.find("(0 known unchanged, not read)"), std::string::npos)
      << forced.output;
  EXPECT_EQ(forced.output.find(relay), std::string::npos) << forced.output;
  ExpectSameResults(Out("memo4"), Out("base"));
}

TEST_F(RescoreTest, IouCutoffUnionRuleAndCategoriesRescoreFromTheCacheLikeColdRuns) {
  const std::string cache = WarmCache("s");
  struct Variant {
    const char* name;
    const char* sets;
    const char* summary_has;  // proof that the setting reached score
  } variants[] = {
      {"iou", "--set score.iou_threshold=0.1", "\"iou_threshold\": 0.10000000000000001"},
      {"lite", "--set score.union=lite", "\"union\": \"lite\""},
      {"cats", "--set 'dataset.categories=[\"color\",\"object\"]'", "\"object\": {\"detectors\""},
  };
  for (const Variant& v : variants) {
    SCOPED_TRACE(v.name);
    const std::string re_name = std::string(v.name) + "_rescore";
    const std::string cold_name = std::string(v.name) + "_cold";
    Result re = Pipeline("rescore", re_name, "broden", cache, v.sets);
    ASSERT_EQ(re.code, 0) << re.output;
    const std::string summary = Summary(re_name);
    EXPECT_EQ(JsonNumber(summary, "forward_images"), 0) << summary;
    EXPECT_EQ(JsonNumber(summary, "images_from_cache"), kImages) << summary;
    EXPECT_NE(summary.find(v.summary_has), std::string::npos) << summary;
    Result cold = Pipeline("up", cold_name, "broden", cold_name, v.sets);
    ASSERT_EQ(cold.code, 0) << cold.output;
    EXPECT_EQ(JsonNumber(Summary(cold_name), "forward_images"), kImages);
    ExpectSameResults(Out(re_name), Out(cold_name));
    // Same activations, same quantile: the thresholds of the base run.
    EXPECT_EQ(Read(Out(re_name) / "thresholds.csv"), Read(Out("base") / "thresholds.csv"));
  }
  // Category selection: only the selected categories' columns, in category.csv order.
  const std::string base_tally = Read(Out("base") / "tally.csv");
  EXPECT_EQ(FirstLine(Read(Out("cats_rescore") / "tally.csv")),
            "unit,category,label,score,color-label,color-truth,color-activation,"
            "color-intersect,color-iou,object-label,object-truth,object-activation,"
            "object-intersect,object-iou");
  EXPECT_NE(FirstLine(base_tally).find("part-label"), std::string::npos) << base_tally;
  EXPECT_EQ(Summary("cats_rescore").find("\"part\": {"), std::string::npos);
  // The lite union changes the union counts, so some tally cell differs from the paper run.
  EXPECT_NE(Read(Out("lite_rescore") / "tally.csv"), base_tally);
}

TEST_F(RescoreTest, ExpandedConceptSetRescoresFromTheCacheLikeAColdRun) {
  Result expand = Sh(std::string(ND_BIN_DIR) + "/nd-make-broden --expand-from " +
                     (root_ / "broden").string() + " --out " + (root_ / "broden_x").string());
  ASSERT_EQ(expand.code, 0) << expand.output;

  Result re = Pipeline("rescore", "x_rescore", "broden_x", WarmCache("x"));
  ASSERT_EQ(re.code, 0) << re.output;
  const std::string summary = Summary("x_rescore");
  EXPECT_EQ(JsonNumber(summary, "forward_images"), 0) << summary;
  EXPECT_EQ(JsonNumber(summary, "images_from_cache"), kImages) << summary;
  Result cold = Pipeline("up", "x_cold", "broden_x", "x_cold");
  ASSERT_EQ(cold.code, 0) << cold.output;
  EXPECT_EQ(JsonNumber(Summary("x_cold"), "forward_images"), kImages);
  ExpectSameResults(Out("x_rescore"), Out("x_cold"));
  // Same images, same activations: the thresholds of the original dataset's run.
  EXPECT_EQ(Read(Out("x_rescore") / "thresholds.csv"), Read(Out("base") / "thresholds.csv"));

  // The new category is the last group of columns; each unit's best edge label is one of the two
  // new labels, and its truth (G) is that label's pixel count from c_edge.csv's coverage.
  const std::string header = FirstLine(Read(Out("x_rescore") / "tally.csv"));
  const std::string edge_columns = ",edge-label,edge-truth,edge-activation,edge-intersect,edge-iou";
  ASSERT_GE(header.size(), edge_columns.size());
  EXPECT_EQ(header.substr(header.size() - edge_columns.size()), edge_columns);
  EXPECT_EQ(FirstLine(Read(Out("base") / "tally.csv")).find("edge-label"), std::string::npos);
  std::map<std::string, long> edge_pixels;
  for (const auto& row : ReadCsv(root_ / "broden_x" / "c_edge.csv"))
    edge_pixels[row.at("name")] = std::lround(std::stod(row.at("coverage")) * kSegPixels);
  ASSERT_EQ(edge_pixels.size(), 2u);
  auto tally = TallyByUnit(Out("x_rescore") / "tally.csv");
  auto base = TallyByUnit(Out("base") / "tally.csv");
  ASSERT_EQ(tally.size(), 5u);
  ASSERT_EQ(base.size(), 5u);
  for (auto& [unit, row] : tally) {
    SCOPED_TRACE("unit " + unit);
    const std::string& label = row.at("edge-label");
    ASSERT_TRUE(edge_pixels.count(label)) << label;
    EXPECT_EQ(std::stol(row.at("edge-truth")), edge_pixels[label]) << label;
    // Every object pixel now also carries a part label (upper-half / lower-half), so under the
    // paper rule the part union can only grow. The other categories keep their labels, primary
    // categories and masks: their columns are the base run's.
    EXPECT_GE(std::stol(row.at("part-activation")), std::stol(base[unit].at("part-activation")));
    for (const char* cat : {"color", "object", "material", "scene", "texture"})
      for (const char* column : {"-label", "-truth", "-activation", "-intersect", "-iou"})
        EXPECT_EQ(row.at(cat + std::string(column)), base[unit].at(cat + std::string(column)))
            << cat << column;
  }
  EXPECT_NE(summary.find("\"edge\": {\"detectors\""), std::string::npos) << summary;
}

TEST_F(RescoreTest, MoreImagesRunOnlyTheNewImagesThroughTheNetwork) {
  ASSERT_EQ(Generate("broden_more", kMoreImages), 0);
  // The generator's first images do not depend on the image count: same files, same bytes.
  const auto small = ReadCsv(root_ / "broden" / "index.csv");
  const auto more = ReadCsv(root_ / "broden_more" / "index.csv");
  ASSERT_EQ(small.size(), static_cast<size_t>(kImages));
  ASSERT_EQ(more.size(), static_cast<size_t>(kMoreImages));
  for (int i = 0; i < kImages; ++i) {
    ASSERT_EQ(small[i].at("image"), more[i].at("image"));
    ASSERT_EQ(Read(root_ / "broden" / "images" / small[i].at("image")),
              Read(root_ / "broden_more" / "images" / more[i].at("image")))
        << small[i].at("image");
  }

  Result re = Pipeline("rescore", "m_rescore", "broden_more", WarmCache("m"));
  ASSERT_EQ(re.code, 0) << re.output;
  const std::string summary = Summary("m_rescore");
  EXPECT_EQ(JsonNumber(summary, "forward_images"), kMoreImages - kImages) << summary;
  EXPECT_EQ(JsonNumber(summary, "images_from_cache"), kImages) << summary;
  EXPECT_EQ(JsonNumber(summary, "images"), kMoreImages) << summary;
  EXPECT_NE(re.output.find(CachedLine(kImages, kMoreImages, root_ / "planted.pt")),
            std::string::npos)
      << re.output;
  Result cold = Pipeline("up", "m_cold", "broden_more", "m_cold");
  ASSERT_EQ(cold.code, 0) << cold.output;
  EXPECT_EQ(JsonNumber(Summary("m_cold"), "forward_images"), kMoreImages);
  ExpectSameResults(Out("m_rescore"), Out("m_cold"));
}

TEST_F(RescoreTest, ChangedModelFileMissesTheCacheAndSaysSo) {
  // The same network saved again with an extra archive member: other bytes, same function.
  const fs::path v2 = root_ / "planted_v2.pt";
  Result save =
      Sh("/usr/bin/python3 -c \"import sys, torch; m = torch.jit.load(sys.argv[1]); "
         "torch.jit.save(m, sys.argv[2], _extra_files={'note.txt': 're-saved'})\" " +
         (root_ / "planted.pt").string() + " " + v2.string());
  ASSERT_EQ(save.code, 0) << save.output;
  ASSERT_EQ(Sha256(v2).size(), 64u);
  ASSERT_NE(Sha256(v2), Sha256(root_ / "planted.pt"));

  Result re = Pipeline("rescore", "model_v2", "broden", WarmCache("model"),
                       "--set model.path=" + v2.string());
  ASSERT_EQ(re.code, 0) << re.output;
  const std::string summary = Summary("model_v2");
  EXPECT_EQ(JsonNumber(summary, "forward_images"), kImages) << summary;
  EXPECT_EQ(JsonNumber(summary, "images_from_cache"), 0) << summary;
  EXPECT_NE(re.output.find(CachedLine(0, kImages, v2)), std::string::npos) << re.output;
  // The network computes the same function, so the results are the base run's.
  ExpectSameResults(Out("model_v2"), Out("base"), {"model"});
}

TEST_F(RescoreTest, SeveralQuantilesInOneRescoreEqualSingleQuantileColdRuns) {
  Result q01 = Pipeline("up", "mq_01", "broden", "mq_01", "--set threshold.quantile=0.01");
  ASSERT_EQ(q01.code, 0) << q01.output;
  Result both = Pipeline("rescore", "mq_both", "broden", WarmCache("mq"),
                         "--set 'threshold.quantile=[0.005, 0.01]'");
  ASSERT_EQ(both.code, 0) << both.output;
  for (const char* q : {"q0.005", "q0.01"}) {
    SCOPED_TRACE(q);
    const std::string summary = Read(root_ / "mq_both" / "out" / "detect" / q / "summary.json");
    EXPECT_EQ(JsonNumber(summary, "forward_images"), 0) << summary;
    EXPECT_EQ(JsonNumber(summary, "images_from_cache"), kImages) << summary;
  }
  ExpectSameResults(root_ / "mq_both" / "out" / "detect" / "q0.005", Out("base"));
  ExpectSameResults(root_ / "mq_both" / "out" / "detect" / "q0.01", Out("mq_01"));
}

// The same network saved again with an extra archive member: other bytes (another model digest),
// the same function, so its results equal the base run's.
fs::path ResavedModel(const fs::path& model, const fs::path& out, const std::string& note) {
  Result save =
      Sh("/usr/bin/python3 -c \"import sys, torch; m = torch.jit.load(sys.argv[1]); "
         "torch.jit.save(m, sys.argv[2], _extra_files={'note.txt': sys.argv[3]})\" " +
         model.string() + " " + out.string() + " " + note);
  EXPECT_EQ(save.code, 0) << save.output;
  return out;
}

TEST_F(RescoreTest, CacheGcOlderThanDropsLayersNotUsedSinceAndKeepsTheRest) {
  const std::string cache = WarmCache("age");
  const fs::path model_a = root_ / "planted.pt";
  const fs::path model_b = ResavedModel(model_a, root_ / "planted_age.pt", "age");
  ASSERT_NE(Sha256(model_b), Sha256(model_a));
  ASSERT_EQ(Pipeline("up", "age_b", "broden", cache, "--set model.path=" + model_b.string()).code,
            0);
  const std::string bin = std::string(ND_BIN_DIR) + "/nd-pipeline cache ";
  const std::string cfg = " -c " + (root_ / "age_b" / "pipeline.toml").string();

  // Both layers were stamped by their runs: nothing is older than a day.
  Result stats = Sh(bin + "stats" + cfg);
  ASSERT_EQ(stats.code, 0) << stats.output;
  EXPECT_NE(stats.output.find("last used"), std::string::npos) << stats.output;
  Result none = Sh(bin + "gc --older-than 1d" + cfg);
  ASSERT_EQ(none.code, 0) << none.output;
  EXPECT_NE(none.output.find("deleted 0 records of 0 layer(s)"), std::string::npos) << none.output;

  // Model A's layer was last used 40 days ago.
  const std::string digest_a = Sha256(model_a);
  {
    nd::CacheOptions options;
    options.dir = (root_ / "caches" / cache).string();
    auto opened = nd::ActivationCache::Open(options);
    ND_ASSERT_OK(opened);
    std::vector<std::pair<std::string, std::string>> aged;
    ASSERT_TRUE(opened
                    ->Scan("m/",
                           [&](std::string_view key, std::string_view value) {
                             nd::LayerManifest m;
                             EXPECT_TRUE(nd::DecodeLayerManifest(value, &m).ok()) << key;
                             EXPECT_GT(m.last_used_unix, 0) << key << ": stamped by up";
                             if (m.model_digest_hex == digest_a) {
                               m.last_used_unix = std::time(nullptr) - 40 * 86400;
                               aged.emplace_back(std::string(key), nd::EncodeLayerManifest(m));
                             }
                             return true;
                           })
                    .ok());
    ASSERT_EQ(aged.size(), 1u);
    ND_ASSERT_OK(opened->PutBatch(aged));
  }
  Result bad = Sh(bin + "gc --older-than 30x" + cfg);
  EXPECT_NE(bad.code, 0);
  EXPECT_NE(bad.output.find("--older-than '30x' is not an age"), std::string::npos) << bad.output;

  Result gc = Sh(bin + "gc --older-than 30d" + cfg);
  ASSERT_EQ(gc.code, 0) << gc.output;
  // kImages activations + one threshold record (one quantile, one image set) + calibrate's tails
  // of that image set (q/) + the manifest.
  EXPECT_NE(gc.output.find("deleted " + std::to_string(kImages + 3) + " records of 1 layer(s)"),
            std::string::npos)
      << gc.output;
  EXPECT_NE(gc.output.find("deleted: detect of model " + digest_a.substr(0, 12)), std::string::npos)
      << gc.output;

  // B is intact (no forward pass); A is gone (every image runs again).
  Result rerun_b =
      Pipeline("up", "age_b2", "broden", cache, "--set model.path=" + model_b.string());
  ASSERT_EQ(rerun_b.code, 0) << rerun_b.output;
  EXPECT_EQ(JsonNumber(Summary("age_b2"), "forward_images"), 0) << Summary("age_b2");
  Result rerun_a = Pipeline("up", "age_a", "broden", cache);
  ASSERT_EQ(rerun_a.code, 0) << rerun_a.output;
  EXPECT_EQ(JsonNumber(Summary("age_a"), "forward_images"), kImages) << Summary("age_a");
  ExpectSameResults(Out("age_a"), Out("base"));
}

TEST_F(RescoreTest, CacheVerifyAndGcAreSafeWhileAPipelineWritesTheSameCache) {
  const std::string cache = WarmCache("busy");
  const fs::path model_a = root_ / "planted.pt";
  const fs::path model_c = ResavedModel(model_a, root_ / "planted_busy.pt", "busy");
  ASSERT_NE(Sha256(model_c), Sha256(model_a));

  // A cold run of model C, one image per batch (one write transaction each), in the background.
  std::atomic<bool> done{false};
  Result run;
  std::thread runner([&] {
    run = Pipeline("up", "busy_c", "broden", cache,
                   "--set model.path=" + model_c.string() + " --set model.batch_size=1");
    done = true;
  });
  const std::string bin = std::string(ND_BIN_DIR) + "/nd-pipeline cache ";
  const std::string cfg = " -c " + (root_ / "age_base.toml").string();
  std::ofstream(root_ / "age_base.toml")
      << "[dataset]\npath = \"" << (root_ / "broden").string() << "\"\n"
      << "[model]\npath = \"" << model_c.string() << "\"\nlayers = [\"detect\"]\n"
      << "[cache]\ndir = \"" << (root_ / "caches" / cache).string() << "\"\n"
      << "[output]\ndir = \"" << (root_ / "age_base_out").string() << "\"\n";

  // While it runs: drop model A's layer, and verify the cache again and again.
  Result gc = Sh(bin + "gc --keep-model " + model_c.string() + cfg);
  const bool gc_during_run = !done;
  int verifies_during_run = 0;
  for (int i = 0; i < 2000 && !done; ++i) {
    Result verify = Sh(bin + "verify" + cfg);
    if (done) break;
    EXPECT_EQ(verify.code, 0) << verify.output;
    EXPECT_NE(verify.output.find(" 0 bad"), std::string::npos) << verify.output;
    if (verify.code != 0) break;  // (the runner thread is joined below either way)
    ++verifies_during_run;
  }
  runner.join();
  ASSERT_EQ(gc.code, 0) << gc.output;
  EXPECT_TRUE(gc_during_run);
  EXPECT_GT(verifies_during_run, 0);
  EXPECT_NE(gc.output.find("deleted " + std::to_string(kImages + 3) + " records of 1 layer(s)"),
            std::string::npos)
      << gc.output;
  EXPECT_NE(gc.output.find("deleted: detect of model " + Sha256(model_a).substr(0, 12)),
            std::string::npos)
      << gc.output;

  // The run was not disturbed: all its images through the network, the base run's results.
  ASSERT_EQ(run.code, 0) << run.output;
  EXPECT_EQ(JsonNumber(Summary("busy_c"), "forward_images"), kImages) << Summary("busy_c");
  ExpectSameResults(Out("busy_c"), Out("base"), {"model"});
  Result after = Sh(bin + "verify" + cfg);
  EXPECT_EQ(after.code, 0) << after.output;
  // Verify decodes activations and manifests (thresholds are "NDT1" values without a record
  // header): C's kImages activations + its manifest; nothing of A.
  EXPECT_NE(after.output.find("checked " + std::to_string(kImages + 1) + " records: 0 bad"),
            std::string::npos)
      << after.output;
}

// The --expand-from command line; needs a dataset only (no model, no pipeline run).
TEST(ExpandFromCliTest, RejectsGeneratorFlagsAndExpandedSources) {
  const fs::path root = fs::temp_directory_path() / ("nd_expand_cli_" + std::to_string(::getpid()));
  fs::remove_all(root);
  Result gen = Sh(std::string(ND_BIN_DIR) + "/nd-make-broden --out " + (root / "broden").string() +
                  " --images 4 --seed 11 --size 64 --threads 2");
  ASSERT_EQ(gen.code, 0) << gen.output;
  const std::string bin = std::string(ND_BIN_DIR) + "/nd-make-broden --expand-from ";
  Result seed =
      Sh(bin + (root / "broden").string() + " --out " + (root / "y").string() + " --seed 3");
  EXPECT_EQ(seed.code, 2) << seed.output;
  EXPECT_EQ(seed.output,
            "nd-make-broden: --seed has no effect with --expand-from (the images are SRC's)\n");
  Result once = Sh(bin + (root / "broden").string() + " --out " + (root / "y1").string());
  ASSERT_EQ(once.code, 0) << once.output;
  Result twice = Sh(bin + (root / "y1").string() + " --out " + (root / "y2").string());
  EXPECT_EQ(twice.code, 2) << twice.output;
  EXPECT_NE(twice.output.find("category 'edge' already exists"), std::string::npos) << twice.output;
  EXPECT_FALSE(fs::exists(root / "y2"));
  fs::remove_all(root);
}

}  // namespace
