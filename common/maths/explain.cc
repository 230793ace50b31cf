#include "common/maths/explain.h"

#include <algorithm>
#include <atomic>
#include <chrono>
#include <map>
#include <optional>

#include "common/base/parallel.h"
#include "common/maths/bits.h"

namespace nd {
namespace {

using Clock = std::chrono::steady_clock;

double Seconds(Clock::time_point since) {
  return std::chrono::duration<double>(Clock::now() - since).count();
}

// A scored formula of a beam.
struct BeamEntry {
  Formula formula;
  std::string text;
  int64_t inter = 0;  // Σ |M ∩ F|
  int64_t uni = 0;    // Σ |M ∪ F|
  int64_t size = 0;   // Σ |F|
};

// A candidate: `parent` extended by (op, label), or the single label when parent is null.
struct Candidate {
  const BeamEntry* parent = nullptr;
  FormulaOp op = FormulaOp::kOr;
  int label = 0;
  int64_t inter = 0, uni = 0, size = 0;
  int leaves = 1;
  mutable std::optional<std::string> text;  // built on demand (ties only)
};

// -1 when IoU a < IoU b, 0 when equal, 1 when greater; IoU = inter/uni, 0 when uni == 0.
int CompareIou(int64_t ai, int64_t au, int64_t bi, int64_t bu) {
  if (au == 0) ai = 0, au = 1;
  if (bu == 0) bi = 0, bu = 1;
  const __int128 l = static_cast<__int128>(ai) * bu, r = static_cast<__int128>(bi) * au;
  return l < r ? -1 : (l > r ? 1 : 0);
}

class Ranker {
 public:
  explicit Ranker(const std::vector<std::string>& names) : names_(names) {}

  const std::string& Text(const Candidate& c) const {
    if (!c.text) {
      if (c.parent == nullptr) {
        c.text = names_[c.label];
      } else {
        c.text = "(" + c.parent->text + FormulaOpText(c.op) + names_[c.label] + ")";
      }
    }
    return *c.text;
  }

  // Negative when `c` ranks before `e`, 0 when it is the same formula, positive after.
  int Compare(const Candidate& c, const BeamEntry& e) const {
    const int iou = CompareIou(c.inter, c.uni, e.inter, e.uni);
    if (iou != 0) return -iou;
    if (c.leaves != e.formula.leaves()) return c.leaves < e.formula.leaves() ? -1 : 1;
    const int t = Text(c).compare(e.text);
    if (t != 0) return t < 0 ? -1 : 1;
    const Formula f = Build(c);
    if (f.labels != e.formula.labels) return f.labels < e.formula.labels ? -1 : 1;
    if (f.ops != e.formula.ops) return f.ops < e.formula.ops ? -1 : 1;
    return 0;
  }

  Formula Build(const Candidate& c) const {
    Formula f;
    if (c.parent != nullptr) {
      f = c.parent->formula;
      f.ops.push_back(c.op);
    }
    f.labels.push_back(c.label);
    return f;
  }

  // Offers `c` to `beam` (sorted best first, at most k entries).
  void Offer(const Candidate& c, size_t k, std::vector<BeamEntry>* beam) const {
    if (beam->size() == k && Compare(c, beam->back()) >= 0) return;
    size_t at = beam->size();
    for (size_t i = 0; i < beam->size(); ++i) {
      const int cmp = Compare(c, (*beam)[i]);
      if (cmp == 0) return;  // already there
      if (cmp < 0) {
        at = i;
        break;
      }
    }
    BeamEntry e;
    e.formula = Build(c);
    e.text = Text(c);
    e.inter = c.inter;
    e.uni = c.uni;
    e.size = c.size;
    beam->insert(beam->begin() + at, std::move(e));
    if (beam->size() > k) beam->pop_back();
  }

