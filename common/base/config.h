// The pipeline configuration (pipeline.toml) and its one loader.
//
// LoadConfig() applies, in order: the defaults below, then the TOML file, then `--set
// section.key=value` overrides. Unknown sections or keys and bad values are rejected with
// "<file>: [section].key: reason" (overrides name "--set" instead of the file). Relative paths in
// the file are resolved against the file's directory; relative paths in overrides against the
// current directory. Every key is documented in README.md ("Configuration reference") and by
// `nd-pipeline validate`, which prints the effective configuration as TOML.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "common/base/status.h"

namespace nd {

struct DatasetConfig {
  std::string path;                     // Broden-format directory (required)
  std::vector<std::string> categories;  // empty = all categories of category.csv
  // A malformed data row of index.csv: "skip" (log it, count it in summary.json, dissect the rest)
  // or "fail" (stop at start-up). Errors in headers and the other CSVs always stop the run.
  std::string on_bad_row = "skip";
};

struct ModelConfig {
  std::string path;                           // TorchScript file (required)
  std::vector<std::string> layers{"layer4"};  // module paths as named in the model
  int input_size = 224;                       // images are resized (bilinear) to this square size
  std::string preprocess = "torchvision";     // "torchvision" | "netdissect" (SPEC.md §2 step 1)
  std::vector<std::string> devices{"auto"};  // "auto" | "cpu" | "cuda" | "cuda:N"; a list = workers
  int batch_size = 32;
  std::string precision = "fp32";  // "fp32" | "fp16" | "bf16" (autocast on CUDA only)
  // Memory format of the weights and the input: "auto" (channels_last: faster convolutions with
  // LibTorch's CPU (oneDNN) and CUDA (cuDNN NHWC) kernels, measured by nd-bench), "contiguous"
  // (NCHW) or "channels_last". Changes only the rounding of the forward pass.
  std::string memory_format = "auto";
};

struct DecodeConfig {
  int workers = 0;  // decode threads; 0 = number of cores
  // false: an image file whose stat identity (device, inode, size, mtime and ctime in ns) is
  // unchanged since it was hashed is not read or hashed again (cache/file_digest_memo.h); true:
  // every file is read and hashed (and the remembered digests refreshed).
  bool rehash = false;
};

struct ThresholdConfig {
  std::vector<double> quantiles{0.005};  // each in (0, 0.5]; one result set per quantile
  // Calibrate keeps every unit's exact top tail down to max(quantiles, tail_quantile) and stores
  // it in the cache (key q/, cache/FORMAT.md): a later run over the same images at any quantile
  // up to it takes its thresholds from the tails instead of reading the activations again.
  // In [0, 0.5]; 0 = the tail the configured quantiles need. Not used by a sharded run.
  double tail_quantile = 0.01;
};

struct ScoreConfig {
  double iou_threshold = 0.04;       // detector cut-off: best IoU > this
  std::string union_rule = "paper";  // "paper" | "lite" (SPEC.md §2 step 5); key: score.union
  int workers = 0;                   // scoring threads; 0 = number of cores
  std::string device = "cpu";        // "cpu" | "cuda" | "cuda:N"
};

// Compositional explanations from the cache (common/maths/explain.h); written to explanations.csv.
struct ExplainConfig {
  int length = 0;  // the most leaves of a formula; 0 = off
  int beam = 5;    // formulas kept per beam-search round
};

// Label reliability from the cache (common/maths/label_stats.h); written to stats.csv.
struct StatsConfig {
  int bootstrap = 0;      // bootstrap resamples over images; 0 = off
  int permutations = 0;   // permutations of the null; 0 = off
  int64_t seed = 1;       // seed of the resamples and permutations (common/maths/rng.h)
  bool max_null = false;  // also the selection-corrected max null (p_max, q_max)
};

struct CacheConfig {
  std::string dir;                // LMDB environment directory (required)
  std::string dtype = "float16";  // "float16" | "float32"
  int64_t map_size_mb = 1024;     // initial map size; grows when full
};

struct OutputConfig {
  std::string dir;  // results go to <dir>/<layer>/ (required)
};

struct RunConfig {
  std::string dir;  // run directory for ipc:// sockets and pid files; "" = <output.dir>/.run
  std::string transport = "ipc";   // "ipc" | "tcp"
  std::string host = "127.0.0.1";  // bind address for tcp
  int base_port = 5600;            // first tcp port; stages use base_port + k
  // ZeroMQ CURVE on stage connections (common/runtime/curve.h): "auto" = on for tcp on an address
  // other than loopback; "on" (tcp only) also on loopback; "off" never.
  std::string curve = "auto";
  int timeout_s = 120;           // a peer silent this long is declared dead
  int http_port = 0;             // supervisor's /metrics and /status on 127.0.0.1; 0 = off
  int heartbeat_timeout_s = 10;  // a stage sending no metrics snapshot this long is declared dead
  int max_restarts = 3;          // pipeline restarts after stage crashes before `up` gives up
  // The model file's SHA-256 (64 lowercase hex), the model's identity in cache keys. `up` and
  // `rescore` compute it once per run and write it into the run's configuration, so every stage
  // (and every restart) uses the same identity without hashing the file again. "" = hash the file.
  std::string model_digest;
  // "local": `up` runs the stages here; "slurm": `up` submits the sharded run as Slurm jobs
  // ([slurm], tools/nd_pipeline/slurm_backend.h). `nd-pipeline up --slurm` is the same.
  std::string backend = "local";
};

// [slurm]: a sharded run on a Slurm cluster (run.backend = "slurm"). The images are cut into
// `shards` contiguous slices of index.csv rows; each phase is one job array (or one job) chained
// by afterok dependencies (tools/nd_pipeline/slurm_backend.h has the phases and files).
struct SlurmConfig {
  std::string partition;                  // sbatch --partition; "" = the cluster's default
  int shards = 4;                         // image slices = array tasks of the forward/score phases
  int gpus_per_task = 0;                  // sbatch --gpus-per-task; 0 = none requested
  std::string time_limit;                 // sbatch --time per job ("2:00:00"); "" = partition's
  std::vector<std::string> sbatch_flags;  // more sbatch arguments, passed as given
  std::string dir;  // job scripts, tails, counts, shard runs; "" = <output.dir>/.slurm
  // Exit code of a shard task stopped by SIGTERM (preemption, `scancel --signal=TERM --batch`):
  // the cluster's RequeueExit, so Slurm requeues the task; it then redoes only what its cache
  // shard lacks. 0 = exit 143 like any TERM'ed job (no requeue).
  int requeue_exit = 99;
};

// [shard]: set by the sharded run's job scripts on each task's command line, never by users. With
// count > 0 the stages work on slice `index` of `count` (decode reads only its rows; calibrate
// writes the slice's exact top tails instead of thresholds; score counts with the merged
// thresholds and writes integer counts instead of results), all under `dir` (= slurm.dir).
struct ShardConfig {
  int index = 0;
  int count = 0;                  // 0 = not a shard task
  std::string phase = "forward";  // "forward": decode+extract+tails; "score": counts
  std::string dir;                // the sharded run's folder (slurm.dir)
};

// The human evaluation (`nd-pipeline rate`, tools/rate/rate_study.h): a local rating server.
struct RateConfig {
  std::string host = "127.0.0.1";  // bind address (an IP literal); other hosts: set a token
  int port = 8765;                 // 0 = an ephemeral port (printed)
  std::string answers;             // the answers file; "" = <output.dir>/rate/answers.jsonl
  int raters_per_unit = 3;         // answers each unit collects in label and human mode
  int names_per_unit = 1;          // names each unit collects in name mode
  bool detectors_only = true;      // the study: detectors (IoU > cut-off) or every labelled unit
  int max_units = 0;    // at most this many units (the first of the seeded order); 0 = all
  int64_t seed = 1;     // seed of the unit order and the catch trials
  int catch_every = 5;  // every n-th label trial is a catch trial; 0 = none
  double min_catch_accuracy = 0.75;  // raters below this share of correct catch trials are excluded
  std::string token;                 // "" = none; else every request must carry it (?token=…)
  int top_images = 15;               // images per unit, as the paper showed
  int tile_size = 168;               // px, square tiles
};

// [[view]]: a layer seen through another basis, scored like a layer from the cached activations
// (SPEC.md §5 "Views"; the bases are defined in common/maths/view_basis.h). Direction i of the
// view has the value v_i(p) = sum_c W[i,c] a_c(p) at every position p of every image.
struct ViewConfig {
  std::string name;   // results in <output.dir>/<name>/ (one alpha) or <name>-a<alpha>/ (a sweep)
  std::string layer;  // one of model.layers
  std::string basis;  // "rotation" (a Haar-random rotation, then R^alpha) | "file" (W from `path`)
  int64_t seed = 1;   // rotation: which random rotation
  // rotation: 0 = identity, 1 = the full rotation; each in [0, 1]; several = a sweep, one result
  // set each. basis "file" takes exactly one value, 1 (the matrix as given).
  std::vector<double> alpha{1.0};
  std::string path;  // file: .npy, float32 or float64, C order, shape (M, K), K = the layer's units
};

// [[models]]: several models dissected in one run (a study: a series of checkpoints, seeds,
// training conditions). They share [model]'s layers, input size, preprocessing, devices and batch
// size, the dataset and the cache; each image is decoded once per run and run through every model
// whose activations the cache lacks. Results go to <output.dir>/<name>/<layer>/ (views:
// <output.dir>/<name>/<view>/). Without [[models]], [model].path is the one model and results go to
// <output.dir>/<layer>/ as always.
struct ModelEntry {
  std::string name;  // a folder name, unique
  std::string path;  // TorchScript file
  // SHA-256 of the file (64 lowercase hex), the model's identity in cache keys; "" = hash the
  // file. `up` fills it in the run's config once, as run.model_digest for the one model.
  std::string digest;
  // Free description, for the study report (tools/report/study_report.h): "" / -1 = not given.
  std::string group;       // e.g. "baseline", "no-dropout", "batchnorm", "random"
  int64_t seed = -1;       // training seed
  int64_t iteration = -1;  // training iteration of a checkpoint
  double accuracy = -1;    // validation accuracy in [0, 1]
};

struct PipelineConfig {
  std::string source;  // the file it came from ("" for defaults only)
  DatasetConfig dataset;
  ModelConfig model;
  DecodeConfig decode;
  ThresholdConfig threshold;
  ScoreConfig score;
  ExplainConfig explain;
  StatsConfig stats;
  CacheConfig cache;
  OutputConfig output;
  RunConfig run;
  RateConfig rate;
  SlurmConfig slurm;
  ShardConfig shard;
  std::vector<ViewConfig> views;   // [[view]] tables, in file order
  std::vector<ModelEntry> models;  // [[models]] tables, in file order; empty = [model].path
};

// The models of a run: the [[models]] tables, or one unnamed entry for [model].path (digest
// run.model_digest).
std::vector<ModelEntry> ConfiguredModels(const PipelineConfig& config);

// The result-name prefix of a model: "" for the unnamed one, else "<name>/".
std::string ModelResultPrefix(const ModelEntry& model);

// The result name of a view at one alpha: `name` for a view with one alpha, else
// "<name>-a<alpha>" with alpha in the shortest form that reads back exactly ("layer4-rot-a0.25").
std::string ViewResultName(const ViewConfig& view, double alpha);

// The result names of everything scored, in scoring order: for every model (ConfiguredModels),
// model.layers, then every view at every alpha, each with the model's ModelResultPrefix
// (cache/pipeline_keys.h ConfiguredUnitSets has the same order).
std::vector<std::string> ResultSetNames(const PipelineConfig& config);

// Loads `path` (may be empty: defaults + overrides only), then applies `overrides`, each
// "section.key=value" where value is TOML ("0.01", "[\"layer3\", \"layer4\"]") or a bare string.
StatusOr<PipelineConfig> LoadConfig(const std::string& path,
                                    const std::vector<std::string>& overrides = {});

// The effective configuration as TOML text; LoadConfig() of it yields an equal config.
std::string ConfigToToml(const PipelineConfig& config);

// The rating server's answers file: rate.answers, or <output.dir>/rate/answers.jsonl when empty.
std::string RateAnswersPath(const PipelineConfig& config);

// The run directory: run.dir, or <output.dir>/.run when empty.
std::string RunDirectory(const PipelineConfig& config);

// The sharded run's folder: slurm.dir, or <output.dir>/.slurm when empty.
std::string SlurmDirectory(const PipelineConfig& config);

// Rows [begin, end) of index.csv's `rows` usable rows that shard `index` of `count` handles:
// contiguous slices, begin = floor(index * rows / count). REQUIRES: 0 <= index < count.
struct RowRange {
  size_t begin = 0, end = 0;
};
RowRange ShardRows(size_t rows, int index, int count);

}  // namespace nd
