// The files of a sharded run (run.backend = "slurm", tools/nd_pipeline/slurm_backend.h): the one
// owner of their layout and of the two formats the exact reductions travel in. Network Dissection
// is a map-reduce whose reductions are exact: per-unit top tails merge into the whole dataset's
// thresholds (common/maths/top_quantile.h), and integer counts add (IouTally). Each shard task
// writes its part; one merge job reads them all. Every file is written atomically
// (common/base/atomic_file.h), so a requeued task overwrites, never half-writes.
//
// Layout under the sharded run's folder D (slurm.dir, default <output.dir>/.slurm):
//   D/shard-<i>/tails/<layer>.ndtl                     forward phase: a tails file per layer
//   D/shard-<i>/forward.txt                            forward phase: the task's forward record
//   D/shard-<i>/counts/<layer>[/q<q>]/counts.txt       score phase: a counts file per (layer, q)
//   D/thresholds/<layer>[/q<q>]/thresholds.csv         the merged thresholds (result_files.h
//                                                      format, exact to the bit)
// (q<q> folders only when threshold.quantile is a list, as for results.)
//
// ---- Tails file (binary, little-endian) ----
//   offset size field
//   0      4    magic "NDTL"
//   4      4    u32 format version (1)
//   8      4    u32 units
//   12     4    u32 h
//   16     4    u32 w
//   20     4    u32 length of the layer name, then the name's bytes (no terminator)
//   ..     8    u64 images folded in
//   ..     8    u64 max_images (the whole dataset's usable rows: sizes K)
//   ..     8    u64 keep K (values kept per unit at most)
//   then per unit, in unit order: u64 count of finite values n_u, u64 m_u = values held
//        (min(n_u, K)), m_u float32 values sorted descending
//   last   4    CRC-32 (zlib) of every byte before it
// A reader refuses (DataLoss naming the file and what is wrong) another magic or version, a
// truncated or oversized file, m_u > min(n_u, K), values out of order, a CRC mismatch.
//
// ---- Counts file (text, "\n" line ends; one record per line, `key values...`) ----
//   nd-shard-counts 1
//   layer <name>
//   quantile <q, %.17g>
//   shard <index> <count>
//   shape <units> <labels> <categories> <paper|lite>
//   thresholds <16 hex digits of each T_u's binary64 bits, unit order, space-separated>
//   images_scored <n>            rows <usable rows received>    forward_images <n>
//   repeated_label_pixels <n>    label_read_failures <n>        fetch_failures <n>
//   masks <maps> <skipped_by_max> <cells_zero> <cells_one> <cells_mixed>
//   cpu_seconds <%.17g>
//   upstream_skip <row> <reason>   (zero or more: rows decode/extract/calibrate left out)
//   score_skip <row> <reason>      (zero or more: rows score could not use)
//   g <L counts>                   G[l], label slot order
//   i <unit> <L counts>            one line per unit, unit order: I[u, l]
//   u <unit> <C counts>            one line per unit, unit order: U[u, c]
//   end
// Every key appears once (skips: any number) in this order; a reader refuses anything else with
// one line naming the file, the line and the key.
//
// ---- Forward record (text) ----
//   nd-shard-forward 1
//   shard <index> <count>
//   restart <SLURM_RESTART_COUNT of the run that wrote it, 0 when unset>
//   images <rows of the slice that reached the cache or were cached>
//   forward_images <of them, run through the network by this run>
//   images_from_cache <of them, found in the cache shard (committed by an earlier run)>
//   end
#pragma once

#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "common/base/status.h"
#include "common/broden/broden_dataset.h"
#include "common/maths/dissector.h"

