#include "common/maths/dissector.h"

#include <time.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cmath>
#include <exception>
#include <thread>
#include <utility>

#include "common/base/parallel.h"

namespace nd {
namespace {

double ThreadCpuSeconds() {
  timespec ts{};
  if (clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts) != 0) return 0;
  return static_cast<double>(ts.tv_sec) + 1e-9 * static_cast<double>(ts.tv_nsec);
}

}  // namespace

Dissector::Dissector(const BrodenDataset* dataset, const ScoreOptions& options)
    : dataset_(dataset), options_(options) {
  workers_ =
      options.workers > 0 ? options.workers : std::max(1u, std::thread::hardware_concurrency());
  primary_.resize(dataset->num_labels());
  for (int l = 0; l < dataset->num_labels(); ++l) primary_[l] = dataset->PrimaryCategory(l);
  num_categories_ = static_cast<int>(dataset->categories().size());
  prepared_.resize(dataset->images().size());
}

StatusOr<std::unique_ptr<Dissector>> Dissector::Create(const BrodenDataset* dataset,
                                                       const ScoreOptions& options) {
  if (dataset == nullptr) return InvalidArgument("score: no dataset");
  if (std::isnan(options.iou_threshold)) return InvalidArgument("score: iou_threshold is NaN");
  if (options.workers < 0) {
    return InvalidArgument("score: workers is " + std::to_string(options.workers) +
                           ", expected >= 0 (0 = all hardware threads)");
  }
  if (options.engine == ScoreEngine::kTensor) {
    if (!options.tensor_engine.check_device || !options.tensor_engine.create) {
      return FailedPrecondition("score: device '" + options.device +
                                "' needs the tensor engine, which this process does not have "
                                "(nd-stage-score-tensor runs it)");
    }
    ND_RETURN_IF_ERROR(options.tensor_engine.check_device(options.device));
  }
  return std::unique_ptr<Dissector>(new Dissector(dataset, options));
}

StatusOr<LabelIndex> Dissector::BuildIndex(size_t row) const {
  StatusOr<ImageLabels> labels = dataset_->ReadLabels(row);
  if (!labels.ok()) return labels.status();
  return LabelIndex::Build(*labels, primary_, num_categories_);
}

Status Dissector::PrepareLabels(const std::vector<size_t>& rows) {
  std::vector<size_t> todo;
  std::vector<char> seen(prepared_.size(), 0);
  for (size_t row : rows) {
    if (row >= prepared_.size()) {
      return InvalidArgument("score: row " + std::to_string(row) + " outside index.csv (" +
                             std::to_string(prepared_.size()) + " rows)");
    }
    if (seen[row] || prepared_[row].index || !prepared_[row].error.empty()) continue;
    seen[row] = 1;
    todo.push_back(row);
  }
  std::atomic<size_t> next{0};
  const int threads =
      static_cast<int>(std::min<size_t>(workers_, std::max<size_t>(1, todo.size())));
  return RunOnThreads(
      threads,
      [&](int) {
        for (size_t k; (k = next.fetch_add(1)) < todo.size();) {
          const size_t row = todo[k];
          Prepared& p = prepared_[row];  // each row is written by exactly one thread
          try {
            StatusOr<LabelIndex> idx = BuildIndex(row);
            if (idx.ok()) {
              p.index = std::make_shared<const LabelIndex>(std::move(idx).value());
            } else {
              p.error = "labels: " + idx.status().message();
            }
          } catch (const std::exception& e) {
            p.error = std::string("labels: ") + e.what();
          }
        }
      },
      "score");
}

