#include "stages/score/layer_results.h"

#include <algorithm>
#include <charconv>
#include <cmath>
#include <cstdio>
#include <numeric>
#include <set>

#include "common/atomic_file.h"

namespace nd {

StatusOr<LayerResults> ComputeLayerResults(const IouTally& tally,
                                           const std::vector<int>& primary_category,
                                           double iou_threshold) {
  const int units = tally.units(), num_labels = tally.num_labels(),
            num_cats = tally.num_categories();
  if (static_cast<int>(primary_category.size()) != num_labels) {
    return InvalidArgument("layer results: " + std::to_string(primary_category.size()) +
                           " primary categories for " + std::to_string(num_labels) + " labels");
  }
  if (std::isnan(iou_threshold)) return InvalidArgument("layer results: iou_threshold is NaN");
  std::vector<std::vector<int>> labels_of(num_cats);  // labels by primary category, ascending
  for (int l = 0; l < num_labels; ++l) {
    const int c = primary_category[l];
    if (c < -1 || c >= num_cats) {
      return InvalidArgument("layer results: label " + std::to_string(l) +
                             " has primary category " + std::to_string(c) + ", outside [-1, " +
                             std::to_string(num_cats) + ")");
    }
    if (c >= 0 && l != 0) labels_of[c].push_back(l);
  }

  LayerResults r;
  r.units = units;
  r.num_labels = num_labels;
  r.num_categories = num_cats;
  r.rule = tally.rule();
  r.iou_threshold = iou_threshold;
  r.images = tally.images();
  r.label_pixels = tally.label_pixels_array();
  r.intersection = tally.intersection_array();
  r.union_area = tally.union_array();
  r.primary_category = primary_category;
  r.iou.assign(static_cast<size_t>(units) * num_labels, 0.0);
  r.best_label.assign(static_cast<size_t>(units) * num_cats, -1);
  r.best_iou.assign(static_cast<size_t>(units) * num_cats, 0.0);
  r.unit.resize(units);
  r.detectors_per_category.assign(num_cats, 0);
  r.unique_per_category_paper.assign(num_cats, 0);

  for (int u = 0; u < units; ++u) {
    double* iou = r.iou.data() + static_cast<size_t>(u) * num_labels;
    for (int c = 0; c < num_cats; ++c) {
      for (int l : labels_of[c]) {
        const int64_t i = tally.intersection(u, l);
        const int64_t den = tally.union_area(u, c) + tally.label_pixels(l) - i;
        iou[l] = den == 0 ? 0.0 : static_cast<double>(i) / static_cast<double>(den);
      }
    }
    UnitResult& ur = r.unit[u];
    for (int c = 0; c < num_cats; ++c) {
      int best = -1;
      double best_iou = 0;
      for (int l : labels_of[c]) {
        if (best < 0 || iou[l] > best_iou) {
          best = l;
          best_iou = iou[l];
        }
      }
      r.best_label[static_cast<size_t>(u) * num_cats + c] = best;
      r.best_iou[static_cast<size_t>(u) * num_cats + c] = best_iou;
      if (best >= 0 && (ur.category < 0 || best_iou > ur.iou)) {
        ur.category = c;
        ur.label = best;
        ur.iou = best_iou;
      }
    }
    ur.detector = ur.label >= 0 && ur.iou > iou_threshold;
    // Top labels: IoU descending, then category order, then label number.
    std::vector<LabelScore> candidates;
    for (int c = 0; c < num_cats; ++c) {
      for (int l : labels_of[c]) {
        if (iou[l] > 0) candidates.push_back(LabelScore{l, c, iou[l]});
      }
    }
    const size_t k = std::min<size_t>(3, candidates.size());
    std::partial_sort(candidates.begin(), candidates.begin() + k, candidates.end(),
                      [](const LabelScore& a, const LabelScore& b) {
                        if (a.iou != b.iou) return a.iou > b.iou;
                        if (a.category != b.category) return a.category < b.category;
                        return a.label < b.label;
                      });
    candidates.resize(k);
    ur.top = std::move(candidates);
  }

  std::set<int> top_labels;
  for (int u = 0; u < units; ++u) {
    const UnitResult& ur = r.unit[u];
    if (!ur.detector) continue;
    ++r.detectors;
    ++r.detectors_per_category[ur.category];
    top_labels.insert(ur.label);
  }
  r.unique_detectors_top_label = static_cast<int>(top_labels.size());
  for (int c = 0; c < num_cats; ++c) {
    std::set<int> distinct;
    for (int u = 0; u < units; ++u) {
      if (r.BestIou(u, c) > iou_threshold && r.BestLabel(u, c) >= 0) {
        distinct.insert(r.BestLabel(u, c));
      }
    }
    r.unique_per_category_paper[c] = static_cast<int>(distinct.size());
    r.unique_detectors_paper += r.unique_per_category_paper[c];
  }
  return r;
}

StatusOr<LayerResults> ComputeLayerResults(const IouTally& tally, const BrodenDataset& dataset,
                                           double iou_threshold) {
  if (static_cast<int>(dataset.categories().size()) != tally.num_categories()) {
    return InvalidArgument("layer results: dataset has " +
                           std::to_string(dataset.categories().size()) + " categories, tally has " +
                           std::to_string(tally.num_categories()));
  }
  std::vector<int> primary(dataset.num_labels());
  for (int l = 0; l < dataset.num_labels(); ++l) primary[l] = dataset.PrimaryCategory(l);
  return ComputeLayerResults(tally, primary, iou_threshold);
}

std::string PythonFloatRepr(double v) {
  if (std::isnan(v)) return "nan";
  if (std::isinf(v)) return v > 0 ? "inf" : "-inf";
  if (v == 0) return std::signbit(v) ? "-0.0" : "0.0";
  char buf[64];
  const auto res = std::to_chars(buf, buf + sizeof(buf), v, std::chars_format::scientific);
  const std::string s(buf, res.ptr);  // [-]d[.ddd]e(+|-)XX, shortest round-trip digits
  size_t pos = 0;
  std::string out;
  if (s[0] == '-') {
    out = "-";
    pos = 1;
  }
  const size_t e = s.find('e');
  std::string digits;
  for (size_t i = pos; i < e; ++i) {
    if (s[i] != '.') digits += s[i];
  }
  const int exp = std::stoi(s.substr(e + 1));
  if (exp >= -4 && exp < 16) {
    if (exp >= 0) {
      std::string int_part = digits.substr(0, std::min<size_t>(digits.size(), exp + 1));
      while (static_cast<int>(int_part.size()) < exp + 1) int_part += '0';
      std::string frac =
          digits.size() > static_cast<size_t>(exp + 1) ? digits.substr(exp + 1) : "0";
      out += int_part + "." + frac;
    } else {
      out += "0." + std::string(-exp - 1, '0') + digits;
    }
  } else {
    out += digits.substr(0, 1);
    if (digits.size() > 1) out += "." + digits.substr(1);
    char eb[16];
    std::snprintf(eb, sizeof(eb), "e%c%02d", exp < 0 ? '-' : '+', std::abs(exp));
    out += eb;
  }
  return out;
}

namespace {

// Python csv QUOTE_MINIMAL: quote when the field holds the delimiter, the quote char, CR or LF.
std::string CsvField(const std::string& s) {
  if (s.find_first_of(",\"\r\n") == std::string::npos) return s;
  std::string q = "\"";
  for (char ch : s) {
    if (ch == '"') q += '"';
    q += ch;
  }
  q += '"';
  return q;
}

}  // namespace

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

}  // namespace nd
