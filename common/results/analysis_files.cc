#include "common/results/analysis_files.h"

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <set>

#include "common/base/atomic_file.h"
#include "common/base/text_format.h"
#include "common/broden/csv.h"
#include "common/maths/layer_results.h"

namespace nd {
namespace {

namespace fs = std::filesystem;

std::string FormatG6(double v) { return FormatG(v, 6); }

}  // namespace

std::string FormatExplanationsCsv(const ExplainReport& report) {
  std::string out = "unit,formula,iou,length,primitive,primitive_iou\n";
  for (size_t u = 0; u < report.units.size(); ++u) {
    const UnitExplanation& x = report.units[u];
    out += std::to_string(u + 1) + "," + CsvField(x.text) + "," + PythonFloatRepr(x.iou) + "," +
           std::to_string(x.formula.leaves()) + "," + CsvField(x.primitive_text) + "," +
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
    out += std::to_string(u + 1) + "," + CsvField(name) + "," + PythonFloatRepr(s.iou) + ",";
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

AnalysisSummary SummarizeAnalyses(const AnalysisOutcome& outcome, const AnalysisRequest& request) {
  AnalysisSummary s;
  if (outcome.explain) {
    s.explained = true;
    s.length = request.length;
    s.beam = request.beam;
    s.explain_seconds = outcome.tables_seconds + outcome.explain_seconds;
  }
  if (outcome.stats) {
    const LabelStatsReport& st = *outcome.stats;
    s.stats = true;
    s.bootstrap = st.bootstrap;
    s.permutations = st.permutations;
    s.seed = request.seed;
    s.max_null = st.max_null;
    s.stats_seconds = outcome.stats_seconds;
    if (st.permutations > 0) {
      s.significant_detectors = st.significant_detectors;
      s.significant_units = st.significant_units;
      if (st.max_null) s.significant_detectors_max = st.significant_detectors_max;
    }
  }
  return s;
}

std::string FormatAnalysisSummary(const AnalysisSummary& s) {
  std::string j;
  if (s.explained) {
    j += "\"explain\": {\"length\": " + std::to_string(s.length) +
         ", \"beam\": " + std::to_string(s.beam) + ", \"seconds\": " + FormatG6(s.explain_seconds) +
         "}";
  }
  if (s.stats) {
    if (!j.empty()) j += ",\n  ";
    j += "\"stats\": {\"bootstrap\": " + std::to_string(s.bootstrap) +
         ", \"permutations\": " + std::to_string(s.permutations) +
         ", \"seed\": " + std::to_string(s.seed) +
         ", \"max_null\": " + (s.max_null ? "true" : "false") +
         ", \"seconds\": " + FormatG6(s.stats_seconds) + "}";
    if (s.significant_detectors >= 0) {
      j += ",\n  \"significant_detectors\": " + std::to_string(s.significant_detectors) +
           ",\n  \"significant_units\": " + std::to_string(s.significant_units);
    }
    if (s.significant_detectors_max >= 0)
      j += ",\n  \"significant_detectors_max\": " + std::to_string(s.significant_detectors_max);
  }
  return j;
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

Status ReadAnalysisFiles(const std::string& dir, std::vector<UnitAnalysis>* out) {
  const int64_t n = static_cast<int64_t>(out->size());
  const std::string explanations = (fs::path(dir) / "explanations.csv").string();
  if (fs::exists(explanations)) {
    ND_ASSIGN_OR_RETURN(CsvTable t, CsvTable::ReadFile(explanations));
    ND_ASSIGN_OR_RETURN(int c_unit, t.RequireColumn("unit"));
    ND_ASSIGN_OR_RETURN(int c_formula, t.RequireColumn("formula"));
    ND_ASSIGN_OR_RETURN(int c_iou, t.RequireColumn("iou"));
    ND_ASSIGN_OR_RETURN(int c_length, t.RequireColumn("length"));
    for (size_t r = 0; r < t.num_rows(); ++r) {
      ND_ASSIGN_OR_RETURN(int64_t unit, t.GetIntInRange(r, c_unit, 1, n));
      UnitAnalysis& a = (*out)[unit - 1];
      a.explanation = t.cell(r, c_formula);
      ND_ASSIGN_OR_RETURN(a.explanation_iou, t.GetDouble(r, c_iou));
      ND_ASSIGN_OR_RETURN(int64_t length, t.GetIntInRange(r, c_length, 0, 1000));
      a.explanation_length = static_cast<int>(length);
    }
  }
  const std::string stats = (fs::path(dir) / "stats.csv").string();
  if (fs::exists(stats)) {
    ND_ASSIGN_OR_RETURN(CsvTable t, CsvTable::ReadFile(stats));
    ND_ASSIGN_OR_RETURN(int c_unit, t.RequireColumn("unit"));
    ND_ASSIGN_OR_RETURN(int c_low, t.RequireColumn("iou_low"));
    ND_ASSIGN_OR_RETURN(int c_high, t.RequireColumn("iou_high"));
    ND_ASSIGN_OR_RETURN(int c_stability, t.RequireColumn("stability"));
    ND_ASSIGN_OR_RETURN(int c_p, t.RequireColumn("p_value"));
    ND_ASSIGN_OR_RETURN(int c_q, t.RequireColumn("q_value"));
    const int c_pmax = t.ColumnIndex("p_max"), c_qmax = t.ColumnIndex("q_max");  // -1: older file
    for (size_t r = 0; r < t.num_rows(); ++r) {
      ND_ASSIGN_OR_RETURN(int64_t unit, t.GetIntInRange(r, c_unit, 1, n));
      UnitAnalysis& a = (*out)[unit - 1];
      if (!t.cell(r, c_low).empty()) {  // empty when bootstrap = 0
        a.has_interval = true;
        ND_ASSIGN_OR_RETURN(a.iou_low, t.GetDouble(r, c_low));
        ND_ASSIGN_OR_RETURN(a.iou_high, t.GetDouble(r, c_high));
        ND_ASSIGN_OR_RETURN(a.stability, t.GetDouble(r, c_stability));
      }
      if (!t.cell(r, c_p).empty()) {  // empty when permutations = 0
        a.has_p = true;
        ND_ASSIGN_OR_RETURN(a.p_value, t.GetDouble(r, c_p));
        ND_ASSIGN_OR_RETURN(a.q_value, t.GetDouble(r, c_q));
      }
      if (c_pmax >= 0 && c_qmax >= 0 && !t.cell(r, c_pmax).empty()) {  // empty unless max_null
        a.has_max = true;
        ND_ASSIGN_OR_RETURN(a.p_max, t.GetDouble(r, c_pmax));
        ND_ASSIGN_OR_RETURN(a.q_max, t.GetDouble(r, c_qmax));
      }
    }
  }
  return Status::Ok();
}

}  // namespace nd
