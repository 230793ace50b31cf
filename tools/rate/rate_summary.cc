#include "tools/rate/rate_summary.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <set>

#include "common/base/text_format.h"

namespace nd {
namespace {

constexpr double kNan = std::numeric_limits<double>::quiet_NaN();

std::string Real(double v) { return std::isnan(v) ? std::string() : FormatG(v, 6); }
std::string Shown(double v) { return std::isnan(v) ? std::string("n/a") : FormatG(v, 3); }

ShareSummary Shares(const std::map<int, std::vector<int>>& by_unit) {
  ShareSummary s;
  std::vector<std::vector<int>> table;
  for (const auto& [unit, yes_no] : by_unit) {
    if (yes_no[0] + yes_no[1] == 0) continue;
    ++s.units;
    s.positive += yes_no[0] > yes_no[1];
    table.push_back(yes_no);
  }
  s.share = s.units ? static_cast<double>(s.positive) / s.units : kNan;
  s.interval = WilsonInterval(s.positive, s.units);
  s.agreement = MeasureAgreement(table);
  return s;
}

}  // namespace

std::vector<LayerHumanEval> SummarizeAnswers(const std::vector<AnswerRecord>& records,
                                             double min_catch_accuracy,
                                             const std::map<std::string, int64_t>& study_units) {
  std::vector<std::string> layers;
  for (const AnswerRecord& r : records)
    if (std::find(layers.begin(), layers.end(), r.layer) == layers.end()) layers.push_back(r.layer);
  std::vector<LayerHumanEval> out;
  for (const std::string& layer : layers) {
    LayerHumanEval e;
    e.layer = layer;
    e.min_catch_accuracy = min_catch_accuracy;
    auto known = study_units.find(layer);
    if (known != study_units.end()) e.study_units = known->second;
    std::map<std::string, RaterSummary> raters;
    for (const AnswerRecord& r : records) {
      if (r.layer != layer) continue;
      ++e.answers;
      RaterSummary& s = raters[r.rater];
      s.rater = r.rater;
      if (r.is_catch) {
        ++s.catch_trials;
        s.catch_correct += r.answer == "no";
      } else if (r.mode == "label") {
        ++s.label;
      } else if (r.mode == "name") {
        ++s.name;
      } else if (r.mode == "human") {
        ++s.human;
      }
    }
    std::set<std::string> excluded;
    for (auto& [name, s] : raters) {
      s.catch_accuracy =
          s.catch_trials ? static_cast<double>(s.catch_correct) / s.catch_trials : kNan;
      s.excluded = s.catch_trials > 0 && s.catch_accuracy < min_catch_accuracy;
      if (s.excluded) excluded.insert(name);
      e.raters.push_back(s);
    }
    std::map<int, std::vector<int>> label, human;
    std::set<int> named;
    for (const AnswerRecord& r : records) {
      if (r.layer != layer || r.is_catch) continue;
      if (r.mode == "name") {
        ++e.names;
        named.insert(r.unit);
        continue;
      }
      if (excluded.count(r.rater)) continue;
      auto& counts = (r.mode == "label" ? label : human)[r.unit];
      counts.resize(2, 0);
      ++counts[r.answer == "yes" ? 0 : 1];
    }
    e.units_named = static_cast<int64_t>(named.size());
    e.label = Shares(label);
    e.human = Shares(human);
    out.push_back(std::move(e));
  }
  return out;
}

std::string FormatHumanSummaryCsv(const std::vector<LayerHumanEval>& layers) {
  std::string out = CsvRow({"layer",
                            "study_units",
                            "answers",
                            "raters",
                            "raters_excluded",
                            "min_catch_accuracy",
                            "label_units_rated",
                            "label_descriptive",
                            "label_share",
                            "label_share_low",
                            "label_share_high",
                            "label_units_2plus",
                            "label_raters_min",
                            "label_raters_mean",
                            "label_raters_max",
                            "label_fleiss_kappa",
                            "label_krippendorff_alpha",
                            "human_units_rated",
                            "human_consistent",
                            "human_share",
                            "human_share_low",
                            "human_share_high",
                            "human_units_2plus",
                            "human_raters_min",
                            "human_raters_mean",
                            "human_raters_max",
                            "human_fleiss_kappa",
                            "human_krippendorff_alpha",
                            "names",
                            "units_named"},
                           "\n");
  for (const LayerHumanEval& e : layers) {
    int excluded = 0;
    for (const RaterSummary& r : e.raters) excluded += r.excluded;
    std::vector<std::string> row = {e.layer,
                                    e.study_units < 0 ? "" : std::to_string(e.study_units),
                                    std::to_string(e.answers),
                                    std::to_string(e.raters.size()),
                                    std::to_string(excluded),
                                    Real(e.min_catch_accuracy)};
    for (const ShareSummary* s : {&e.label, &e.human}) {
      const Agreement& a = s->agreement;
      for (const std::string& v :
           {std::to_string(s->units), std::to_string(s->positive), Real(s->share),
            Real(s->interval.low), Real(s->interval.high), std::to_string(a.subjects),
            std::to_string(a.min_raters), Real(a.mean_raters), std::to_string(a.max_raters),
            Real(a.fleiss_kappa), Real(a.krippendorff_alpha)})
        row.push_back(v);
    }
    row.push_back(std::to_string(e.names));
    row.push_back(std::to_string(e.units_named));
    out += CsvRow(row, "\n");
  }
  return out;
}

std::string FormatRatersCsv(const std::vector<LayerHumanEval>& layers) {
  std::string out = CsvRow({"layer", "rater", "label_answers", "name_answers", "human_answers",
                            "catch_trials", "catch_correct", "catch_accuracy", "excluded"},
                           "\n");
  for (const LayerHumanEval& e : layers)
    for (const RaterSummary& r : e.raters)
      out +=
          CsvRow({e.layer, r.rater, std::to_string(r.label), std::to_string(r.name),
                  std::to_string(r.human), std::to_string(r.catch_trials),
                  std::to_string(r.catch_correct), Real(r.catch_accuracy), r.excluded ? "1" : "0"},
                 "\n");
  return out;
}

std::string FormatHumanSummaryText(const std::vector<LayerHumanEval>& layers) {
  if (layers.empty()) return "no answers yet\n";
  std::string out;
  for (const LayerHumanEval& e : layers) {
    out += "layer " + e.layer + ": " + std::to_string(e.answers) + " answers from " +
           std::to_string(e.raters.size()) + " rater(s)";
    if (e.study_units >= 0) out += ", " + std::to_string(e.study_units) + " units in the study";
    out += "\n";
    auto share = [&](const char* what, const ShareSummary& s) {
      out += std::string("  ") + what + ": " + std::to_string(s.positive) + "/" +
             std::to_string(s.units) + " units";
      if (s.units)
        out += " = " + Shown(s.share) + " (95% CI " + Shown(s.interval.low) + "-" +
               Shown(s.interval.high) + ")";
      const Agreement& a = s.agreement;
      out += "; agreement on " + std::to_string(a.subjects) + " units with 2+ raters";
      if (a.subjects)
        out += " (" + std::to_string(a.min_raters) + "-" + std::to_string(a.max_raters) +
               " raters, mean " + Shown(a.mean_raters) + ")";
      out += ": Fleiss kappa " + Shown(a.fleiss_kappa) + ", Krippendorff alpha " +
             Shown(a.krippendorff_alpha) + "\n";
    };
    share("ND label judged descriptive", e.label);
    share("human consistency", e.human);
    out += "  names: " + std::to_string(e.names) + " for " + std::to_string(e.units_named) +
           " units\n";
    out += "  catch trials (cut-off " + Shown(e.min_catch_accuracy) + "):";
    for (const RaterSummary& r : e.raters) {
      out += " " + r.rater + " " + std::to_string(r.catch_correct) + "/" +
             std::to_string(r.catch_trials);
      if (r.excluded) out += " EXCLUDED";
      out += ";";
    }
    out.back() = '\n';
  }
  return out;
}

}  // namespace nd
