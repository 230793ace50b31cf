#include "tools/rate/rate_server.h"

#include <algorithm>
#include <chrono>
#include <opencv2/imgcodecs.hpp>
#include <thread>

#include "cache/activation_cache.h"
#include "cache/pipeline_keys.h"
#include "common/base/log.h"
#include "common/base/parallel.h"
#include "common/base/text_format.h"
#include "common/broden/broden_dataset.h"
#include "tools/rate/rate_page.h"
#include "tools/report/report_builder.h"

namespace nd {
namespace {

constexpr size_t kMaxBody = 4096;

HttpResponse Json(int status, const std::string& body) {
  HttpResponse r;
  r.status = status;
  r.content_type = "application/json; charset=utf-8";
  r.body = body;
  r.headers.emplace_back("X-Content-Type-Options", "nosniff");
  return r;
}

HttpResponse Error(int status, const std::string& message) {
  return Json(status, "{\"error\": " + JsonString(message) + "}");
}

int HttpStatusOf(const Status& s) {
  switch (s.code()) {
    case StatusCode::kNotFound:
      return 404;
    case StatusCode::kFailedPrecondition:
      return 409;
    case StatusCode::kInvalidArgument:
      return 400;
    default:
      return 500;
  }
}

// A positive decimal int of at most 9 digits; false otherwise.
bool ParsePositive(const std::string& s, int* out) {
  if (s.empty() || s.size() > 9 || s.find_first_not_of("0123456789") != std::string::npos)
    return false;
  *out = std::stoi(s);
  return *out > 0;
}

std::string Field(const std::map<std::string, std::string>& m, const std::string& key) {
  auto it = m.find(key);
  return it == m.end() ? std::string() : it->second;
}

// Compares the shared token in time independent of where they differ (the length is no secret).
bool SameToken(const std::string& given, const std::string& token) {
  if (given.size() != token.size()) return false;
  unsigned diff = 0;
  for (size_t i = 0; i < token.size(); ++i)
    diff |= static_cast<unsigned char>(given[i]) ^ static_cast<unsigned char>(token[i]);
  return diff == 0;
}

bool IsLoopback(const std::string& host) { return host == "127.0.0.1" || host == "::1"; }

}  // namespace

StatusOr<RateData> LoadRateData(const PipelineConfig& config, const std::string& layer) {
  ND_ASSIGN_OR_RETURN(std::vector<LayerId> layers, ConfiguredLayers(config));
  const LayerId* id = nullptr;
  std::string names;
  for (const LayerId& l : layers) {
    if (l.layer == layer) id = &l;
    names += (names.empty() ? "" : ", ") + l.layer;
  }
  if (!id) return InvalidArgument("--layer " + layer + ": not one of model.layers (" + names + ")");
  const std::string dir = RatedResultDir(config, layer);
  ND_ASSIGN_OR_RETURN(TallyFile tally, ReadTallyFile(dir + "/tally.csv"));
  ND_ASSIGN_OR_RETURN(std::vector<double> thresholds, ReadThresholdsFile(dir + "/thresholds.csv"));
  if (thresholds.size() != tally.units.size())
    return DataLoss(dir + "/thresholds.csv: " + std::to_string(thresholds.size()) +
                    " units, tally.csv has " + std::to_string(tally.units.size()));
  RateData data;
  data.layer = layer;
  data.units = SelectStudyUnits(tally, config.rate, config.score.iou_threshold);
  if (data.units.empty())
    return FailedPrecondition(dir + "/tally.csv: no unit to rate (" +
                              (config.rate.detectors_only
                                   ? std::string("no detector; set rate.detectors_only = false")
                                   : std::string("no unit has a label")) +
                              ")");
  ND_ASSIGN_OR_RETURN(BrodenDataset dataset,
                      BrodenDataset::Open(config.dataset.path, BrodenOptionsFor(config.dataset)));
  for (const BrodenLabel& l : dataset.labels())
    if (l.defined && l.primary_category >= 0)
      data.catch_pool.push_back(CatchLabel{l.name, dataset.categories()[l.primary_category].name});
  const int workers = WorkerCount(0);
  ND_ASSIGN_OR_RETURN(std::vector<std::string> digests, ImageDigests(dataset, workers));
  ND_ASSIGN_OR_RETURN(ActivationCache cache,
                      ActivationCache::Open(CacheOptionsFor(config, /*read_only=*/true)));
  ND_ASSIGN_OR_RETURN(LayerScan scan, ScanLayer(cache, LayerKeyPrefix(*id), layer, digests,
                                                static_cast<int>(thresholds.size()),
                                                config.rate.top_images, workers));
  data.images_missing = scan.missing;
  // Render every study unit's tiles once; the server then answers from memory.
  const int tile = config.rate.tile_size;
  std::vector<std::vector<std::string>> jpegs(data.units.size());
  const std::vector<int> params = {cv::IMWRITE_JPEG_QUALITY, 88};
  ND_RETURN_IF_ERROR(ParallelFor(
      data.units.size(), workers,
      [&](size_t i) -> Status {
        const int u = data.units[i].unit - 1;
        for (const TopImage& top : scan.top[u]) {
          cv::Mat photo;
          auto path = dataset.ResolveImagePath(dataset.images()[top.row].image);
          try {
            if (path.ok()) photo = cv::imread(*path, cv::IMREAD_COLOR);
          } catch (const cv::Exception&) {
            photo.release();
          }
          cv::Mat out(tile, tile, CV_8UC3, cv::Scalar(160, 160, 160));
          if (!photo.empty())
            RenderMaskedTile(photo, top.map.data(), scan.h, scan.w, thresholds[u], out);
          std::vector<uchar> bytes;
          try {
            if (!cv::imencode(".jpg", out, bytes, params))
              return Internal("unit " + std::to_string(u + 1) + ": JPEG encoding failed");
          } catch (const cv::Exception& e) {
            return Internal("unit " + std::to_string(u + 1) +
                            ": JPEG encoding failed: " + e.what());
          }
          jpegs[i].emplace_back(reinterpret_cast<const char*>(bytes.data()), bytes.size());
        }
        return Status::Ok();
      },
      "rate"));
  for (size_t i = 0; i < data.units.size(); ++i)
    data.tiles[data.units[i].unit] = std::move(jpegs[i]);
  return data;
}

RateServer::RateServer(const RateConfig& rate, RateData data, AnswersFile answers)
    : rate_(rate),
      data_(std::move(data)),
      answers_(std::move(answers)),
      study_(RateStudyOptions{data_.layer, static_cast<uint64_t>(rate.seed), rate.raters_per_unit,
                              rate.names_per_unit, rate.catch_every, rate.max_units},
             data_.units, data_.catch_pool) {
  study_.Replay(answers_.records());
  page_ = RatePageHtml(data_.layer);
}

RateServer::~RateServer() {
  if (http_) http_->Stop();
}

StatusOr<std::unique_ptr<RateServer>> RateServer::Start(const RateConfig& rate, RateData data,
                                                        AnswersFile answers, int port_override) {
  std::unique_ptr<RateServer> server(new RateServer(rate, std::move(data), std::move(answers)));
  HttpServerOptions options;
  options.host = rate.host;
  options.port = port_override >= 0 ? port_override : rate.port;
  options.max_body = kMaxBody;
  options.what = "rate.port";
  RateServer* raw = server.get();
  ND_ASSIGN_OR_RETURN(server->http_, HttpServer::Start(options, [raw](const HttpRequest& r) {
                        return raw->Handle(r);
                      }));
  server->port_ = server->http_->port();
  return server;
}

int RateServer::port() const { return port_; }

std::string RateServer::TileUrl(int unit, int rank) const {
  std::string url = "/tile?unit=" + std::to_string(unit) + "&rank=" + std::to_string(rank);
  if (!rate_.token.empty()) url += "&token=" + rate_.token;  // [A-Za-z0-9_-] only (config.cc)
  return url;
}

HttpResponse RateServer::Handle(const HttpRequest& request) {
  if (IsLoopback(rate_.host)) {
    const std::string host = request.Header("host");
    const std::string port = std::to_string(port_);
    if (host != "127.0.0.1:" + port && host != "localhost:" + port && host != "[::1]:" + port)
      return Error(403, "unexpected Host header");
  }
  const bool get = request.method == "GET" || request.method == "HEAD";
  auto query = ParseForm(request.query);
  if (!query.ok()) return Error(400, query.status().message());
  if (request.method == "POST") {
    if (request.path != "/api/answer") return Error(404, "no such page");
    if (request.Header("x-nd-rate") != "1") return Error(403, "missing X-ND-Rate header");
    const std::string type = request.Header("content-type");
    if (type.rfind("application/x-www-form-urlencoded", 0) != 0)
      return Error(415, "expected application/x-www-form-urlencoded");
    auto form = ParseForm(request.body);
    if (!form.ok()) return Error(400, form.status().message());
    if (!rate_.token.empty() && !SameToken(Field(*form, "token"), rate_.token))
      return Error(403, "wrong or missing token");
    return Answer(*form);
  }
  if (!get) return Error(405, "only GET, HEAD and POST");
  if (!rate_.token.empty() && !SameToken(Field(*query, "token"), rate_.token)) {
    HttpResponse r = Error(403, "wrong or missing token: open the address with ?token=…");
    if (request.path == "/") {
      r.content_type = "text/plain; charset=utf-8";
      r.body = "This rating server needs its token: open it as /?token=<rate.token>.\n";
    }
    return r;
  }
  if (request.path == "/") {
    HttpResponse r;
    r.content_type = "text/html; charset=utf-8";
    r.body = page_;
    r.headers.emplace_back("X-Content-Type-Options", "nosniff");
    r.headers.emplace_back("X-Frame-Options", "DENY");
    r.headers.emplace_back("Content-Security-Policy",
                           "default-src 'none'; script-src 'unsafe-inline'; style-src "
                           "'unsafe-inline'; img-src 'self'; connect-src 'self'; "
                           "base-uri 'none'; form-action 'none'; frame-ancestors 'none'");
    return r;
  }
  if (request.path == "/api/next") return Next(*query);
  if (request.path == "/tile") return Tile(*query);
  return Error(404, "no such page");
}

HttpResponse RateServer::Next(const std::map<std::string, std::string>& q) {
  const std::string rater = Field(q, "rater");
  Status valid = ValidateRaterName(rater);
  if (!valid.ok()) return Error(400, valid.message());
  RateMode mode;
  if (!ParseRateMode(Field(q, "mode"), &mode))
    return Error(400, "mode must be \"label\", \"name\" or \"human\"");
  const Trial t = study_.Next(rater, mode);
  std::string body =
      "{\"layer\": " + JsonString(data_.layer) + ", \"mode\": " + JsonString(RateModeName(mode)) +
      ", \"done\": " + (t.done ? "true" : "false") +
      ", \"answered\": " + std::to_string(t.answered) + ", \"total\": " + std::to_string(t.total) +
      ", \"complete\": " + std::to_string(t.complete);
  if (!t.done) {
    body += ", \"unit\": " + std::to_string(t.unit) + ", \"trial\": " + JsonString(t.trial) +
            ", \"phrase\": " + JsonString(t.phrase) + ", \"tiles\": [";
    const auto& tiles = data_.tiles.at(t.unit);
    for (size_t k = 0; k < tiles.size(); ++k)
      body += (k ? ", " : "") + JsonString(TileUrl(t.unit, static_cast<int>(k) + 1));
    body += "]";
  }
  return Json(200, body + "}");
}

HttpResponse RateServer::Tile(const std::map<std::string, std::string>& q) {
  int unit = 0, rank = 0;
  if (!ParsePositive(Field(q, "unit"), &unit) || !ParsePositive(Field(q, "rank"), &rank))
    return Error(400, "unit and rank must be positive integers");
  auto it = data_.tiles.find(unit);
  if (it == data_.tiles.end() || rank > static_cast<int>(it->second.size()))
    return Error(404, "no such tile");
  HttpResponse r;
  r.content_type = "image/jpeg";
  r.body = it->second[rank - 1];
  return r;
}

HttpResponse RateServer::Answer(const std::map<std::string, std::string>& form) {
  Submission s;
  s.rater = Field(form, "rater");
  if (!ParseRateMode(Field(form, "mode"), &s.mode))
    return Error(400, "mode must be \"label\", \"name\" or \"human\"");
  if (!ParsePositive(Field(form, "unit"), &s.unit))
    return Error(400, "unit must be a positive integer");
  s.trial = Field(form, "trial");
  s.phrase = Field(form, "phrase");
  s.answer = Field(form, "answer");
  auto checked = study_.Check(s);
  if (!checked.ok()) return Error(HttpStatusOf(checked.status()), checked.status().message());
  if (!checked->already) {
    checked->record.time = AnswerTimeNow();
    Status written = answers_.Append(checked->record);
    if (!written.ok()) {
      LogError(written.message());
      return Error(500, "the answer could not be saved: " + written.message());
    }
    study_.Add(checked->record);
  }
  return Json(200, std::string("{\"recorded\": true, \"already\": ") +
                       (checked->already ? "true" : "false") + "}");
}

}  // namespace nd
