#include "common/maths/label_stats.h"

#include <algorithm>
#include <atomic>
#include <chrono>
#include <map>
#include <memory>
#include <utility>

#include "common/base/parallel.h"
#include "common/maths/bits.h"
#include "common/maths/rng.h"

namespace nd {
namespace {

using Clock = std::chrono::steady_clock;

double Seconds(Clock::time_point since) {
  return std::chrono::duration<double>(Clock::now() - since).count();
}

double Ratio(int64_t i, int64_t d) {
  return d == 0 ? 0.0 : static_cast<double>(i) / static_cast<double>(d);
}

// -1 / 0 / 1 comparing i1/d1 with i2/d2 (0 when a denominator is 0).
int CompareRatio(int64_t i1, int64_t d1, int64_t i2, int64_t d2) {
  if (d1 == 0) i1 = 0, d1 = 1;
  if (d2 == 0) i2 = 0, d2 = 1;
  const __int128 l = static_cast<__int128>(i1) * d2, r = static_cast<__int128>(i2) * d1;
  return l < r ? -1 : (l > r ? 1 : 0);
}

std::vector<uint32_t> UsedImages(const LayerTables& t) {
  std::vector<uint32_t> used;
  for (size_t i = 0; i < t.images().size(); ++i)
    if (!t.images()[i].skipped) used.push_back(static_cast<uint32_t>(i));
  return used;
}

// |mask ∩ set| for a mask stored over words [lo, hi) and a label index set.
int64_t MaskSetCount(const uint64_t* mask, uint32_t lo, uint32_t hi, const LabelIndex& idx,
                     const LabelIndex::PixelSet& set) {
  const uint32_t a = std::max(lo, set.lo), z = std::min(hi, set.hi);
  if (a >= z) return 0;
  return AndPopcount(mask + (a - lo), idx.SetWords(set) + (a - set.lo), 0, z - a);
}

bool MaskSetAny(const uint64_t* mask, uint32_t lo, uint32_t hi, const LabelIndex& idx,
                const LabelIndex::PixelSet& set) {
  const uint32_t a = std::max(lo, set.lo), z = std::min(hi, set.hi);
  if (a >= z) return false;
  return AndAny(mask + (a - lo), idx.SetWords(set) + (a - set.lo), 0, z - a);
}

}  // namespace

std::vector<int> BootstrapWeights(uint64_t seed, int b, size_t n) {
  std::vector<int> w(n, 0);
  if (n == 0) return w;
  Rng rng(seed, kBootstrapDomain, static_cast<uint64_t>(b));
  for (size_t k = 0; k < n; ++k) ++w[rng.Below(n)];
  return w;
}

std::vector<uint32_t> NullPermutation(const LayerTables& tables, uint64_t seed, int p) {
  const auto& images = tables.images();
  std::vector<uint32_t> perm(images.size());
  for (size_t i = 0; i < perm.size(); ++i) perm[i] = static_cast<uint32_t>(i);
  // Groups of equal sh×sw, in order of first appearance.
  std::vector<std::pair<std::pair<int, int>, std::vector<uint32_t>>> groups;
  for (uint32_t i : UsedImages(tables)) {
    const std::pair<int, int> geom{images[i].sh, images[i].sw};
    auto it =
        std::find_if(groups.begin(), groups.end(), [&](const auto& g) { return g.first == geom; });
    if (it == groups.end()) {
      groups.emplace_back(geom, std::vector<uint32_t>{});
      it = groups.end() - 1;
    }
    it->second.push_back(i);
  }
  Rng rng(seed, kPermutationDomain, static_cast<uint64_t>(p));
  for (auto& [geom, members] : groups) {
    std::vector<uint32_t> shuffled = members;
    rng.Shuffle(&shuffled);
    for (size_t k = 0; k < members.size(); ++k) perm[members[k]] = shuffled[k];
  }
  return perm;
}

namespace {

// How one (label, category) pair looks on every image, so that pairing a mask with another image's
// labels costs nothing on the (most) images that carry neither the label nor the category.
class LabelPairing {
 public:
  LabelPairing(const LayerTables& t, int label, int category) {
    on_.resize(t.images().size());
    for (size_t j = 0; j < t.images().size(); ++j) {
      const TableImage& im = t.images()[j];
      if (im.skipped || !im.index) continue;
      const LabelIndex& idx = *im.index;
      OnImage& o = on_[j];
      o.index = &idx;
      o.set_begin = static_cast<uint32_t>(sets_.size());
      for (const auto& pl : idx.pixel_labels())
        if (pl.label == label) sets_.push_back(pl.set);
      o.set_end = static_cast<uint32_t>(sets_.size());
      for (int sl : idx.scalar_labels()) o.scalars += sl == label;
      for (const auto& c : idx.categories()) {
        if (c.category != category) continue;
        if (t.rule() == UnionRule::kPaper || c.has_scalar) {
          o.union_kind = 1;
        } else {
          o.union_kind = 2;
          o.cat_set = c.set;
        }
      }
    }
    g_ = label >= 0 ? t.label_pixels()[label] : 0;
  }

