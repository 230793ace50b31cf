#include "tools/report/study_report.h"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <map>
#include <set>
#include <sstream>
#include <tuple>

#include "cache/pipeline_keys.h"
#include "common/base/atomic_file.h"
#include "common/base/log.h"
#include "common/base/text_format.h"
#include "common/results/result_files.h"
#include "tools/report/report_builder.h"
#include "tools/report/report_html.h"
#include "tools/train/train_record_file.h"

namespace nd {
namespace {

namespace fs = std::filesystem;

// What the study knows about one model: [[models]] values first, the record's where those are not
// given.
struct ModelInfo {
  std::string name;  // [[models]] name, else the file name
  std::string path, digest, group, task;
  int64_t seed = -1, iteration = -1;
  double train_accuracy = -1, val_accuracy = -1;
  bool has_record = false;
  TrainRecord record;
};

// One result set read (a layer or a view of one model).
struct Run {
  size_t model = 0;
  std::string set;    // result folder name under output.dir
  std::string layer;  // the layer (a view's source layer)
  std::string view;   // the view's name, "" for a layer
  std::string basis;  // the view's basis
  int64_t view_seed = -1;
  double alpha = -1;    // rotation views only
  std::string section;  // the main report's section id
  std::string dir;      // the result folder
  LayerSummary summary;
  bool rotation() const { return basis == "rotation"; }
};

std::string Int(int64_t v) { return std::to_string(v); }
std::string OptInt(int64_t v) { return v < 0 ? "" : std::to_string(v); }
std::string Real(double v) { return PythonFloatRepr(v); }
std::string OptReal(double v) { return v < 0 ? "" : PythonFloatRepr(v); }

// A "nice" axis maximum >= v (1, 2, 5 x 10^k), at least 1.
double NiceCeiling(double v) {
  if (v <= 1) return 1;
  double step = 1;
  while (true) {
    for (double m : {1.0, 2.0, 5.0})
      if (m * step >= v) return m * step;
    step *= 10;
  }
}

// Series colours (not the category colours): distinguishable, colour-blind friendly first.
std::string SeriesColour(size_t k) {
  static const char* kPalette[] = {"#2563eb", "#dc2626", "#059669", "#d97706", "#7c3aed",
                                   "#0891b2", "#db2777", "#4d7c0f", "#475569", "#b45309"};
  return kPalette[k % (sizeof(kPalette) / sizeof(kPalette[0]))];
}

constexpr char kFont[] =
    "font-family=\"-apple-system,BlinkMacSystemFont,'Segoe UI',Roboto,'Helvetica Neue',Arial,"
    "sans-serif\"";

// The paths a recorded init_from may mean: as written when absolute, else relative to the current
// directory (nd-train run from here) or to the record's directory.
std::vector<std::string> InitFromCandidates(const TrainRecord& r) {
  std::vector<std::string> out;
  std::error_code ec;
  const fs::path p(r.init_from);
  std::vector<fs::path> tries;
  if (p.is_absolute()) {
    tries.push_back(p);
  } else {
    tries.push_back(fs::current_path(ec) / p);
    tries.push_back(fs::path(r.path).parent_path() / p);
  }
  for (const fs::path& t : tries) out.push_back(fs::weakly_canonical(t, ec).string());
  return out;
}

std::string Canonical(const std::string& path) {
  std::error_code ec;
  return fs::weakly_canonical(fs::path(path), ec).string();
}

// ---- Charts ----

// The paper's figure: one stacked bar per model x layer, unique detectors per category.
std::string CategoriesSvg(const std::vector<const Run*>& bars,
                          const std::vector<std::string>& categories,
                          const std::vector<ModelInfo>& models) {
  double top = 0;
  std::vector<std::vector<int64_t>> values(bars.size(), std::vector<int64_t>(categories.size()));
  for (size_t b = 0; b < bars.size(); ++b) {
    int64_t total = 0;
    for (const LayerSummary::Category& c : bars[b]->summary.categories) {
      const auto at = std::find(categories.begin(), categories.end(), c.name);
      values[b][at - categories.begin()] = c.unique_detectors_paper;
      total += c.unique_detectors_paper;
    }
    top = std::max(top, static_cast<double>(total));
  }
  top = NiceCeiling(top);
  const double bw = 28, gap = 14, left = 48, plot_h = 220, top_pad = 14, bottom = 130;
  const double width = std::max(360.0, left + bars.size() * (bw + gap) + gap + 10);
  const double height = top_pad + plot_h + bottom;
  std::ostringstream o;
  o << "<svg class=\"chart\" width=\"" << SvgNumber(width) << "\" height=\"" << SvgNumber(height)
    << "\" viewBox=\"0 0 " << SvgNumber(width) << " " << SvgNumber(height) << "\" " << kFont
    << " font-size=\"11\" role=\"img\">";
  for (int t = 0; t <= 4; ++t) {
    const double v = top * t / 4, y = top_pad + plot_h - plot_h * t / 4;
    o << "<line x1=\"" << SvgNumber(left) << "\" x2=\"" << SvgNumber(width - 10) << "\" y1=\""
      << SvgNumber(y) << "\" y2=\"" << SvgNumber(y) << "\" stroke=\"#e2e8f0\"/><text x=\""
      << SvgNumber(left - 6) << "\" y=\"" << SvgNumber(y + 4)
      << "\" text-anchor=\"end\" fill=\"#64748b\">" << FormatG(v, 6) << "</text>";
  }
  o << "<text transform=\"translate(12 " << SvgNumber(top_pad + plot_h / 2)
    << ") rotate(-90)\" text-anchor=\"middle\" fill=\"#334155\">unique detectors</text>";
  for (size_t b = 0; b < bars.size(); ++b) {
    const Run& r = *bars[b];
    const double x = left + gap + b * (bw + gap);
    double y = top_pad + plot_h;
    int64_t total = 0;
    for (int64_t v : values[b]) total += v;
    const std::string name = models[r.model].name + " / " + r.layer;
    o << "<g class=\"bar\" data-model=\"" << HtmlEscape(models[r.model].name) << "\" data-layer=\""
      << HtmlEscape(r.layer) << "\" data-total=\"" << total << "\">";
    for (size_t c = 0; c < categories.size(); ++c) {
      if (values[b][c] == 0) continue;
      const double h = plot_h * values[b][c] / top;
      y -= h;
      o << "<rect class=\"seg\" data-category=\"" << HtmlEscape(categories[c]) << "\" data-value=\""
        << values[b][c] << "\" x=\"" << SvgNumber(x) << "\" y=\"" << SvgNumber(y) << "\" width=\""
        << SvgNumber(bw) << "\" height=\"" << SvgNumber(h) << "\" fill=\""
        << CategoryColour(categories[c], static_cast<int>(c))
        << "\" stroke=\"#fff\" stroke-width=\"0.5\"><title>" << HtmlEscape(name) << ", "
        << HtmlEscape(categories[c]) << ": " << values[b][c] << " unique detectors</title></rect>";
    }
    o << "<text x=\"" << SvgNumber(x + bw / 2) << "\" y=\"" << SvgNumber(y - 4)
      << "\" text-anchor=\"middle\" fill=\"#334155\">" << total << "</text>";
    o << "<text transform=\"translate(" << SvgNumber(x + bw / 2 + 4) << " "
      << SvgNumber(top_pad + plot_h + 8) << ") rotate(-60)\" text-anchor=\"end\" fill=\"#334155\">"
      << HtmlEscape(name) << "</text>";
    o << "</g>";
  }
  o << "</svg>";
  return o.str();
}

std::string CategoryLegend(const std::vector<std::string>& categories) {
  std::ostringstream o;
  o << "<div class=\"legend\">";
  for (size_t c = 0; c < categories.size(); ++c)
    o << "<span class=\"key\"><i style=\"background:"
      << CategoryColour(categories[c], static_cast<int>(c)) << "\"></i>"
      << HtmlEscape(categories[c]) << "</span>";
  o << "</div>";
  return o.str();
}

// One point of the iterations chart: a model's layer.
struct IterPoint {
  int64_t iteration = 0;
  std::string model;
  int64_t detectors = 0, unique = 0;
  double train_accuracy = -1, val_accuracy = -1;
};
struct IterSeries {
  std::string group, layer;
  std::vector<IterPoint> points;  // by iteration
};

// A log x axis over iterations; iteration 0 sits at the left end.
struct LogAxis {
  double lo_exp = 0, hi_exp = 1;  // decades 10^lo .. 10^hi
  bool has_zero = false;
  double x0 = 0, x1 = 1;  // pixel range
  double zero_gap = 0;    // pixels reserved at the left for iteration 0
  double X(int64_t it) const {
    if (it <= 0) return x0;
    const double a = x0 + zero_gap;
    return a + (x1 - a) * (std::log10(static_cast<double>(it)) - lo_exp) / (hi_exp - lo_exp);
  }
};

std::string IterationPanel(const std::vector<IterSeries>& series, bool unique, const LogAxis& ax,
                           const std::string& title) {
  const double width = 520, height = 300, top_pad = 24, plot_h = 220;
  double top = 0;
  for (const IterSeries& s : series)
    for (const IterPoint& p : s.points)
      top = std::max(top, static_cast<double>(unique ? p.unique : p.detectors));
  top = NiceCeiling(top);
  auto Y = [&](double v) { return top_pad + plot_h - plot_h * v / top; };
  auto YA = [&](double a) { return top_pad + plot_h - plot_h * a; };
  std::ostringstream o;
  o << "<svg class=\"chart panel\" data-measure=\"" << (unique ? "unique" : "detectors")
    << "\" width=\"" << SvgNumber(width) << "\" height=\"" << SvgNumber(height)
    << "\" viewBox=\"0 0 " << SvgNumber(width) << " " << SvgNumber(height) << "\" " << kFont
    << " font-size=\"11\" role=\"img\">";
  o << "<text x=\"" << SvgNumber(ax.x0) << "\" y=\"14\" fill=\"#334155\" font-weight=\"600\">"
    << HtmlEscape(title) << "</text>";
  for (int t = 0; t <= 4; ++t) {
    const double y = top_pad + plot_h - plot_h * t / 4;
    o << "<line x1=\"" << SvgNumber(ax.x0) << "\" x2=\"" << SvgNumber(ax.x1) << "\" y1=\""
      << SvgNumber(y) << "\" y2=\"" << SvgNumber(y) << "\" stroke=\"#e2e8f0\"/><text x=\""
      << SvgNumber(ax.x0 - 6) << "\" y=\"" << SvgNumber(y + 4)
      << "\" text-anchor=\"end\" fill=\"#64748b\">" << FormatG(top * t / 4, 6)
      << "</text><text x=\"" << SvgNumber(ax.x1 + 6) << "\" y=\"" << SvgNumber(y + 4)
      << "\" fill=\"#64748b\">" << FormatG(0.25 * t, 3) << "</text>";
  }
  const double base = top_pad + plot_h;
  if (ax.has_zero)
    o << "<text x=\"" << SvgNumber(ax.x0) << "\" y=\"" << SvgNumber(base + 16)
      << "\" text-anchor=\"middle\" fill=\"#64748b\">0</text>";
  for (int e = static_cast<int>(ax.lo_exp); e <= static_cast<int>(ax.hi_exp); ++e) {
    const int64_t it = static_cast<int64_t>(std::llround(std::pow(10.0, e)));
    const double x = ax.X(it);
    o << "<line x1=\"" << SvgNumber(x) << "\" x2=\"" << SvgNumber(x) << "\" y1=\""
      << SvgNumber(top_pad) << "\" y2=\"" << SvgNumber(base) << "\" stroke=\"#e2e8f0\"/><text x=\""
      << SvgNumber(x) << "\" y=\"" << SvgNumber(base + 16)
      << "\" text-anchor=\"middle\" fill=\"#64748b\">" << (e <= 5 ? Int(it) : "1e" + Int(e))
      << "</text>";
  }
  o << "<text x=\"" << SvgNumber((ax.x0 + ax.x1) / 2) << "\" y=\"" << SvgNumber(base + 34)
    << "\" text-anchor=\"middle\" fill=\"#334155\">training iteration (log)</text>";
  o << "<text transform=\"translate(" << SvgNumber(width - 6) << " "
    << SvgNumber(top_pad + plot_h / 2)
    << ") rotate(90)\" text-anchor=\"middle\" fill=\"#334155\">validation accuracy</text>";
  // The accuracy of each group (one line per group, whatever the layer): dashed.
  std::map<std::string, std::map<int64_t, double>> accuracy;
  std::map<std::string, size_t> group_colour;
  for (size_t k = 0; k < series.size(); ++k) {
    group_colour.emplace(series[k].group, k);
    for (const IterPoint& p : series[k].points)
      if (p.val_accuracy >= 0) accuracy[series[k].group][p.iteration] = p.val_accuracy;
  }
  for (const auto& [group, points] : accuracy) {
    o << "<polyline class=\"accuracy\" data-group=\"" << HtmlEscape(group)
      << "\" fill=\"none\" stroke-dasharray=\"4 3\" stroke=\"" << SeriesColour(group_colour[group])
      << "\" stroke-opacity=\"0.6\" points=\"";
    for (const auto& [it, a] : points) o << SvgNumber(ax.X(it)) << "," << SvgNumber(YA(a)) << " ";
    o << "\"/>";
    // Markers too: a group with one accuracy has no line to see.
    for (const auto& [it, a] : points)
      o << "<rect class=\"acc\" x=\"" << SvgNumber(ax.X(it) - 3) << "\" y=\""
        << SvgNumber(YA(a) - 3) << "\" width=\"6\" height=\"6\" fill=\"#fff\" stroke=\""
        << SeriesColour(group_colour[group]) << "\"><title>"
        << HtmlEscape(group.empty() ? "(no group)" : group) << ", iteration " << it
        << ": validation accuracy " << FormatG(a, 4) << "</title></rect>";
  }
  for (size_t k = 0; k < series.size(); ++k) {
    const IterSeries& s = series[k];
    const std::string name = (s.group.empty() ? "(no group)" : s.group) + " / " + s.layer;
    o << "<g class=\"series\" data-group=\"" << HtmlEscape(s.group) << "\" data-layer=\""
      << HtmlEscape(s.layer) << "\" data-points=\"" << s.points.size() << "\">";
    o << "<polyline fill=\"none\" stroke-width=\"2\" stroke=\"" << SeriesColour(k)
      << "\" points=\"";
    for (const IterPoint& p : s.points)
      o << SvgNumber(ax.X(p.iteration)) << "," << SvgNumber(Y(unique ? p.unique : p.detectors))
        << " ";
    o << "\"/>";
    for (const IterPoint& p : s.points) {
      const int64_t v = unique ? p.unique : p.detectors;
      o << "<circle class=\"pt\" data-model=\"" << HtmlEscape(p.model) << "\" data-iteration=\""
        << p.iteration << "\" data-value=\"" << v << "\" cx=\"" << SvgNumber(ax.X(p.iteration))
        << "\" cy=\"" << SvgNumber(Y(v)) << "\" r=\"3.5\" fill=\"" << SeriesColour(k)
        << "\"><title>" << HtmlEscape(name) << ", " << HtmlEscape(p.model) << " (iteration "
        << p.iteration << "): " << v << (unique ? " unique detectors" : " detectors");
      if (p.val_accuracy >= 0) o << ", val. accuracy " << FormatG(p.val_accuracy, 4);
      o << "</title></circle>";
    }
    o << "</g>";
  }
  o << "</svg>";
  return o.str();
}

// One series of the rotation chart: a model's source layer over alpha.
struct RotationPoint {
  double alpha = 0;
  std::vector<int64_t> unique, detectors;  // one per view (seed)
  double mean = 0, sd = -1, detectors_mean = 0;
  int64_t min = 0, max = 0;
};
struct RotationSeries {
  size_t model = 0;
  std::string model_name, layer;
  std::vector<RotationPoint> points;  // by alpha
};

std::string RotationSvg(const std::vector<RotationSeries>& series) {
  const double width = 560, height = 300, left = 52, right = 540, top_pad = 16, plot_h = 230;
  double top = 0;
  for (const RotationSeries& s : series)
    for (const RotationPoint& p : s.points) top = std::max(top, static_cast<double>(p.max));
  top = NiceCeiling(top);
  auto X = [&](double a) { return left + (right - left) * a; };
  auto Y = [&](double v) { return top_pad + plot_h - plot_h * v / top; };
  std::ostringstream o;
  o << "<svg class=\"chart\" width=\"" << SvgNumber(width) << "\" height=\"" << SvgNumber(height)
    << "\" viewBox=\"0 0 " << SvgNumber(width) << " " << SvgNumber(height) << "\" " << kFont
    << " font-size=\"11\" role=\"img\">";
  for (int t = 0; t <= 4; ++t) {
    const double y = Y(top * t / 4);
    o << "<line x1=\"" << SvgNumber(left) << "\" x2=\"" << SvgNumber(right) << "\" y1=\""
      << SvgNumber(y) << "\" y2=\"" << SvgNumber(y) << "\" stroke=\"#e2e8f0\"/><text x=\""
      << SvgNumber(left - 6) << "\" y=\"" << SvgNumber(y + 4)
      << "\" text-anchor=\"end\" fill=\"#64748b\">" << FormatG(top * t / 4, 6) << "</text>";
    const double x = X(0.25 * t);
    o << "<text x=\"" << SvgNumber(x) << "\" y=\"" << SvgNumber(top_pad + plot_h + 16)
      << "\" text-anchor=\"middle\" fill=\"#64748b\">" << FormatG(0.25 * t, 3) << "</text>";
  }
  o << "<text x=\"" << SvgNumber((left + right) / 2) << "\" y=\""
    << SvgNumber(top_pad + plot_h + 34)
    << "\" text-anchor=\"middle\" fill=\"#334155\">alpha (0 = the layer's own basis, 1 = a full "
       "random rotation)</text>";
  o << "<text transform=\"translate(12 " << SvgNumber(top_pad + plot_h / 2)
    << ") rotate(-90)\" text-anchor=\"middle\" fill=\"#334155\">unique detectors</text>";
  for (size_t k = 0; k < series.size(); ++k) {
    const RotationSeries& s = series[k];
    const std::string c = SeriesColour(k);
    o << "<g class=\"series\" data-model=\"" << HtmlEscape(s.model_name) << "\" data-layer=\""
      << HtmlEscape(s.layer) << "\" data-points=\"" << s.points.size() << "\">";
    o << "<polyline fill=\"none\" stroke-width=\"2\" stroke=\"" << c << "\" points=\"";
    for (const RotationPoint& p : s.points)
      o << SvgNumber(X(p.alpha)) << "," << SvgNumber(Y(p.mean)) << " ";
    o << "\"/>";
    for (const RotationPoint& p : s.points) {
      const double x = X(p.alpha);
      o << "<line class=\"spread\" x1=\"" << SvgNumber(x) << "\" x2=\"" << SvgNumber(x)
        << "\" y1=\"" << SvgNumber(Y(p.min)) << "\" y2=\"" << SvgNumber(Y(p.max)) << "\" stroke=\""
        << c << "\"/>";
      for (int64_t v : {p.min, p.max})
        o << "<line x1=\"" << SvgNumber(x - 4) << "\" x2=\"" << SvgNumber(x + 4) << "\" y1=\""
          << SvgNumber(Y(v)) << "\" y2=\"" << SvgNumber(Y(v)) << "\" stroke=\"" << c << "\"/>";
      o << "<circle class=\"pt\" data-alpha=\"" << Real(p.alpha) << "\" data-mean=\""
        << Real(p.mean) << "\" data-seeds=\"" << p.unique.size() << "\" cx=\"" << SvgNumber(x)
        << "\" cy=\"" << SvgNumber(Y(p.mean)) << "\" r=\"3.5\" fill=\"" << c << "\"><title>"
        << HtmlEscape(s.model_name + " / " + s.layer) << ", alpha " << FormatG(p.alpha, 6)
        << ": mean " << FormatG(p.mean, 4) << " unique detectors over " << p.unique.size()
        << " seed(s), min " << p.min << ", max " << p.max << "</title></circle>";
    }
    o << "</g>";
  }
  o << "</svg>";
  return o.str();
}

std::string SeriesLegend(const std::vector<std::string>& names) {
  std::ostringstream o;
  o << "<div class=\"legend series-legend\">";
  for (size_t k = 0; k < names.size(); ++k)
    o << "<span class=\"key\" data-series=\"" << k << "\"><i style=\"background:" << SeriesColour(k)
      << "\"></i>" << HtmlEscape(names[k]) << "</span>";
  o << "</div>";
  return o.str();
}

// ---- Transitions ----

struct Transition {
  std::string from, to;
  int64_t units = 0, detector_units = 0;
};
struct PairLayer {
  size_t a = 0, b = 0;  // models
  std::string layer;
  const Run* run_a = nullptr;
  const Run* run_b = nullptr;
  int64_t units = 0, kept = 0, detectors_both = 0, kept_detectors_both = 0;
  std::vector<Transition> transitions;  // units descending, from, to
  struct Example {
    int unit = 0;  // 1-based
    std::string from, to;
    double iou_a = 0, iou_b = 0;
  };
  std::vector<Example> examples;
};

constexpr char kCss[] = R"CSS(
:root{--bg:#f8fafc;--fg:#0f172a;--muted:#64748b;--line:#e2e8f0;--card:#fff;--accent:#2563eb}
*{box-sizing:border-box}
body{margin:0;background:var(--bg);color:var(--fg);font:14px/1.5 -apple-system,BlinkMacSystemFont,"Segoe UI",Roboto,"Helvetica Neue",Arial,sans-serif}
a{color:var(--accent);text-decoration:none}a:hover{text-decoration:underline}
main{max-width:1240px;margin:0 auto;padding:0 24px}
header.top{padding:24px 0 8px}header.top h1{margin:0 0 4px;font-size:22px}
header.top p{margin:2px 0;color:var(--muted)}
section.part{margin:24px 0}section.part>h2{font-size:18px;margin:0 0 8px}
figure{margin:0;background:var(--card);border:1px solid var(--line);border-radius:12px;padding:14px 16px;overflow-x:auto}
figcaption{font-weight:600;margin-bottom:6px}figcaption span{color:var(--muted);font-weight:400;font-size:12px;margin-left:6px}
.panels{display:flex;flex-wrap:wrap;gap:12px}
.legend{display:flex;flex-wrap:wrap;gap:6px 14px;margin-top:8px;font-size:12px;color:#334155}
.legend .key{cursor:default;display:inline-flex;align-items:center;gap:5px}
.legend i{display:inline-block;width:12px;height:12px;border-radius:3px}
svg.chart g.series.dim,svg.chart polyline.accuracy.dim{opacity:.15}
p.missing{color:var(--muted);font-style:italic;margin:4px 0}
ul#notes{color:#b45309;font-size:13px}
table{border-collapse:collapse;background:var(--card);font-size:13px}
table th,table td{padding:4px 10px;border-bottom:1px solid var(--line);text-align:right;white-space:nowrap}
table th{color:var(--muted);font-weight:600;cursor:pointer;position:sticky;top:0;background:var(--card)}
table td.t,table th.t{text-align:left}
.scroll{overflow-x:auto;border:1px solid var(--line);border-radius:12px}
div.pair{background:var(--card);border:1px solid var(--line);border-radius:12px;padding:12px 16px;margin:12px 0}
div.pair h3{margin:0 0 6px;font-size:15px}
div.examples{display:flex;flex-direction:column;gap:10px;margin-top:10px}
div.example .strips{display:flex;flex-direction:column;gap:4px}
div.example img.strip{max-width:100%;height:auto;border-radius:6px;display:block}
div.example .cap{font-size:12px;color:#334155}
div.example .who{font-size:11px;color:var(--muted)}
footer{color:var(--muted);font-size:12px;padding:24px 0 40px}
)CSS";

// Sorting the runs table by a column, highlighting a series from its legend key.
constexpr char kScript[] = R"JS(
(function(){
  var t=document.getElementById('runs');
  if(t){
    var ths=t.querySelectorAll('thead th');
    ths.forEach(function(th,i){
      th.addEventListener('click',function(){
        var body=t.tBodies[0],rows=Array.prototype.slice.call(body.rows);
        var dir=th.getAttribute('data-dir')==='asc'?-1:1;
        ths.forEach(function(o){o.removeAttribute('data-dir');});
        th.setAttribute('data-dir',dir>0?'asc':'desc');
        rows.sort(function(a,b){
          var x=a.cells[i].textContent,y=b.cells[i].textContent;
          var nx=parseFloat(x),ny=parseFloat(y);
          var c=(!isNaN(nx)&&!isNaN(ny))?nx-ny:x.localeCompare(y);
          return dir*c;
        });
        rows.forEach(function(r){body.appendChild(r);});
      });
    });
  }
  document.querySelectorAll('figure').forEach(function(fig){
    fig.querySelectorAll('.series-legend .key').forEach(function(key){
      var k=key.getAttribute('data-series');
      key.addEventListener('mouseenter',function(){
        fig.querySelectorAll('svg.chart').forEach(function(svg){
          svg.querySelectorAll('g.series').forEach(function(g,j){
            if(String(j)!==k)g.classList.add('dim');
          });
        });
      });
      key.addEventListener('mouseleave',function(){
        fig.querySelectorAll('.dim').forEach(function(g){g.classList.remove('dim');});
      });
    });
  });
  document.body.setAttribute('data-ready','1');
})();
)JS";

}  // namespace

bool WantsStudyReport(const PipelineConfig& config) {
  return !config.models.empty() || !config.views.empty();
}

StatusOr<std::pair<std::string, std::string>> ParseComparePair(const std::string& value) {
  const size_t comma = value.find(',');
  if (comma == std::string::npos || comma == 0 || comma + 1 == value.size() ||
      value.find(',', comma + 1) != std::string::npos)
    return InvalidArgument("--compare: expected BEFORE,AFTER (two model names), got \"" + value +
                           "\"");
  return std::make_pair(value.substr(0, comma), value.substr(comma + 1));
}

StatusOr<StudyStats> BuildStudyReport(const PipelineConfig& config, const StudyOptions& options) {
  const auto started = std::chrono::steady_clock::now();
  StudyStats stats;
  auto note = [&](const std::string& line) {
    LogWarning(line);
    stats.notes.push_back(line);
  };
  const fs::path out_dir =
      options.out_dir.empty() ? fs::path(config.output.dir) / "report" : fs::path(options.out_dir);

  // Models, with their records.
  const std::vector<ModelEntry> entries = ConfiguredModels(config);
  std::vector<ModelInfo> models;
  for (const ModelEntry& e : entries) {
    ModelInfo m;
    m.name = e.name.empty() ? fs::path(e.path).filename().string() : e.name;
    m.path = e.path;
    m.digest = e.digest;
    m.group = e.group;
    m.seed = e.seed;
    m.iteration = e.iteration;
    m.val_accuracy = e.accuracy;
    const std::string record_path = TrainRecordPathFor(e.path);
    std::error_code ec;
    if (fs::exists(record_path, ec)) {
      auto r = ReadTrainRecord(record_path);
      if (!r.ok()) {
        note(r.status().message() + " (model " + m.name + " is shown without its record)");
      } else {
        m.has_record = true;
        m.record = std::move(*r);
        if (m.seed < 0) m.seed = static_cast<int64_t>(m.record.seed);
        if (m.iteration < 0) m.iteration = m.record.iteration;
        if (m.val_accuracy < 0) m.val_accuracy = m.record.val_accuracy;
        m.train_accuracy = m.record.train_accuracy;
        m.task = m.record.task;
      }
    }
    models.push_back(std::move(m));
  }
  auto model_index = [&](const std::string& name) -> int {
    for (size_t k = 0; k < models.size(); ++k)
      if (models[k].name == name) return static_cast<int>(k);
    return -1;
  };
  // Pairs: --compare first, then the records' init_from, each once.
  std::vector<std::pair<size_t, size_t>> pairs;
  for (const auto& [a, b] : options.compare) {
    const int ia = model_index(a), ib = model_index(b);
    for (const std::string& n : {a, b}) {
      if (model_index(n) < 0) {
        std::string known;
        for (const ModelInfo& m : models) known += (known.empty() ? "" : ", ") + m.name;
        return InvalidArgument("--compare: no model \"" + n + "\"; the models are: " + known);
      }
    }
    if (ia == ib) return InvalidArgument("--compare " + a + "," + b + ": the same model twice");
    const auto p = std::make_pair(static_cast<size_t>(ia), static_cast<size_t>(ib));
    if (std::find(pairs.begin(), pairs.end(), p) == pairs.end()) pairs.push_back(p);
  }
  for (size_t b = 0; b < models.size(); ++b) {
    if (!models[b].has_record || models[b].record.init_from.empty()) continue;
    const std::vector<std::string> candidates = InitFromCandidates(models[b].record);
    for (size_t a = 0; a < models.size(); ++a) {
      if (a == b) continue;
      const std::string path_a = Canonical(models[a].path);
      const bool same_file =
          std::find(candidates.begin(), candidates.end(), path_a) != candidates.end();
      const bool same_digest =
          !models[a].digest.empty() && models[a].digest == models[b].record.init_from_sha256;
      const auto p = std::make_pair(a, b);
      if ((same_file || same_digest) && std::find(pairs.begin(), pairs.end(), p) == pairs.end())
        pairs.push_back(p);
    }
  }

  // Result sets.
  ND_ASSIGN_OR_RETURN(std::vector<UnitSet> sets, ConfiguredUnitSets(config));
  const auto& quantiles = config.threshold.quantiles;
  const double q = quantiles.front();
  const bool several = quantiles.size() > 1;
  std::vector<Run> runs;
  for (const UnitSet& set : sets) {
    Run r;
    r.model = set.model;
    r.set = set.name;
    r.dir = LayerResultDir(config.output.dir, set.name, q, several);
    r.section = several ? set.name + "-q" + FormatG(q, 6) : set.name;
    if (set.is_view()) {
      const ViewConfig& v = config.views[set.view];
      r.view = v.name;
      r.layer = v.layer;
      r.basis = v.basis;
      if (v.basis == "rotation") {
        r.view_seed = v.seed;
        r.alpha = set.alpha;
      }
    } else {
      r.layer = set.name.substr(ModelResultPrefix(entries[set.model]).size());
    }
    const std::string path = r.dir + "/summary.json";
    std::error_code ec;
    if (!fs::exists(path, ec)) {
      note(path + ": no such file (" + set.name + " not scored; left out)");
      continue;
    }
    auto summary = ReadSummaryFile(path);
    if (!summary.ok()) {
      note(summary.status().message() + " (" + set.name + " left out)");
      continue;
    }
    r.summary = std::move(*summary);
    runs.push_back(std::move(r));
  }
  if (runs.empty())
    return NotFound("study report: no result set has a summary.json under " + config.output.dir +
                    " (run nd-pipeline up first)");
  stats.runs = static_cast<int>(runs.size());
  auto layer_order = [&](const std::string& layer) {
    const auto& ls = config.model.layers;
    return static_cast<size_t>(std::find(ls.begin(), ls.end(), layer) - ls.begin());
  };

  // Categories, in the order the summaries list them (the same dataset: the same order).
  std::vector<std::string> categories;
  for (const Run& r : runs)
    for (const LayerSummary::Category& c : r.summary.categories)
      if (std::find(categories.begin(), categories.end(), c.name) == categories.end())
        categories.push_back(c.name);

  // 1. Bars: the layers.
  std::vector<const Run*> bars;
  for (const Run& r : runs)
    if (r.view.empty()) bars.push_back(&r);

  // 2. Iterations: one series per group x layer.
  std::vector<IterSeries> iter_series;
  for (const Run& r : runs) {
    const ModelInfo& m = models[r.model];
    if (!r.view.empty() || m.iteration < 0) continue;
    auto it = std::find_if(iter_series.begin(), iter_series.end(), [&](const IterSeries& s) {
      return s.group == m.group && s.layer == r.layer;
    });
    if (it == iter_series.end()) {
      iter_series.push_back(IterSeries{m.group, r.layer, {}});
      it = iter_series.end() - 1;
    }
    IterPoint p;
    p.iteration = m.iteration;
    p.model = m.name;
    p.detectors = r.summary.detectors;
    p.unique = r.summary.unique_detectors_paper;
    p.train_accuracy = m.train_accuracy;
    p.val_accuracy = m.val_accuracy;
    it->points.push_back(p);
  }
  std::sort(iter_series.begin(), iter_series.end(), [&](const IterSeries& a, const IterSeries& b) {
    return std::make_tuple(a.group, layer_order(a.layer), a.layer) <
           std::make_tuple(b.group, layer_order(b.layer), b.layer);
  });
  for (IterSeries& s : iter_series)
    std::stable_sort(s.points.begin(), s.points.end(), [](const IterPoint& a, const IterPoint& b) {
      return std::tie(a.iteration, a.model) < std::tie(b.iteration, b.model);
    });

  // 3. Rotation: per model x source layer, per alpha, over the views (seeds).
  std::vector<RotationSeries> rotation;
  for (const Run& r : runs) {
    if (!r.rotation()) continue;
    auto it = std::find_if(rotation.begin(), rotation.end(), [&](const RotationSeries& s) {
      return s.model == r.model && s.layer == r.layer;
    });
    if (it == rotation.end()) {
      rotation.push_back(RotationSeries{r.model, models[r.model].name, r.layer, {}});
      it = rotation.end() - 1;
    }
    auto p = std::find_if(it->points.begin(), it->points.end(),
                          [&](const RotationPoint& p) { return p.alpha == r.alpha; });
    if (p == it->points.end()) {
      it->points.push_back(RotationPoint{});
      p = it->points.end() - 1;
      p->alpha = r.alpha;
    }
    p->unique.push_back(r.summary.unique_detectors_paper);
    p->detectors.push_back(r.summary.detectors);
  }
  std::stable_sort(rotation.begin(), rotation.end(),
                   [&](const RotationSeries& a, const RotationSeries& b) {
                     return std::make_tuple(a.model, layer_order(a.layer), a.layer) <
                            std::make_tuple(b.model, layer_order(b.layer), b.layer);
                   });
  for (RotationSeries& s : rotation) {
    std::sort(s.points.begin(), s.points.end(),
              [](const RotationPoint& a, const RotationPoint& b) { return a.alpha < b.alpha; });
    for (RotationPoint& p : s.points) {
      const double n = static_cast<double>(p.unique.size());
      double sum = 0, dsum = 0;
      for (int64_t v : p.unique) sum += static_cast<double>(v);
      for (int64_t v : p.detectors) dsum += static_cast<double>(v);
      p.mean = sum / n;
      p.detectors_mean = dsum / n;
      p.min = *std::min_element(p.unique.begin(), p.unique.end());
      p.max = *std::max_element(p.unique.begin(), p.unique.end());
      if (p.unique.size() > 1) {
        double ss = 0;
        for (int64_t v : p.unique) ss += (v - p.mean) * (v - p.mean);
        p.sd = std::sqrt(ss / (n - 1));
      }
    }
  }

  // 4. Transitions: every pair, every layer both models have results for.
  std::vector<PairLayer> pair_layers;
  for (const auto& [a, b] : pairs) {
    for (const std::string& layer : config.model.layers) {
      const Run* ra = nullptr;
      const Run* rb = nullptr;
      for (const Run& r : runs) {
        if (!r.view.empty() || r.layer != layer) continue;
        if (r.model == a) ra = &r;
        if (r.model == b) rb = &r;
      }
      const std::string what = models[a].name + " -> " + models[b].name + ", " + layer;
      if (ra == nullptr || rb == nullptr) {
        note("transitions " + what + ": no results for " +
             (ra == nullptr ? models[a].name : models[b].name) + " (left out)");
        continue;
      }
      auto ta = ReadTallyFile(ra->dir + "/tally.csv");
      auto tb = ReadTallyFile(rb->dir + "/tally.csv");
      if (!ta.ok() || !tb.ok()) {
        note((ta.ok() ? tb.status() : ta.status()).message() + " (transitions " + what +
             " left out)");
        continue;
      }
      if (ta->units.size() != tb->units.size()) {
        note("transitions " + what + ": " + std::to_string(ta->units.size()) + " vs " +
             std::to_string(tb->units.size()) + " units; units can only be compared one to one " +
             "(left out)");
        continue;
      }
      PairLayer pl;
      pl.a = a;
      pl.b = b;
      pl.layer = layer;
      pl.run_a = ra;
      pl.run_b = rb;
      std::map<std::pair<std::string, std::string>, Transition> counts;
      const double cut = config.score.iou_threshold;
      std::vector<PairLayer::Example> candidates;
      for (size_t u = 0; u < ta->units.size(); ++u) {
        const TallyUnit& ua = ta->units[u];
        const TallyUnit& ub = tb->units[u];
        const bool both = ua.iou > cut && ub.iou > cut;
        Transition& t = counts[{ua.label, ub.label}];
        t.from = ua.label;
        t.to = ub.label;
        ++t.units;
        t.detector_units += both;
        ++pl.units;
        pl.kept += ua.label == ub.label;
        pl.detectors_both += both;
        pl.kept_detectors_both += both && ua.label == ub.label;
        candidates.push_back({static_cast<int>(u) + 1, ua.label, ub.label, ua.iou, ub.iou});
      }
      for (auto& [key, t] : counts) pl.transitions.push_back(t);
      std::sort(pl.transitions.begin(), pl.transitions.end(),
                [](const Transition& x, const Transition& y) {
                  return std::make_tuple(-x.units, x.from, x.to) <
                         std::make_tuple(-y.units, y.from, y.to);
                });
      // Examples: units whose label changed first, then those that are a detector in either
      // model, then the rest; each group by IoU before, descending (ties: lower unit).
      std::stable_sort(candidates.begin(), candidates.end(),
                       [cut](const PairLayer::Example& x, const PairLayer::Example& y) {
                         const bool cx = x.from != x.to, cy = y.from != y.to;
                         if (cx != cy) return cx;
                         const bool dx = x.iou_a > cut || x.iou_b > cut;
                         const bool dy = y.iou_a > cut || y.iou_b > cut;
                         if (dx != dy) return dx;
                         return x.iou_a > y.iou_a;
                       });
      if (static_cast<int>(candidates.size()) > options.example_units)
        candidates.resize(options.example_units);
      pl.examples = std::move(candidates);
      pair_layers.push_back(std::move(pl));
    }
  }
  stats.pairs = static_cast<int>(pairs.size());

  // ---- CSV files ----
  std::ostringstream runs_csv, cats_csv, iter_csv, rot_csv, trans_csv;
  runs_csv << CsvRow({"model", "group", "seed", "iteration", "train_accuracy", "val_accuracy",
                      "task", "set", "layer", "view", "basis", "view_seed", "alpha", "units",
                      "detectors", "unique_detectors_paper", "unique_detectors_top_label"},
                     "\n");
  cats_csv << CsvRow(
      {"model", "set", "layer", "view", "category", "detectors", "unique_detectors_paper"}, "\n");
  for (const Run& r : runs) {
    const ModelInfo& m = models[r.model];
    const LayerSummary& s = r.summary;
    runs_csv << CsvRow(
        {m.name, m.group, OptInt(m.seed), OptInt(m.iteration), OptReal(m.train_accuracy),
         OptReal(m.val_accuracy), m.task, r.set, r.layer, r.view, r.basis, OptInt(r.view_seed),
         OptReal(r.alpha), Int(s.units), Int(s.detectors), Int(s.unique_detectors_paper),
         Int(s.unique_detectors_top_label)},
        "\n");
    for (const LayerSummary::Category& c : s.categories)
      cats_csv << CsvRow(
          {m.name, r.set, r.layer, r.view, c.name, Int(c.detectors), Int(c.unique_detectors_paper)},
          "\n");
  }
  iter_csv << CsvRow({"group", "layer", "iteration", "model", "detectors", "unique_detectors_paper",
                      "train_accuracy", "val_accuracy"},
                     "\n");
  for (const IterSeries& s : iter_series)
    for (const IterPoint& p : s.points)
      iter_csv << CsvRow({s.group, s.layer, Int(p.iteration), p.model, Int(p.detectors),
                          Int(p.unique), OptReal(p.train_accuracy), OptReal(p.val_accuracy)},
                         "\n");
  rot_csv << CsvRow({"model", "layer", "alpha", "seeds", "unique_mean", "unique_sd", "unique_min",
                     "unique_max", "detectors_mean"},
                    "\n");
  for (const RotationSeries& s : rotation)
    for (const RotationPoint& p : s.points)
      rot_csv << CsvRow({s.model_name, s.layer, Real(p.alpha), Int(p.unique.size()), Real(p.mean),
                         OptReal(p.sd), Int(p.min), Int(p.max), Real(p.detectors_mean)},
                        "\n");
  trans_csv << CsvRow(
      {"model_a", "model_b", "layer", "from_label", "to_label", "units", "detector_units"}, "\n");
  for (const PairLayer& pl : pair_layers)
    for (const Transition& t : pl.transitions)
      trans_csv << CsvRow({models[pl.a].name, models[pl.b].name, pl.layer, t.from, t.to,
                           Int(t.units), Int(t.detector_units)},
                          "\n");

  std::error_code ec;
  fs::create_directories(out_dir, ec);
  if (ec) return IoError(out_dir.string() + ": cannot create: " + ec.message());
  const std::pair<const char*, std::string> csvs[] = {{"study_runs.csv", runs_csv.str()},
                                                      {"study_categories.csv", cats_csv.str()},
                                                      {"study_iterations.csv", iter_csv.str()},
                                                      {"study_rotation.csv", rot_csv.str()},
                                                      {"study_transitions.csv", trans_csv.str()}};
  for (const auto& [name, text] : csvs) {
    const std::string path = (out_dir / name).string();
    ND_RETURN_IF_ERROR(WriteFileAtomically(path, text));
    stats.files.push_back(path);
  }

  // ---- The page ----
  std::ostringstream o;
  o << "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
    << "<meta name=\"viewport\" content=\"width=device-width,initial-scale=1\">"
    << "<title>Network Dissection study</title><style>" << kCss << "</style></head>\n"
    << "<body data-runs=\"" << runs.size() << "\" data-models=\"" << models.size()
    << "\" data-pairs=\"" << pairs.size() << "\"><main>\n";
  o << "<header class=\"top\"><h1>Network Dissection: study</h1><p>" << models.size()
    << " model(s), " << runs.size() << " result set(s) at quantile " << FormatG(q, 6)
    << ", IoU cut-off " << FormatG(config.score.iou_threshold, 6)
    << ". Unique detectors count distinct labels among a set's detectors (the paper's rule).";
  if (fs::exists(out_dir / "index.html", ec))
    o << " Per-unit cards: <a href=\"index.html\">the main report</a>.";
  o << " The numbers: <a href=\"study_runs.csv\">study_runs.csv</a>, "
       "<a href=\"study_categories.csv\">study_categories.csv</a>, "
       "<a href=\"study_iterations.csv\">study_iterations.csv</a>, "
       "<a href=\"study_rotation.csv\">study_rotation.csv</a>, "
       "<a href=\"study_transitions.csv\">study_transitions.csv</a>.</p>";
  if (!stats.notes.empty()) {
    o << "<ul id=\"notes\">";
    for (const std::string& n : stats.notes) o << "<li class=\"note\">" << HtmlEscape(n) << "</li>";
    o << "</ul>";
  }
  o << "</header>\n";
  auto missing = [&](const std::string& chart, const std::string& why) {
    o << "<p class=\"missing\" data-chart=\"" << chart << "\">" << HtmlEscape(why) << "</p>";
  };

  // 1.
  o << "<section class=\"part\"><h2>Interpretability by model and layer</h2>";
  if (bars.empty()) {
    missing("chart-categories", "No layer results (only views were read).");
  } else {
    o << "<figure id=\"chart-categories\" data-bars=\"" << bars.size()
      << "\"><figcaption>Unique detectors per category<span>paper rule, one bar per model and "
         "layer</span></figcaption>"
      << CategoriesSvg(bars, categories, models) << CategoryLegend(categories) << "</figure>";
  }
  o << "</section>\n";

  // 2.
  o << "<section class=\"part\"><h2>Over training</h2>";
  if (iter_series.empty()) {
    missing("chart-iterations",
            "No model has a training iteration ([[models]].iteration, or an nd-train record "
            "beside the model file), so there is no chart over training.");
  } else {
    LogAxis ax;
    int64_t lo = 0, hi = 1;
    bool any_positive = false;
    for (const IterSeries& s : iter_series)
      for (const IterPoint& p : s.points) {
        if (p.iteration <= 0) {
          ax.has_zero = true;
          continue;
        }
        lo = any_positive ? std::min(lo, p.iteration) : p.iteration;
        hi = std::max(hi, p.iteration);
        any_positive = true;
      }
    if (!any_positive) lo = 1;
    ax.lo_exp = std::floor(std::log10(static_cast<double>(lo)));
    ax.hi_exp = std::max(ax.lo_exp + 1, std::ceil(std::log10(static_cast<double>(hi))));
    ax.x0 = 56;
    ax.x1 = 470;
    ax.zero_gap = ax.has_zero ? 30 : 0;
    size_t points = 0;
    std::vector<std::string> names;
    for (const IterSeries& s : iter_series) {
      points += s.points.size();
      names.push_back((s.group.empty() ? "(no group)" : s.group) + " / " + s.layer);
    }
    o << "<figure id=\"chart-iterations\" data-series=\"" << iter_series.size()
      << "\" data-points=\"" << points
      << "\"><figcaption>Detectors over training iterations<span>one series per group and "
         "layer; dashed: validation accuracy (right axis)";
    if (ax.has_zero) o << "; iteration 0 (the initialisation) at the left end";
    o << "</span></figcaption><div class=\"panels\">"
      << IterationPanel(iter_series, true, ax, "unique detectors (paper rule)")
      << IterationPanel(iter_series, false, ax, "detectors") << "</div>" << SeriesLegend(names)
      << "</figure>";
  }
  o << "</section>\n";

  // 3.
  o << "<section class=\"part\"><h2>Axis alignment: random rotations</h2>";
  if (rotation.empty()) {
    missing("chart-rotation",
            "No rotation views ([[view]] basis = \"rotation\"), so there is no chart over alpha.");
  } else {
    size_t points = 0;
    std::vector<std::string> names;
    for (const RotationSeries& s : rotation) {
      points += s.points.size();
      names.push_back(s.model_name + " / " + s.layer);
    }
    o << "<figure id=\"chart-rotation\" data-series=\"" << rotation.size() << "\" data-points=\""
      << points
      << "\"><figcaption>Unique detectors against alpha<span>paper rule; points: mean over the "
         "rotation seeds, bars: min&ndash;max over them</span></figcaption>"
      << RotationSvg(rotation) << SeriesLegend(names) << "</figure>";
  }
  o << "</section>\n";

  // 4.
  o << "<section class=\"part\" id=\"transitions\"><h2>Unit by unit: before and after</h2>";
  if (pairs.empty()) {
    missing("transitions",
            "No model pairs to compare (--compare BEFORE,AFTER, or a model whose nd-train record's "
            "init_from is another configured model's file).");
  } else if (pair_layers.empty()) {
    missing("transitions", "No pair has results for a common layer (see the notes above).");
  } else {
    if (!options.link_strips)
      o << "<p class=\"missing\" data-chart=\"strips\">Example strips are left out: the main "
           "report was not written in this run (nd-report --study writes both; nd-report "
           "--study-only does not).</p>";
    for (const PairLayer& pl : pair_layers) {
      const std::string& a = models[pl.a].name;
      const std::string& b = models[pl.b].name;
      o << "<div class=\"pair\" data-a=\"" << HtmlEscape(a) << "\" data-b=\"" << HtmlEscape(b)
        << "\" data-layer=\"" << HtmlEscape(pl.layer) << "\" data-units=\"" << pl.units
        << "\" data-kept=\"" << pl.kept << "\"><h3>" << HtmlEscape(a) << " &rarr; " << HtmlEscape(b)
        << " <small>" << HtmlEscape(pl.layer) << "</small></h3>";
      o << "<p><b>" << pl.kept << "</b> of " << pl.units
        << " units keep their top label; among the " << pl.detectors_both
        << " units that are detectors in both, " << pl.kept_detectors_both << " keep it.</p>";
      std::vector<const Transition*> changes;
      for (const Transition& t : pl.transitions)
        if (t.from != t.to) changes.push_back(&t);
      if (changes.empty()) {
        o << "<p class=\"missing\" data-chart=\"changes\">No unit changed its top label.</p>";
      } else {
        if (changes.size() > 10) changes.resize(10);
        o << "<table class=\"changes\"><thead><tr><th class=\"t\">before</th><th "
             "class=\"t\">after</th><th>units</th><th>of them detectors in both</th></tr></thead>"
             "<tbody>";
        for (const Transition* t : changes)
          o << "<tr class=\"change\"><td class=\"t\">" << HtmlEscape(t->from)
            << "</td><td class=\"t\">" << HtmlEscape(t->to) << "</td><td>" << t->units
            << "</td><td>" << t->detector_units << "</td></tr>";
        o << "</tbody></table>";
      }
      if (options.link_strips && !pl.examples.empty()) {
        o << "<div class=\"examples\">";
        for (const PairLayer::Example& e : pl.examples) {
          const std::string sa = StripPath(pl.run_a->section, e.unit);
          const std::string sb = StripPath(pl.run_b->section, e.unit);
          o << "<div class=\"example\" data-unit=\"" << e.unit << "\"><div class=\"cap\">unit "
            << e.unit << ": " << HtmlEscape(e.from) << " (IoU " << FormatG(e.iou_a, 3)
            << ") &rarr; " << HtmlEscape(e.to) << " (IoU " << FormatG(e.iou_b, 3)
            << ")</div><div class=\"strips\">";
          for (int side = 0; side < 2; ++side) {
            const std::string& url = side == 0 ? sa : sb;
            const std::string& who = side == 0 ? a : b;
            o << "<span class=\"who\">" << (side == 0 ? "before: " : "after: ") << HtmlEscape(who)
              << "</span>";
            if (fs::exists(out_dir / url, ec))
              o << "<img class=\"strip\" src=\"" << HtmlEscape(url) << "\" alt=\""
                << HtmlEscape(who) << " unit " << e.unit << "\" title=\"" << HtmlEscape(who)
                << "\">";
            else
              o << "<span class=\"missing\">" << HtmlEscape(who)
                << ": no strip (no cached images)</span>";
          }
          o << "</div></div>";
        }
        o << "</div>";
      }
      o << "</div>";
    }
  }
  o << "</section>\n";

  // 5.
  o << "<section class=\"part\"><h2>Every run</h2><div class=\"scroll\"><table id=\"runs\">"
       "<thead><tr><th class=\"t\">model</th><th class=\"t\">group</th><th>seed</th>"
       "<th>iteration</th><th>train acc.</th><th>val. acc.</th><th class=\"t\">task</th>"
       "<th class=\"t\">layer / view</th><th>units</th><th>detectors</th>"
       "<th>unique (paper)</th><th>unique (top label)</th></tr></thead><tbody>";
  for (const Run& r : runs) {
    const ModelInfo& m = models[r.model];
    const LayerSummary& s = r.summary;
    std::string where = r.view.empty() ? r.layer : r.view + " (" + r.layer;
    if (!r.view.empty()) where += r.rotation() ? ", alpha " + FormatG(r.alpha, 6) + ")" : ")";
    o << "<tr class=\"run\" data-set=\"" << HtmlEscape(r.set) << "\"><td class=\"t\">"
      << HtmlEscape(m.name) << "</td><td class=\"t\">" << HtmlEscape(m.group) << "</td><td>"
      << OptInt(m.seed) << "</td><td>" << OptInt(m.iteration) << "</td><td>"
      << (m.train_accuracy < 0 ? "" : FormatG(m.train_accuracy, 4)) << "</td><td>"
      << (m.val_accuracy < 0 ? "" : FormatG(m.val_accuracy, 4)) << "</td><td class=\"t\">"
      << HtmlEscape(m.task) << "</td><td class=\"t\">" << HtmlEscape(where) << "</td><td>"
      << s.units << "</td><td>" << s.detectors << "</td><td>" << s.unique_detectors_paper
      << "</td><td>" << s.unique_detectors_top_label << "</td></tr>";
  }
  o << "</tbody></table></div></section>\n";
  o << "<footer>nd-pipeline study report, from the result files and the nd-train records; "
       "the CSV files hold every number shown.</footer></main><script>"
    << kScript << "</script></body></html>\n";

  const fs::path page = out_dir / "study.html";
  ND_RETURN_IF_ERROR(WriteFileAtomically(page.string(), o.str()));
  stats.study_path = page.string();
  LogInfo("study report: " + std::to_string(runs.size()) + " result sets, " +
          std::to_string(pairs.size()) + " pair(s) in " +
          FormatG(std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count(),
                  3) +
          " s");
  return stats;
}

}  // namespace nd
