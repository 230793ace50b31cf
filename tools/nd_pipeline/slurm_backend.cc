#include "tools/nd_pipeline/slurm_backend.h"

#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <sstream>
#include <thread>

#include "common/base/atomic_file.h"
#include "common/base/log.h"
#include "common/broden/broden_dataset.h"
#include "common/results/result_files.h"
#include "common/results/shard_files.h"
#include "tools/nd_pipeline/metrics_board.h"

namespace nd {
namespace {

namespace fs = std::filesystem;

const char* const kPhases[] = {"forward", "thresholds", "score", "merge"};

std::string Quote(const std::string& s) {
  std::string out = "'";
  for (char ch : s) out += ch == '\'' ? std::string("'\\''") : std::string(1, ch);
  return out + "'";
}

// Runs `command` with /bin/sh; its stdout and stderr together, and its exit status.
struct CommandResult {
  int status = -1;
  std::string output;
};
CommandResult RunCommand(const std::string& command) {
  CommandResult r;
  FILE* pipe = ::popen((command + " 2>&1").c_str(), "r");
  if (!pipe) return r;
  char buf[4096];
  size_t n;
  while ((n = std::fread(buf, 1, sizeof buf, pipe)) > 0) r.output.append(buf, n);
  const int status = ::pclose(pipe);
  r.status = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  return r;
}

std::string Trim(std::string s) {
  while (!s.empty() && (s.back() == '\n' || s.back() == ' ' || s.back() == '\r')) s.pop_back();
  return s;
}

Status WriteText(const std::string& path, const std::string& text, bool executable = false) {
  std::error_code ec;
  fs::create_directories(fs::path(path).parent_path(), ec);
  ND_RETURN_IF_ERROR(WriteFileAtomically(path, text));
  if (executable)
    fs::permissions(path,
                    fs::perms::owner_all | fs::perms::group_read | fs::perms::group_exec |
                        fs::perms::others_read | fs::perms::others_exec,
                    ec);
  return Status::Ok();
}

// The --set arguments that make `nd-pipeline up`/`rescore` a shard task; `$i` is the task.
std::string ShardSets(const PipelineConfig& c, const std::string& dir, const std::string& phase) {
  const std::string n = std::to_string(c.slurm.shards);
  const std::string shard = Quote(dir) + "/shard-$i";
  return " --set shard.count=" + n + " --set shard.index=$i --set shard.phase=" + phase +
         " --set shard.dir=" + Quote(dir) + " --set cache.dir=" + Quote(c.cache.dir) +
         "/shard-$i-of-" + n + " --set output.dir=" + shard + "/output --set run.dir=" + shard +
         "/run" +
         // Several tasks may share a node: no fixed ports (the stages of one task are on one
         // node, so ipc is enough; each task's status.json is in its own run.dir).
         " --set run.transport=ipc --set run.http_port=0";
}

// A job script: runs `command` in the background, and on SIGTERM stops it (nd-pipeline stops
// its stages cleanly) and exits requeue_exit so that Slurm (RequeueExit) requeues the task.
std::string Script(const PipelineConfig& c, const std::string& phase, const std::string& command) {
  const int code = c.slurm.requeue_exit ? c.slurm.requeue_exit : 143;
  return "#!/bin/bash\n"
         "# nd-pipeline sharded run, phase " +
         phase +
         " (written by nd-pipeline up --slurm; tools/nd_pipeline/slurm_backend.h)\n"
         "i=${SLURM_ARRAY_TASK_ID:-0}\n"
         "echo \"nd-pipeline: " +
         phase +
         " task $i, job ${SLURM_JOB_ID:-?}, restart ${SLURM_RESTART_COUNT:-0}, $(date -u "
         "+%FT%TZ)\"\n"
         "child=\n"
         "trap 'echo \"nd-pipeline: " +
         phase + " task $i: SIGTERM, stopping; exit " + std::to_string(code) +
         " (requeue)\"; [ -n \"$child\" ] && kill -TERM $child 2>/dev/null; "
         "wait $child; exit " +
         std::to_string(code) + "' TERM\n" + command +
         " &\n"
         "child=$!\n"
         "wait $child\n"
         "exit $?\n";
}

StatusOr<std::string> Sbatch(const PipelineConfig& c, const std::string& dir,
                             const std::string& phase, bool array, const std::string& after) {
  std::string cmd = "sbatch --parsable --requeue --open-mode=append --kill-on-invalid-dep=yes";
  cmd += " --job-name=" + Quote("nd-" + phase);
  cmd += " --output=" + Quote(dir + "/logs/" + phase + (array ? "-%a.log" : ".log"));
  if (array) cmd += " --array=0-" + std::to_string(c.slurm.shards - 1);
  if (!after.empty()) cmd += " --dependency=" + after;
  if (!c.slurm.partition.empty()) cmd += " --partition=" + Quote(c.slurm.partition);
  if (!c.slurm.time_limit.empty()) cmd += " --time=" + Quote(c.slurm.time_limit);
  if (c.slurm.gpus_per_task > 0 && (phase == "forward" || phase == "score"))
    cmd += " --gpus-per-task=" + std::to_string(c.slurm.gpus_per_task);
  for (const std::string& f : c.slurm.sbatch_flags) cmd += " " + Quote(f);
  cmd += " " + Quote(dir + "/" + phase + ".sh");
  CommandResult r = RunCommand(cmd);
  const std::string out = Trim(r.output);
  if (r.status != 0)
    return FailedPrecondition("sbatch of phase " + phase + " failed (exit " +
                              std::to_string(r.status) + "): " + out);
  // --parsable: "<job id>[;<cluster>]", possibly after warning lines.
  std::string id = out.substr(out.rfind('\n') == std::string::npos ? 0 : out.rfind('\n') + 1);
  id = id.substr(0, id.find(';'));
  if (id.empty() || id.find_first_not_of("0123456789") != std::string::npos)
    return FailedPrecondition("sbatch of phase " + phase + " printed no job id: " + out);
  return id;
}

// The job's state from scontrol (every task of an array: the first that is not COMPLETED), or
// "" when Slurm no longer knows the job.
std::string JobState(const std::string& id, std::string* reason) {
  CommandResult r = RunCommand("scontrol -o show job " + id);
  std::string state;
  std::istringstream lines(r.output);
  std::string line;
  while (std::getline(lines, line)) {
    auto field = [&](const std::string& key) {
      size_t at = line.find(" " + key + "=");
      if (at == std::string::npos) return std::string();
      at += key.size() + 2;
      return line.substr(at, line.find(' ', at) - at);
    };
    const std::string s = field("JobState");
    if (s.empty()) continue;
    if (state.empty() || state == "COMPLETED") {
      state = s;
      if (reason) *reason = field("Reason");
    }
  }
  return state;
}

bool Finished(const std::string& state) {
  return state == "COMPLETED" || state == "FAILED" || state == "CANCELLED" || state == "TIMEOUT" ||
         state == "NODE_FAIL" || state == "OUT_OF_MEMORY" || state == "BOOT_FAIL" ||
         state == "DEADLINE" || state == "PREEMPTED";
}

Status WaitForJob(const std::string& id) {
  for (;;) {
    std::string reason;
    const std::string state = JobState(id, &reason);
    if (state.empty()) return FailedPrecondition("job " + id + " is no longer known to Slurm");
    if (state == "COMPLETED") return Status::Ok();
    if (Finished(state)) return FailedPrecondition("merge job " + id + " ended " + state);
    if (state == "PENDING" && reason == "DependencyNeverSatisfied")
      return FailedPrecondition("merge job " + id +
                                " can never run: an earlier phase failed (see squeue, logs/)");
    std::this_thread::sleep_for(std::chrono::milliseconds(500));
  }
}

}  // namespace

std::string SlurmJobsPath(const PipelineConfig& config) {
  return (fs::path(SlurmDirectory(config)) / "jobs.txt").string();
}

std::string FormatSlurmJobs(const SlurmJobs& jobs) {
  std::string s = "nd-slurm-jobs 1\nshards " + std::to_string(jobs.shards) + "\nrescore " +
                  (jobs.rescore ? "1" : "0") + "\n";
  for (const auto& [phase, id] : jobs.phases) s += phase + " " + id + "\n";
  return s + "end\n";
}

StatusOr<SlurmJobs> ParseSlurmJobs(const std::string& text, const std::string& name) {
  SlurmJobs jobs;
  std::istringstream in(text);
  std::string line;
  int number = 0;
  bool ended = false;
  while (std::getline(in, line)) {
    ++number;
    const std::string where = name + ":" + std::to_string(number) + ": ";
    std::istringstream words(line);
    std::string key, value;
    words >> key >> value;
    if (ended) return DataLoss(where + "text after 'end'");
    if (number == 1) {
      if (key != "nd-slurm-jobs" || value != "1")
        return DataLoss(where + "expected 'nd-slurm-jobs 1'");
    } else if (key == "end") {
      ended = true;
    } else if (key == "shards") {
      jobs.shards = std::atoi(value.c_str());
      if (jobs.shards <= 0) return DataLoss(where + "shards: '" + value + "' is not positive");
    } else if (key == "rescore") {
      jobs.rescore = value == "1";
    } else {
      bool known = false;
      for (const char* p : kPhases) known |= key == p;
      if (!known || value.empty() || value.find_first_not_of("0123456789") != std::string::npos)
        return DataLoss(where + "expected '<phase> <job id>', got '" + line + "'");
      jobs.phases.emplace_back(key, value);
    }
  }
  if (!ended) return DataLoss(name + ": ends before 'end'");
  return jobs;
}

Status SubmitSlurmRun(const PipelineConfig& config, const SlurmSubmitOptions& options) {
  const PipelineConfig& c = config;
  if (c.explain.length > 0 || c.stats.bootstrap > 0 || c.stats.permutations > 0)
    return InvalidArgument(
        "run.backend = \"slurm\": [explain] and [stats] analyses are not supported sharded (they "
        "need every image's masks in one process); run them with `nd-pipeline rescore` on one "
        "machine");
  if (!c.models.empty())
    return InvalidArgument(
        "run.backend = \"slurm\": [[models]] runs are not sharded yet (the merge writes one "
        "model's results); run the series on one machine or one [model].path per sharded run");
  if (c.score.device != "cpu" && c.slurm.gpus_per_task == 0)
    LogWarning("score.device = \"" + c.score.device + "\" but slurm.gpus_per_task = 0");
  const std::string dir = fs::absolute(SlurmDirectory(c)).lexically_normal().string();
  std::error_code ec;
  fs::create_directories(dir + "/logs", ec);
  if (ec) return IoError(dir + ": " + ec.message());
  if (options.rescore) {
    for (int i = 0; i < c.slurm.shards; ++i)
      for (const std::string& layer : ResultSetNames(c))
        if (!fs::exists(TailsFilePath(dir, i, layer)))
          return FailedPrecondition(TailsFilePath(dir, i, layer) +
                                    ": missing; a sharded rescore needs the tails of a sharded "
                                    "`nd-pipeline up --slurm` with the same slurm.shards");
  }
  // The tasks read one configuration: this one, resolved (absolute paths), run locally.
  PipelineConfig task = c;
  task.run.backend = "local";
  task.slurm.dir = dir;
  const std::string task_config = dir + "/config.toml";
  ND_RETURN_IF_ERROR(WriteText(task_config, ConfigToToml(task)));
  const std::string nd = Quote(options.bin_dir + "/nd-pipeline");
  const std::string merge_sets =
      " --set shard.count=" + std::to_string(c.slurm.shards) + " --set shard.dir=" + Quote(dir);
  ND_RETURN_IF_ERROR(WriteText(
      dir + "/forward.sh",
      Script(c, "forward",
             nd + " up -c " + Quote(task_config) + " --no-report" + ShardSets(c, dir, "forward")),
      true));
  ND_RETURN_IF_ERROR(WriteText(
      dir + "/thresholds.sh",
      Script(c, "thresholds", nd + " shard-merge thresholds -c " + Quote(task_config) + merge_sets),
      true));
  ND_RETURN_IF_ERROR(WriteText(dir + "/score.sh",
                               Script(c, "score",
                                      nd + " rescore -c " + Quote(task_config) + " --no-report" +
                                          ShardSets(c, dir, "score")),
                               true));
  ND_RETURN_IF_ERROR(WriteText(dir + "/merge.sh",
                               Script(c, "merge",
                                      nd + " shard-merge results -c " + Quote(task_config) +
                                          merge_sets + (options.rescore ? "" : " --with-forward")),
                               true));
  // Results of an earlier run must not pass for this run's: drop the files the phases write.
  for (int i = 0; i < c.slurm.shards; ++i) {
    fs::remove_all(ShardFolder(dir, i) + "/counts", ec);
    if (!options.rescore) {
      fs::remove_all(ShardFolder(dir, i) + "/tails", ec);
      fs::remove(ForwardRecordPath(dir, i), ec);
    }
  }
  fs::remove_all(dir + "/thresholds", ec);

  SlurmJobs jobs;
  jobs.shards = c.slurm.shards;
  jobs.rescore = options.rescore;
  std::string after;
  for (const char* phase : kPhases) {
    const std::string p = phase;
    if (options.rescore && p == "forward") continue;
    const bool array = p == "forward" || p == "score";
    ND_ASSIGN_OR_RETURN(std::string id, Sbatch(c, dir, p, array, after));
    jobs.phases.emplace_back(p, id);
    // After an array: afterany, and the next job checks that every task left its file. Slurm
    // 22.05 judges afterok on an array by the largest exit code any task run ever had, so a task
    // requeued by RequeueExit (whose first run "failed" with 99) would cancel every later phase
    // even after its rerun completed. After a single job: afterok.
    after = (array ? "afterany:" : "afterok:") + id;
    std::printf("nd-pipeline: submitted %s: job %s\n", phase, id.c_str());
  }
  ND_RETURN_IF_ERROR(WriteText(SlurmJobsPath(c), FormatSlurmJobs(jobs)));
  std::printf("nd-pipeline: sharded run in %s (%d shards); `nd-pipeline status` shows it\n",
              dir.c_str(), c.slurm.shards);
  std::fflush(stdout);
  if (!options.wait) return Status::Ok();
  const auto t0 = std::chrono::steady_clock::now();
  ND_RETURN_IF_ERROR(WaitForJob(jobs.phases.back().second));
  std::printf("nd-pipeline: sharded run done in %.1f s\n",
              std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count());
  for (const std::string& layer : ResultSetNames(c))
    for (double q : c.threshold.quantiles)
      std::printf("results: %s\n",
                  LayerResultDir(c.output.dir, layer, q, c.threshold.quantiles.size() > 1).c_str());
  return Status::Ok();
}

Status MergeShardThresholds(const PipelineConfig& c) {
  const std::string& dir = c.shard.dir;
  const bool several = c.threshold.quantiles.size() > 1;
  for (const std::string& layer : ResultSetNames(c)) {
    std::vector<UnitTails> parts;
    for (int i = 0; i < c.shard.count; ++i) {
      auto t = ReadTailsFile(TailsFilePath(dir, i, layer));
      if (t.status().code() == StatusCode::kNotFound)
        return FailedPrecondition(TailsFilePath(dir, i, layer) + ": missing: shard " +
                                  std::to_string(i) + "'s forward task did not complete (see " +
                                  dir + "/logs/forward-" + std::to_string(i) + ".log)");
      if (!t.ok()) return t.status();
      parts.push_back(std::move(*t));
    }
    ND_ASSIGN_OR_RETURN(UnitTails merged, MergeTails(parts));
    for (double q : c.threshold.quantiles) {
      ND_ASSIGN_OR_RETURN(std::vector<double> t, ThresholdsFromTails(merged, q));
      const std::string path = MergedThresholdsPath(dir, layer, q, several);
      ND_RETURN_IF_ERROR(WriteText(path, FormatThresholdsCsv(t)));
      LogInfo("thresholds of " + layer + " (q=" + std::to_string(q) + ") from " +
              std::to_string(merged.images) + " images in " + std::to_string(c.shard.count) +
              " shards -> " + path);
    }
  }
  return Status::Ok();
}

Status MergeShardResults(const PipelineConfig& c, bool with_forward) {
  const auto t0 = std::chrono::steady_clock::now();
  const std::string& dir = c.shard.dir;
  const bool several = c.threshold.quantiles.size() > 1;
  ND_ASSIGN_OR_RETURN(BrodenDataset dataset,
                      BrodenDataset::Open(c.dataset.path, BrodenOptionsFor(c.dataset)));
  int64_t forwarded = 0;
  if (with_forward) {
    for (int i = 0; i < c.shard.count; ++i) {
      auto r = ReadForwardRecord(ForwardRecordPath(dir, i));
      if (r.status().code() == StatusCode::kNotFound)
        return FailedPrecondition(ForwardRecordPath(dir, i) + ": missing: shard " +
                                  std::to_string(i) + "'s forward task did not complete");
      if (!r.ok()) return r.status();
      forwarded += r->forward_images;
    }
  }
  for (const std::string& layer : ResultSetNames(c)) {
    for (double q : c.threshold.quantiles) {
      std::vector<ShardCounts> parts;
      for (int i = 0; i < c.shard.count; ++i) {
        auto read = ReadCountsFile(CountsFilePath(dir, i, layer, q, several));
        if (read.status().code() == StatusCode::kNotFound)
          return FailedPrecondition(CountsFilePath(dir, i, layer, q, several) +
                                    ": missing: shard " + std::to_string(i) +
                                    "'s score task did not complete (see " + dir + "/logs/score-" +
                                    std::to_string(i) + ".log)");
        if (!read.ok()) return read.status();
        ShardCounts part = std::move(*read);
        if (part.shard != i || part.shards != c.shard.count)
          return DataLoss(CountsFilePath(dir, i, layer, q, several) + ": shard " +
                          std::to_string(part.shard) + " of " + std::to_string(part.shards) +
                          ", expected " + std::to_string(i) + " of " +
                          std::to_string(c.shard.count));
        parts.push_back(std::move(part));
      }
      ND_ASSIGN_OR_RETURN(ShardCounts merged, MergeCounts(parts));
      ND_ASSIGN_OR_RETURN(ScoreReport report,
                          ReportFromCounts(merged, dataset, c.score.iou_threshold));
      RunFacts facts;
      facts.model_path = c.model.path;
      facts.dataset_path = c.dataset.path;
      facts.layer = layer;
      facts.preprocess = c.model.preprocess;
      facts.cache_dtype = c.cache.dtype;
      facts.quantile = q;
      facts.images_total = dataset.images().size();
      facts.forward_images = with_forward ? forwarded : merged.forward_images;
      const uint64_t rows = static_cast<uint64_t>(merged.rows);
      facts.images_from_cache = rows - std::min<uint64_t>(rows, facts.forward_images);
      facts.skipped = merged.upstream_skipped;
      facts.stage_seconds.emplace_back(
          "merge", std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count());
      const std::string out = LayerResultDir(c.output.dir, layer, q, several);
      ND_RETURN_IF_ERROR(WriteLayerResultFiles(out, dataset, report, merged.thresholds, facts));
      const LayerResults& r = report.results;
      LogInfo(layer + " (q=" + std::to_string(q) + "): " + std::to_string(r.detectors) + "/" +
              std::to_string(r.units) + " detectors, " + std::to_string(report.images_scored) +
              " images from " + std::to_string(c.shard.count) + " shards -> " + out);
      std::printf("results: %s\n", out.c_str());
    }
  }
  return Status::Ok();
}

Status PrintSlurmStatus(const PipelineConfig& c, std::ostream& out) {
  const std::string path = SlurmJobsPath(c);
  auto text = ReadFileText(path);
  if (!text.ok()) return NotFound(path + ": no sharded run");
  ND_ASSIGN_OR_RETURN(SlurmJobs jobs, ParseSlurmJobs(*text, path));
  const std::string dir = SlurmDirectory(c);
  out << "sharded run " << dir << " (" << jobs.shards << " shards"
      << (jobs.rescore ? ", rescore" : "") << ")\n";
  out << "phase       job      task  state        time      reason\n";
  for (const auto& [phase, id] : jobs.phases) {
    CommandResult r =
        RunCommand("squeue --states=all -h -j " + id + " -o '%i|%K|%T|%M|%r' 2>/dev/null");
    std::istringstream lines(r.output);
    std::string line;
    bool any = false;
    while (std::getline(lines, line)) {
      std::vector<std::string> f;
      std::istringstream fields(line);
      for (std::string x; std::getline(fields, x, '|');) f.push_back(x);
      if (f.size() < 5) continue;
      any = true;
      char row[256];
      std::snprintf(row, sizeof row, "%-11s %-8s %-5s %-12s %-9s %s\n", phase.c_str(), id.c_str(),
                    f[1] == "N/A" ? "-" : f[1].c_str(), f[2].c_str(), f[3].c_str(),
                    f[4] == "None" ? "" : f[4].c_str());
      out << row;
    }
    if (!any) {
      std::string reason;
      const std::string state = JobState(id, &reason);
      char row[256];
      std::snprintf(row, sizeof row, "%-11s %-8s %-5s %-12s\n", phase.c_str(), id.c_str(), "-",
                    state.empty() ? "(unknown to Slurm)" : state.c_str());
      out << row;
    }
  }
  out << "shard  stage progress (status.json)               forward record              counts\n";
  const bool several = c.threshold.quantiles.size() > 1;
  for (int i = 0; i < jobs.shards; ++i) {
    std::string progress = "-";
    if (auto board_text = ReadFileText(ShardFolder(dir, i) + "/run/status.json"); board_text.ok()) {
      if (auto board = BoardFromJson(*board_text, "status.json"); board.ok()) {
        progress = board->state;
        for (const StageBoardRow& s : board->stages)
          progress += " " + s.stage + " " + std::to_string(s.metrics.items_out) +
                      (s.total ? "/" + std::to_string(s.total) : "");
      }
    }
    std::string forward = "-";
    if (auto rec = ReadForwardRecord(ForwardRecordPath(dir, i)); rec.ok())
      forward = std::to_string(rec->forward_images) + " forwarded, " +
                std::to_string(rec->images_from_cache) + " cached, restart " +
                std::to_string(rec->restart);
    int counted = 0, expected = 0;
    for (const std::string& layer : ResultSetNames(c))
      for (double q : c.threshold.quantiles) {
        ++expected;
        counted += fs::exists(CountsFilePath(dir, i, layer, q, several));
      }
    char row[512];
    std::snprintf(row, sizeof row, "%-6d %-44s %-27s %d/%d\n", i, progress.c_str(), forward.c_str(),
                  counted, expected);
    out << row;
  }
  return Status::Ok();
}

std::vector<std::string> ShardCacheDirs(const PipelineConfig& c) {
  std::vector<std::string> dirs;
  for (int i = 0; i < c.shard.count; ++i) {
    dirs.push_back(c.cache.dir + "/shard-" + std::to_string(i) + "-of-" +
                   std::to_string(c.shard.count));
  }
  return dirs;
}

}  // namespace nd
