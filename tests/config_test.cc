#include "common/base/config.h"

#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>

#include "tests/testing/status_assertions.h"

namespace nd {
namespace {

namespace fs = std::filesystem;

class ConfigTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::temp_directory_path() /
           ("nd_config_test_" + std::to_string(::getpid()) + "_" +
            ::testing::UnitTest::GetInstance()->current_test_info()->name());
    fs::create_directories(dir_);
  }
  void TearDown() override { fs::remove_all(dir_); }

  std::string Write(const std::string& text) {
    std::string path = (dir_ / "pipeline.toml").string();
    std::ofstream(path) << text;
    return path;
  }

  static constexpr const char* kMinimal =
      "[dataset]\npath = \"data\"\n[model]\npath = \"m.pt\"\n"
      "[cache]\ndir = \"cache\"\n[output]\ndir = \"out\"\n";

  fs::path dir_;
};

TEST_F(ConfigTest, DefaultsApplyAndRelativePathsResolveAgainstTheFile) {
  auto c = LoadConfig(Write(kMinimal));
  ND_ASSERT_OK(c);
  EXPECT_EQ(c->dataset.path, (dir_ / "data").string());
  EXPECT_EQ(c->model.path, (dir_ / "m.pt").string());
  EXPECT_EQ(c->model.layers, std::vector<std::string>{"layer4"});
  EXPECT_EQ(c->model.input_size, 224);
  EXPECT_EQ(c->model.preprocess, "torchvision");
  EXPECT_EQ(c->threshold.quantiles, std::vector<double>{0.005});
  EXPECT_DOUBLE_EQ(c->score.iou_threshold, 0.04);
  EXPECT_EQ(c->score.union_rule, "paper");
  EXPECT_EQ(c->cache.dtype, "float16");
  EXPECT_EQ(RunDirectory(*c), (dir_ / "out" / ".run").string());
}

TEST_F(ConfigTest, OverridesWinOverTheFile) {
  std::string path = Write(std::string(kMinimal) + "[threshold]\nquantile = 0.01\n");
  auto c = LoadConfig(path, {"threshold.quantile=[0.001, 0.005]", "score.union=lite",
                             "model.layers=[\"layer3\", \"layer4\"]", "model.device=cuda:1"});
  ND_ASSERT_OK(c);
  EXPECT_EQ(c->threshold.quantiles, (std::vector<double>{0.001, 0.005}));
  EXPECT_EQ(c->score.union_rule, "lite");  // bare string accepted
  EXPECT_EQ(c->model.layers, (std::vector<std::string>{"layer3", "layer4"}));
  EXPECT_EQ(c->model.devices, std::vector<std::string>{"cuda:1"});
}

TEST_F(ConfigTest, UnknownKeyIsRejectedWithFileSectionAndKey) {
  auto c = LoadConfig(Write(std::string(kMinimal) + "[score]\niou_treshold = 0.05\n"));
  ASSERT_FALSE(c.ok());
  EXPECT_NE(c.status().message().find("pipeline.toml: [score].iou_treshold: unknown key"),
            std::string::npos)
      << c.status().message();
}

TEST_F(ConfigTest, UnknownSectionIsRejected) {
  auto c = LoadConfig(Write(std::string(kMinimal) + "[scoring]\nx = 1\n"));
  ASSERT_FALSE(c.ok());
  EXPECT_NE(c.status().message().find("pipeline.toml: [scoring]: unknown section"),
            std::string::npos)
      << c.status().message();
}