Status Dissector::SetLabelIndex(size_t row, std::shared_ptr<const LabelIndex> index) {
  if (row >= prepared_.size()) {
    return InvalidArgument("score: row " + std::to_string(row) + " outside index.csv (" +
                           std::to_string(prepared_.size()) + " rows)");
  }
  if (!index) return InvalidArgument("score: null label index for row " + std::to_string(row));
  const BrodenImage& im = dataset_->images()[row];
  if (index->sh() != im.sh || index->sw() != im.sw) {
    return InvalidArgument("score: label index of row " + std::to_string(row) + " is " +
                           std::to_string(index->sh()) + "x" + std::to_string(index->sw()) +
                           ", index.csv says " + std::to_string(im.sh) + "x" +
                           std::to_string(im.sw));
  }
  if (index->num_labels() != static_cast<int>(primary_.size()) ||
      index->num_categories() != num_categories_) {
    return InvalidArgument("score: label index of row " + std::to_string(row) +
                           " was built for another label table");
  }
  prepared_[row].index = std::move(index);
  prepared_[row].error.clear();
  return Status::Ok();
}

std::shared_ptr<const LabelIndex> Dissector::PreparedLabelIndex(size_t row) const {
  if (row >= prepared_.size()) return nullptr;
  return prepared_[row].index;
}

size_t Dissector::PreparedLabelBytes() const {
  size_t n = 0;
  for (const Prepared& p : prepared_) {
    if (p.index) n += p.index->MemoryBytes();
  }
  return n;
}

void Dissector::ClearPreparedLabels() {
  for (Prepared& p : prepared_) p = Prepared{};
}

struct Dissector::Shard {
  Shard(const std::vector<double>& t, int labels, int cats, UnionRule rule)
      : tally(t, labels, cats, rule) {}
  IouTally tally;
  UnitMaskBuilder builder;
  std::unique_ptr<DeviceScorer> scorer;  // the tensor engine's, else null
  ActivationMap acts;
  std::vector<SkippedImage> skipped;
  int64_t scored = 0, label_failures = 0, fetch_failures = 0, repeated_label_pixels = 0;
  double cpu = 0;
  Status fatal;
  MaskStats tensor_stats;  // the tensor engine's mask stats
};

bool Dissector::ScoreRow(size_t row, size_t units, const FetchFn& fetch, Shard* s) const {
  // Labels: prepared, remembered failure, or built now.
  const Prepared& p = prepared_[row];
  std::shared_ptr<const LabelIndex> shared = p.index;
  LabelIndex local;
  const LabelIndex* index = shared.get();
  if (index == nullptr) {
    if (!p.error.empty()) {
      s->skipped.push_back(SkippedImage{row, p.error});
      ++s->label_failures;
      return true;
    }
    StatusOr<LabelIndex> built = BuildIndex(row);
    if (!built.ok()) {
      s->skipped.push_back(SkippedImage{row, "labels: " + built.status().message()});
      ++s->label_failures;
      return true;
    }
    local = std::move(built).value();
    index = &local;
  }
  // Activations.
  Status st;
  try {
    st = fetch(row, &s->acts);
  } catch (const std::exception& e) {
    st = Internal(std::string("fetch threw: ") + e.what());
  }
  if (!st.ok()) {
    s->skipped.push_back(SkippedImage{row, "activations: " + st.message()});
    ++s->fetch_failures;
    return true;
  }
  if (s->acts.units != static_cast<int>(units)) {
    s->fatal = FailedPrecondition("score: row " + std::to_string(row) + ": activation map has " +
                                  std::to_string(s->acts.units) + " units, thresholds have " +
                                  std::to_string(units));
    return false;
  }
  st = s->scorer ? s->scorer->AddImage(*index, s->acts)
                 : s->tally.AddImage(*index, s->acts, &s->builder);
  if (s->scorer && !st.ok() && st.code() != StatusCode::kInvalidArgument) {
    s->fatal = st;  // a device failure, not this image's
    return false;
  }
  if (!st.ok()) {
    s->skipped.push_back(SkippedImage{row, "activations: " + st.message()});
    ++s->fetch_failures;
    return true;
  }
  ++s->scored;
  s->repeated_label_pixels += index->repeated_label_pixels();
  return true;
}

