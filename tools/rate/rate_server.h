// `nd-pipeline rate`: the rating server of the human evaluation, for one layer of a dissected run.
//
// Start-up (LoadRateData): reads the layer's tally.csv and thresholds.csv (the first quantile's
// folder when threshold.quantile is a list), picks the study units (rate.detectors_only: units
// whose IoU > score.iou_threshold, else every unit with a label), scans the activation cache
// read-only for each study unit's top rate.top_images images (the report's scan, ScanLayer) and
// renders every tile in memory with the report's RenderMaskedTile (the photo dimmed to 20% outside
// the unit's mask), JPEG-encoded. No forward pass; nothing is written but the answers file.
//
// Routes (everything else is 404; the path is compared as bytes and never reaches the file system;
// tiles are served from memory):
//   GET  /                       the page (rate_page.h)
//   GET  /api/next?rater=R&mode=M    the rater's next trial as JSON:
//        {"done": false, "unit": 12, "trial": "…", "phrase": "…", "tiles": ["/tile?…", …],
//         "answered": 3, "total": 40, "complete": 5, "layer": "layer4", "mode": "label"}
//        or {"done": true, …}
//   GET  /tile?unit=U&rank=K     tile K (1-based) of unit U, image/jpeg
//   POST /api/answer             form body rater, mode, unit, trial, phrase, answer; 200 with
//        {"recorded": true, "already": false} only after the line is on disk (AnswersFile::Append)
// With rate.token set every request carries token=… (query string, or the form body for POST);
// a missing or wrong one is 403. A POST must carry the header X-ND-Rate: 1 (a cross-site form
// cannot set it) and at most 4 KiB of body (413); when bound to a loopback address the Host header
// must name it (127.0.0.1:P, localhost:P or [::1]:P; against DNS rebinding).
// Errors: unknown mode, malformed field, bad rater name or phrase → 400; unit outside the study →
// 404; a trial id the rater was not given → 409. None of them writes anything.
//
// Threads: the HTTP server's one thread runs every request, so the study state and the answers file
// are touched by one thread only.
#pragma once

#include <map>
#include <memory>
#include <string>
#include <vector>

#include "common/base/config.h"
#include "common/base/status.h"
#include "common/results/result_files.h"
#include "common/runtime/http_server.h"
#include "tools/rate/answers_file.h"
#include "tools/rate/rate_study.h"

namespace nd {

struct RateData {
  std::string layer;
  std::vector<StudyUnit> units;        // the study (before rate.max_units)
  std::vector<CatchLabel> catch_pool;  // the dataset's labels with their primary category
  std::map<int, std::vector<std::string>> tiles;  // unit -> JPEG bytes, best image first
  int64_t images_missing = 0;                     // rows without cached activations (left out)
};

// Reads the results and the cache and renders the tiles (see the header comment). `layer` must be
// one of model.layers. Errors name the file or key.
[[nodiscard]] StatusOr<RateData> LoadRateData(const PipelineConfig& config,
                                              const std::string& layer);

class RateServer {
 public:
  // Replays `answers` into the study and starts serving on rate.host:rate.port (`port_override`
  // >= 0 replaces rate.port).
  [[nodiscard]] static StatusOr<std::unique_ptr<RateServer>> Start(const RateConfig& rate,
                                                                   RateData data,
                                                                   AnswersFile answers,
                                                                   int port_override = -1);
  ~RateServer();
  int port() const;
  const RateStudy& study() const { return study_; }

  // One request, as the HTTP thread calls it (public for tests).
  HttpResponse Handle(const HttpRequest& request);

 private:
  RateServer(const RateConfig& rate, RateData data, AnswersFile answers);
  HttpResponse Next(const std::map<std::string, std::string>& q);
  HttpResponse Tile(const std::map<std::string, std::string>& q);
  HttpResponse Answer(const std::map<std::string, std::string>& form);
  std::string TileUrl(int unit, int rank) const;

  RateConfig rate_;
  RateData data_;
  AnswersFile answers_;
  RateStudy study_;
  std::string page_;
  std::unique_ptr<HttpServer> http_;
  int port_ = 0;
};

}  // namespace nd
