// nd-explain-bench: times the analyses from the activation cache (issue 14) on a configured layer
// whose activations and thresholds one `nd-pipeline up` has already cached:
//
//   nd-explain-bench -c pipeline.toml [--set k=v ...] [--length 3] [--beam 5]
//                    [--bootstrap 1000] [--permutations 1000] [--workers 0] [--out DIR]
//                    [--replicate K] [--max-null] [--verify]
//
// Steps (each timed on its own): hash the images (to find the cache keys, as decode does), score
// the layer from the cache (Dissector, as the score process does), build LayerTables,
// compositional explanations, the bootstrap, the permutation null. It prints one table with the
// figures, the machine (cores, load average) and a linear projection to compexp's 22,210 images;
// with --out it also writes explanations.csv and stats.csv there. Uses the first configured layer
// and quantile.
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "cache/activation_cache.h"
#include "cache/pipeline_keys.h"
#include "common/base/args.h"
#include "common/base/config.h"
#include "common/base/digest.h"
#include "common/base/parallel.h"
#include "common/broden/broden_dataset.h"
#include "common/maths/dissector.h"
#include "common/maths/explain.h"
#include "common/maths/label_stats.h"
#include "common/maths/layer_tables.h"
#include "common/results/analysis_files.h"

namespace {

using Clock = std::chrono::steady_clock;

double Since(Clock::time_point t) {
  return std::chrono::duration<double>(Clock::now() - t).count();
}

std::string LoadAverage() {
  std::ifstream in("/proc/loadavg");
  std::string a, b, c;
  in >> a >> b >> c;
  return a + " " + b + " " + c;
}

int Fail(const std::string& why) {
  std::fprintf(stderr, "nd-explain-bench: %s\n", why.c_str());
  return 1;
}

// The cache keys of every image of index.csv (SHA-256 of the file), as decode computes them;
// false when an image path cannot be resolved.
bool HashImages(const nd::BrodenDataset& dataset, int threads, std::vector<std::string>* digests) {
  const auto& images = dataset.images();
  digests->assign(images.size(), "");
  std::atomic<bool> bad{false};
  (void)nd::ParallelFor(
      images.size(), threads,
      [&](size_t i) -> nd::Status {
        auto path = dataset.ResolveImagePath(images[i].image);
        if (!path.ok()) {
          bad = true;
          return nd::Status::Ok();
        }
        auto digest = nd::Sha256File(*path);
        if (!digest.ok()) {
          bad = true;
          return nd::Status::Ok();
        }
        (*digests)[i] = *digest;
        return nd::Status::Ok();
      },
      "nd-explain-bench");
  return !bad;
}

// Pixel by pixel: how many units' formula counts (intersection, union) differ from evaluating the
// formula at every pixel of every image from the tables' merged label sets.
int CountMiscountedUnits(const nd::LayerTables& tables, const nd::ExplainReport& explained,
                         int threads) {
  auto bit = [&](const nd::TableImage& im, int label, int64_t p) -> bool {
    if (im.HasScalar(label)) return true;
    const nd::LabelBits* b = im.FindMerged(label);
    const int64_t w = p >> 6;
    if (b == nullptr || w < b->lo || w >= b->hi) return false;
    return (b->words[w - b->lo] >> (p & 63)) & 1;
  };
  auto eval = [&](const nd::TableImage& im, const nd::Formula& f, int64_t p) {
    bool v = bit(im, f.labels[0], p);
    for (size_t k = 0; k < f.ops.size(); ++k) {
      const bool x = bit(im, f.labels[k + 1], p);
      v = f.ops[k] == nd::FormulaOp::kOr    ? (v || x)
          : f.ops[k] == nd::FormulaOp::kAnd ? (v && x)
                                            : (v && !x);
    }
    return v;
  };
  std::atomic<int> bad_units{0};
  (void)nd::ParallelFor(
      static_cast<size_t>(tables.units()), threads,
      [&](size_t u) -> nd::Status {
        const nd::UnitExplanation& x = explained.units[u];
        if (x.formula.labels.empty()) return nd::Status::Ok();
        const nd::UnitTable& ut = tables.unit(static_cast<int>(u));
        int64_t inter = 0, size = 0;
        for (const nd::ActiveImage& a : ut.active) {
          const nd::TableImage& im = tables.images()[a.image];
          const uint64_t* m = ut.Mask(a);
          for (int64_t p = int64_t{a.lo} * 64;
               p < std::min<int64_t>(int64_t{a.hi} * 64, im.pixels()); ++p)
            inter += ((m[(p >> 6) - a.lo] >> (p & 63)) & 1) && eval(im, x.formula, p);
        }
        for (const nd::TableImage& im : tables.images())
          if (!im.skipped)
            for (int64_t p = 0; p < im.pixels(); ++p) size += eval(im, x.formula, p);
        const int64_t uni = ut.total_m + size - inter;
        if (inter != x.intersection || uni != x.union_area) ++bad_units;
        return nd::Status::Ok();
      },
      "nd-explain-bench");
  return bad_units.load();
}

// explanations.csv and stats.csv (bootstrap and permutation results merged) under out_dir.
nd::Status WriteOutputs(const std::string& out_dir, const nd::ExplainReport& explained,
                        const nd::LabelStatsReport& boot, const nd::LabelStatsReport& perm,
                        const nd::BrodenDataset& dataset) {
  nd::LabelStatsReport both = boot;
  both.permutations = perm.permutations;
  both.max_null = perm.max_null;
  for (size_t u = 0; u < both.units.size(); ++u) {
    both.units[u].p_value = perm.units[u].p_value;
    both.units[u].q_value = perm.units[u].q_value;
    both.units[u].null_mean = perm.units[u].null_mean;
    both.units[u].null_at_least = perm.units[u].null_at_least;
    both.units[u].p_max = perm.units[u].p_max;
    both.units[u].q_max = perm.units[u].q_max;
  }
  std::error_code ec;
  std::filesystem::create_directories(out_dir, ec);
  ND_RETURN_IF_ERROR(nd::WriteExplanationsCsv(out_dir, explained));
  return nd::WriteStatsCsv(out_dir, both, nd::LabelNames(dataset));
}

struct Timings {
  double hash_s, labels_s, score_s, tables_s, explain_s, boot_s, perm_s;
};
struct BenchSettings {
  int length, beam, bootstrap, permutations;
  bool max_null;
};

// The figures, projected to the 22,210 images of ADE20K-sized runs where the step scales with N.
void PrintReport(const nd::PipelineConfig& c, const nd::LayerId& layer, double q, int replicate,
                 int threads, size_t index_rows, const nd::LayerTables& tables,
                 const nd::ScoreReport& report, const nd::ExplainReport& explained,
                 const nd::LabelStatsReport& boot, const nd::LabelStatsReport& perm,
                 const Timings& t, const BenchSettings& b) {
  const double n = static_cast<double>(tables.images_used());
  const double scale = 22210.0 / n;
  int64_t active = 0;
  for (const auto& u : tables.unit_tables()) active += static_cast<int64_t>(u.active.size());
  std::printf(
      "nd-explain-bench: %s, layer %s, q=%g, %lld images (%zu rows x %d), %d units, %zu labels "
      "occurring\n",
      c.model.path.c_str(), layer.layer.c_str(), q, static_cast<long long>(n), index_rows,
      replicate, tables.units(), tables.occurring_labels().size());
  std::printf("machine: %u hardware threads, %d worker threads, load average at the end %s\n",
              std::thread::hardware_concurrency(), threads, LoadAverage().c_str());
  std::printf("non-empty (unit, image) masks: %lld; table memory %.1f MiB\n",
              static_cast<long long>(active), tables.MemoryBytes() / 1048576.0);
  std::printf("%-44s %10s %16s\n", "step", "seconds", "x22210/N (proj.)");
  auto row = [&](const char* name, double s, bool project) {
    if (project) {
      std::printf("%-44s %10.2f %16.1f\n", name, s, s * scale);
    } else {
      std::printf("%-44s %10.2f %16s\n", name, s, "");
    }
  };
  row("hash images (cache keys)", t.hash_s, false);
  row("label indexes (PNG decode)", t.labels_s, false);
  row("score from the cache (tally.csv)", t.score_s, true);
  row("tables (masks + per-image counts)", t.tables_s, true);
  char name[96];
  std::snprintf(name, sizeof(name), "explanations, length %d beam %d", b.length, b.beam);
  row(name, t.explain_s, true);
  std::printf(
      "  of which per-formula |F^L| %.2f s (%lld formulas), per-unit %.2f s; %lld candidates\n",
      explained.formula_seconds, static_cast<long long>(explained.beam_formulas_counted),
      explained.unit_seconds, static_cast<long long>(explained.candidates_scored));
  std::snprintf(name, sizeof(name), "bootstrap, %d resamples", b.bootstrap);
  row(name, t.boot_s, true);
  std::snprintf(name, sizeof(name), "permutation null, %d permutations%s", b.permutations,
                b.max_null ? " + max null" : "");
  row(name, t.perm_s, true);
  std::printf("detectors (IoU > %g): %d of %d; significant detectors (q < 0.05): %d",
              c.score.iou_threshold, report.results.detectors, report.results.units,
              perm.significant_detectors);
  if (b.max_null) std::printf(", by the max null: %d", perm.significant_detectors_max);
  std::printf("; significant units: %d", perm.significant_units);
  if (b.max_null) {
    int n = 0;
    for (const auto& s : perm.units) n += s.q_max < 0.05;
    std::printf(", by the max null: %d", n);
  }
  std::printf("\n");
  double stab = 0;
  for (const auto& s : boot.units) stab += s.stability;
  std::printf("mean label stability: %.3f\n", stab / std::max<size_t>(1, boot.units.size()));
  for (int u = 0; u < std::min(5, tables.units()); ++u) {
    const auto& x = explained.units[u];
    std::printf("unit %d: %s (IoU %.4f; primitive %s %.4f)\n", u + 1, x.text.c_str(), x.iou,
                x.primitive_text.c_str(), x.primitive_iou);
  }
}

int Main(int argc, char** argv) {
  std::string config_path, out_dir;
  std::vector<std::string> sets;
  int length = 3, beam = 5, bootstrap = 1000, permutations = 1000, workers = 0, replicate = 1;
  bool max_null = false;  // time the permutations with the max null too
  bool verify = false;
  nd::ArgParser parser;
  nd::AddConfigOptions(&parser, &config_path, &sets);
  parser.Int("--length", &length, 1, 10)
      .Int("--beam", &beam, 1, 1000)
      .Int("--bootstrap", &bootstrap, 0, 1000000)
      .Int("--permutations", &permutations, 0, 1000000)
      .Int("--workers", &workers, 0, 1024)
      .Flag("--verify", &verify)
      .Flag("--max-null", &max_null)
      .Int("--replicate", &replicate, 1, 1000)
      .String("--out", &out_dir);
  const nd::Status parsed = parser.Parse(argc, argv);
  if (!parsed.ok() || parser.help()) {
    if (!parsed.ok()) std::fprintf(stderr, "nd-explain-bench: %s\n", parsed.message().c_str());
    std::fprintf(parsed.ok() ? stdout : stderr,
                 "usage: nd-explain-bench -c pipeline.toml [--set k=v ...] [--length 3] "
                 "[--beam 5] [--bootstrap 1000] [--permutations 1000] [--workers 0] "
                 "[--out DIR] [--replicate K] [--max-null] [--verify]\n");
    return parsed.ok() ? 0 : 2;
  }
  auto config = nd::LoadConfig(config_path, sets);
  if (!config.ok()) return Fail(config.status().ToString());
  const nd::PipelineConfig& c = *config;
  nd::BrodenOptions bo;
  bo.categories = c.dataset.categories;
  auto dataset = nd::BrodenDataset::Open(c.dataset.path, bo);
  if (!dataset.ok()) return Fail(dataset.status().ToString());
  auto layers = nd::ConfiguredLayers(c);
  if (!layers.ok()) return Fail(layers.status().ToString());
  const nd::LayerId& layer = layers->front();
  auto cache = nd::ActivationCache::Open(nd::CacheOptionsFor(c, /*read_only=*/true));
  if (!cache.ok()) return Fail(cache.status().ToString());
  const double q = c.threshold.quantiles.front();
  const int threads = nd::WorkerCount(workers);

  // 1. Image digests (the cache keys), as decode computes them.
  auto t0 = Clock::now();
  const auto& images = dataset->images();
  std::vector<std::string> digests;
  if (!HashImages(*dataset, threads, &digests)) {
    return Fail("an image path of index.csv cannot be resolved");
  }
  const double hash_s = Since(t0);
  std::string record;
  nd::Status st = cache->Get(nd::ImageSetThresholdKey(layer, q, digests), &record);
  if (!st.ok())
    return Fail("thresholds of " + layer.layer +
                " not in the cache (run nd-pipeline up first): " + st.ToString());
  std::vector<double> thresholds;
  st = nd::DecodeThresholdValues(record, &thresholds);
  if (!st.ok()) return Fail(st.ToString());
  const std::string prefix = nd::LayerKeyPrefix(layer);
  auto fetch = [&](size_t row, nd::ActivationMap* out) {
    return cache->GetActivation(nd::ActivationKey(prefix, digests[row]), out);
  };
  std::vector<size_t> rows;  // image i of the tables is index.csv row rows[i]

  // 2. The dissection itself from the cache (what the score process does before the analyses).
  nd::ScoreOptions so;
  so.union_rule = c.score.union_rule == "lite" ? nd::UnionRule::kLite : nd::UnionRule::kPaper;
  so.iou_threshold = c.score.iou_threshold;
  so.workers = workers;
  auto stage = nd::Dissector::Create(&*dataset, so);
  if (!stage.ok()) return Fail(stage.status().ToString());
  for (int k = 0; k < replicate; ++k)
    for (size_t i = 0; i < images.size(); ++i) rows.push_back(i);
  t0 = Clock::now();
  st = (*stage)->PrepareLabels(rows);
  if (!st.ok()) return Fail(st.ToString());
  const double labels_s = Since(t0);
  t0 = Clock::now();
  auto report = (*stage)->Run(rows, thresholds, fetch);
  if (!report.ok()) return Fail(report.status().ToString());
  const double score_s = Since(t0);

  // 3. Tables.
  auto label_fn = [&](size_t i) -> nd::StatusOr<std::shared_ptr<const nd::LabelIndex>> {
    auto p = (*stage)->PreparedLabelIndex(rows[i]);
    if (!p) return nd::NotFound("no label index");
    return p;
  };
  auto table_fetch = [&](size_t i, nd::ActivationMap* out) { return fetch(rows[i], out); };
  t0 = Clock::now();
  auto tables = nd::LayerTables::Build(
      rows.size(), label_fn, table_fetch, thresholds, dataset->num_labels(),
      static_cast<int>(dataset->categories().size()), so.union_rule, workers);
  if (!tables.ok()) return Fail(tables.status().ToString());
  const double tables_s = Since(t0);

  // 4. Explanations.
  nd::ExplainOptions eo;
  eo.length = length;
  eo.beam = beam;
  eo.workers = workers;
  t0 = Clock::now();
  auto explained = nd::ExplainUnits(*tables, nd::LabelNames(*dataset), eo);
  if (!explained.ok()) return Fail(explained.status().ToString());
  const double explain_s = Since(t0);

  if (verify) {
    t0 = Clock::now();
    const int bad_units = CountMiscountedUnits(*tables, *explained, threads);
    std::printf(
        "verify: %d of %d units' formula counts differ from pixel-by-pixel evaluation "
        "(%.1f s)\n",
        bad_units, tables->units(), Since(t0));
    if (bad_units != 0) return Fail("verification failed");
  }

  // 5. Bootstrap, 6. permutations (separately, to time each).
  nd::StatsOptions bo_opts;
  bo_opts.bootstrap = bootstrap;
  bo_opts.seed = static_cast<uint64_t>(c.stats.seed);
  bo_opts.workers = workers;
  t0 = Clock::now();
  auto boot = nd::ComputeLabelStats(*tables, report->results, bo_opts);
  if (!boot.ok()) return Fail(boot.status().ToString());
  const double boot_s = Since(t0);
  nd::StatsOptions po = bo_opts;
  po.bootstrap = 0;
  po.permutations = permutations;
  po.max_null = max_null;
  t0 = Clock::now();
  auto perm = nd::ComputeLabelStats(*tables, report->results, po);
  if (!perm.ok()) return Fail(perm.status().ToString());
  const double perm_s = Since(t0);

  if (!out_dir.empty()) {
    st = WriteOutputs(out_dir, *explained, *boot, *perm, *dataset);
    if (!st.ok()) return Fail(st.ToString());
  }

  const Timings timings{hash_s, labels_s, score_s, tables_s, explain_s, boot_s, perm_s};
  PrintReport(c, layer, q, replicate, threads, images.size(), *tables, *report, *explained, *boot,
              *perm, timings, BenchSettings{length, beam, bootstrap, permutations, max_null});
  return 0;
}

}  // namespace

int main(int argc, char** argv) { return Main(argc, argv); }