TEST_F(ConfigTest, BadValuesNameTheKeyAndTheReason) {
  struct Case {
    const char* extra;
    const char* expect;
  } cases[] = {
      {"[score]\nunion = \"both\"\n", "[score].union: \"both\" is not one of"},
      {"[threshold]\nquantile = 1.5\n", "[threshold].quantile: quantile 1.5 is not in (0, 0.5]"},
      {"[threshold]\ntail_quantile = -0.01\n", "[threshold].tail_quantile: not in [0, 0.5]"},
      {"[model]\ninput_size = \"big\"\n", "[model].input_size: expected an integer"},
      {"[model]\ndevice = \"gpu\"\n", "[model].device: \"gpu\" is not"},
      {"[cache]\ndtype = \"float64\"\n", "[cache].dtype: \"float64\" is not one of"},
  };
  for (const Case& k : cases) {
    // Later sections with the same name are a TOML error, so build each file fresh.
    std::string text = std::string("[dataset]\npath = \"d\"\n[output]\ndir = \"o\"\n") + k.extra;
    if (std::string(k.extra).find("[model]") == std::string::npos)
      text += "[model]\npath = \"m.pt\"\n";
    else
      text += "path = \"m.pt\"\n";
    if (std::string(k.extra).find("[cache]") == std::string::npos)
      text += "[cache]\ndir = \"c\"\n";
    else
      text += "dir = \"c\"\n";
    auto c = LoadConfig(Write(text));
    ASSERT_FALSE(c.ok()) << k.extra;
    EXPECT_NE(c.status().message().find(std::string("pipeline.toml: ") + k.expect),
              std::string::npos)
        << c.status().message();
  }
}

TEST_F(ConfigTest, CurveIsAutoOnOrOffAndOnNeedsTcp) {
  ND_ASSERT_OK_AND_ASSIGN(PipelineConfig c, LoadConfig(Write(kMinimal)));
  EXPECT_EQ(c.run.curve, "auto");
  ND_ASSERT_OK_AND_ASSIGN(
      c, LoadConfig(Write(kMinimal), {"run.transport=\"tcp\"", "run.curve=\"on\""}));
  EXPECT_EQ(c.run.curve, "on");
  auto bad = LoadConfig(Write(kMinimal), {"run.curve=\"yes\""});
  ASSERT_FALSE(bad.ok());
  EXPECT_NE(bad.status().message().find("[run].curve: \"yes\" is not one of"), std::string::npos)
      << bad.status().message();
  auto ipc = LoadConfig(Write(kMinimal + std::string("[run]\ncurve = \"on\"\n")));
  ASSERT_FALSE(ipc.ok());
  EXPECT_EQ(ipc.status().message(),
            "pipeline.toml: [run].curve: \"on\" needs run.transport = \"tcp\" (ipc sockets are "
            "local files)");
}

TEST_F(ConfigTest, MissingRequiredKeyIsReported) {
  auto c = LoadConfig(Write("[dataset]\npath = \"d\"\n"));
  ASSERT_FALSE(c.ok());
  EXPECT_NE(c.status().message().find("[model].path: required"), std::string::npos)
      << c.status().message();
}

TEST_F(ConfigTest, SyntaxErrorNamesLine) {
  auto c = LoadConfig(Write("[dataset]\npath = \n"));
  ASSERT_FALSE(c.ok());
  EXPECT_NE(c.status().message().find("pipeline.toml:2:"), std::string::npos)
      << c.status().message();
}

TEST_F(ConfigTest, BadOverrideIsRejected) {
  std::string path = Write(kMinimal);
  auto a = LoadConfig(path, {"score.iou_threshold"});
  ASSERT_FALSE(a.ok());
  EXPECT_NE(a.status().message().find("expected section.key=value"), std::string::npos);
  auto b = LoadConfig(path, {"score.nope=1"});
  ASSERT_FALSE(b.ok());
  EXPECT_NE(b.status().message().find("--set: [score].nope: unknown key"), std::string::npos)
      << b.status().message();
}

TEST_F(ConfigTest, MissingFileIsNotFound) {
  auto c = LoadConfig((dir_ / "absent.toml").string());
  ASSERT_FALSE(c.ok());
  EXPECT_EQ(c.status().code(), StatusCode::kNotFound);
}

TEST_F(ConfigTest, EffectiveConfigRoundTripsThroughToml) {
  auto a = LoadConfig(Write(kMinimal), {"threshold.quantile=[0.001, 0.01]", "score.union=lite",
                                        "dataset.categories=[\"object\", \"color\"]"});
  ND_ASSERT_OK(a);
  std::string text = ConfigToToml(*a);
  auto b = LoadConfig(Write(text));
  ASSERT_TRUE(b.ok()) << b.status().message() << "\n" << text;
  EXPECT_EQ(ConfigToToml(*b), text);
  EXPECT_EQ(b->dataset.categories, (std::vector<std::string>{"object", "color"}));
}

}  // namespace
}  // namespace nd

