#include "stages/score/analysis_files.h"

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <set>

#include "common/atomic_file.h"
#include "stages/score/layer_results.h"

namespace nd {
namespace {

namespace fs = std::filesystem;

// A CSV field as Python's csv module writes it (quoted only when needed).
std::string Field(const std::string& s) {
  if (s.find_first_of(",\"\r\n") == std::string::npos) return s;
  std::string out = "\"";
  for (char c : s) {
    if (c == '"') out += '"';
    out += c;
  }
  return out + "\"";
}

std::string Short(double v) {
  char buf[40];
  std::snprintf(buf, sizeof(buf), "%.6g", v);
  return buf;
}

}  // namespace

std::string FormatExplanationsCsv(const ExplainReport& report) {
  std::string out = "unit,formula,iou,length,primitive,primitive_iou\n";
  for (size_t u = 0; u < report.units.size(); ++u) {
    const UnitExplanation& x = report.units[u];
    out += std::to_string(u + 1) + "," + Field(x.text) + "," + PythonFloatRepr(x.iou) + "," +
           std::to_string(x.formula.leaves()) + "," + Field(x.primitive_text) + "," +
           PythonFloatRepr(x.primitive_iou) + "\n";
  }
  return out;
}

std::string FormatStatsCsv(const LabelStatsReport& report, const std::vector<std::string>& names) {
  std::string out =
      "unit,label,iou,iou_low,iou_high,stability,p_value,q_value,null_mean,p_max,q_max\n";
  for (size_t u = 0; u < report.units.size(); ++u) {
    const UnitStats& s = report.units[u];
    const std::string name =
        s.label >= 0 && static_cast<size_t>(s.label) < names.size() ? names[s.label] : "";
    out += std::to_string(u + 1) + "," + Field(name) + "," + PythonFloatRepr(s.iou) + ",";
    if (report.bootstrap > 0) {
      out += PythonFloatRepr(s.iou_low) + "," + PythonFloatRepr(s.iou_high) + "," +
             PythonFloatRepr(s.stability) + ",";
    } else {
      out += ",,,";
    }
    if (report.permutations > 0) {
      out += PythonFloatRepr(s.p_value) + "," + PythonFloatRepr(s.q_value) + "," +
             PythonFloatRepr(s.null_mean);
    } else {
      out += ",,";
    }
    if (report.max_null) {
      out += "," + PythonFloatRepr(s.p_max) + "," + PythonFloatRepr(s.q_max);
    } else {
      out += ",,";
    }
    out += "\n";
  }
  return out;
}

Status WriteExplanationsCsv(const std::string& dir, const ExplainReport& report) {
  return WriteFileAtomically((fs::path(dir) / "explanations.csv").string(),
                             FormatExplanationsCsv(report));
}

Status WriteStatsCsv(const std::string& dir, const LabelStatsReport& report,
                     const std::vector<std::string>& names) {
  return WriteFileAtomically((fs::path(dir) / "stats.csv").string(), FormatStatsCsv(report, names));
}

std::string AnalysisSummaryJson(const ExplainReport* explain, int length, int beam,
                                double explain_seconds, const LabelStatsReport* stats,
                                uint64_t seed, double stats_seconds) {
  std::string j;
  if (explain != nullptr) {
    j += "\"explain\": {\"length\": " + std::to_string(length) +
         ", \"beam\": " + std::to_string(beam) + ", \"seconds\": " + Short(explain_seconds) + "}";
  }
  if (stats != nullptr) {
    if (!j.empty()) j += ",\n  ";
    j += "\"stats\": {\"bootstrap\": " + std::to_string(stats->bootstrap) +
         ", \"permutations\": " + std::to_string(stats->permutations) +
         ", \"seed\": " + std::to_string(seed) +
         ", \"max_null\": " + (stats->max_null ? "true" : "false") +
         ", \"seconds\": " + Short(stats_seconds) + "}";
    if (stats->permutations > 0) {
      j += ",\n  \"significant_detectors\": " + std::to_string(stats->significant_detectors) +
           ",\n  \"significant_units\": " + std::to_string(stats->significant_units);
      if (stats->max_null)
        j += ",\n  \"significant_detectors_max\": " +
             std::to_string(stats->significant_detectors_max);
    }
  }
  return j;
}

std::vector<std::string> LabelNames(const BrodenDataset& dataset) {
  std::vector<std::string> names;
  for (const BrodenLabel& l : dataset.labels()) names.push_back(l.name);
  return names;
}

StatusOr<AnalysisOutcome> RunAnalyses(const BrodenDataset& dataset, const ScoreStage& stage,
                                      const std::vector<size_t>& rows, const ScoreReport& report,
                                      const std::vector<double>& thresholds,
                                      const ScoreStage::FetchFn& fetch,
                                      const AnalysisRequest& request) {
  using Clock = std::chrono::steady_clock;
  auto seconds = [](Clock::time_point t) {
    return std::chrono::duration<double>(Clock::now() - t).count();
  };
  std::set<size_t> skipped;
  for (const SkippedImage& s : report.skipped) skipped.insert(s.row);
  std::vector<size_t> used;
  for (size_t row : rows)
    if (!skipped.count(row)) used.push_back(row);
  std::vector<int> primary(dataset.num_labels());
  for (int l = 0; l < dataset.num_labels(); ++l) primary[l] = dataset.PrimaryCategory(l);
  const int num_categories = static_cast<int>(dataset.categories().size());

  AnalysisOutcome out;
  auto t0 = Clock::now();
  auto labels = [&](size_t i) -> StatusOr<std::shared_ptr<const LabelIndex>> {
    if (auto prepared = stage.PreparedLabelIndex(used[i])) return prepared;
    ND_ASSIGN_OR_RETURN(ImageLabels l, dataset.ReadLabels(used[i]));
    ND_ASSIGN_OR_RETURN(LabelIndex idx, LabelIndex::Build(l, primary, num_categories));
    return std::make_shared<const LabelIndex>(std::move(idx));
  };
  auto fetch_image = [&](size_t i, ActivationMap* acts) { return fetch(used[i], acts); };
  ND_ASSIGN_OR_RETURN(
      LayerTables tables,
      LayerTables::Build(used.size(), labels, fetch_image, thresholds, dataset.num_labels(),
                         num_categories, report.results.rule, request.workers));
  for (const SkippedTableImage& s : tables.skipped()) out.skipped_rows.push_back(used[s.image]);
  out.tables_seconds = seconds(t0);

  if (request.length > 0) {
    t0 = Clock::now();
    ExplainOptions eo;
    eo.length = request.length;
    eo.beam = request.beam;
    eo.workers = request.workers;
    ND_ASSIGN_OR_RETURN(ExplainReport x, ExplainUnits(tables, LabelNames(dataset), eo));
    out.explain = std::move(x);
    out.explain_seconds = seconds(t0);
  }
  if (request.bootstrap > 0 || request.permutations > 0) {
    t0 = Clock::now();
    StatsOptions so;
    so.bootstrap = request.bootstrap;
    so.permutations = request.permutations;
    so.seed = request.seed;
    so.max_null = request.max_null;
    so.workers = request.workers;
    ND_ASSIGN_OR_RETURN(LabelStatsReport st, ComputeLabelStats(tables, report.results, so));
    out.stats = std::move(st);
    out.stats_seconds = seconds(t0);
  }
  out.summary_json =
      AnalysisSummaryJson(out.explain ? &*out.explain : nullptr, request.length, request.beam,
                          out.tables_seconds + out.explain_seconds,
                          out.stats ? &*out.stats : nullptr, request.seed, out.stats_seconds);
  return out;
}

Status WriteAnalysisFiles(const std::string& dir, const BrodenDataset& dataset,
                          const AnalysisOutcome& outcome) {
  std::error_code ec;
  fs::create_directories(dir, ec);
  if (ec) return IoError(dir + ": cannot create: " + ec.message());
  if (outcome.explain) ND_RETURN_IF_ERROR(WriteExplanationsCsv(dir, *outcome.explain));
  if (outcome.stats) ND_RETURN_IF_ERROR(WriteStatsCsv(dir, *outcome.stats, LabelNames(dataset)));
  return Status::Ok();
}

}  // namespace nd
