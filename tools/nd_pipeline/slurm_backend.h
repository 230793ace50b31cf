// A sharded run on a Slurm cluster: `nd-pipeline up --slurm` (or run.backend = "slurm").
//
// Network Dissection is a map-reduce with exact reductions, so the run is four phases, each a
// Slurm job array (or one job), chained by dependencies: `afterany` after an array, whose
// successor then checks that every task left its file (and fails, naming the shard and its log,
// when one did not), `afterok` after a single job; with --kill-on-invalid-dep=yes a failed phase
// cancels the rest instead of leaving them pending. (Not afterok after an array: Slurm 22.05
// judges it by the largest exit code of any run of any task, so one task requeued by RequeueExit
// would cancel the later phases even after its rerun completed.)
//
//   forward     array 0..N-1  `nd-pipeline up` on slice i of the index.csv rows (config.h
//                             ShardRows) into cache shard i, <cache.dir>/shard-<i>-of-<N> (one LMDB
//                             per task: LMDB must never be written from several hosts); calibrate
//                             writes the slice's exact top tails per unit and layer; score writes
//                             the task's forward record. The same stage binaries as a local run.
//   thresholds  one job       `nd-pipeline shard-merge thresholds`: merges the tails into the
//                             whole dataset's top K and writes the exact thresholds (bit for bit
//                             those of a single machine: common/maths/top_quantile.h).
//   score       array 0..N-1  `nd-pipeline rescore` on slice i: decode finds every image in the
//                             cache shard (no forward pass), score counts with the merged
//                             thresholds and writes integer counts.
//   merge       one job       `nd-pipeline shard-merge results`: sums the counts and writes
//                             tally.csv, thresholds.csv and summary.json to output.dir, byte for
//                             byte a single machine's (summary.json's timings aside).
//
// The files between phases are common/results/shard_files.h's, under D = slurm.dir (default
// <output.dir>/.slurm). D also holds config.toml (the effective configuration the tasks read),
// forward.sh, thresholds.sh, score.sh, merge.sh, logs/<phase>-<task>.log (appended across
// requeues) and jobs.txt (below).
//
// Requeue: every job is submitted with --requeue. A task's script traps SIGTERM (preemption,
// `scancel --signal=TERM --batch`, a time limit), stops its `nd-pipeline` (which stops the stages
// cleanly) and exits slurm.requeue_exit (99), which a cluster whose slurm.conf has
// RequeueExit=99 requeues. The rerun finds the batches committed before in its cache shard and
// forwards only the rest (decode skips cached images; extract commits one LMDB transaction per
// batch). `scontrol requeue` works on any cluster. Without either, a stopped task fails, its
// phase's dependents are cancelled, and `up --slurm` again redoes only what the caches lack.
//
// A rescore (`nd-pipeline rescore --slurm`) submits thresholds, score and merge: no forward pass.
// The tails of the last forward phase serve any quantile up to its largest.
//
// Not supported sharded (refused at submission): [explain] and [stats] analyses (they need every
// image's masks in one process). The merge job writes the HTML report from the cache shards
// (ShardCacheDirs; ReportOptions::cache_dirs).
//
// jobs.txt (text): "nd-slurm-jobs 1", then `shards N`, `rescore 0|1`, and one `<phase> <job id>`
// line per submitted phase in order, then "end". Written by Submit, read by status and --wait.
#pragma once

#include <iosfwd>
#include <string>
#include <vector>

#include "common/base/config.h"
#include "common/base/status.h"

namespace nd {

struct SlurmSubmitOptions {
  std::string bin_dir;   // where nd-pipeline and the stage binaries are
  bool rescore = false;  // submit thresholds, score and merge only
  bool wait = false;     // block until the merge job ends
};

struct SlurmJobs {
  int shards = 0;
  bool rescore = false;
  std::vector<std::pair<std::string, std::string>> phases;  // (phase, job id), in order
};

std::string SlurmJobsPath(const PipelineConfig& config);
std::string FormatSlurmJobs(const SlurmJobs& jobs);
[[nodiscard]] StatusOr<SlurmJobs> ParseSlurmJobs(const std::string& text, const std::string& name);

// Writes D's scripts and config.toml, submits the phases with sbatch, writes jobs.txt, prints one
// line per phase. With options.wait, then waits for the merge job and fails unless it completed.
// Errors: the analyses or settings a sharded run does not support; sbatch's own message.
[[nodiscard]] Status SubmitSlurmRun(const PipelineConfig& config,
                                    const SlurmSubmitOptions& options);

// Inside the jobs: the two reductions. `thresholds` merges every shard's tails of every layer and
// writes the merged thresholds of every quantile; `results` sums every shard's counts and writes
// the result files of every (layer, quantile). `with_forward`: the run included a forward phase,
// whose forward records give summary.json's forward_images.
[[nodiscard]] Status MergeShardThresholds(const PipelineConfig& config);
[[nodiscard]] Status MergeShardResults(const PipelineConfig& config, bool with_forward);

// `nd-pipeline status` of a sharded run: each phase's job state from squeue/scontrol and each
// shard's progress from its status.json, forward record and counts. NotFound when there is no
// jobs.txt (not a sharded run).
[[nodiscard]] Status PrintSlurmStatus(const PipelineConfig& config, std::ostream& out);

// The cache shards of a sharded run, <cache.dir>/shard-<i>-of-<N> for i < shard.count (the forward
// tasks' cache.dir; ShardSets writes the same path into the job scripts).
std::vector<std::string> ShardCacheDirs(const PipelineConfig& c);

}  // namespace nd