  // (I, U + G - I) of unit u when image i's masks are paired with image perm[i]'s labels.
  std::pair<int64_t, int64_t> Counts(const LayerTables& t, int u,
                                     const std::vector<uint32_t>& perm) const {
    const UnitTable& ut = t.unit(u);
    int64_t inter = 0, uni = 0;
    for (const ActiveImage& a : ut.active) {
      const OnImage& o = on_[perm[a.image]];
      if (o.set_begin == o.set_end && o.scalars == 0 && o.union_kind == 0) continue;
      const uint64_t* mask = ut.Mask(a);
      for (uint32_t k = o.set_begin; k < o.set_end; ++k)
        inter += MaskSetCount(mask, a.lo, a.hi, *o.index, sets_[k]);
      inter += o.scalars * a.m;
      if (o.union_kind == 1 ||
          (o.union_kind == 2 &&
           MaskSetAny(mask, a.lo, a.hi, *o.index, o.index->category_sets()[o.cat_set].set)))
        uni += a.m;
    }
    return {inter, uni + g_ - inter};
  }

 private:
  struct OnImage {
    const LabelIndex* index = nullptr;
    uint32_t set_begin = 0, set_end = 0;  // into sets_: the label's sets on this image
    int32_t scalars = 0;                  // scalar occurrences of the label
    uint8_t union_kind = 0;  // 0: the image does not count for U; 1: it does; 2: if M overlaps
    int32_t cat_set = -1;    // kind 2: the category's set in index->category_sets()
  };
  int64_t g_ = 0;
  std::vector<OnImage> on_;
  std::vector<LabelIndex::PixelSet> sets_;
};

}  // namespace

std::pair<int64_t, int64_t> PairedCounts(const LayerTables& tables, int u, int label, int category,
                                         const std::vector<uint32_t>& perm) {
  return LabelPairing(tables, label, category).Counts(tables, u, perm);
}

namespace {

// Scratch of TopCounts, one per thread.
struct TopScratch {
  std::vector<int64_t> inter, uni;
  std::vector<int> touched;
  void Size(int labels, int cats) {
    inter.assign(labels, 0);
    uni.assign(cats, 0);
  }
};

// (I, D) of the best label (highest IoU, ties to the earlier category then the lower label; all
// IoUs 0 gives (0, 1)) of unit u under the pairing perm.
std::pair<int64_t, int64_t> TopCounts(const LayerTables& t, int u, const std::vector<int>& primary,
                                      const std::vector<uint32_t>& perm, TopScratch* s) {
  const UnitTable& ut = t.unit(u);
  std::fill(s->uni.begin(), s->uni.end(), 0);
  for (const ActiveImage& a : ut.active) {
    const TableImage& other = t.images()[perm[a.image]];
    if (other.skipped || !other.index) continue;
    const LabelIndex& idx = *other.index;
    const uint64_t* mask = ut.Mask(a);
    for (const auto& pl : idx.pixel_labels()) {
      const int64_t c = MaskSetCount(mask, a.lo, a.hi, idx, pl.set);
      if (c == 0) continue;
      if (s->inter[pl.label] == 0) s->touched.push_back(pl.label);
      s->inter[pl.label] += c;
    }
    for (int l : idx.scalar_labels()) {
      if (s->inter[l] == 0) s->touched.push_back(l);
      s->inter[l] += a.m;
    }
    for (const auto& c : idx.categories()) {
      if (t.rule() == UnionRule::kPaper || c.has_scalar ||
          MaskSetAny(mask, a.lo, a.hi, idx, idx.category_sets()[c.set].set))
        s->uni[c.category] += a.m;
    }
  }
  int top = -1;
  int64_t ti = 0, td = 1;
  for (int l : s->touched) {
    const int c = primary[l];
    if (c >= 0) {
      const int64_t i = s->inter[l], d = s->uni[c] + t.label_pixels()[l] - i;
      const int cmp = top < 0 ? 1 : CompareRatio(i, d, ti, td);
      if (cmp > 0 || (cmp == 0 && (c < primary[top] || (c == primary[top] && l < top))))
        top = l, ti = i, td = d;
    }
  }
  for (int l : s->touched) s->inter[l] = 0;
  s->touched.clear();
  if (top < 0) return {0, 1};
  return {ti, td};
}

}  // namespace

std::pair<int64_t, int64_t> PairedTopCounts(const LayerTables& tables, int u,
                                            const std::vector<int>& primary,
                                            const std::vector<uint32_t>& perm) {
  TopScratch s;
  s.Size(tables.num_labels(), tables.num_categories());
  return TopCounts(tables, u, primary, perm, &s);
}

std::vector<double> BenjaminiHochberg(const std::vector<double>& p) {
  const size_t m = p.size();
  std::vector<size_t> order(m);
  for (size_t i = 0; i < m; ++i) order[i] = i;
  std::stable_sort(order.begin(), order.end(), [&](size_t a, size_t b) { return p[a] < p[b]; });
  std::vector<double> q(m, 1.0);
  double running = 1.0;
  for (size_t r = m; r-- > 0;) {
    const double v = p[order[r]] * static_cast<double>(m) / static_cast<double>(r + 1);
    running = std::min(running, v);
    q[order[r]] = std::min(1.0, running);
  }
  return q;
}

double LinearQuantile(const std::vector<double>& sorted, double q) {
  const double pos = (static_cast<double>(sorted.size()) - 1) * q;
  const size_t lo = static_cast<size_t>(pos);
  const size_t hi = std::min(lo + 1, sorted.size() - 1);
  const double frac = pos - static_cast<double>(lo);
  return sorted[lo] + (sorted[hi] - sorted[lo]) * frac;
}

// What the bootstrap and the permutations share: the inputs and their sizes.
struct StatsInputs {
  StatsInputs(const LayerTables& t, const LayerResults& r, const StatsOptions& o)
      : tables(t),
        results(r),
        options(o),
        units(t.units()),
        num_labels(t.num_labels()),
        num_cats(t.num_categories()),
        threads(WorkerCount(o.workers)),
        primary(r.primary_category) {}
  const LayerTables& tables;
  const LayerResults& results;
  const StatsOptions& options;
  const int units, num_labels, num_cats, threads;
  const std::vector<int>& primary;
};

// The bootstrap over images (SPEC.md): per unit, the IoU interval of its label and how often the
// resample's top label is the unit's label (stability).
Status Bootstrap(const StatsInputs& in, const std::vector<uint32_t>& used, int fallback,
                 LabelStatsReport* report) {
  const auto& [tables, results, options, units, num_labels, num_cats, threads, primary] = in;
  auto t0 = Clock::now();
  const int B = options.bootstrap;
  if (B > 0 && !used.empty()) {
    std::vector<double> iou_b(static_cast<size_t>(units) * B, 0.0);
    std::vector<char> same(static_cast<size_t>(units) * B, 0);
    std::atomic<int> next{0};
    ND_RETURN_IF_ERROR(RunOnThreads(
        std::min(threads, B),
        [&](int) {
          std::vector<int64_t> w(tables.images().size(), 0), g(num_labels), inter(num_labels, 0);
          std::vector<int64_t> uni(num_cats);
          std::vector<int> touched;
          for (int b; (b = next.fetch_add(1)) < B;) {
            const std::vector<int> wu = BootstrapWeights(options.seed, b, used.size());
            for (size_t k = 0; k < used.size(); ++k) w[used[k]] = wu[k];
            std::fill(g.begin(), g.end(), 0);
            for (uint32_t i : used) {
              if (w[i] == 0) continue;
              for (const auto& [l, c] : tables.images()[i].g) g[l] += w[i] * c;
            }
            for (int u = 0; u < units; ++u) {
              const int lstar = report->units[u].label;
              const int cstar = results.unit[u].category;
              if (lstar < 0 || cstar < 0) continue;
              const UnitTable& ut = tables.unit(u);
              std::fill(uni.begin(), uni.end(), 0);
              for (const ActiveImage& a : ut.active) {
                const int64_t wi = w[a.image];
                if (wi == 0) continue;
                for (size_t k = a.count_begin; k < a.count_end; ++k) {
                  const auto& [l, c] = ut.counts[k];
                  if (inter[l] == 0) touched.push_back(l);
                  inter[l] += wi * c;
                }
                for (uint64_t bits = a.union_categories; bits != 0; bits &= bits - 1)
                  uni[__builtin_ctzll(bits)] += wi * a.m;
              }
              const int64_t i_star = inter[lstar];
              iou_b[static_cast<size_t>(u) * B + b] = Ratio(i_star, uni[cstar] + g[lstar] - i_star);
              // The top label of the resample (the dissection's rule).
              int top = -1;
              int64_t ti = 0, td = 1;
              for (int l : touched) {
                const int c = primary[l];
                if (c < 0) continue;
                const int64_t i = inter[l], d = uni[c] + g[l] - i;
                if (top < 0) {
                  top = l, ti = i, td = d;
                  continue;
                }
                const int cmp = CompareRatio(i, d, ti, td);
                if (cmp > 0 || (cmp == 0 && (c < primary[top] || (c == primary[top] && l < top))))
                  top = l, ti = i, td = d;
              }
              if (top < 0 || CompareRatio(ti, td, 0, 1) == 0) top = fallback;
              same[static_cast<size_t>(u) * B + b] = top == lstar;
              for (int l : touched) inter[l] = 0;
              touched.clear();
            }
            for (uint32_t i : used) w[i] = 0;
          }
        },
        "analysis"));
    for (int u = 0; u < units; ++u) {
      UnitStats& s = report->units[u];
      if (s.label < 0) continue;
      std::vector<double> v(iou_b.begin() + static_cast<size_t>(u) * B,
                            iou_b.begin() + static_cast<size_t>(u + 1) * B);
      std::sort(v.begin(), v.end());
      s.iou_low = LinearQuantile(v, 0.025);
      s.iou_high = LinearQuantile(v, 0.975);
      int64_t n = 0;
      for (int b = 0; b < B; ++b) n += same[static_cast<size_t>(u) * B + b];
      s.stability = static_cast<double>(n) / B;
    }
  }
  report->bootstrap_seconds = Seconds(t0);
  return Status::Ok();
}

// The permutation null (SPEC.md): p- and q-values per unit, and with max_null those of the best
// label of each permutation.
Status Permute(const StatsInputs& in, const std::vector<int64_t>& obs_i,
               const std::vector<int64_t>& obs_d, LabelStatsReport* report) {
  const auto& [tables, results, options, units, num_labels, num_cats, threads, primary] = in;
  auto t0 = Clock::now();
  const int P = options.permutations;
  if (P > 0) {
    const int pthreads = std::min(threads, P);
    std::vector<std::vector<int64_t>> at_least(pthreads, std::vector<int64_t>(units, 0));
    std::vector<double> null_iou(static_cast<size_t>(units) * P, 0.0);  // summed in p order
    // One pairing table per distinct (label, category) of the units.
    std::map<std::pair<int, int>, size_t> pairing_of;
    std::vector<std::unique_ptr<LabelPairing>> pairings;
    std::vector<int> unit_pairing(units, -1);
    for (int u = 0; u < units; ++u) {
      if (report->units[u].label < 0) continue;
      const std::pair<int, int> key{report->units[u].label, results.unit[u].category};
      auto [it, fresh] = pairing_of.emplace(key, pairings.size());
      if (fresh) pairings.push_back(std::make_unique<LabelPairing>(tables, key.first, key.second));
      unit_pairing[u] = static_cast<int>(it->second);
    }
    std::vector<std::vector<int64_t>> max_at_least(pthreads, std::vector<int64_t>(units, 0));
    std::atomic<int> next{0};
    ND_RETURN_IF_ERROR(RunOnThreads(
        pthreads,
        [&](int t) {
          TopScratch scratch;
          if (report->max_null) scratch.Size(num_labels, num_cats);
          for (int p; (p = next.fetch_add(1)) < P;) {
            const std::vector<uint32_t> perm = NullPermutation(tables, options.seed, p);
            for (int u = 0; u < units; ++u) {
              if (unit_pairing[u] < 0) continue;
              if (report->max_null) {
                const auto [ti, td] = TopCounts(tables, u, primary, perm, &scratch);
                if (CompareRatio(ti, td, obs_i[u], obs_d[u]) >= 0) ++max_at_least[t][u];
              }
              const auto [i, d] = pairings[unit_pairing[u]]->Counts(tables, u, perm);
              if (CompareRatio(i, d, obs_i[u], obs_d[u]) >= 0) ++at_least[t][u];
              null_iou[static_cast<size_t>(u) * P + p] = Ratio(i, d);
            }
          }
        },
        "analysis"));
    std::vector<double> p(units, 1.0);
    for (int u = 0; u < units; ++u) {
      UnitStats& s = report->units[u];
      for (int t = 0; t < pthreads; ++t) s.null_at_least += at_least[t][u];
      for (int k = 0; k < P; ++k) s.null_mean += null_iou[static_cast<size_t>(u) * P + k];
      s.null_mean /= P;
      s.p_value = s.label < 0 ? 1.0 : (1.0 + static_cast<double>(s.null_at_least)) / (1.0 + P);
      p[u] = s.p_value;
    }
    if (report->max_null) {
      std::vector<double> pm(units, 1.0);
      for (int u = 0; u < units; ++u) {
        int64_t n = 0;
        for (int t = 0; t < pthreads; ++t) n += max_at_least[t][u];
        UnitStats& s = report->units[u];
        s.p_max = s.label < 0 ? 1.0 : (1.0 + static_cast<double>(n)) / (1.0 + P);
        pm[u] = s.p_max;
      }
      const std::vector<double> qm = BenjaminiHochberg(pm);
      for (int u = 0; u < units; ++u) {
        report->units[u].q_max = qm[u];
        if (qm[u] < options.q_cutoff && results.unit[u].detector)
          ++report->significant_detectors_max;
      }
    }
    const std::vector<double> q = BenjaminiHochberg(p);
    for (int u = 0; u < units; ++u) {
      report->units[u].q_value = q[u];
      if (q[u] < options.q_cutoff) {
        ++report->significant_units;
        if (results.unit[u].detector) ++report->significant_detectors;
      }
    }
  }
  report->permutation_seconds = Seconds(t0);
  return Status::Ok();
}

StatusOr<LabelStatsReport> ComputeLabelStats(const LayerTables& tables, const LayerResults& results,
                                             const StatsOptions& options) {
  if (options.bootstrap < 0 || options.permutations < 0)
    return InvalidArgument("stats: bootstrap and permutations must be >= 0");
  if (options.workers < 0) return InvalidArgument("stats: workers < 0");
  if (results.units != tables.units() || results.num_labels != tables.num_labels() ||
      results.num_categories != tables.num_categories())
    return InvalidArgument("stats: results and tables disagree on units, labels or categories");
  const StatsInputs in(tables, results, options);
  const int units = in.units, num_labels = in.num_labels, num_cats = in.num_cats;
  const std::vector<uint32_t> used = UsedImages(tables);
  const auto& primary = in.primary;

  LabelStatsReport report;
  report.bootstrap = options.bootstrap;
  report.permutations = options.permutations;
  report.max_null = options.max_null && options.permutations > 0;
  report.units.resize(units);
  std::vector<int64_t> obs_i(units, 0), obs_d(units, 0);
  for (int u = 0; u < units; ++u) {
    UnitStats& s = report.units[u];
    s.label = results.unit[u].label;
    s.iou = results.unit[u].iou;
    const int c = results.unit[u].category;
    if (s.label < 0 || c < 0) continue;
    obs_i[u] = results.intersection[static_cast<size_t>(u) * num_labels + s.label];
    obs_d[u] = results.union_area[static_cast<size_t>(u) * num_cats + c] +
               results.label_pixels[s.label] - obs_i[u];
  }
  // The label the dissection's rule picks when every IoU is 0: the lowest label of the first
  // category that has labels.
  int fallback = -1;
  for (int c = 0; c < num_cats && fallback < 0; ++c)
    for (int l = 1; l < num_labels; ++l)
      if (primary[l] == c) {
        fallback = l;
        break;
      }

  ND_RETURN_IF_ERROR(Bootstrap(in, used, fallback, &report));
  ND_RETURN_IF_ERROR(Permute(in, obs_i, obs_d, &report));

  return report;
}

}  // namespace nd
