// The run plan (common/runtime/run_plan.h): its file round-trips, bad files are one line naming
// the file and key, and a stage's view of the dataset is checked against it.
#include "common/runtime/run_plan.h"

#include <gtest/gtest.h>

#include <string>

#include "common/base/digest.h"
#include "tests/testing/files.h"
#include "tests/testing/status_assertions.h"

namespace nd {
namespace {

using ::nd::testing::TempDir;
using ::nd::testing::WriteText;

RunPlan SamplePlan() {
  RunPlan plan;
  plan.model_digest = std::string(64, 'a');
  plan.images = 300;
  plan.index_digest = std::string(64, 'b');
  plan.curve_keys = "/run dir/curve.keys";
  plan.image_set = "0123456789abcdef";
  plan.endpoints = {"ipc:///tmp/r/events.sock", "ipc:///tmp/r/images.sock",
                    "ipc:///tmp/r/ready.sock", "ipc:///tmp/r/scored.sock", "tcp://127.0.0.1:5555"};
  plan.layers = {{"layer3", std::string(32, 'c')}, {"layer \"4\"", std::string(32, 'd')}};
  return plan;
}

TEST(RunPlanTest, RoundTripsEveryField) {
  TempDir dir("run_plan");
  const RunPlan plan = SamplePlan();
  ASSERT_TRUE(WriteText(dir / "plan.toml", FormatRunPlan(plan)));
  ND_ASSERT_OK_AND_ASSIGN(const RunPlan back, ReadRunPlan((dir / "plan.toml").string()));
  EXPECT_EQ(back.model_digest, plan.model_digest);
  EXPECT_EQ(back.images, 300u);
  EXPECT_EQ(back.index_digest, plan.index_digest);
  EXPECT_EQ(back.curve_keys, "/run dir/curve.keys");
  EXPECT_EQ(back.image_set, "0123456789abcdef");
  EXPECT_EQ(back.endpoints.events, "ipc:///tmp/r/events.sock");
  EXPECT_EQ(back.endpoints.images, "ipc:///tmp/r/images.sock");
  EXPECT_EQ(back.endpoints.ready, "ipc:///tmp/r/ready.sock");
  EXPECT_EQ(back.endpoints.scored, "ipc:///tmp/r/scored.sock");
  EXPECT_EQ(back.endpoints.metrics, "tcp://127.0.0.1:5555");
  ASSERT_EQ(back.layers.size(), 2u);
  EXPECT_EQ(back.layers[0].name, "layer3");
  EXPECT_EQ(back.layers[1].name, "layer \"4\"");  // quotes survive the TOML string
  EXPECT_EQ(back.layers[1].hash, std::string(32, 'd'));
}

TEST(RunPlanTest, BadFilesNameTheFileAndTheKey) {
  TempDir dir("run_plan_bad");
  const std::string path = (dir / "plan.toml").string();
  EXPECT_EQ(ReadRunPlan(path).status().code(), StatusCode::kNotFound);
  const std::string good = FormatRunPlan(SamplePlan());
  auto error = [&](const std::string& text) {
    EXPECT_TRUE(WriteText(path, text));
    auto plan = ReadRunPlan(path);
    EXPECT_FALSE(plan.ok());
    const std::string m = plan.ok() ? "" : plan.status().message();
    EXPECT_EQ(m.find('\n'), std::string::npos) << m;
    return m;
  };
  std::string no_images = good;
  no_images.erase(no_images.find("images = 300\n"), 13);
  EXPECT_EQ(error(no_images), path + ": images: missing");
  EXPECT_EQ(error("extra = 1\n" + good), path + ": extra: unknown key");
  std::string wrong_type = good;
  wrong_type.replace(wrong_type.find("images = 300"), 12, "images = \"300\"");
  EXPECT_EQ(error(wrong_type), path + ": images: not a count");
  std::string bad_endpoint = good;
  bad_endpoint.replace(bad_endpoint.find("ready ="), 7, "redy =");
  EXPECT_EQ(error(bad_endpoint), path + ": endpoints.redy: unknown key");
  EXPECT_NE(error("model_digest = \n").find(path + ":1: "), std::string::npos);
}

TEST(RunPlanTest, DatasetCheckNamesIndexCsvAndWhatChanged) {
  TempDir dir("run_plan_check");
  const auto index = dir / "index.csv";
  ASSERT_TRUE(WriteText(index, "image,split\na.jpg,train\n"));
  RunPlan plan = SamplePlan();
  ND_ASSERT_OK_AND_ASSIGN(plan.index_digest, Sha256File(index.string()));
  plan.images = 1;
  ND_EXPECT_OK(CheckDatasetAgainstPlan(plan, index.string(), 1));
  // Same bytes, another count: the stage saw other usable rows (should not happen; checked).
  Status count = CheckDatasetAgainstPlan(plan, index.string(), 2);
  EXPECT_EQ(count.code(), StatusCode::kFailedPrecondition);
  EXPECT_EQ(count.message(), index.string() +
                                 ": 1 images planned, 2 now; `nd-pipeline up` again plans a "
                                 "new run");
  // index.csv edited after the plan was made.
  ASSERT_TRUE(WriteText(index, "image,split\na.jpg,train\nb.jpg,train\n"));
  Status edited = CheckDatasetAgainstPlan(plan, index.string(), 2);
  EXPECT_EQ(edited.code(), StatusCode::kFailedPrecondition);
  EXPECT_NE(edited.message().find(index.string() + " changed since the run started"),
            std::string::npos)
      << edited.message();
  // A missing index.csv is the digest's error, naming the file.
  std::filesystem::remove(index);
  Status missing = CheckDatasetAgainstPlan(plan, index.string(), 1);
  EXPECT_FALSE(missing.ok());
  EXPECT_NE(missing.message().find(index.string()), std::string::npos) << missing.message();
}

}  // namespace
}  // namespace nd
