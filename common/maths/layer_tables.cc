#include "common/maths/layer_tables.h"

#include <algorithm>
#include <atomic>
#include <cmath>
#include <exception>
#include <thread>

#include "common/base/parallel.h"
#include "common/maths/bits.h"
#include "common/maths/unit_mask.h"

namespace nd {
namespace {

// Sorts (label, value) pairs by label and adds the values of equal labels.
void SortAndMerge(std::vector<std::pair<int, int64_t>>* v) {
  std::sort(v->begin(), v->end());
  size_t out = 0;
  for (size_t k = 0; k < v->size(); ++k) {
    if (out > 0 && (*v)[out - 1].first == (*v)[k].first) {
      (*v)[out - 1].second += (*v)[k].second;
    } else {
      (*v)[out++] = (*v)[k];
    }
  }
  v->resize(out);
}

// Fills everything of `im` that depends on the labels only.
void FillImageLabels(std::shared_ptr<const LabelIndex> index, TableImage* im) {
  const LabelIndex& idx = *index;
  im->sh = idx.sh();
  im->sw = idx.sw();
  im->num_words = idx.num_words();
  const int64_t pixels = idx.pixels();
  for (int l : idx.scalar_labels()) im->scalars.push_back(l);
  std::sort(im->scalars.begin(), im->scalars.end());
  im->scalars.erase(std::unique(im->scalars.begin(), im->scalars.end()), im->scalars.end());

  for (const auto& pl : idx.pixel_labels()) im->g.emplace_back(pl.label, pl.set.count);
  for (int l : idx.scalar_labels()) im->g.emplace_back(l, pixels);
  SortAndMerge(&im->g);

  // Merged sets: labels by number, each the OR of its layers' sets.
  std::vector<std::pair<int, int>> order;  // (label, pixel_labels index)
  const auto& pls = idx.pixel_labels();
  for (size_t k = 0; k < pls.size(); ++k) order.emplace_back(pls[k].label, static_cast<int>(k));
  std::sort(order.begin(), order.end());
  std::vector<size_t> own_offset;  // per merged entry: offset in own, or SIZE_MAX
  for (size_t a = 0; a < order.size();) {
    size_t b = a + 1;
    while (b < order.size() && order[b].first == order[a].first) ++b;
    const int label = order[a].first;
    if (!std::binary_search(im->scalars.begin(), im->scalars.end(), label)) {
      LabelBits bits;
      bits.label = label;
      if (b - a == 1) {
        const auto& set = pls[order[a].second].set;
        bits.lo = set.lo;
        bits.hi = set.hi;
        bits.count = set.count;
        bits.words = idx.SetWords(set);
        own_offset.push_back(SIZE_MAX);
      } else {
        uint32_t lo = UINT32_MAX, hi = 0;
        for (size_t k = a; k < b; ++k) {
          lo = std::min(lo, pls[order[k].second].set.lo);
          hi = std::max(hi, pls[order[k].second].set.hi);
        }
        const size_t off = im->own.size();
        im->own.resize(off + (hi - lo), 0);
        for (size_t k = a; k < b; ++k) {
          const auto& set = pls[order[k].second].set;
          const uint64_t* src = idx.SetWords(set);
          for (uint32_t w = set.lo; w < set.hi; ++w) im->own[off + (w - lo)] |= src[w - set.lo];
        }
        int64_t count = 0;
        for (uint32_t w = lo; w < hi; ++w) count += Popcount64(im->own[off + (w - lo)]);
        bits.lo = lo;
        bits.hi = hi;
        bits.count = count;
        own_offset.push_back(off);
      }
      im->merged.push_back(bits);
    }
    a = b;
  }
  for (size_t k = 0; k < im->merged.size(); ++k) {
    if (own_offset[k] != SIZE_MAX) im->merged[k].words = im->own.data() + own_offset[k];
  }
  im->index = std::move(index);
}

}  // namespace

const LabelBits* TableImage::FindMerged(int label) const {
  auto it = std::lower_bound(merged.begin(), merged.end(), label,
                             [](const LabelBits& b, int l) { return b.label < l; });
  return it != merged.end() && it->label == label ? &*it : nullptr;
}

bool TableImage::HasScalar(int label) const {
  return std::binary_search(scalars.begin(), scalars.end(), label);
}

namespace {

// What one worker thread of LayerTables::Build collects.
struct TableShard {
  std::vector<UnitTable> units;
  std::vector<SkippedTableImage> skipped;
  Status fatal;
};

// Image i's unit masks at the thresholds `tf`: for every unit active on it, the mask words, the
// (label, |M ∩ L|) counts and the categories its union counts, appended to (*units)[u].
void AddImageMasks(size_t i, const LabelIndex& idx, const ActivationMap& acts,
                   const std::vector<float>& tf, UnionRule rule, UnitMaskBuilder* builder,
                   std::vector<std::pair<int, int64_t>>* counts, std::vector<UnitTable>* units) {
  builder->SetGeometry(acts.h, acts.w, idx.sh(), idx.sw());
  const auto& pls = idx.pixel_labels();
  const auto& cats = idx.categories();
  const auto& cat_sets = idx.category_sets();
  for (int u = 0; u < static_cast<int>(units->size()); ++u) {
    const int64_t m = builder->Build(acts.unit(u), tf[u]);
    if (m == 0) continue;
    const uint64_t* mask = builder->words();
    const size_t lo = builder->lo(), hi = builder->hi();
    UnitTable& ut = (*units)[u];
    ActiveImage a;
    a.image = static_cast<uint32_t>(i);
    a.lo = static_cast<uint32_t>(lo);
    a.hi = static_cast<uint32_t>(hi);
    a.m = m;
    a.word_offset = ut.words.size();
    ut.words.insert(ut.words.end(), mask + lo, mask + hi);
    counts->clear();
    for (const auto& pl : pls) {
      const int64_t c = idx.IntersectCount(mask, lo, hi, pl.set);
      if (c > 0) counts->emplace_back(pl.label, c);
    }
    for (int l : idx.scalar_labels()) counts->emplace_back(l, m);
    SortAndMerge(counts);
    a.count_begin = ut.counts.size();
    ut.counts.insert(ut.counts.end(), counts->begin(), counts->end());
    a.count_end = ut.counts.size();
    for (const auto& c : cats) {
      if (rule == UnionRule::kPaper || c.has_scalar ||
          idx.Intersects(mask, lo, hi, cat_sets[c.set].set)) {
        a.union_categories |= uint64_t{1} << c.category;
      }
    }
    ut.active.push_back(a);
  }
}

// The entries of unit u from every shard, in image order (a shard's own entries ascend already).
void MergeShards(int u, const std::vector<TableShard>& shards, UnitTable* out) {
  std::vector<std::pair<uint32_t, int>> order;  // (image, shard) of each entry
  std::vector<size_t> pos(shards.size(), 0);
  for (size_t k = 0; k < shards.size(); ++k)
    for (const ActiveImage& a : shards[k].units[u].active)
      order.emplace_back(a.image, static_cast<int>(k));
  std::sort(order.begin(), order.end());
  out->active.reserve(order.size());
  for (const auto& [image, k] : order) {
    const UnitTable& src = shards[k].units[u];
    ActiveImage a = src.active[pos[k]++];
    const size_t w0 = out->words.size(), c0 = out->counts.size();
    out->words.insert(out->words.end(), src.words.begin() + a.word_offset,
                      src.words.begin() + a.word_offset + (a.hi - a.lo));
    out->counts.insert(out->counts.end(), src.counts.begin() + a.count_begin,
                       src.counts.begin() + a.count_end);
    a.word_offset = w0;
    a.count_begin = c0;
    a.count_end = out->counts.size();
    out->total_m += a.m;
    out->active.push_back(a);
  }
}

}  // namespace

StatusOr<LayerTables> LayerTables::Build(size_t images, const LabelFn& labels, const FetchFn& fetch,
                                         const std::vector<double>& thresholds, int num_labels,
                                         int num_categories, UnionRule rule, int workers) {
  if (thresholds.empty()) return InvalidArgument("analysis: no thresholds (zero units)");
  for (size_t u = 0; u < thresholds.size(); ++u) {
    if (std::isnan(thresholds[u]))
      return InvalidArgument("analysis: threshold of unit " + std::to_string(u) + " is NaN");
  }
  if (num_categories > 64 || num_categories < 0)
    return InvalidArgument("analysis: " + std::to_string(num_categories) +
                           " categories; at most 64 are supported");
  if (workers < 0) return InvalidArgument("analysis: workers < 0");
  const int units = static_cast<int>(thresholds.size());
  std::vector<float> tf;
  for (double t : thresholds) tf.push_back(ThresholdAsFloat(t));

  LayerTables tables;
  tables.num_labels_ = num_labels;
  tables.num_categories_ = num_categories;
  tables.rule_ = rule;
  tables.images_.resize(images);
  tables.units_.resize(units);

  const int threads =
      static_cast<int>(std::min<size_t>(WorkerCount(workers), std::max<size_t>(1, images)));
  std::vector<TableShard> shards(threads);
  for (TableShard& s : shards) s.units.resize(units);
  std::atomic<size_t> next{0};
  std::atomic<bool> stop{false};

  ND_RETURN_IF_ERROR(RunOnThreads(
      threads,
      [&](int t) {
        TableShard& s = shards[t];
        UnitMaskBuilder builder;
        ActivationMap acts;
        std::vector<std::pair<int, int64_t>> counts;
        try {
          for (size_t i;
               !stop.load(std::memory_order_relaxed) && (i = next.fetch_add(1)) < images;) {
            TableImage& im = tables.images_[i];  // written by this thread only
            auto skip = [&](const std::string& why) {
              im.skipped = true;
              s.skipped.push_back(SkippedTableImage{i, why});
            };
            StatusOr<std::shared_ptr<const LabelIndex>> index = labels(i);
            if (!index.ok() || !*index) {
              skip("labels: " + (index.ok() ? std::string("none") : index.status().message()));
              continue;
            }
            const LabelIndex& idx = **index;
            if (idx.num_labels() > num_labels || idx.num_categories() > num_categories) {
              skip("labels: index built for another label table");
              continue;
            }
            Status st = fetch(i, &acts);
            if (!st.ok()) {
              skip("activations: " + st.message());
              continue;
            }
            if (acts.units != units) {
              s.fatal = FailedPrecondition("analysis: image " + std::to_string(i) +
                                           ": activation map has " + std::to_string(acts.units) +
                                           " units, thresholds have " + std::to_string(units));
              stop.store(true);
              break;
            }
            st = CheckTallyInputs(idx, acts, units, num_labels, num_categories);
            if (!st.ok()) {
              skip("activations: " + st.message());
              continue;
            }
            FillImageLabels(*index, &im);
            AddImageMasks(i, idx, acts, tf, rule, &builder, &counts, &s.units);
          }
        } catch (const std::exception& e) {
          s.fatal = Internal(std::string("analysis: worker failed: ") + e.what());
          stop.store(true);
        }
      },
      "analysis"));
  for (const TableShard& s : shards) ND_RETURN_IF_ERROR(s.fatal);
  for (const TableShard& s : shards)
    tables.skipped_.insert(tables.skipped_.end(), s.skipped.begin(), s.skipped.end());
  std::sort(
      tables.skipped_.begin(), tables.skipped_.end(),
      [](const SkippedTableImage& a, const SkippedTableImage& b) { return a.image < b.image; });

  // Per unit: the shards' entries in image order.
  ND_RETURN_IF_ERROR(RunOnThreads(
      threads,
      [&](int t) {
        for (int u = t; u < units; u += threads) MergeShards(u, shards, &tables.units_[u]);
      },
      "analysis"));
  shards.clear();

  tables.g_total_.assign(num_labels, 0);
  tables.merged_total_.assign(num_labels, 0);
  tables.postings_.assign(num_labels, {});
  for (size_t i = 0; i < images; ++i) {
    const TableImage& im = tables.images_[i];
    if (im.skipped) continue;
    for (const auto& [l, g] : im.g) tables.g_total_[l] += g;
    // merged and scalars are disjoint; walk both in label order so postings stay sorted.
    for (const LabelBits& b : im.merged) {
      tables.merged_total_[b.label] += b.count;
      tables.postings_[b.label].push_back(static_cast<uint32_t>(i));
    }
    for (int l : im.scalars) {
      tables.merged_total_[l] += im.pixels();
      tables.postings_[l].push_back(static_cast<uint32_t>(i));
    }
  }
  for (int l = 0; l < num_labels; ++l)
    if (!tables.postings_[l].empty()) tables.occurring_.push_back(l);
  return tables;
}

size_t LayerTables::MemoryBytes() const {
  size_t n = 0;
  for (const UnitTable& u : units_) {
    n += u.active.capacity() * sizeof(ActiveImage) + u.words.capacity() * sizeof(uint64_t) +
         u.counts.capacity() * sizeof(std::pair<int, int64_t>);
  }
  for (const TableImage& im : images_) {
    n += sizeof(TableImage) + im.merged.capacity() * sizeof(LabelBits) +
         im.own.capacity() * sizeof(uint64_t) + im.g.capacity() * sizeof(std::pair<int, int64_t>);
  }
  return n;
}

}  // namespace nd