namespace nd {
namespace {

// Issue 14: [explain] and [stats] default to off, take their documented ranges, reject unknown
// keys, and round-trip through ConfigToToml (the roundtrip test above covers the defaults).
TEST_F(ConfigTest, ExplainAndStatsKeys) {
  auto d = LoadConfig(Write(kMinimal));
  ND_ASSERT_OK(d);
  EXPECT_EQ(d->explain.length, 0);
  EXPECT_EQ(d->explain.beam, 5);
  EXPECT_EQ(d->stats.bootstrap, 0);
  EXPECT_EQ(d->stats.permutations, 0);
  EXPECT_EQ(d->stats.seed, 1);
  auto c = LoadConfig(Write(std::string(kMinimal) +
                            "[explain]\nlength = 3\nbeam = 7\n"
                            "[stats]\nbootstrap = 1000\npermutations = 500\nseed = 42\n"
                            "max_null = true\n"));
  ND_ASSERT_OK(c);
  EXPECT_EQ(c->explain.length, 3);
  EXPECT_EQ(c->explain.beam, 7);
  EXPECT_EQ(c->stats.bootstrap, 1000);
  EXPECT_EQ(c->stats.permutations, 500);
  EXPECT_EQ(c->stats.seed, 42);
  EXPECT_TRUE(c->stats.max_null);
  EXPECT_FALSE(d->stats.max_null);
  EXPECT_NE(ConfigToToml(*c).find("[explain]\nlength = 3\nbeam = 7\n"), std::string::npos);
  for (const char* bad : {"explain.length=-1", "explain.beam=0", "stats.bootstrap=-5",
                          "stats.permutations=1.5", "explain.depth=3", "stats.max_null=1"}) {
    auto b = LoadConfig(Write(kMinimal), {bad});
    EXPECT_FALSE(b.ok()) << bad;
  }
}

}  // namespace
}  // namespace nd