 private:
  const std::vector<std::string>& names_;
};

// Writes the words [lo, hi) of label `label`'s mask on `im` into out[0, hi - lo).
void LeafWords(const TableImage& im, int label, uint32_t lo, uint32_t hi, uint64_t* out) {
  const uint32_t n = hi - lo;
  if (im.HasScalar(label)) {
    std::fill(out, out + n, ~uint64_t{0});
    const int64_t pixels = im.pixels();
    const uint32_t last = static_cast<uint32_t>((pixels - 1) >> 6);
    if (last >= lo && last < hi && (pixels & 63) != 0)
      out[last - lo] = ~uint64_t{0} >> (64 - (pixels & 63));
    return;
  }
  std::fill(out, out + n, 0);
  const LabelBits* b = im.FindMerged(label);
  if (b == nullptr) return;
  const uint32_t a = std::max(lo, b->lo), z = std::min(hi, b->hi);
  for (uint32_t w = a; w < z; ++w) out[w - lo] = b->words[w - b->lo];
}

// Evaluates `f` on image `im` over words [lo, hi) into out[0, hi - lo); `leaf` is scratch.
void EvalFormula(const TableImage& im, const Formula& f, uint32_t lo, uint32_t hi, uint64_t* out,
                 std::vector<uint64_t>* leaf) {
  const uint32_t n = hi - lo;
  LeafWords(im, f.labels[0], lo, hi, out);
  leaf->resize(n);
  for (size_t k = 0; k < f.ops.size(); ++k) {
    LeafWords(im, f.labels[k + 1], lo, hi, leaf->data());
    const uint64_t* x = leaf->data();
    switch (f.ops[k]) {
      case FormulaOp::kOr:
        for (uint32_t i = 0; i < n; ++i) out[i] |= x[i];
        break;
      case FormulaOp::kAnd:
        for (uint32_t i = 0; i < n; ++i) out[i] &= x[i];
        break;
      case FormulaOp::kAndNot:
        for (uint32_t i = 0; i < n; ++i) out[i] &= ~x[i];
        break;
    }
  }
}

// Adds |S ∩ L| for every label L of `im` to hist[L], where S is the pixel set given by words
// [lo, hi) in `s` with |S| = s_count; returns nothing. Scalars add s_count.
void AddLabelHistogram(const TableImage& im, const uint64_t* s, uint32_t lo, uint32_t hi,
                       int64_t s_count, int64_t* hist) {
  for (const LabelBits& b : im.merged) {
    const uint32_t a = std::max(lo, b.lo), z = std::min(hi, b.hi);
    if (a >= z) continue;
    hist[b.label] += AndPopcount(s + (a - lo), b.words + (a - b.lo), 0, z - a);
  }
  for (int l : im.scalars) hist[l] += s_count;
}

// Images where `f` can be non-empty: the leaves' postings combined as the operators say.
std::vector<uint32_t> Support(const LayerTables& t, const Formula& f) {
  std::vector<uint32_t> s = t.postings()[f.labels[0]], tmp;
  for (size_t k = 0; k < f.ops.size(); ++k) {
    const auto& p = t.postings()[f.labels[k + 1]];
    tmp.clear();
    if (f.ops[k] == FormulaOp::kOr) {
      std::set_union(s.begin(), s.end(), p.begin(), p.end(), std::back_inserter(tmp));
      s.swap(tmp);
    } else if (f.ops[k] == FormulaOp::kAnd) {
      std::set_intersection(s.begin(), s.end(), p.begin(), p.end(), std::back_inserter(tmp));
      s.swap(tmp);
    }
  }
  return s;
}

}  // namespace

const char* FormulaOpText(FormulaOp op) {
  switch (op) {
    case FormulaOp::kOr:
      return " OR ";
    case FormulaOp::kAnd:
      return " AND ";
    case FormulaOp::kAndNot:
      return " AND NOT ";
  }
  return " ? ";
}

std::string FormulaText(const Formula& f, const std::vector<std::string>& names) {
  if (f.labels.empty()) return "";
  std::string s = names[f.labels[0]];
  for (size_t k = 0; k < f.ops.size(); ++k)
    s = "(" + s + FormulaOpText(f.ops[k]) + names[f.labels[k + 1]] + ")";
  return s;
}

// Scratch buffers of ExtendBeam, one set per worker thread.
struct ExtendScratch {
  std::vector<uint64_t> buf, leaf;
  std::vector<int64_t> mfl;  // |M ∩ F ∩ L| per label; sized to the label slots
};

using FormulaIndex = std::map<std::pair<std::vector<int>, std::vector<FormulaOp>>, size_t>;

// One round of the beam search for one unit: every formula of *beam extended by every label with
// OR, AND and AND NOT, scored exactly from the counts, the best `k` kept. `ml` is |M ∩ L| per
// label; fl[index[F]] is |F ∩ L| per label. Returns the number of candidates scored.
int64_t ExtendBeam(const LayerTables& tables, const UnitTable& ut, const std::vector<int64_t>& ml,
                   const std::vector<std::vector<int64_t>>& fl, const FormulaIndex& index,
                   const std::vector<int>& labels, const std::vector<int64_t>& label_size,
                   const Ranker& ranker, size_t k, std::vector<BeamEntry>* beam,
                   ExtendScratch* scratch) {
  std::vector<uint64_t>& buf = scratch->buf;
  std::vector<uint64_t>& leaf = scratch->leaf;
  std::vector<int64_t>& mfl = scratch->mfl;
  const std::vector<BeamEntry> old = *beam;  // stable parents for the candidates
  std::vector<BeamEntry> next_beam = old;
  int64_t n = 0;
  for (const BeamEntry& e : old) {
    std::fill(mfl.begin(), mfl.end(), 0);
    for (const ActiveImage& a : ut.active) {
      const TableImage& im = tables.images()[a.image];
      const uint32_t nw = a.hi - a.lo;
      buf.resize(nw);
      EvalFormula(im, e.formula, a.lo, a.hi, buf.data(), &leaf);
      const uint64_t* m = ut.Mask(a);
      int64_t count = 0;
      for (uint32_t w = 0; w < nw; ++w) {
        buf[w] &= m[w];
        count += Popcount64(buf[w]);
      }
      if (count > 0) AddLabelHistogram(im, buf.data(), a.lo, a.hi, count, mfl.data());
    }
    const std::vector<int64_t>& f_l = fl[index.at(std::make_pair(e.formula.labels, e.formula.ops))];
    for (int l : labels) {
      if (std::find(e.formula.labels.begin(), e.formula.labels.end(), l) != e.formula.labels.end())
        continue;
      for (FormulaOp op : {FormulaOp::kOr, FormulaOp::kAnd, FormulaOp::kAndNot}) {
        Candidate c;
        c.parent = &e;
        c.op = op;
        c.label = l;
        c.leaves = e.formula.leaves() + 1;
        switch (op) {
          case FormulaOp::kOr:
            c.inter = e.inter + ml[l] - mfl[l];
            c.size = e.size + label_size[l] - f_l[l];
            break;
          case FormulaOp::kAnd:
            c.inter = mfl[l];
            c.size = f_l[l];
            break;
          case FormulaOp::kAndNot:
            c.inter = e.inter - mfl[l];
            c.size = e.size - f_l[l];
            break;
        }
        c.uni = ut.total_m + c.size - c.inter;
        ranker.Offer(c, k, &next_beam);
        ++n;
      }
    }
  }
  *beam = std::move(next_beam);
  return n;
}

// The report's formulas (the first of each beam) and primitives (the best single label, from ml
// without the beam).
void FillExplanations(const LayerTables& tables, const std::vector<std::vector<BeamEntry>>& beams,
                      const std::vector<std::vector<int64_t>>& ml, const std::vector<int>& labels,
                      const std::vector<int64_t>& label_size, const Ranker& ranker,
                      ExplainReport* report) {
  const int units = tables.units();
  for (int u = 0; u < units; ++u) {
    UnitExplanation& x = report->units[u];
    const auto& beam = beams[u];
    if (beam.empty()) continue;
    x.formula = beam[0].formula;
    x.text = beam[0].text;
    x.intersection = beam[0].inter;
    x.union_area = beam[0].uni;
    x.iou = x.union_area == 0
                ? 0.0
                : static_cast<double>(x.intersection) / static_cast<double>(x.union_area);
  }
  // Primitives: the best single label (round 1's first), recomputed from ml without the beam.
  for (int u = 0; u < units; ++u) {
    std::vector<BeamEntry> best;
    for (int l : labels) {
      Candidate c;
      c.label = l;
      c.inter = ml[u][l];
      c.size = label_size[l];
      c.uni = tables.unit(u).total_m + c.size - c.inter;
      ranker.Offer(c, 1, &best);
    }
    if (best.empty()) continue;
    UnitExplanation& x = report->units[u];
    x.primitive = best[0].formula.labels[0];
    x.primitive_text = best[0].text;
    x.primitive_intersection = best[0].inter;
    x.primitive_union = best[0].uni;
    x.primitive_iou = x.primitive_union == 0 ? 0.0
                                             : static_cast<double>(x.primitive_intersection) /
                                                   static_cast<double>(x.primitive_union);
  }
}

StatusOr<ExplainReport> ExplainUnits(const LayerTables& tables,
                                     const std::vector<std::string>& names,
                                     const ExplainOptions& options) {
  if (options.length < 1) return InvalidArgument("explain: length must be >= 1");
  if (options.beam < 1) return InvalidArgument("explain: beam must be >= 1");
  if (options.workers < 0) return InvalidArgument("explain: workers < 0");
  if (static_cast<int>(names.size()) < tables.num_labels())
    return InvalidArgument("explain: " + std::to_string(names.size()) + " label names for " +
                           std::to_string(tables.num_labels()) + " label slots");
  const int units = tables.units();
  const int num_labels = tables.num_labels();
  const size_t k = static_cast<size_t>(options.beam);
  const std::vector<int>& labels = tables.occurring_labels();
  const std::vector<int64_t>& label_size = tables.merged_label_pixels();
  const int threads = std::min(WorkerCount(options.workers), std::max(1, units));
  const Ranker ranker(names);

  ExplainReport report;
  report.units.resize(units);
  std::vector<std::vector<BeamEntry>> beams(units);
  std::vector<std::vector<int64_t>> ml(units);  // |M ∩ L| per unit and label
  std::atomic<int64_t> scored{0};

  // Round 1.
  auto t0 = Clock::now();
  ND_RETURN_IF_ERROR(RunOnThreads(
      threads,
      [&](int t) {
        for (int u = t; u < units; u += threads) {
          const UnitTable& ut = tables.unit(u);
          std::vector<int64_t>& hist = ml[u];
          hist.assign(num_labels, 0);
          for (const ActiveImage& a : ut.active)
            AddLabelHistogram(tables.images()[a.image], ut.Mask(a), a.lo, a.hi, a.m, hist.data());
          for (int l : labels) {
            Candidate c;
            c.label = l;
            c.inter = hist[l];
            c.size = label_size[l];
            c.uni = ut.total_m + c.size - c.inter;
            ranker.Offer(c, k, &beams[u]);
          }
          scored += static_cast<int64_t>(labels.size());
        }
      },
      "analysis"));
  report.unit_seconds += Seconds(t0);

  for (int round = 2; round <= options.length && !labels.empty(); ++round) {
    // The distinct beam formulas of all units, and their |F ∩ L| histograms.
    t0 = Clock::now();
    FormulaIndex index;
    std::vector<const Formula*> formulas;
    for (const auto& beam : beams)
      for (const BeamEntry& e : beam)
        if (index.emplace(std::make_pair(e.formula.labels, e.formula.ops), formulas.size()).second)
          formulas.push_back(&e.formula);
    std::vector<std::vector<int64_t>> fl(formulas.size());
    std::atomic<size_t> next{0};
    ND_RETURN_IF_ERROR(RunOnThreads(
        threads,
        [&](int) {
          std::vector<uint64_t> buf, leaf;
          for (size_t f; (f = next.fetch_add(1)) < formulas.size();) {
            std::vector<int64_t>& hist = fl[f];
            hist.assign(num_labels, 0);
            for (uint32_t i : Support(tables, *formulas[f])) {
              const TableImage& im = tables.images()[i];
              const uint32_t nw = static_cast<uint32_t>(im.num_words);
              buf.resize(nw);
              EvalFormula(im, *formulas[f], 0, nw, buf.data(), &leaf);
              int64_t count = 0;
              for (uint64_t w : buf) count += Popcount64(w);
              if (count > 0) AddLabelHistogram(im, buf.data(), 0, nw, count, hist.data());
            }
          }
        },
        "analysis"));
    report.beam_formulas_counted += static_cast<int64_t>(formulas.size());
    report.formula_seconds += Seconds(t0);

    // Every unit extends its beam.
    t0 = Clock::now();
    ND_RETURN_IF_ERROR(RunOnThreads(
        threads,
        [&](int t) {
          ExtendScratch scratch;
          scratch.mfl.resize(num_labels);
          for (int u = t; u < units; u += threads) {
            scored += ExtendBeam(tables, tables.unit(u), ml[u], fl, index, labels, label_size,
                                 ranker, k, &beams[u], &scratch);
          }
        },
        "analysis"));
    report.unit_seconds += Seconds(t0);
  }

  FillExplanations(tables, beams, ml, labels, label_size, ranker, &report);
  report.candidates_scored = scored.load();
  return report;
}

}  // namespace nd
