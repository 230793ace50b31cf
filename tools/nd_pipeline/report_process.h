// The HTML report that nd-pipeline writes at the end of `up`, `rescore`, `shard-merge results` and
// `rate --summary`: the nd-report executable beside nd-pipeline, run as a child process with
// --after-run (tools/report/report_main.cc), so that nd-pipeline itself links no OpenCV.
//
// The child gets the configuration as the command did: the same -c path and --set overrides in
// the same working directory, plus what the command added to it: the model digests that `up`
// computed once (run.model_digest through --set, every [[models]] digest through --model-digest;
// nd-report would otherwise hash every model file again). It prints the lines the user sees
// ("report: PATH<note>", "study: PATH") and the warnings of a report or study it could not write
// ("nd-pipeline: warning: ..."), and exits 0 then too: the results are complete, a report failure
// is a warning, not a failed command. stdin, stdout and stderr are shared with the child; nothing
// else is inherited (common/base/descriptors.h).
#pragma once

#include <string>
#include <vector>

#include "common/base/config.h"
#include "common/base/status.h"

namespace nd {

struct RunReportRequest {
  std::string config_path;             // -c as the command got it ("" = defaults and --set only)
  std::vector<std::string> overrides;  // --set as the command got them, in order
  std::string note;                    // appended to the "report: PATH" line ("" = none)
  // Also the study page (study.html, study_*.csv) when the configuration has [[models]] or
  // [[view]] tables, linking the strips only when the main report was written (up/rescore).
  bool study = false;
  // The caches to read the activations from, in order (a sharded run's cache shards); empty =
  // cache.dir.
  std::vector<std::string> cache_dirs;
};

// The child's argv: exe --after-run --config PATH [--set KV]... [--set run.model_digest=D]
// [--model-digest NAME=D]... [--cache-dir DIR]... [--study] [--note TEXT]. The digests are those
// set in `config`. REQUIRES: `config` is LoadConfig(request.config_path, request.overrides) with
// at most its digests filled in.
std::vector<std::string> ReportCommandLine(const std::string& exe, const PipelineConfig& config,
                                           const RunReportRequest& request);

// Runs <bin_dir>/nd-report with ReportCommandLine and waits for it (stdout and stderr flushed
// first, so that the lines keep their order). Errors, for the caller's warning: NotFound naming the
// executable when it is missing; IoError when it cannot be started, or when it ends with another
// exit code than 0 (it has printed its own line then) or by a signal (e.g. Ctrl-C).
[[nodiscard]] Status RunReportProcess(const std::string& bin_dir, const PipelineConfig& config,
                                      const RunReportRequest& request);

}  // namespace nd
