#include "tools/report/report_html.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <sstream>

namespace nd {
namespace {

std::string Fixed(double v, int digits) {
  char buf[48];
  std::snprintf(buf, sizeof(buf), "%.*f", digits, v);
  return buf;
}

std::string Real(double v) { return FormatG(v, 6); }

std::string Int(int64_t v) { return std::to_string(v); }

std::string BaseName(const std::string& path) {
  const size_t slash = path.find_last_of('/');
  return slash == std::string::npos ? path : path.substr(slash + 1);
}

int CategoryIndex(const ReportPage& page, const std::string& name) {
  for (size_t c = 0; c < page.categories.size(); ++c)
    if (page.categories[c] == name) return static_cast<int>(c);
  return -1;
}

std::string ColourOf(const ReportPage& page, const std::string& category) {
  const int c = CategoryIndex(page, category);
  return c < 0 ? "#94a3b8" : CategoryColour(category, c);
}

// A "nice" axis maximum >= v (1, 2, 5 × 10^k), at least 1.
int NiceCeiling(int v) {
  if (v <= 1) return 1;
  int step = 1;
  while (true) {
    for (int m : {1, 2, 5}) {
      if (m * step >= v) return m * step;
    }
    step *= 10;
  }
}

constexpr char kFont[] =
    "font-family=\"-apple-system,BlinkMacSystemFont,'Segoe UI',Roboto,'Helvetica Neue',Arial,"
    "sans-serif\"";

// Horizontal bars: unique detectors (paper rule) per category.
std::string UniquePerCategorySvg(const ReportPage& page, const ReportSection& s) {
  const size_t nc = page.categories.size();
  int top = 1;
  for (int v : s.unique_per_category) top = std::max(top, v);
  top = NiceCeiling(top);
  const double left = 84, bar_w = 260, row = 26, width = left + bar_w + 48;
  const double height = 10 + row * nc + 10;
  std::ostringstream o;
  o << "<svg class=\"chart\" viewBox=\"0 0 " << SvgNumber(width) << " " << SvgNumber(height)
    << "\" width=\"" << SvgNumber(width) << "\" height=\"" << SvgNumber(height)
    << "\" role=\"img\" aria-label=\"unique detectors "
    << "per category\" " << kFont << " font-size=\"12\">";
  for (size_t c = 0; c < nc; ++c) {
    const double y = 10 + row * c;
    const int v = s.unique_per_category[c];
    const double w = bar_w * v / top;
    const std::string& name = page.categories[c];
    o << "<text x=\"" << SvgNumber(left - 8) << "\" y=\"" << SvgNumber(y + row / 2 + 4)
      << "\" text-anchor=\"end\" fill=\"#334155\">" << HtmlEscape(name) << "</text>";
    o << "<rect x=\"" << SvgNumber(left) << "\" y=\"" << SvgNumber(y + 4) << "\" width=\""
      << SvgNumber(bar_w) << "\" height=\"" << SvgNumber(row - 8)
      << "\" rx=\"3\" fill=\"#eef1f5\"/>";
    if (v > 0)
      o << "<rect x=\"" << SvgNumber(left) << "\" y=\"" << SvgNumber(y + 4) << "\" width=\""
        << SvgNumber(std::max(w, 2.0)) << "\" height=\"" << SvgNumber(row - 8)
        << "\" rx=\"3\" fill=\"" << CategoryColour(name, static_cast<int>(c)) << "\"><title>"
        << HtmlEscape(name) << ": " << v << " unique detectors</title></rect>";
    o << "<text x=\"" << SvgNumber(left + bar_w + 8) << "\" y=\"" << SvgNumber(y + row / 2 + 4)
      << "\" fill=\"#0f172a\" font-weight=\"600\">" << v << "</text>";
  }
  o << "</svg>";
  return o.str();
}

// Vertical bars: detectors per label, grouped by category (the paper's figure).
std::string DetectorsPerLabelSvg(const ReportPage& page, const ReportSection& s) {
  int top = 1;
  size_t bars = 0, groups = 0;
  for (const auto& g : s.label_detectors) {
    if (g.empty()) continue;
    ++groups;
    bars += g.size();
    for (const auto& [label, n] : g) top = std::max(top, n);
  }
  if (bars == 0) return "<p class=\"empty\">No detectors at this cutoff.</p>";
  const int axis_top = NiceCeiling(top);
  const double bar = 14, gap = 5, group_gap = 22, left = 34, plot_h = 150, pad_top = 18;
  const double label_h = 112, cat_h = 22;
  const double width = left + bars * (bar + gap) + (groups - 1) * group_gap + 16;
  const double height = pad_top + plot_h + label_h + cat_h;
  const double base = pad_top + plot_h;
  std::ostringstream o;
  o << "<svg class=\"chart\" viewBox=\"0 0 " << SvgNumber(width) << " " << SvgNumber(height)
    << "\" width=\"" << SvgNumber(width) << "\" height=\"" << SvgNumber(height)
    << "\" role=\"img\" aria-label=\"detectors per "
    << "label\" " << kFont << " font-size=\"11\">";
  // Grid lines and axis labels at 0, half, full.
  for (int k = 0; k <= 2; ++k) {
    const double v = axis_top * k / 2.0;
    const double y = base - plot_h * k / 2.0;
    o << "<line x1=\"" << SvgNumber(left) << "\" x2=\"" << SvgNumber(width - 8) << "\" y1=\""
      << SvgNumber(y) << "\" y2=\"" << SvgNumber(y) << "\" stroke=\""
      << (k == 0 ? "#94a3b8" : "#e2e8f0") << "\"/>";
    if (v == std::floor(v))
      o << "<text x=\"" << SvgNumber(left - 6) << "\" y=\"" << SvgNumber(y + 4)
        << "\" text-anchor=\"end\" fill=\"#64748b\">" << static_cast<int>(v) << "</text>";
  }
  double x = left + gap;
  for (size_t c = 0; c < s.label_detectors.size(); ++c) {
    const auto& g = s.label_detectors[c];
    if (g.empty()) continue;
    const std::string colour = CategoryColour(page.categories[c], static_cast<int>(c));
    const double group_start = x;
    for (const auto& [label, n] : g) {
      const double h = plot_h * n / axis_top;
      o << "<rect x=\"" << SvgNumber(x) << "\" y=\"" << SvgNumber(base - h) << "\" width=\""
        << SvgNumber(bar) << "\" height=\"" << SvgNumber(h) << "\" rx=\"2\" fill=\"" << colour
        << "\"><title>" << HtmlEscape(label) << " (" << HtmlEscape(page.categories[c]) << "): " << n
        << (n == 1 ? " detector" : " detectors") << "</title></rect>";
      o << "<text x=\"" << SvgNumber(x + bar / 2) << "\" y=\"" << SvgNumber(base - h - 4)
        << "\" text-anchor=\"middle\" fill=\"#334155\" font-size=\"10\">" << n << "</text>";
      o << "<text transform=\"translate(" << SvgNumber(x + bar / 2 + 4) << ","
        << SvgNumber(base + 8) << ") rotate(-60)\" text-anchor=\"end\" fill=\"#334155\">"
        << HtmlEscape(label) << "</text>";
      x += bar + gap;
    }
    const double group_end = x - gap;
    o << "<line x1=\"" << SvgNumber(group_start) << "\" x2=\"" << SvgNumber(group_end) << "\" y1=\""
      << SvgNumber(base + label_h) << "\" y2=\"" << SvgNumber(base + label_h) << "\" stroke=\""
      << colour << "\" stroke-width=\"3\"/>";
    o << "<text x=\"" << SvgNumber((group_start + group_end) / 2) << "\" y=\""
      << SvgNumber(base + label_h + 16) << "\" text-anchor=\"middle\" fill=\"" << colour
      << "\" font-weight=\"600\">" << HtmlEscape(page.categories[c]) << "</text>";
    x += group_gap;
  }
  o << "</svg>";
  return o.str();
}

// Stacked bars: unique detectors (paper rule) per category, one bar per section.
std::string ByLayerSvg(const ReportPage& page) {
  const size_t n = page.sections.size();
  int top = 1;
  size_t longest = 0;
  for (const auto& s : page.sections) {
    top = std::max(top, s.unique_paper);
    longest = std::max(longest, s.title.size());
  }
  const int axis_top = NiceCeiling(top);
  const double bar = 54, gap = 34, left = 40, plot_h = 160, pad_top = 22;
  const bool rotate = longest > 9;
  const double label_h = rotate ? std::min<double>(140, 12 + 6.5 * longest) : 26;
  const double width = std::max(320.0, left + n * (bar + gap) + 20);
  const double height = pad_top + plot_h + label_h;
  const double base = pad_top + plot_h;
  std::ostringstream o;
  o << "<svg class=\"chart\" viewBox=\"0 0 " << SvgNumber(width) << " " << SvgNumber(height)
    << "\" width=\"" << SvgNumber(width) << "\" height=\"" << SvgNumber(height)
    << "\" role=\"img\" aria-label=\"unique detectors "
    << "per category by layer\" " << kFont << " font-size=\"12\">";
  for (int k = 0; k <= 4; ++k) {
    const double v = axis_top * k / 4.0;
    const double y = base - plot_h * k / 4.0;
    o << "<line x1=\"" << SvgNumber(left) << "\" x2=\"" << SvgNumber(width - 10) << "\" y1=\""
      << SvgNumber(y) << "\" y2=\"" << SvgNumber(y) << "\" stroke=\""
      << (k == 0 ? "#94a3b8" : "#e2e8f0") << "\"/>";
    if (v == std::floor(v))
      o << "<text x=\"" << SvgNumber(left - 6) << "\" y=\"" << SvgNumber(y + 4)
        << "\" text-anchor=\"end\" fill=\"#64748b\" font-size=\"11\">" << static_cast<int>(v)
        << "</text>";
  }
  double x = left + gap / 2;
  for (const auto& s : page.sections) {
    double y = base;
    for (size_t c = 0; c < page.categories.size(); ++c) {
      const int v = c < s.unique_per_category.size() ? s.unique_per_category[c] : 0;
      if (v == 0) continue;
      const double h = plot_h * v / axis_top;
      y -= h;
      o << "<rect x=\"" << SvgNumber(x) << "\" y=\"" << SvgNumber(y) << "\" width=\""
        << SvgNumber(bar) << "\" height=\"" << SvgNumber(h) << "\" fill=\""
        << CategoryColour(page.categories[c], static_cast<int>(c))
        << "\" stroke=\"#fff\" stroke-width=\"1\"><title>" << HtmlEscape(s.title) << ", "
        << HtmlEscape(page.categories[c]) << ": " << v << " unique detectors</title></rect>";
    }
    o << "<text x=\"" << SvgNumber(x + bar / 2) << "\" y=\"" << SvgNumber(y - 6)
      << "\" text-anchor=\"middle\" fill=\"#0f172a\" font-weight=\"600\">" << s.unique_paper
      << "</text>";
    if (rotate)
      o << "<text transform=\"translate(" << SvgNumber(x + bar / 2 + 4) << ","
        << SvgNumber(base + 12) << ") rotate(-40)\" text-anchor=\"end\" fill=\"#334155\">";
    else
      o << "<text x=\"" << SvgNumber(x + bar / 2) << "\" y=\"" << SvgNumber(base + 18)
        << "\" text-anchor=\"middle\" fill=\"#334155\">";
    o << "<a href=\"#" << HtmlEscape(s.id) << "\">" << HtmlEscape(s.title) << "</a></text>";
    x += bar + gap;
  }
  o << "</svg>";
  return o.str();
}

constexpr char kCss[] = R"CSS(
:root{--bg:#f5f6f8;--fg:#0f172a;--muted:#64748b;--line:#e2e8f0;--card:#fff;--accent:#2563eb}
*{box-sizing:border-box}
html{scroll-behavior:smooth}
body{margin:0;background:var(--bg);color:var(--fg);font:14px/1.5 -apple-system,BlinkMacSystemFont,"Segoe UI",Roboto,"Helvetica Neue",Arial,sans-serif}
a{color:var(--accent);text-decoration:none}a:hover{text-decoration:underline}
code{font:12px/1.4 ui-monospace,SFMono-Regular,Menlo,Consolas,monospace;background:#eef1f5;padding:1px 5px;border-radius:4px;word-break:break-all}
.wrap{max-width:1320px;margin:0 auto;padding:0 24px}
header.top{background:#0f172a;color:#e2e8f0;padding:22px 0 18px}
header.top h1{margin:0 0 4px;font-size:24px;font-weight:650;letter-spacing:-.01em;color:#fff}
header.top code{background:#1e293b;color:#e2e8f0}
header.top .sub{margin:0;color:#cbd5e1}
.facts{display:flex;flex-wrap:wrap;gap:6px 22px;margin:12px 0 0;padding:0;font-size:13px;color:#94a3b8}
.facts b{color:#e2e8f0;font-weight:600}
nav.layers{display:flex;flex-wrap:wrap;gap:8px;margin-top:14px}
nav.layers a{background:#1e293b;color:#e2e8f0;border-radius:999px;padding:3px 12px;font-size:13px}
nav.layers a span{color:#94a3b8;margin-left:6px}
.legend{display:flex;flex-wrap:wrap;gap:6px 16px;margin:18px 0 4px;font-size:13px;color:#334155}
.legend i,.chip i{display:inline-block;width:10px;height:10px;border-radius:3px;margin-right:6px;vertical-align:-1px}
.note{color:var(--muted);font-size:13px;margin:14px 0 0;max-width:980px}
.panel{background:var(--card);border:1px solid var(--line);border-radius:12px;padding:18px 22px;margin:20px 0}
.panel h2,section.layer>h2{margin:0 0 12px;font-size:18px;font-weight:650}
.bylayer{display:flex;flex-wrap:wrap;gap:24px;align-items:flex-start}
table.nums{border-collapse:collapse;font-size:13px}
table.nums th,table.nums td{padding:4px 12px;border-bottom:1px solid var(--line);text-align:right}
table.nums th:first-child,table.nums td:first-child{text-align:left}
table.nums th{color:var(--muted);font-weight:600}
section.layer{margin:34px 0}
section.layer>h2{font-size:22px;display:flex;align-items:baseline;gap:12px}
section.layer>h2 small{font-size:13px;color:var(--muted);font-weight:400}
.stats{display:flex;flex-wrap:wrap;gap:12px;margin-bottom:16px}
.stat{background:var(--card);border:1px solid var(--line);border-radius:10px;padding:10px 16px;min-width:150px}
.stat b{display:block;font-size:22px;font-weight:650}
.stat span{color:var(--muted);font-size:12px}
.charts{display:flex;flex-wrap:wrap;gap:16px;align-items:stretch}
figure{margin:0;background:var(--card);border:1px solid var(--line);border-radius:12px;padding:14px 16px}
figure.wide{flex:1;min-width:420px;max-width:100%}
figcaption{font-weight:600;margin-bottom:8px}
figcaption span{color:var(--muted);font-weight:400;font-size:12px;margin-left:6px}
.scroll{overflow-x:auto}
svg.chart{display:block}
svg.chart a{fill:var(--accent)}
.empty{color:var(--muted)}
.controls{position:sticky;top:0;z-index:2;display:flex;flex-wrap:wrap;gap:10px 18px;align-items:center;background:rgba(245,246,248,.94);backdrop-filter:blur(4px);padding:10px 0;margin:16px 0 6px;border-bottom:1px solid var(--line);font-size:13px}
.controls select{font:inherit;padding:3px 6px;border:1px solid #cbd5e1;border-radius:6px;background:#fff}
.controls .shown{color:var(--muted);margin-left:auto}
.cards{display:flex;flex-direction:column;gap:10px}
.card{background:var(--card);border:1px solid var(--line);border-left:5px solid var(--cat);border-radius:10px;padding:10px 14px 12px;scroll-margin-top:64px}
.card.nodet{border-left-color:#cbd5e1}
.card:target,.card.hl{box-shadow:0 0 0 3px rgba(37,99,235,.35)}
.card>header{display:flex;flex-wrap:wrap;align-items:baseline;gap:4px 12px;margin-bottom:2px}
.card .unit{font-weight:650;color:var(--fg);min-width:64px}
.card .label{font-size:16px;font-weight:650}
.card.nodet .label{color:var(--muted);font-weight:500}
.chip{font-size:12px;color:#334155;background:#f1f5f9;border-radius:999px;padding:1px 9px}
.iou{font-variant-numeric:tabular-nums;font-weight:600}
.card.nodet .iou{color:var(--muted);font-weight:400}
.runners{color:var(--muted);font-size:12.5px}
.explain,.trust{color:var(--muted);font-size:12.5px}
.explain b{color:#334155;font-weight:500}
.trust .sig{color:#15803d}
.trust .nonsig{color:#b45309}
.runners b{color:#334155;font-weight:500}
.runners i{font-style:normal;color:#94a3b8}
.meta{margin-left:auto;color:var(--muted);font-size:12px;font-variant-numeric:tabular-nums}
img.strip{display:block;margin-top:8px;max-width:100%;height:auto;border-radius:4px;background:#f1f5f9}
.nostrip{color:var(--muted);font-size:13px}
footer{color:var(--muted);font-size:12px;padding:24px 0 40px}
.human .excluded{color:#b91c1c;font-weight:600}
)CSS";

constexpr char kScript[] = R"JS(
(function () {
  'use strict';
  var body = document.body;
  var eager = /[?&]eager=1(&|$)/.test(location.search);
  var imgs = Array.prototype.slice.call(document.querySelectorAll('img.strip'));
  function count() {
    var ok = 0, bad = 0;
    imgs.forEach(function (i) {
      if (i.complete && i.naturalWidth > 0) ok++;
      else if (i.getAttribute('data-failed')) bad++;
    });
    body.setAttribute('data-loaded', String(ok));
    body.setAttribute('data-failed', String(bad));
  }
  imgs.forEach(function (i) {
    i.addEventListener('load', count);
    i.addEventListener('error', function () { i.setAttribute('data-failed', '1'); count(); });
    if (eager) i.loading = 'eager';
  });
  count();
  window.addEventListener('load', count);

  var sections = Array.prototype.slice.call(document.querySelectorAll('section.layer'));
  var appliers = {};
  sections.forEach(function (sec) {
    var box = sec.querySelector('.cards');
    var cards = Array.prototype.slice.call(box.querySelectorAll('article.card'));
    var sort = sec.querySelector('select.sort');
    var cat = sec.querySelector('select.cat');
    var det = sec.querySelector('input.det');
    var shown = sec.querySelector('.shown');
    function num(c, k) { return parseFloat(c.getAttribute(k)); }
    function apply() {
      var key = sort.value;
      var sorted = cards.slice().sort(function (a, b) {
        if (key === 'unit') return num(a, 'data-unit') - num(b, 'data-unit');
        if (key === 'label') {
          var la = a.getAttribute('data-label') || '\uffff', lb = b.getAttribute('data-label') || '\uffff';
          if (la !== lb) return la < lb ? -1 : 1;
        }
        return num(b, 'data-iou') - num(a, 'data-iou') || num(a, 'data-unit') - num(b, 'data-unit');
      });
      var n = 0;
      sorted.forEach(function (c) {
        var ok = (!cat.value || c.getAttribute('data-category') === cat.value) &&
                 (!det.checked || c.getAttribute('data-detector') === '1');
        c.hidden = !ok;
        if (ok) n++;
        box.appendChild(c);
      });
      shown.textContent = 'showing ' + n + ' of ' + cards.length + ' units';
    }
    [sort, cat, det].forEach(function (el) { el.addEventListener('change', apply); });
    appliers[sec.id] = function () { cat.value = ''; det.checked = false; apply(); };
    apply();
  });

  function reveal() {
    var id = decodeURIComponent(location.hash.slice(1));
    var el = id && document.getElementById(id);
    if (!el || !el.classList.contains('card')) return;
    var sec = el.closest('section.layer');
    if (el.hidden && sec && appliers[sec.id]) appliers[sec.id]();
    document.querySelectorAll('.card.hl').forEach(function (c) { c.classList.remove('hl'); });
    el.classList.add('hl');
    el.scrollIntoView({block: 'center'});
  }
  window.addEventListener('hashchange', reveal);
  reveal();
})();
)JS";

void WriteCard(const ReportPage& page, const ReportSection& s, const UnitCard& c,
               std::ostringstream& o) {
  const std::string id = s.id + "-unit-" + Int(c.unit);
  o << "<article class=\"card" << (c.detector ? "" : " nodet") << "\" id=\"" << HtmlEscape(id)
    << "\" data-unit=\"" << c.unit << "\" data-iou=\"" << Real(c.iou) << "\" data-label=\""
    << HtmlEscape(c.label) << "\" data-category=\"" << HtmlEscape(c.category)
    << "\" data-detector=\"" << (c.detector ? 1 : 0) << "\"";
  const UnitAnalysis& a = c.analysis;
  if (!a.explanation.empty()) o << " data-explanation=\"" << HtmlEscape(a.explanation) << "\"";
  if (a.has_interval) o << " data-stability=\"" << Real(a.stability) << "\"";
  if (a.has_p) o << " data-q=\"" << Real(a.q_value) << "\"";
  o << " style=\"--cat:" << ColourOf(page, c.category) << "\">";
  o << "<header><a class=\"unit\" href=\"#" << HtmlEscape(id) << "\" title=\"unit " << c.unit
    << " (1-based; channel " << (c.unit - 1) << ")\">unit " << c.unit << "</a>";
  o << "<span class=\"label\">" << (c.label.empty() ? "&mdash;" : HtmlEscape(c.label)) << "</span>";
  if (!c.category.empty())
    o << "<span class=\"chip\"><i style=\"background:" << ColourOf(page, c.category) << "\"></i>"
      << HtmlEscape(c.category) << "</span>";
  o << "<span class=\"iou\">IoU " << Fixed(c.iou, 3) << "</span>";
  o << "<span class=\"meta\">T<sub>u</sub> = " << Real(c.threshold);
  if (!c.tiles.empty()) o << " &middot; top max " << Real(c.tiles.front().max);
  o << "</span></header>";
  if (!c.runners.empty()) {
    o << "<div class=\"runners\">next best: ";
    for (size_t i = 0; i < c.runners.size(); ++i) {
      const RunnerUp& r = c.runners[i];
      o << (i ? " &middot; " : "") << "<b>" << HtmlEscape(r.label) << "</b> <i>"
        << HtmlEscape(r.category) << "</i> " << Fixed(r.iou, 3);
    }
    o << "</div>";
  }
  if (!a.explanation.empty()) {
    o << "<div class=\"explain\">explained by <b>" << HtmlEscape(a.explanation) << "</b> IoU "
      << Fixed(a.explanation_iou, 3) << "</div>";
  }
  if (a.has_interval || a.has_p) {
    o << "<div class=\"trust\">";
    if (a.has_interval) {
      o << "95% interval " << Fixed(a.iou_low, 3) << "&ndash;" << Fixed(a.iou_high, 3)
        << " &middot; label stability " << Fixed(a.stability, 2);
    }
    if (a.has_p) {
      o << (a.has_interval ? " &middot; " : "") << "<span class=\""
        << (a.q_value < 0.05 ? "sig" : "nonsig") << "\">p " << Real(a.p_value) << ", q "
        << Real(a.q_value) << "</span>";
    }
    if (a.has_max) {
      o << " &middot; max null <span class=\"" << (a.q_max < 0.05 ? "sig" : "nonsig") << "\">p "
        << Real(a.p_max) << ", q " << Real(a.q_max) << "</span>";
    }
    o << "</div>";
  }
  if (c.strip.empty()) {
    o << "<p class=\"nostrip\">No cached activations for this unit.</p>";
  } else {
    std::string title;
    for (size_t r = 0; r < c.tiles.size(); ++r)
      title += (r ? "\n" : "") + Int(r + 1) + ". " + c.tiles[r].image + " (row " +
               Int(c.tiles[r].row) + ", max " + Real(c.tiles[r].max) + ")";
    o << "<img class=\"strip\" loading=\"lazy\" decoding=\"async\" src=\"" << HtmlEscape(c.strip)
      << "\" width=\"" << c.strip_width << "\" height=\"" << c.strip_height << "\" alt=\"top "
      << c.tiles.size() << " images of unit " << c.unit << "\" title=\"" << HtmlEscape(title)
      << "\">";
  }
  o << "</article>\n";
}

std::string OrNa(double v, int digits) { return std::isnan(v) ? "n/a" : Fixed(v, digits); }

void WriteHuman(const ReportSection& s, std::ostringstream& o) {
  const LayerHumanEval& h = s.human;
  int excluded = 0;
  for (const RaterSummary& r : h.raters) excluded += r.excluded;
  o << "<div class=\"panel human\" data-units=\"" << h.label.units << "\" data-descriptive=\""
    << h.label.positive << "\" data-kappa=\"" << Real(h.label.agreement.fleiss_kappa)
    << "\" data-alpha=\"" << Real(h.label.agreement.krippendorff_alpha) << "\" data-consistency=\""
    << Real(h.human.share) << "\"><h2>Human evaluation</h2>";
  o << "<p class=\"note\">From <code>nd-pipeline rate</code>: " << h.answers << " answers by "
    << h.raters.size() << " rater(s)";
  if (h.study_units >= 0) o << " on a study of " << h.study_units << " units";
  o << ". A unit counts as descriptive when strictly more raters said yes than no; intervals "
       "are 95% Wilson intervals; agreement is over units with two or more answers.</p>";
  o << "<table class=\"nums\"><tr><th>protocol</th><th>units rated</th><th>judged "
       "descriptive</th><th>share (95% CI)</th><th>units with 2+ raters</th><th>raters per "
       "unit</th><th>Fleiss &kappa;</th><th>Krippendorff &alpha;</th></tr>";
  auto row = [&](const char* name, const ShareSummary& x) {
    const Agreement& a = x.agreement;
    o << "<tr><td>" << name << "</td><td>" << x.units << "</td><td>" << x.positive << "</td><td>"
      << OrNa(x.share, 2)
      << (x.units ? " (" + Fixed(x.interval.low, 2) + "&ndash;" + Fixed(x.interval.high, 2) + ")"
                  : std::string())
      << "</td><td>" << a.subjects << "</td><td>";
    if (a.subjects)
      o << a.min_raters << "&ndash;" << a.max_raters << " (mean " << Fixed(a.mean_raters, 1) << ")";
    o << "</td><td>" << OrNa(a.fleiss_kappa, 3) << "</td><td>" << OrNa(a.krippendorff_alpha, 3)
      << "</td></tr>";
  };
  row("Network Dissection label (label check)", h.label);
  row("human label (human consistency)", h.human);
  o << "</table><p class=\"note\">" << h.names << " names written for " << h.units_named
    << " units. Catch trials (another category's label; expected answer no), cut-off "
    << Fixed(h.min_catch_accuracy, 2) << ": ";
  for (size_t i = 0; i < h.raters.size(); ++i) {
    const RaterSummary& r = h.raters[i];
    o << (i ? " &middot; " : "") << "<b>" << HtmlEscape(r.rater) << "</b> " << r.catch_correct
      << "/" << r.catch_trials;
    if (r.excluded) o << " <span class=\"excluded\">excluded</span>";
  }
  if (h.raters.empty()) o << "none";
  o << (excluded ? "" : " (nobody excluded)") << ".</p></div>\n";
}

void WriteSection(const ReportPage& page, const ReportSection& s, std::ostringstream& o) {
  o << "<section class=\"layer\" id=\"" << HtmlEscape(s.id) << "\" data-units=\"" << s.units
    << "\" data-detectors=\"" << s.detectors << "\" data-unique-paper=\"" << s.unique_paper
    << "\" data-unique-top-label=\"" << s.unique_top_label << "\">\n";
  o << "<h2>" << HtmlEscape(s.title) << "<small>" << s.units << " units";
  if (s.images >= 0) o << " &middot; " << s.images << " images";
  o << "</small></h2>\n";
  auto stat = [&](int64_t v, const std::string& what) {
    o << "<div class=\"stat\"><b>" << v << "</b><span>" << what << "</span></div>";
  };
  o << "<div class=\"stats\">";
  stat(s.units, "units");
  stat(s.detectors, "detectors (IoU &gt; " + Real(page.iou_threshold) + ")");
  stat(s.unique_paper, "unique detectors, paper rule");
  stat(s.unique_top_label, "unique detectors, top-label rule");
  if (s.significant_detectors >= 0)
    stat(s.significant_detectors, "significant detectors (q &lt; 0.05)");
  o << "</div>\n";
  if (s.has_human) WriteHuman(s, o);
  o << "<div class=\"charts\">";
  o << "<figure><figcaption>Unique detectors per category<span>paper rule</span></figcaption>"
    << UniquePerCategorySvg(page, s) << "</figure>";
  o << "<figure class=\"wide\"><figcaption>Detectors per label<span>grouped by category; a "
       "unit counts for its top label</span></figcaption><div class=\"scroll\">"
    << DetectorsPerLabelSvg(page, s) << "</div></figure>";
  o << "</div>\n";
  o << "<div class=\"controls\"><label>Sort <select class=\"sort\">"
       "<option value=\"iou\">IoU (high first)</option><option value=\"unit\">unit</option>"
       "<option value=\"label\">label</option></select></label>"
       "<label>Category <select class=\"cat\"><option value=\"\">all</option>";
  for (const std::string& c : page.categories)
    o << "<option value=\"" << HtmlEscape(c) << "\">" << HtmlEscape(c) << "</option>";
  o << "</select></label><label><input type=\"checkbox\" class=\"det\"> detectors only</label>"
       "<span class=\"shown\">"
    << s.cards.size() << " units</span></div>\n";
  o << "<div class=\"cards\">\n";
  for (const UnitCard& c : s.cards) WriteCard(page, s, c, o);
  o << "</div>\n</section>\n";
}

}  // namespace

std::string SvgNumber(double v) {
  char buf[32];
  std::snprintf(buf, sizeof(buf), "%.1f", v);
  std::string s = buf;
  if (s.size() > 2 && s.compare(s.size() - 2, 2, ".0") == 0) s.resize(s.size() - 2);
  return s;
}

std::string CategoryColour(const std::string& category, int index) {
  static const std::pair<const char*, const char*> kFixed[] = {
      {"object", "#2f6fde"},  {"part", "#8b5cf6"},  {"scene", "#12a37f"}, {"material", "#e08a00"},
      {"texture", "#e0475b"}, {"color", "#d946a8"}, {"colour", "#d946a8"}};
  for (const auto& [name, colour] : kFixed)
    if (category == name) return colour;
  static const char* kPalette[] = {"#0891b2", "#65a30d", "#9333ea", "#ea580c",
                                   "#0d9488", "#475569", "#be123c", "#4f46e5"};
  return kPalette[static_cast<size_t>(std::max(0, index)) % (sizeof(kPalette) / sizeof(*kPalette))];
}

std::string RenderReportHtml(const ReportPage& page) {
  size_t cards = 0, strips = 0;
  for (const auto& s : page.sections) {
    cards += s.cards.size();
    for (const auto& c : s.cards) strips += !c.strip.empty();
  }
  std::ostringstream o;
  o << "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n"
    << "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n"
    << "<title>Network Dissection &middot; " << HtmlEscape(BaseName(page.model)) << "</title>\n"
    << "<style>" << kCss << "</style>\n</head>\n";
  o << "<body data-sections=\"" << page.sections.size() << "\" data-cards=\"" << cards
    << "\" data-strips=\"" << strips << "\" data-loaded=\"0\" data-failed=\"0\">\n";
  o << "<header class=\"top\"><div class=\"wrap\">\n<h1>Network Dissection</h1>\n"
    << "<p class=\"sub\">model <code>" << HtmlEscape(page.model)
    << "</code> &middot; dataset <code>" << HtmlEscape(page.dataset) << "</code></p>\n";
  o << "<div class=\"facts\"><span>preprocessing <b>" << HtmlEscape(page.preprocess)
    << "</b></span><span>cache <b>" << HtmlEscape(page.cache_dtype)
    << "</b></span><span>union rule <b>" << HtmlEscape(page.union_rule)
    << "</b></span><span>detector: IoU &gt; <b>" << Real(page.iou_threshold)
    << "</b></span><span>top images per unit <b>" << page.top_images << "</b></span></div>\n";
  o << "<nav class=\"layers\">";
  for (const auto& s : page.sections)
    o << "<a href=\"#" << HtmlEscape(s.id) << "\">" << HtmlEscape(s.title) << "<span>"
      << s.detectors << "/" << s.units << "</span></a>";
  o << "</nav>\n</div></header>\n<main class=\"wrap\">\n";
  o << "<div class=\"legend\">";
  for (size_t c = 0; c < page.categories.size(); ++c)
    o << "<span><i style=\"background:" << CategoryColour(page.categories[c], static_cast<int>(c))
      << "\"></i>" << HtmlEscape(page.categories[c]) << "</span>";
  o << "</div>\n";
  const std::string example =
      page.sections.empty() ? std::string("layer4-unit-1") : page.sections.front().id + "-unit-1";
  o << "<p class=\"note\">Units are numbered from 1, as in <code>tally.csv</code>: unit N is "
       "channel N&minus;1 of the layer, which <code>thresholds.csv</code> and the model number "
       "from 0. Each card links to itself as <code>#&lt;layer&gt;-unit-&lt;N&gt;</code> (e.g. <a "
       "href=\"#"
    << HtmlEscape(example) << "\">#" << HtmlEscape(example)
    << "</a>). A strip shows the unit's top " << page.top_images
    << " images by maximum activation over the dataset; each is dimmed to 20% outside the "
       "unit's mask (its activation map upsampled bilinearly to the image size, &gt; "
       "T<sub>u</sub>). Hover a strip for the image names.</p>\n";
  o << "<section class=\"panel\" id=\"by-layer\"><h2>Interpretability by layer</h2>"
       "<div class=\"bylayer\"><div><div class=\"scroll\">"
    << ByLayerSvg(page) << "</div></div><table class=\"nums\"><tr><th>layer</th><th>units</th>"
    << "<th>detectors</th><th>unique (paper)</th><th>unique (top label)</th></tr>";
  for (const auto& s : page.sections)
    o << "<tr><td><a href=\"#" << HtmlEscape(s.id) << "\">" << HtmlEscape(s.title)
      << "</a></td><td>" << s.units << "</td><td>" << s.detectors << "</td><td>" << s.unique_paper
      << "</td><td>" << s.unique_top_label << "</td></tr>";
  o << "</table></div><p class=\"note\">Bars: unique detectors per category (paper rule: per "
       "category, the distinct best labels of the units whose IoU in that category exceeds the "
       "cutoff).</p></section>\n";
  for (const auto& s : page.sections) WriteSection(page, s, o);
  o << "</main>\n<footer class=\"wrap\">Written by nd-report from the dissection's result files "
       "and activation cache. Strips and their image lists are in <code>img/&lt;layer&gt;/</code> "
       "(<code>unit&lt;N&gt;.jpg</code>, <code>images.csv</code>).</footer>\n";
  o << "<script>" << kScript << "</script>\n</body>\n</html>\n";
  return o.str();
}

}  // namespace nd