namespace nd {

// ---- Layout ----
std::string ShardFolder(const std::string& dir, int shard);
std::string TailsFilePath(const std::string& dir, int shard, const std::string& layer);
std::string ForwardRecordPath(const std::string& dir, int shard);
std::string CountsFilePath(const std::string& dir, int shard, const std::string& layer, double q,
                           bool several_quantiles);
std::string MergedThresholdsPath(const std::string& dir, const std::string& layer, double q,
                                 bool several_quantiles);

// ---- Tails ----
struct UnitTails {
  std::string layer;
  int units = 0, h = 0, w = 0;
  uint64_t images = 0, max_images = 0, keep = 0;
  std::vector<int64_t> counts;           // per unit: finite values seen
  std::vector<std::vector<float>> tops;  // per unit: top min(count, keep) values, descending
};
std::string EncodeTails(const UnitTails& tails);
[[nodiscard]] StatusOr<UnitTails> DecodeTails(const std::string& bytes, const std::string& name);
[[nodiscard]] Status WriteTailsFile(const std::string& path, const UnitTails& tails);
[[nodiscard]] StatusOr<UnitTails> ReadTailsFile(const std::string& path);

// The tails of the union of the slices: counts add, each unit keeps the top `keep` of all values.
// Parts without images (an empty slice: units 0) add nothing. Errors (naming the layer): no part
// with images, another layer, shape, keep or max_images.
[[nodiscard]] StatusOr<UnitTails> MergeTails(const std::vector<UnitTails>& parts);
// T_u at quantile q for every unit (calibrate's Finish, exactly): NaN for a unit with no finite
// value. Errors: FailedPrecondition when K is too small for q (tails from a run with a smaller
// largest quantile; the forward phase must run again).
[[nodiscard]] StatusOr<std::vector<double>> ThresholdsFromTails(const UnitTails& tails, double q);

// ---- Counts ----
struct ShardCounts {
  std::string layer;
  double quantile = 0;
  int shard = 0, shards = 0;
  int units = 0, num_labels = 0, num_categories = 0;
  UnionRule rule = UnionRule::kPaper;
  std::vector<double> thresholds;
  int64_t images_scored = 0, rows = 0, forward_images = 0;
  int64_t repeated_label_pixels = 0, label_read_failures = 0, fetch_failures = 0;
  MaskStats masks;
  double cpu_seconds = 0;
  std::vector<std::pair<uint32_t, std::string>> upstream_skipped;
  std::vector<SkippedImage> skipped;
  std::vector<int64_t> g, i, u;  // IouTally's arrays
};
// The counts of one score task from its report (REQUIRES: report.tally set).
ShardCounts CountsFromReport(const ScoreReport& report, const std::string& layer, double q,
                             int shard, int shards, int64_t rows, int64_t forward_images,
                             std::vector<std::pair<uint32_t, std::string>> upstream_skipped);
std::string FormatCounts(const ShardCounts& counts);
[[nodiscard]] StatusOr<ShardCounts> ParseCounts(const std::string& text, const std::string& name);
[[nodiscard]] Status WriteCountsFile(const std::string& path, const ShardCounts& counts);
[[nodiscard]] StatusOr<ShardCounts> ReadCountsFile(const std::string& path);

// Sums the shards' counts (in the given order; skips are concatenated, score's sorted by row).
// Errors (naming the layer and shard): another layer, quantile, shape, rule or threshold bits.
[[nodiscard]] StatusOr<ShardCounts> MergeCounts(const std::vector<ShardCounts>& parts);
// The report a single score process would have made from these counts: the tally, the layer's
// results (ComputeLayerResults) and the skip and mask totals.
[[nodiscard]] StatusOr<ScoreReport> ReportFromCounts(const ShardCounts& counts,
                                                     const BrodenDataset& dataset,
                                                     double iou_threshold);

// ---- Forward record ----
struct ForwardRecord {
  int shard = 0, shards = 0;
  int64_t restart = 0, images = 0, forward_images = 0, images_from_cache = 0;
};
std::string FormatForwardRecord(const ForwardRecord& record);
[[nodiscard]] StatusOr<ForwardRecord> ParseForwardRecord(const std::string& text,
                                                         const std::string& name);
[[nodiscard]] Status WriteForwardRecord(const std::string& path, const ForwardRecord& record);
[[nodiscard]] StatusOr<ForwardRecord> ReadForwardRecord(const std::string& path);

}  // namespace nd
