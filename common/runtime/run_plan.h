// RunPlan: the facts of one run, established once by the supervisor (`nd-pipeline up`) and handed
// to every stage as `<run.dir>/plan.toml` (`--plan FILE`), next to the run's config.toml. Stages
// take the endpoints from it and check their own view of the dataset against it, so that an
// index.csv edited between two stage starts (or between a stage's restart and the run's start)
// stops the run with one line instead of making two stages disagree about which images exist.
// The model's identity is the config's run.model_digest, also the supervisor's (hashed once).
//
// plan.toml (TOML, written atomically; every key required, unknown keys rejected):
//   model_digest = "<64 hex>"          SHA-256 of the model file
//   images = N                         usable rows of index.csv (after on_bad_row = "skip")
//   index_digest = "<64 hex>"          SHA-256 of index.csv's bytes
//   curve_keys = "<path>" | ""         the run's CURVE keys (curve.h), "" = no CURVE
//   image_set = "<16 hex>" | ""         ImageSetDigest (cache/pipeline_keys.h) of every usable
//                                      image, when the supervisor knew each one's digest and
//                                      found all layers cached (the relay run); "" otherwise
//   [endpoints] events/images/ready/scored/metrics = "ipc://…" | "tcp://…"
//   [[layers]] name = "layer4", hash = "<32 hex>"   one per configured layer, in config order;
//                                                    hash = the cache's layer hash
//                                                    (cache/FORMAT.md)
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "common/base/config.h"
#include "common/base/status.h"
#include "common/runtime/zmq_channel.h"

namespace nd {

struct PlannedLayer {
  std::string name;
  std::string hash;  // cache/cache_keys.h LayerHash: model digest, preprocessing, size, dtype
};

struct RunPlan {
  std::string model_digest;
  uint64_t images = 0;
  std::string index_digest;
  std::string curve_keys;  // path of curve.keys; "" = connections without CURVE
  std::string image_set;   // ImageSetDigest of every usable image; "" = not known at plan time
  Endpoints endpoints;
  std::vector<PlannedLayer> layers;
};

// <run.dir>/plan.toml.
std::string RunPlanPath(const PipelineConfig& config);

// The file's text (see above).
std::string FormatRunPlan(const RunPlan& plan);
// Errors: NotFound (no file); InvalidArgument naming the file and the key (syntax, a missing,
// unknown or mistyped key).
[[nodiscard]] StatusOr<RunPlan> ReadRunPlan(const std::string& path);

// A stage's own view against the plan: `images` usable rows and index.csv at `index_path`.
// Errors: FailedPrecondition naming index.csv and what changed ("… changed since the run started:
// 300 images planned, 299 now; `nd-pipeline up` again plans a new run").
[[nodiscard]] Status CheckDatasetAgainstPlan(const RunPlan& plan, const std::string& index_path,
                                             uint64_t images);

}  // namespace nd
