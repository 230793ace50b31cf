// The sharded run's driver without a cluster (tools/nd_pipeline/slurm_backend.h): jobs.txt round
// trip and errors, what a submission refuses before calling sbatch, and the one line a merge job
// writes when a shard's file is missing (the afterany chain relies on it).
#include "tools/nd_pipeline/slurm_backend.h"

#include <gtest/gtest.h>

#include <filesystem>

#include "common/results/shard_files.h"
#include "tests/testing/files.h"
#include "tests/testing/status_assertions.h"

namespace nd {
namespace {

PipelineConfig ShardedConfig(const std::string& dir) {
  PipelineConfig c;
  c.dataset.path = dir + "/broden";
  c.model.path = dir + "/m.pt";
  c.model.layers = {"layer4"};
  c.cache.dir = dir + "/cache";
  c.output.dir = dir + "/out";
  c.slurm.shards = 2;
  c.shard.count = 2;
  c.shard.dir = dir + "/out/.slurm";
  return c;
}

TEST(SlurmJobsFile, RoundTripAndBadLine) {
  SlurmJobs jobs;
  jobs.shards = 3;
  jobs.phases = {{"forward", "12"}, {"thresholds", "13"}, {"score", "14"}, {"merge", "15"}};
  const std::string text = FormatSlurmJobs(jobs);
  EXPECT_EQ(text,
            "nd-slurm-jobs 1\nshards 3\nrescore 0\nforward 12\nthresholds 13\nscore 14\n"
            "merge 15\nend\n");
  ND_ASSERT_OK_AND_ASSIGN(SlurmJobs back, ParseSlurmJobs(text, "jobs.txt"));
  EXPECT_EQ(back.phases, jobs.phases);
  auto bad = ParseSlurmJobs("nd-slurm-jobs 1\nshards 3\nreduce 7\nend\n", "jobs.txt");
  ASSERT_FALSE(bad.ok());
  EXPECT_EQ(bad.status().message(), "jobs.txt:3: expected '<phase> <job id>', got 'reduce 7'");
  auto cut = ParseSlurmJobs("nd-slurm-jobs 1\nshards 3\n", "jobs.txt");
  ASSERT_FALSE(cut.ok());
  EXPECT_EQ(cut.status().message(), "jobs.txt: ends before 'end'");
}

TEST(SlurmSubmit, AnalysesAreRefusedBeforeAnyJob) {
  testing::TempDir dir("slurm_submit");
  PipelineConfig c = ShardedConfig(dir.path());
  c.explain.length = 3;
  Status s = SubmitSlurmRun(c, SlurmSubmitOptions{});
  ASSERT_FALSE(s.ok());
  EXPECT_NE(s.message().find("[explain] and [stats] analyses are not supported sharded"),
            std::string::npos);
  EXPECT_FALSE(std::filesystem::exists(SlurmJobsPath(c)));
}

TEST(SlurmSubmit, RescoreWithoutTailsNamesTheMissingFile) {
  testing::TempDir dir("slurm_rescore");
  PipelineConfig c = ShardedConfig(dir.path());
  SlurmSubmitOptions options;
  options.rescore = true;
  Status s = SubmitSlurmRun(c, options);
  ASSERT_FALSE(s.ok());
  EXPECT_EQ(s.message(), TailsFilePath(SlurmDirectory(c), 0, "layer4") +
                             ": missing; a sharded rescore needs the tails of a sharded "
                             "`nd-pipeline up --slurm` with the same slurm.shards");
}

TEST(SlurmMerge, MissingTailsOfOneShardNameItAndItsLog) {
  testing::TempDir dir("slurm_merge");
  PipelineConfig c = ShardedConfig(dir.path());
  UnitTails t;
  t.layer = "layer4";
  t.units = 1;
  t.h = t.w = 1;
  t.images = 1;
  t.max_images = 2;
  t.keep = 2;
  t.counts = {1};
  t.tops = {{0.5f}};
  ND_ASSERT_OK(WriteTailsFile(TailsFilePath(c.shard.dir, 0, "layer4"), t));
  Status s = MergeShardThresholds(c);
  ASSERT_FALSE(s.ok());
  EXPECT_EQ(s.message(), TailsFilePath(c.shard.dir, 1, "layer4") +
                             ": missing: shard 1's forward task did not complete (see " +
                             c.shard.dir + "/logs/forward-1.log)");
  // With both shards' tails the merge writes the thresholds: the values {0.25, 0.5} at level
  // 0.995: pos 0.995, so 0.5 - 0.25 * (1 - 0.995) = 0.49875, in binary64 as numpy's _lerp
  // evaluates it (Python: 0.5 - 0.25 * (1 - 0.995) prints 0.49875000000000003).
  t.counts = {1};
  t.tops = {{0.25f}};
  ND_ASSERT_OK(WriteTailsFile(TailsFilePath(c.shard.dir, 1, "layer4"), t));
  ND_ASSERT_OK(MergeShardThresholds(c));
  EXPECT_EQ(testing::ReadAll(MergedThresholdsPath(c.shard.dir, "layer4", 0.005, false)),
            "unit,threshold\n0,0.49875000000000003\n");
}

}  // namespace
}  // namespace nd
