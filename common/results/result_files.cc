#include "common/results/result_files.h"

#include <algorithm>
#include <boost/property_tree/json_parser.hpp>
#include <boost/property_tree/ptree.hpp>
#include <cmath>
#include <filesystem>
#include <numeric>
#include <sstream>

#include "common/base/atomic_file.h"
#include "common/base/text_format.h"
#include "common/broden/csv.h"

namespace nd {
namespace {

namespace fs = std::filesystem;
namespace pt = boost::property_tree;

std::string FormatG17(double v) { return FormatG(v, 17); }
std::string FormatG6(double v) { return FormatG(v, 6); }

void SkippedList(std::ostringstream& j, const char* key, const char* at_name,
                 const std::vector<SkippedNote>& notes) {
  j << "  \"" << key << "\": [";
  for (size_t i = 0; i < notes.size(); ++i)
    j << (i ? ",\n" : "\n") << "    {\"" << at_name << "\": " << notes[i].at
      << ", \"reason\": " << JsonString(notes[i].reason) << "}";
  j << (notes.empty() ? "],\n" : "\n  ],\n");
}

}  // namespace

std::string QuantileDirName(double q) { return "q" + FormatG(q, 6); }

std::string LayerResultDir(const std::string& output_dir, const std::string& layer, double q,
                           bool several_quantiles) {
  fs::path dir = fs::path(output_dir) / layer;
  if (several_quantiles) dir /= QuantileDirName(q);
  return dir.string();
}

StatusOr<std::string> FormatTallyCsv(const LayerResults& r, const BrodenDataset& dataset) {
  const auto& cats = dataset.categories();
  if (static_cast<int>(cats.size()) != r.num_categories || dataset.num_labels() != r.num_labels) {
    return InvalidArgument("tally.csv: results have " + std::to_string(r.num_categories) +
                           " categories and " + std::to_string(r.num_labels) +
                           " labels, dataset has " + std::to_string(cats.size()) + " and " +
                           std::to_string(dataset.num_labels()));
  }
  auto label_name = [&](int l) -> std::string {
    return l >= 0 ? dataset.labels()[l].name : std::string();
  };
  std::string out = "unit,category,label,score";
  for (const auto& c : cats) {
    if (!c.selected) continue;
    const std::string n = c.name;
    out += "," + CsvField(n + "-label") + "," + CsvField(n + "-truth") + "," +
           CsvField(n + "-activation") + "," + CsvField(n + "-intersect") + "," +
           CsvField(n + "-iou");
  }
  out += "\r\n";
  // lite preset, degenerate columns (NetDissect-Lite's tally()): when every label of a category has
  // IoU 0 for a unit, Lite's argmax picks label 0, so it writes label '' with truth 0 and, as
  // "activation", the unit's union of the category that label 0 falls into: the last category
  // (label 0 has coverage 0 everywhere and max((coverage, index)) picks the last index). A unit
  // whose every category is degenerate gets that last category and label '' in its own columns
  // (Lite's reversed argsort of equal scores). The paper preset writes the category's first label
  // (lowest number) with its truth and the category's union there.
  const bool lite = r.rule == UnionRule::kLite;
  int last_selected = -1;
  for (int c = 0; c < r.num_categories; ++c) {
    if (cats[c].selected) last_selected = c;
  }
  std::vector<int> order(r.units);
  std::iota(order.begin(), order.end(), 0);
  std::stable_sort(order.begin(), order.end(),
                   [&](int a, int b) { return r.unit[a].iou > r.unit[b].iou; });
  for (int u : order) {
    const UnitResult& ur = r.unit[u];
    const bool degenerate_unit = lite && ur.iou == 0 && last_selected >= 0;
    const int unit_category = degenerate_unit ? last_selected : ur.category;
    out += std::to_string(u + 1) + "," +
           CsvField(unit_category >= 0 ? cats[unit_category].name : std::string()) + "," +
           CsvField(degenerate_unit ? std::string() : label_name(ur.label)) + "," +
           PythonFloatRepr(ur.iou);
    for (int c = 0; c < r.num_categories; ++c) {
      if (!cats[c].selected) continue;
      int l = r.BestLabel(u, c);
      int64_t truth = 0, activation = 0, intersect = 0;
      if (lite && r.BestIou(u, c) == 0) {
        l = -1;  // label '' (Lite's label 0)
        activation = r.union_area[static_cast<size_t>(u) * r.num_categories + last_selected];
      } else if (l >= 0) {
        truth = r.label_pixels[l];
        activation = r.union_area[static_cast<size_t>(u) * r.num_categories + c];
        intersect = r.intersection[static_cast<size_t>(u) * r.num_labels + l];
      }
      out += "," + CsvField(label_name(l)) + "," + PythonFloatRepr(static_cast<double>(truth)) +
             "," + PythonFloatRepr(static_cast<double>(activation)) + "," +
             PythonFloatRepr(static_cast<double>(intersect)) + "," +
             PythonFloatRepr(r.BestIou(u, c));
    }
    out += "\r\n";
  }
  return out;
}

Status WriteTallyCsv(const LayerResults& results, const BrodenDataset& dataset,
                     const std::string& path) {
  ND_ASSIGN_OR_RETURN(std::string text, FormatTallyCsv(results, dataset));
  return WriteFileAtomically(path, text);
}

StatusOr<TallyFile> ReadTallyFile(const std::string& path) {
  if (!fs::exists(path))
    return NotFound(path + ": not found; run nd-pipeline up for this configuration first");
  ND_ASSIGN_OR_RETURN(CsvTable t, CsvTable::ReadFile(path));
  ND_ASSIGN_OR_RETURN(int c_unit, t.RequireColumn("unit"));
  ND_ASSIGN_OR_RETURN(int c_cat, t.RequireColumn("category"));
  ND_ASSIGN_OR_RETURN(int c_label, t.RequireColumn("label"));
  ND_ASSIGN_OR_RETURN(int c_score, t.RequireColumn("score"));
  TallyFile out;
  std::vector<int> cl, ci;
  for (const std::string& h : t.header()) {
    const std::string suffix = "-label";
    if (h.size() > suffix.size() &&
        h.compare(h.size() - suffix.size(), suffix.size(), suffix) == 0) {
      const std::string cat = h.substr(0, h.size() - suffix.size());
      ND_ASSIGN_OR_RETURN(int iou, t.RequireColumn(cat + "-iou"));
      out.categories.push_back(cat);
      cl.push_back(t.ColumnIndex(h));
      ci.push_back(iou);
    }
  }
  const size_t n = t.num_rows();
  out.units.resize(n);
  std::vector<bool> seen(n, false);
  for (size_t r = 0; r < n; ++r) {
    ND_ASSIGN_OR_RETURN(int64_t unit, t.GetIntInRange(r, c_unit, 1, static_cast<int64_t>(n)));
    if (seen[unit - 1]) return t.CellError(r, c_unit, "unit " + std::to_string(unit) + " repeated");
    seen[unit - 1] = true;
    TallyUnit& u = out.units[unit - 1];
    u.unit = static_cast<int>(unit);
    u.category = t.cell(r, c_cat);
    u.label = t.cell(r, c_label);
    ND_ASSIGN_OR_RETURN(u.iou, t.GetDouble(r, c_score));
    for (size_t k = 0; k < cl.size(); ++k) {
      u.cat_label.push_back(t.cell(r, cl[k]));
      ND_ASSIGN_OR_RETURN(double iou, t.GetDouble(r, ci[k]));
      u.cat_iou.push_back(iou);
    }
  }
  if (n == 0) return DataLoss(path + ": no units");
  return out;
}

std::string FormatThresholdsCsv(const std::vector<double>& thresholds) {
  std::string csv = "unit,threshold\n";
  for (size_t u = 0; u < thresholds.size(); ++u)
    csv += std::to_string(u) + "," + FormatG17(thresholds[u]) + "\n";
  return csv;
}

StatusOr<std::vector<double>> ReadThresholdsFile(const std::string& path) {
  if (!fs::exists(path))
    return NotFound(path + ": not found; run nd-pipeline up for this configuration first");
  ND_ASSIGN_OR_RETURN(CsvTable t, CsvTable::ReadFile(path));
  ND_ASSIGN_OR_RETURN(int c_unit, t.RequireColumn("unit"));
  ND_ASSIGN_OR_RETURN(int c_t, t.RequireColumn("threshold"));
  const size_t n = t.num_rows();
  if (n == 0) return DataLoss(path + ": no units");
  std::vector<double> out(n);
  std::vector<bool> seen(n, false);
  for (size_t r = 0; r < n; ++r) {
    ND_ASSIGN_OR_RETURN(int64_t unit, t.GetIntInRange(r, c_unit, 0, static_cast<int64_t>(n) - 1));
    if (seen[unit]) return t.CellError(r, c_unit, "unit " + std::to_string(unit) + " repeated");
    seen[unit] = true;
    ND_ASSIGN_OR_RETURN(out[unit], t.GetDouble(r, c_t));
  }
  return out;
}

std::string FormatSummaryJson(const LayerSummary& s) {
  std::ostringstream j;
  j << "{\n";
  j << "  \"layer\": " << JsonString(s.layer) << ",\n";
  if (s.view.present()) {
    j << "  \"view\": {\"layer\": " << JsonString(s.view.layer)
      << ", \"basis\": " << JsonString(s.view.basis);
    if (s.view.basis == "file")
      j << ", \"path\": " << JsonString(s.view.path);
    else
      j << ", \"seed\": " << s.view.seed << ", \"alpha\": " << FormatG17(s.view.alpha);
    j << "},\n";
  }
  j << "  \"model\": " << JsonString(s.model) << ",\n";
  if (!s.model_name.empty()) j << "  \"model_name\": " << JsonString(s.model_name) << ",\n";
  j << "  \"dataset\": " << JsonString(s.dataset) << ",\n";
  j << "  \"preprocess\": " << JsonString(s.preprocess) << ",\n";
  j << "  \"cache_dtype\": " << JsonString(s.cache_dtype) << ",\n";
  j << "  \"quantile\": " << FormatG17(s.quantile) << ",\n";
  j << "  \"union\": " << JsonString(s.union_rule) << ",\n";
  j << "  \"iou_threshold\": " << FormatG17(s.iou_threshold) << ",\n";
  j << "  \"images_total\": " << s.images_total << ",\n";
  j << "  \"images\": " << s.images << ",\n";
  j << "  \"forward_images\": " << s.forward_images << ",\n";
  j << "  \"images_from_cache\": " << s.images_from_cache << ",\n";
  j << "  \"units\": " << s.units << ",\n";
  j << "  \"detectors\": " << s.detectors << ",\n";
  j << "  \"unique_detectors_paper\": " << s.unique_detectors_paper << ",\n";
  j << "  \"unique_detectors_top_label\": " << s.unique_detectors_top_label << ",\n";
  j << "  \"categories\": {";
  for (size_t c = 0; c < s.categories.size(); ++c) {
    j << (c ? ",\n" : "\n") << "    " << JsonString(s.categories[c].name)
      << ": {\"detectors\": " << s.categories[c].detectors
      << ", \"unique_detectors_paper\": " << s.categories[c].unique_detectors_paper << "}";
  }
  j << "\n  },\n";
  j << "  \"skipped\": " << s.skipped_images.size() << ",\n";
  SkippedList(j, "skipped_images", "row", s.skipped_images);
  j << "  \"index_rows_skipped\": " << s.skipped_index_rows.size() << ",\n";
  SkippedList(j, "skipped_index_rows", "line", s.skipped_index_rows);
  j << "  \"label_pixels_in_several_layers\": " << s.label_pixels_in_several_layers << ",\n";
  j << "  \"masks\": {\"maps\": " << s.mask_maps
    << ", \"skipped_by_max\": " << s.mask_maps_skipped_by_max << "},\n";
  j << "  \"score_cpu_s\": " << FormatG6(s.score_cpu_s) << ",\n";
  j << "  \"score_cpu_ms_per_image\": " << FormatG6(s.score_cpu_ms_per_image) << ",\n";
  const std::string analysis = FormatAnalysisSummary(s.analysis);
  if (!analysis.empty()) j << "  " << analysis << ",\n";
  j << "  \"stage_seconds\": {";
  for (size_t i = 0; i < s.stage_seconds.size(); ++i) {
    j << (i ? ", " : "") << JsonString(s.stage_seconds[i].first) << ": "
      << FormatFixed(s.stage_seconds[i].second);
  }
  j << "}\n";
  j << "}\n";
  return j.str();
}

StatusOr<LayerSummary> ReadSummaryFile(const std::string& path) {
  if (!fs::exists(path))
    return NotFound(path + ": not found; run nd-pipeline up for this configuration first");
  LayerSummary s;
  try {
    pt::ptree t;
    pt::read_json(path, t);
    s.layer = t.get<std::string>("layer", "");
    s.model = t.get<std::string>("model", "");
    s.model_name = t.get<std::string>("model_name", "");
    if (auto view = t.get_child_optional("view")) {
      s.view.layer = view->get<std::string>("layer", "");
      s.view.basis = view->get<std::string>("basis", "");
      s.view.seed = view->get<int64_t>("seed", 0);
      s.view.alpha = view->get<double>("alpha", 1);
      s.view.path = view->get<std::string>("path", "");
    }
    s.dataset = t.get<std::string>("dataset", "");
    s.preprocess = t.get<std::string>("preprocess", "");
    s.cache_dtype = t.get<std::string>("cache_dtype", "");
    s.quantile = t.get<double>("quantile", 0);
    s.union_rule = t.get<std::string>("union", "");
    s.iou_threshold = t.get<double>("iou_threshold", 0);
    s.images_total = t.get<uint64_t>("images_total", 0);
    s.images = t.get<uint64_t>("images", 0);
    s.forward_images = t.get<uint64_t>("forward_images", 0);
    s.images_from_cache = t.get<uint64_t>("images_from_cache", 0);
    s.units = t.get<int64_t>("units", 0);
    s.detectors = t.get<int64_t>("detectors", 0);
    s.unique_detectors_paper = t.get<int64_t>("unique_detectors_paper", 0);
    s.unique_detectors_top_label = t.get<int64_t>("unique_detectors_top_label", 0);
    if (auto cats = t.get_child_optional("categories")) {
      for (const auto& [name, c] : *cats) {
        s.categories.push_back(
            {name, c.get<int64_t>("detectors", 0), c.get<int64_t>("unique_detectors_paper", 0)});
      }
    }
    auto notes = [&](const char* key, const char* at_name, std::vector<SkippedNote>* out) {
      if (auto list = t.get_child_optional(key)) {
        for (const auto& item : *list)
          out->push_back(
              {item.second.get<uint64_t>(at_name, 0), item.second.get<std::string>("reason", "")});
      }
    };
    notes("skipped_images", "row", &s.skipped_images);
    notes("skipped_index_rows", "line", &s.skipped_index_rows);
    s.label_pixels_in_several_layers = t.get<uint64_t>("label_pixels_in_several_layers", 0);
    s.mask_maps = t.get<uint64_t>("masks.maps", 0);
    s.mask_maps_skipped_by_max = t.get<uint64_t>("masks.skipped_by_max", 0);
    s.score_cpu_s = t.get<double>("score_cpu_s", 0);
    s.score_cpu_ms_per_image = t.get<double>("score_cpu_ms_per_image", 0);
    if (auto x = t.get_child_optional("explain")) {
      s.analysis.explained = true;
      s.analysis.length = x->get<int>("length", 0);
      s.analysis.beam = x->get<int>("beam", 0);
      s.analysis.explain_seconds = x->get<double>("seconds", 0);
    }
    if (auto x = t.get_child_optional("stats")) {
      s.analysis.stats = true;
      s.analysis.bootstrap = x->get<int>("bootstrap", 0);
      s.analysis.permutations = x->get<int>("permutations", 0);
      s.analysis.seed = x->get<uint64_t>("seed", 0);
      s.analysis.max_null = x->get<bool>("max_null", false);
      s.analysis.stats_seconds = x->get<double>("seconds", 0);
    }
    s.analysis.significant_detectors = t.get<int64_t>("significant_detectors", -1);
    s.analysis.significant_units = t.get<int64_t>("significant_units", -1);
    s.analysis.significant_detectors_max = t.get<int64_t>("significant_detectors_max", -1);
    if (auto times = t.get_child_optional("stage_seconds")) {
      for (const auto& [stage, v] : *times)
        s.stage_seconds.emplace_back(stage, v.get_value<double>());
    }
  } catch (const pt::json_parser_error& e) {
    return DataLoss(path + ":" + std::to_string(e.line()) + ": " + e.message());
  } catch (const pt::ptree_error& e) {
    return DataLoss(path + ": " + e.what());
  }
  return s;
}

LayerSummary SummarizeLayer(const BrodenDataset& dataset, const ScoreReport& report,
                            const RunFacts& facts) {
  const LayerResults& r = report.results;
  LayerSummary s;
  s.layer = facts.layer;
  s.view = facts.view;
  s.model_name = facts.model_name;
  s.model = facts.model_path;
  s.dataset = facts.dataset_path;
  s.preprocess = facts.preprocess;
  s.cache_dtype = facts.cache_dtype;
  s.quantile = facts.quantile;
  s.union_rule = UnionRuleName(r.rule);
  s.iou_threshold = r.iou_threshold;
  s.images_total = facts.images_total;
  s.images = report.images_scored;
  s.forward_images = facts.forward_images;
  s.images_from_cache = facts.images_from_cache;
  s.units = r.units;
  s.detectors = r.detectors;
  s.unique_detectors_paper = r.unique_detectors_paper;
  s.unique_detectors_top_label = r.unique_detectors_top_label;
  const auto& cats = dataset.categories();
  for (size_t c = 0; c < cats.size(); ++c) {
    if (!cats[c].selected) continue;
    s.categories.push_back(
        {cats[c].name, c < r.detectors_per_category.size() ? r.detectors_per_category[c] : 0,
         c < r.unique_per_category_paper.size() ? r.unique_per_category_paper[c] : 0});
  }
  // Skips: upstream (decode/extract) and score's own, each with its reason.
  for (const auto& [row, reason] : facts.skipped) s.skipped_images.push_back({row, reason});
  for (const auto& skip : report.skipped) s.skipped_images.push_back({skip.row, skip.reason});
  // Malformed index.csv rows left out at start-up (dataset.on_bad_row = "skip").
  for (const auto& bad : dataset.skipped_index_rows())
    s.skipped_index_rows.push_back({static_cast<uint64_t>(bad.line), bad.reason});
  s.label_pixels_in_several_layers = report.repeated_label_pixels;
  s.mask_maps = report.masks.maps;
  s.mask_maps_skipped_by_max = report.masks.maps_skipped_max;
  s.score_cpu_s = report.cpu_seconds;
  s.score_cpu_ms_per_image =
      report.images_scored ? 1000.0 * report.cpu_seconds / report.images_scored : 0;
  s.analysis = facts.analysis;
  s.stage_seconds = facts.stage_seconds;
  return s;
}

Status WriteLayerResultFiles(const std::string& dir, const BrodenDataset& dataset,
                             const ScoreReport& report, const std::vector<double>& thresholds,
                             const RunFacts& facts) {
  std::error_code ec;
  fs::create_directories(dir, ec);
  if (ec) return IoError(dir + ": cannot create: " + ec.message());
  ND_RETURN_IF_ERROR(
      WriteTallyCsv(report.results, dataset, (fs::path(dir) / "tally.csv").string()));
  ND_RETURN_IF_ERROR(WriteFileAtomically((fs::path(dir) / "thresholds.csv").string(),
                                         FormatThresholdsCsv(thresholds)));
  return WriteFileAtomically((fs::path(dir) / "summary.json").string(),
                             FormatSummaryJson(SummarizeLayer(dataset, report, facts)));
}

}  // namespace nd