namespace nd {
namespace {

// Issue 13: [rate] (the rating server) has documented defaults, takes its ranges, rejects unknown
// keys and bad values, resolves the answers path against the file and round-trips.
TEST_F(ConfigTest, RateKeys) {
  auto d = LoadConfig(Write(kMinimal));
  ASSERT_TRUE(d.ok()) << d.status().message();
  EXPECT_EQ(d->rate.host, "127.0.0.1");
  EXPECT_EQ(d->rate.port, 8765);
  EXPECT_EQ(d->rate.raters_per_unit, 3);
  EXPECT_EQ(d->rate.names_per_unit, 1);
  EXPECT_TRUE(d->rate.detectors_only);
  EXPECT_EQ(d->rate.catch_every, 5);
  EXPECT_DOUBLE_EQ(d->rate.min_catch_accuracy, 0.75);
  EXPECT_EQ(d->rate.token, "");
  EXPECT_EQ(d->rate.top_images, 15);
  EXPECT_EQ(RateAnswersPath(*d), (dir_ / "out" / "rate" / "answers.jsonl").string());
  auto c = LoadConfig(Write(std::string(kMinimal) +
                            "[rate]\nhost = \"0.0.0.0\"\nport = 0\nanswers = \"a/answers.jsonl\"\n"
                            "raters_per_unit = 2\nnames_per_unit = 2\ndetectors_only = false\n"
                            "max_units = 20\nseed = 9\ncatch_every = 0\n"
                            "min_catch_accuracy = 0.5\ntoken = \"s3cret_-x\"\n"
                            "top_images = 10\ntile_size = 128\n"));
  ASSERT_TRUE(c.ok()) << c.status().message();
  EXPECT_EQ(c->rate.host, "0.0.0.0");
  EXPECT_EQ(c->rate.port, 0);
  EXPECT_EQ(RateAnswersPath(*c), (dir_ / "a" / "answers.jsonl").string());
  EXPECT_EQ(c->rate.raters_per_unit, 2);
  EXPECT_FALSE(c->rate.detectors_only);
  EXPECT_EQ(c->rate.max_units, 20);
  EXPECT_EQ(c->rate.catch_every, 0);
  EXPECT_EQ(c->rate.token, "s3cret_-x");
  auto again = LoadConfig(Write(ConfigToToml(*c)));
  ASSERT_TRUE(again.ok()) << again.status().message();
  EXPECT_EQ(ConfigToToml(*again), ConfigToToml(*c));
  for (const char* bad :
       {"rate.port=70000", "rate.raters_per_unit=0", "rate.catch_every=1", "rate.seed=-1",
        "rate.min_catch_accuracy=1.5", "rate.token=a b", "rate.token=<x>", "rate.top_images=0",
        "rate.raters=3", "rate.detectors_only=1"}) {
    auto b = LoadConfig(Write(kMinimal), {bad});
    EXPECT_FALSE(b.ok()) << bad;
  }
  auto unknown = LoadConfig(Write(std::string(kMinimal) + "[rate]\nraters = 3\n"));
  ASSERT_FALSE(unknown.ok());
  EXPECT_NE(unknown.status().message().find("pipeline.toml: [rate].raters: unknown key"),
            std::string::npos)
      << unknown.status().message();
}

// Issue 15: run.backend, [slurm] (a sharded run) and [shard] (set on the job scripts' command
// lines) take their documented defaults and ranges, reject bad values naming the key, and
// round-trip through ConfigToToml.
TEST_F(ConfigTest, SlurmAndShardKeys) {
  auto d = LoadConfig(Write(kMinimal));
  ND_ASSERT_OK(d);
  EXPECT_EQ(d->run.backend, "local");
  EXPECT_EQ(d->slurm.shards, 4);
  EXPECT_EQ(d->slurm.requeue_exit, 99);
  EXPECT_EQ(d->shard.count, 0);
  EXPECT_EQ(SlurmDirectory(*d), (dir_ / "out" / ".slurm").string());
  auto c = LoadConfig(
      Write(std::string(kMinimal) + "[run]\nbackend = \"slurm\"\n"
                                    "[slurm]\npartition = \"gpu\"\nshards = 16\ngpus_per_task = 1\n"
                                    "time_limit = \"2:00:00\"\nsbatch_flags = [\"--qos=low\"]\n"
                                    "dir = \"work\"\n"),
      {"shard.count=16", "shard.index=15", "shard.phase=score", "shard.dir=/x"});
  ND_ASSERT_OK(c);
  EXPECT_EQ(c->run.backend, "slurm");
  EXPECT_EQ(c->slurm.partition, "gpu");
  EXPECT_EQ(c->slurm.shards, 16);
  EXPECT_EQ(c->slurm.gpus_per_task, 1);
  EXPECT_EQ(c->slurm.time_limit, "2:00:00");
  EXPECT_EQ(c->slurm.sbatch_flags, std::vector<std::string>{"--qos=low"});
  EXPECT_EQ(SlurmDirectory(*c), (dir_ / "work").string());
  EXPECT_EQ(c->shard.index, 15);
  EXPECT_EQ(c->shard.phase, "score");
  auto back = LoadConfig(Write(ConfigToToml(*c)));
  ND_ASSERT_OK(back);
  EXPECT_EQ(ConfigToToml(*back), ConfigToToml(*c));
  struct Bad {
    const char* set;
    const char* message;
  };
  for (const Bad& bad : {
           Bad{"run.backend=kubernetes",
               "--set: [run].backend: \"kubernetes\" is not one of \"local\", \"slurm\""},
           Bad{"slurm.shards=0", "--set: [slurm].shards: must be in [1, 10000], got 0"},
           Bad{"shard.phase=merge",
               "--set: [shard].phase: \"merge\" is not one of \"forward\", \"score\""},
       }) {
    auto b = LoadConfig(Write(kMinimal), {bad.set});
    ASSERT_FALSE(b.ok()) << bad.set;
    EXPECT_EQ(b.status().message(), bad.message);
  }
  auto index = LoadConfig(Write(kMinimal), {"shard.count=3", "shard.index=3", "shard.dir=/x"});
  ASSERT_FALSE(index.ok());
  EXPECT_EQ(index.status().message(), "pipeline.toml: [shard].index: 3 is not below shard.count 3");
  auto nodir = LoadConfig(Write(kMinimal), {"shard.count=3"});
  ASSERT_FALSE(nodir.ok());
  EXPECT_EQ(nodir.status().message(), "pipeline.toml: [shard].dir: required");
}

}  // namespace
}  // namespace nd
