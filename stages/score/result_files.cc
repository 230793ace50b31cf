#include "stages/score/result_files.h"

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "common/atomic_file.h"

namespace nd {
namespace {

namespace fs = std::filesystem;

std::string Num(double v) {
  char buf[40];
  std::snprintf(buf, sizeof(buf), "%.17g", v);
  return buf;
}

std::string Short(double v) {
  char buf[40];
  std::snprintf(buf, sizeof(buf), "%.6g", v);
  return buf;
}

}  // namespace

std::string JsonString(const std::string& s) {
  std::string out = "\"";
  for (char ch : s) {
    unsigned char c = static_cast<unsigned char>(ch);
    if (c == '"' || c == '\\') {
      out += '\\';
      out += ch;
    } else if (c < 0x20) {
      char buf[8];
      std::snprintf(buf, sizeof(buf), "\\u%04x", c);
      out += buf;
    } else {
      out += ch;
    }
  }
  return out + "\"";
}

Status WriteLayerResultFiles(const std::string& dir, const BrodenDataset& dataset,
                             const ScoreReport& report, const std::vector<double>& thresholds,
                             const RunFacts& facts) {
  std::error_code ec;
  fs::create_directories(dir, ec);
  if (ec) return IoError(dir + ": cannot create: " + ec.message());
  const LayerResults& r = report.results;
  ND_RETURN_IF_ERROR(WriteTallyCsv(r, dataset, (fs::path(dir) / "tally.csv").string()));

  std::string csv = "unit,threshold\n";
  for (size_t u = 0; u < thresholds.size(); ++u)
    csv += std::to_string(u) + "," + Num(thresholds[u]) + "\n";
  ND_RETURN_IF_ERROR(WriteFileAtomically((fs::path(dir) / "thresholds.csv").string(), csv));

  const auto& cats = dataset.categories();
  std::ostringstream j;
  j << "{\n";
  j << "  \"layer\": " << JsonString(facts.layer) << ",\n";
  j << "  \"model\": " << JsonString(facts.model_path) << ",\n";
  j << "  \"dataset\": " << JsonString(facts.dataset_path) << ",\n";
  j << "  \"preprocess\": " << JsonString(facts.preprocess) << ",\n";
  j << "  \"cache_dtype\": " << JsonString(facts.cache_dtype) << ",\n";
  j << "  \"quantile\": " << Num(facts.quantile) << ",\n";
  j << "  \"union\": " << JsonString(UnionRuleName(r.rule)) << ",\n";
  j << "  \"iou_threshold\": " << Num(r.iou_threshold) << ",\n";
  j << "  \"images_total\": " << facts.images_total << ",\n";
  j << "  \"images\": " << report.images_scored << ",\n";
  j << "  \"forward_images\": " << facts.forward_images << ",\n";
  j << "  \"images_from_cache\": " << facts.images_from_cache << ",\n";
  j << "  \"units\": " << r.units << ",\n";
  j << "  \"detectors\": " << r.detectors << ",\n";
  j << "  \"unique_detectors_paper\": " << r.unique_detectors_paper << ",\n";
  j << "  \"unique_detectors_top_label\": " << r.unique_detectors_top_label << ",\n";
  j << "  \"categories\": {";
  bool first = true;
  for (size_t c = 0; c < cats.size(); ++c) {
    if (!cats[c].selected) continue;
    j << (first ? "\n" : ",\n") << "    " << JsonString(cats[c].name) << ": {\"detectors\": "
      << (c < r.detectors_per_category.size() ? r.detectors_per_category[c] : 0)
      << ", \"unique_detectors_paper\": "
      << (c < r.unique_per_category_paper.size() ? r.unique_per_category_paper[c] : 0) << "}";
    first = false;
  }
  j << "\n  },\n";
  // Skips: upstream (decode/extract) and score's own, each with its reason.
  std::vector<std::pair<uint64_t, std::string>> skips(facts.skipped.begin(), facts.skipped.end());
  for (const auto& s : report.skipped) skips.emplace_back(s.row, s.reason);
  j << "  \"skipped\": " << skips.size() << ",\n";
  j << "  \"skipped_images\": [";
  for (size_t i = 0; i < skips.size(); ++i)
    j << (i ? ",\n" : "\n") << "    {\"row\": " << skips[i].first
      << ", \"reason\": " << JsonString(skips[i].second) << "}";
  j << (skips.empty() ? "],\n" : "\n  ],\n");
  // Malformed index.csv rows left out at start-up (dataset.on_bad_row = "skip").
  const auto& bad_rows = dataset.skipped_index_rows();
  j << "  \"index_rows_skipped\": " << bad_rows.size() << ",\n";
  j << "  \"skipped_index_rows\": [";
  for (size_t i = 0; i < bad_rows.size(); ++i)
    j << (i ? ",\n" : "\n") << "    {\"line\": " << bad_rows[i].line
      << ", \"reason\": " << JsonString(bad_rows[i].reason) << "}";
  j << (bad_rows.empty() ? "],\n" : "\n  ],\n");
  j << "  \"label_pixels_in_several_layers\": " << report.repeated_label_pixels << ",\n";
  j << "  \"masks\": {\"maps\": " << report.masks.maps
    << ", \"skipped_by_max\": " << report.masks.maps_skipped_max << "},\n";
  j << "  \"score_cpu_s\": " << Short(report.cpu_seconds) << ",\n";
  j << "  \"score_cpu_ms_per_image\": "
    << Short(report.images_scored ? 1000.0 * report.cpu_seconds / report.images_scored : 0)
    << ",\n";
  if (!facts.analysis_json.empty()) j << "  " << facts.analysis_json << ",\n";
  j << "  \"stage_seconds\": {" << facts.stage_seconds << "}\n";
  j << "}\n";
  return WriteFileAtomically((fs::path(dir) / "summary.json").string(), j.str());
}

}  // namespace nd
