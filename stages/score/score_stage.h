// ScoreStage: the score process's work, without its sockets. main.cc hands it every READY batch
// calibrate passes on, then the end of the stream; it scores every configured layer and view
// (cache/pipeline_keys.h UnitSet) and quantile
// from the cached activations (common/maths/dissector.h), runs the analyses the configuration asks
// for, and writes the result files (common/results). Policy lives here: which thresholds apply
// (the cache's record for exactly the images seen), what counts as a skipped image, which
// (layer, quantile) the stage's counters report.
//
// Thread-compatible; one per process.
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "cache/activation_cache.h"
#include "cache/pipeline_keys.h"
#include "common/base/config.h"
#include "common/base/status.h"
#include "common/broden/broden_dataset.h"
#include "common/maths/dissector.h"
#include "common/maths/view_basis.h"
#include "common/runtime/wire.h"

namespace nd {

// The Dissector's options from [score] (union rule, IoU threshold, workers, engine and device).
// The tensor engine's factory is the caller's to set (only nd-stage-score-tensor links it).
ScoreOptions ScoreOptionsFor(const PipelineConfig& config);

class ScoreStage {
 public:
  // REQUIRES: `dataset` and `cache` outlive the stage.
  static StatusOr<std::unique_ptr<ScoreStage>> Create(const PipelineConfig& config,
                                                      const BrodenDataset* dataset,
                                                      ActivationCache* cache,
                                                      const ScoreOptions& options);

  // Takes one READY batch: rows not seen before are remembered with their image digests, skipped
  // rows and the forwarded count are added, and the new rows' label layers are decoded now (while
  // the network still runs) up to a memory budget. Returns how many rows were new.
  // Errors: DataLoss for a row outside index.csv.
  StatusOr<size_t> Add(const ReadyBatch& ready);
  // Decodes the label layers of `rows` now, before their READY notices (up to the same memory
  // budget): for a run whose images are all known in advance (the run plan's image set), so that
  // the labels are ready when the notices arrive. Errors: InvalidArgument for a row outside
  // index.csv.
  Status PrepareAhead(const std::vector<size_t>& rows);

  // Rows taken so far, usable and skipped.
  size_t rows_seen() const { return rows_.size() + skipped_.size(); }

  // What the stage reports for the first (layer, quantile): each image counts once, however many
  // layers and quantiles it is scored for.
  struct Totals {
    uint64_t images_scored = 0;
    uint64_t images_skipped = 0;
  };
  // At the end of the stream: scores every layer and quantile and writes its result folder,
  // calling on_result(dir) after each. Errors: FailedPrecondition when no image is usable;
  // NotFound when the thresholds for exactly these images are not in the cache; the Dissector's
  // and the result writers' errors.
  StatusOr<Totals> Finish(const EndOfStream& eos,
                          const std::function<void(const std::string& dir)>& on_result);

 private:
  ScoreStage(const PipelineConfig& config, const BrodenDataset* dataset, ActivationCache* cache,
             std::vector<LayerId> layers, std::vector<UnitSet> sets,
             std::unique_ptr<Dissector> dissector);
  // Scores one (unit set, quantile) and writes its folder; returns the Dissector's report.
  StatusOr<ScoreReport> ScoreOne(size_t set, double q, const EndOfStream& eos, std::string* dir);

  const PipelineConfig& config_;
  const BrodenDataset* dataset_;
  ActivationCache* cache_;
  std::vector<LayerId> layers_;  // where activations are read
  std::vector<UnitSet> sets_;    // what is scored: layers, then views (pipeline_keys.h)
  std::vector<std::unique_ptr<LinearView>> views_;  // per set; null for a layer
  std::unique_ptr<Dissector> dissector_;
  std::vector<size_t> rows_;                 // usable rows, arrival order until Finish sorts them
  std::map<size_t, std::string> digest_of_;  // row -> image digest (the cache key)
  std::vector<std::pair<uint32_t, std::string>> skipped_;  // (row, reason) from upstream
  uint64_t forwarded_ = 0;
};

}  // namespace nd
