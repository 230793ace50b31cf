#include "common/maths/label_index.h"

#include <algorithm>
#include <limits>
#include <string>

#include "common/maths/bits.h"

namespace nd {

StatusOr<LabelIndex> LabelIndex::Build(const ImageLabels& labels,
                                       const std::vector<int>& primary_category,
                                       int num_categories) {
  if (labels.sh <= 0 || labels.sw <= 0) {
    return InvalidArgument("label index: segmentation size " + std::to_string(labels.sh) + "x" +
                           std::to_string(labels.sw) + " is not positive");
  }
  if (num_categories < 0) return InvalidArgument("label index: negative number of categories");
  const int num_labels = static_cast<int>(primary_category.size());
  for (int l = 0; l < num_labels; ++l) {
    if (primary_category[l] < -1 || primary_category[l] >= num_categories) {
      return InvalidArgument("label index: label " + std::to_string(l) + " has primary category " +
                             std::to_string(primary_category[l]) + ", outside [-1, " +
                             std::to_string(num_categories) + ")");
    }
  }
  LabelIndex idx;
  idx.sh_ = labels.sh;
  idx.sw_ = labels.sw;
  idx.num_labels_ = num_labels;
  idx.num_categories_ = num_categories;
  const int64_t n = idx.pixels();
  const size_t nw = WordsForBits(n);
  idx.num_words_ = nw;

  // Scratch: label -> entry of the current layer (-1 unseen, -2 ignored: label 0 or no primary
  // category). Layers are scanned by runs of equal labels (Broden layers are mostly long runs).
  std::vector<int> slot(num_labels, -1);
  if (num_labels > 0) slot[0] = -2;
  std::vector<int> touched;
  std::vector<int64_t> first, last;
  for (size_t k = 0; k < labels.layers.size(); ++k) {
    const std::vector<uint16_t>& layer = labels.layers[k];
    if (static_cast<int64_t>(layer.size()) != n) {
      return InvalidArgument("label index: layer " + std::to_string(k) + " has " +
                             std::to_string(layer.size()) + " pixels, expected " +
                             std::to_string(labels.sh) + "x" + std::to_string(labels.sw));
    }
    const uint16_t* px = layer.data();
    const size_t layer_begin = idx.pixel_labels_.size();
    for (int64_t p = 0; p < n;) {
      const int l = px[p];
      int64_t q = p + 1;
      while (q < n && px[q] == l) ++q;
      if (l != 0) {
        if (l >= num_labels) {
          return InvalidArgument("label index: layer " + std::to_string(k) + " has label " +
                                 std::to_string(l) + ", outside [0, " + std::to_string(num_labels) +
                                 ")");
        }
        int e = slot[l];
        if (e == -1) {
          touched.push_back(l);
          if (primary_category[l] < 0) {
            slot[l] = -2;
          } else {
            e = static_cast<int>(idx.pixel_labels_.size());
            slot[l] = e;
            PixelLabel pl;
            pl.label = l;
            pl.layer = static_cast<int>(k);
            idx.pixel_labels_.push_back(pl);
            first.push_back(p);
            last.push_back(q - 1);
          }
        }
        if (e >= 0) {
          last[e] = q - 1;
          idx.pixel_labels_[e].set.count += q - p;
        }
      }
      p = q;
    }
    for (size_t e = layer_begin; e < idx.pixel_labels_.size(); ++e) {
      PixelSet& s = idx.pixel_labels_[e].set;
      s.lo = static_cast<uint32_t>(first[e] >> 6);
      s.hi = static_cast<uint32_t>((last[e] >> 6) + 1);
      s.offset = idx.pool_.size();
      idx.pool_.resize(idx.pool_.size() + (s.hi - s.lo), 0);
    }
    if (layer_begin < idx.pixel_labels_.size()) {
      for (int64_t p = 0; p < n;) {
        const int l = px[p];
        int64_t q = p + 1;
        while (q < n && px[q] == l) ++q;
        const int e = slot[l];
        if (e >= 0) {
          const PixelSet& s = idx.pixel_labels_[e].set;
          const int64_t base = static_cast<int64_t>(s.lo) * 64;
          SetBitRange(idx.pool_.data() + s.offset, p - base, q - base);
        }
        p = q;
      }
    }
    for (int l : touched) slot[l] = -1;
    touched.clear();
  }

  // Category unions (lite rule): OR of the pixel sets of the category's labels.
  std::vector<uint64_t> scratch(nw);
  for (int c = 0; c < num_categories; ++c) {
    uint32_t lo = UINT32_MAX, hi = 0;
    for (const PixelLabel& pl : idx.pixel_labels_) {
      if (primary_category[pl.label] != c) continue;
      if (lo > hi) std::fill(scratch.begin(), scratch.end(), 0);  // first set of c
      const uint64_t* src = idx.pool_.data() + pl.set.offset;
      for (uint32_t i = pl.set.lo; i < pl.set.hi; ++i) scratch[i] |= src[i - pl.set.lo];
      lo = std::min(lo, pl.set.lo);
      hi = std::max(hi, pl.set.hi);
    }
    if (lo > hi) continue;
    CategorySet cs;
    cs.category = c;
    cs.set.lo = lo;
    cs.set.hi = hi;
    cs.set.offset = idx.pool_.size();
    for (uint32_t i = lo; i < hi; ++i) {
      idx.pool_.push_back(scratch[i]);
      cs.set.count += Popcount64(scratch[i]);
    }
    idx.category_sets_.push_back(cs);
  }

  std::vector<char> has_scalar(num_categories, 0);
  for (int l : labels.scalar_labels) {
    if (l < 0 || l >= num_labels) {
      return InvalidArgument("label index: scalar label " + std::to_string(l) + " outside [0, " +
                             std::to_string(num_labels) + ")");
    }
    if (l == 0 || primary_category[l] < 0) continue;
    idx.scalar_labels_.push_back(l);
    has_scalar[primary_category[l]] = 1;
  }

  size_t next_set = 0;
  for (int c = 0; c < num_categories; ++c) {
    CategoryPresence presence;
    presence.category = c;
    presence.has_scalar = has_scalar[c] != 0;
    if (next_set < idx.category_sets_.size() && idx.category_sets_[next_set].category == c) {
      presence.set = static_cast<int>(next_set++);
    }
    if (presence.has_scalar || presence.set >= 0) idx.categories_.push_back(presence);
  }
  idx.repeated_label_pixels_ = RepeatedLabelPixels(idx);
  idx.pool_.shrink_to_fit();
  return idx;
}

int64_t LabelIndex::RepeatedLabelPixels(const LabelIndex& idx) {
  // (label, pixel_labels_ entry or -1 for a scalar occurrence), grouped by label.
  std::vector<std::pair<int, int>> occurrences;
  for (size_t e = 0; e < idx.pixel_labels_.size(); ++e) {
    occurrences.emplace_back(idx.pixel_labels_[e].label, static_cast<int>(e));
  }
  for (int l : idx.scalar_labels_) occurrences.emplace_back(l, -1);
  std::sort(occurrences.begin(), occurrences.end());
  bool any = false;
  for (size_t i = 1; i < occurrences.size(); ++i) {
    any = any || occurrences[i].first == occurrences[i - 1].first;
  }
  if (!any) return 0;
  const size_t nw = idx.num_words_;
  const int64_t n = idx.pixels();
  std::vector<uint64_t> full(nw, ~uint64_t{0}), seen(nw), repeated(nw, 0);
  if (n % 64 != 0) full[nw - 1] = (uint64_t{1} << (n % 64)) - 1;
  for (size_t i = 0; i < occurrences.size();) {
    size_t j = i;
    while (j < occurrences.size() && occurrences[j].first == occurrences[i].first) ++j;
    if (j - i >= 2) {
      std::fill(seen.begin(), seen.end(), 0);
      for (size_t k = i; k < j; ++k) {
        const int e = occurrences[k].second;
        uint32_t lo = 0, hi = static_cast<uint32_t>(nw);
        const uint64_t* words = full.data();
        if (e >= 0) {
          const PixelSet& set = idx.pixel_labels_[e].set;
          lo = set.lo;
          hi = set.hi;
          words = idx.pool_.data() + set.offset - lo;  // words[w] is grid word w
        }
        for (uint32_t w = lo; w < hi; ++w) {
          repeated[w] |= seen[w] & words[w];
          seen[w] |= words[w];
        }
      }
    }
    i = j;
  }
  int64_t count = 0;
  for (uint64_t w : repeated) count += Popcount64(w);
  return count;
}

int64_t LabelIndex::IntersectCount(const uint64_t* mask, size_t mask_lo, size_t mask_hi,
                                   const PixelSet& set) const {
  const size_t lo = std::max<size_t>(mask_lo, set.lo);
  const size_t hi = std::min<size_t>(mask_hi, set.hi);
  if (lo >= hi) return 0;
  return AndPopcount(mask + lo, SetWords(set) + (lo - set.lo), 0, hi - lo);
}

bool LabelIndex::Intersects(const uint64_t* mask, size_t mask_lo, size_t mask_hi,
                            const PixelSet& set) const {
  const size_t lo = std::max<size_t>(mask_lo, set.lo);
  const size_t hi = std::min<size_t>(mask_hi, set.hi);
  if (lo >= hi) return false;
  return AndAny(mask + lo, SetWords(set) + (lo - set.lo), 0, hi - lo);
}

bool LabelIndex::Contains(const PixelSet& set, int64_t p) const {
  if (p < 0 || p >= pixels()) return false;
  const size_t w = static_cast<size_t>(p >> 6);
  if (w < set.lo || w >= set.hi) return false;
  return (SetWords(set)[w - set.lo] >> (p & 63)) & 1;
}

size_t LabelIndex::MemoryBytes() const {
  return sizeof(LabelIndex) + pool_.capacity() * sizeof(uint64_t) +
         pixel_labels_.capacity() * sizeof(PixelLabel) + scalar_labels_.capacity() * sizeof(int) +
         category_sets_.capacity() * sizeof(CategorySet) +
         categories_.capacity() * sizeof(CategoryPresence);
}

}  // namespace nd