StatusOr<ScoreReport> Dissector::Run(const std::vector<size_t>& rows,
                                     const std::vector<double>& thresholds, const FetchFn& fetch) {
  if (thresholds.empty()) return InvalidArgument("score: no thresholds (zero units)");
  for (size_t u = 0; u < thresholds.size(); ++u) {
    if (std::isnan(thresholds[u])) {
      return InvalidArgument("score: threshold of unit " + std::to_string(u) + " is NaN");
    }
  }
  for (size_t row : rows) {
    if (row >= prepared_.size()) {
      return InvalidArgument("score: row " + std::to_string(row) + " outside index.csv (" +
                             std::to_string(prepared_.size()) + " rows)");
    }
  }
  const auto wall0 = std::chrono::steady_clock::now();
  const int threads =
      static_cast<int>(std::min<size_t>(workers_, std::max<size_t>(1, rows.size())));

  std::vector<std::unique_ptr<Shard>> shards;
  for (int t = 0; t < threads; ++t) {
    shards.push_back(std::make_unique<Shard>(thresholds, static_cast<int>(primary_.size()),
                                             num_categories_, options_.union_rule));
  }
  if (options_.engine == ScoreEngine::kTensor) {
    const int64_t chunk_bytes = std::max<int64_t>(1, options_.tensor_chunk_bytes / threads);
    for (auto& s : shards) {
      ND_ASSIGN_OR_RETURN(
          s->scorer, options_.tensor_engine.create(thresholds, static_cast<int>(primary_.size()),
                                                   num_categories_, options_.union_rule,
                                                   options_.device, chunk_bytes));
    }
  }
  std::atomic<size_t> next{0};
  std::atomic<bool> stop{false};
  const size_t units = thresholds.size();

  ND_RETURN_IF_ERROR(RunOnThreads(
      threads,
      [&](int t) {
        Shard& s = *shards[t];
        const double cpu0 = ThreadCpuSeconds();
        try {
          for (size_t k;
               !stop.load(std::memory_order_relaxed) && (k = next.fetch_add(1)) < rows.size();) {
            if (!ScoreRow(rows[k], units, fetch, &s)) {
              stop.store(true);
              break;
            }
          }
          if (s.scorer && s.fatal.ok()) {
            Status st = s.scorer->AddCountsTo(&s.tally);
            StatusOr<MaskStats> stats = s.scorer->TakeMaskStats();
            if (!st.ok()) {
              s.fatal = st;
            } else if (!stats.ok()) {
              s.fatal = stats.status();
            } else {
              s.tensor_stats = *stats;
            }
          }
        } catch (const std::exception& e) {
          s.fatal = Internal(std::string("score: worker failed: ") + e.what());
          stop.store(true);
        }
        s.cpu = ThreadCpuSeconds() - cpu0;
      },
      "score"));

  for (const auto& s : shards) ND_RETURN_IF_ERROR(s->fatal);
  ScoreReport report;
  report.workers = threads;
  IouTally& total = shards[0]->tally;
  for (size_t t = 0; t < shards.size(); ++t) {
    Shard& s = *shards[t];
    if (t > 0) ND_RETURN_IF_ERROR(total.Merge(s.tally));
    report.images_scored += s.scored;
    report.repeated_label_pixels += s.repeated_label_pixels;
    report.label_read_failures += s.label_failures;
    report.fetch_failures += s.fetch_failures;
    report.masks.Add(s.scorer ? s.tensor_stats : s.builder.stats());
    report.cpu_seconds += s.cpu;
    for (auto& sk : s.skipped) report.skipped.push_back(std::move(sk));
  }
  std::stable_sort(report.skipped.begin(), report.skipped.end(),
                   [](const SkippedImage& a, const SkippedImage& b) { return a.row < b.row; });
  report.images_skipped = static_cast<int64_t>(report.skipped.size());
  ND_ASSIGN_OR_RETURN(report.results, ComputeLayerResults(total, primary_, options_.iou_threshold));
  report.tally = std::make_shared<const IouTally>(std::move(total));
  report.wall_seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - wall0).count();
  return report;
}

}  // namespace nd
