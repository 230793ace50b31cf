#include "common/maths/iou_tally.h"

#include <cmath>

namespace nd {

const char* UnionRuleName(UnionRule rule) {
  switch (rule) {
    case UnionRule::kPaper:
      return "paper";
    case UnionRule::kLite:
      return "lite";
  }
  return "?";
}

StatusOr<UnionRule> ParseUnionRule(const std::string& name) {
  if (name == "paper") return UnionRule::kPaper;
  if (name == "lite") return UnionRule::kLite;
  return InvalidArgument("union rule '" + name + "' is not one of: paper, lite");
}

IouTally::IouTally(const std::vector<double>& thresholds, int num_labels, int num_categories,
                   UnionRule rule)
    : units_(static_cast<int>(thresholds.size())),
      num_labels_(num_labels),
      num_categories_(num_categories),
      rule_(rule),
      thresholds_(thresholds),
      g_(num_labels, 0),
      i_(static_cast<size_t>(units_) * num_labels, 0),
      u_(static_cast<size_t>(units_) * num_categories, 0) {
  thresholds_f_.reserve(thresholds.size());
  for (double t : thresholds) thresholds_f_.push_back(ThresholdAsFloat(t));
}

Status CheckTallyInputs(const LabelIndex& labels, const ActivationMap& acts, int units,
                        int num_labels, int num_categories) {
  if (acts.units != units) {
    return InvalidArgument("activation map has " + std::to_string(acts.units) +
                           " units, thresholds have " + std::to_string(units));
  }
  if (acts.h <= 0 || acts.w <= 0) {
    return InvalidArgument("activation map size " + std::to_string(acts.h) + "x" +
                           std::to_string(acts.w) + " is not positive");
  }
  if (acts.data.size() != static_cast<size_t>(acts.units) * acts.plane()) {
    return InvalidArgument("activation map holds " + std::to_string(acts.data.size()) +
                           " values, expected " + std::to_string(acts.units) + "x" +
                           std::to_string(acts.h) + "x" + std::to_string(acts.w));
  }
  if (labels.num_labels() > num_labels || labels.num_categories() > num_categories) {
    return InvalidArgument("label index built for " + std::to_string(labels.num_labels()) +
                           " labels and " + std::to_string(labels.num_categories()) +
                           " categories, tally has " + std::to_string(num_labels) + " and " +
                           std::to_string(num_categories));
  }
  return Status::Ok();
}

Status IouTally::AddImage(const LabelIndex& labels, const ActivationMap& acts,
                          UnitMaskBuilder* builder) {
  ND_RETURN_IF_ERROR(CheckTallyInputs(labels, acts, units_, num_labels_, num_categories_));
  ++images_;
  const int64_t pixels = labels.pixels();
  const auto& pixel_labels = labels.pixel_labels();
  const auto& scalars = labels.scalar_labels();
  const auto& categories = labels.categories();
  const auto& category_sets = labels.category_sets();
  for (const auto& pl : pixel_labels) g_[pl.label] += pl.set.count;
  for (int l : scalars) g_[l] += pixels;
  if (pixel_labels.empty() && scalars.empty()) return Status::Ok();  // nothing can count

  builder->SetGeometry(acts.h, acts.w, labels.sh(), labels.sw());
  for (int u = 0; u < units_; ++u) {
    const int64_t m = builder->Build(acts.unit(u), thresholds_f_[u]);
    if (m == 0) continue;
    const uint64_t* mask = builder->words();
    const size_t lo = builder->lo(), hi = builder->hi();
    int64_t* iu = i_.data() + static_cast<size_t>(u) * num_labels_;
    for (const auto& pl : pixel_labels) iu[pl.label] += labels.IntersectCount(mask, lo, hi, pl.set);
    for (int l : scalars) iu[l] += m;
    int64_t* uu = u_.data() + static_cast<size_t>(u) * num_categories_;
    if (rule_ == UnionRule::kPaper) {
      for (const auto& c : categories) uu[c.category] += m;
    } else {
      for (const auto& c : categories) {
        if (c.has_scalar || labels.Intersects(mask, lo, hi, category_sets[c.set].set)) {
          uu[c.category] += m;
        }
      }
    }
  }
  return Status::Ok();
}

Status IouTally::Merge(const IouTally& other) {
  if (other.units_ != units_ || other.num_labels_ != num_labels_ ||
      other.num_categories_ != num_categories_) {
    return InvalidArgument("tally merge: shapes differ (" + std::to_string(units_) + "/" +
                           std::to_string(num_labels_) + "/" + std::to_string(num_categories_) +
                           " vs " + std::to_string(other.units_) + "/" +
                           std::to_string(other.num_labels_) + "/" +
                           std::to_string(other.num_categories_) + " units/labels/categories)");
  }
  if (other.rule_ != rule_) {
    return InvalidArgument(std::string("tally merge: union rules differ (") + UnionRuleName(rule_) +
                           " vs " + UnionRuleName(other.rule_) + ")");
  }
  for (int u = 0; u < units_; ++u) {
    const double a = thresholds_[u], b = other.thresholds_[u];
    if (!(a == b || (std::isnan(a) && std::isnan(b)))) {
      return InvalidArgument("tally merge: threshold of unit " + std::to_string(u) + " differs");
    }
  }
  images_ += other.images_;
  for (size_t k = 0; k < g_.size(); ++k) g_[k] += other.g_[k];
  for (size_t k = 0; k < i_.size(); ++k) i_[k] += other.i_[k];
  for (size_t k = 0; k < u_.size(); ++k) u_[k] += other.u_[k];
  return Status::Ok();
}

Status IouTally::AddCounts(int64_t images, const std::vector<int64_t>& g,
                           const std::vector<int64_t>& i, const std::vector<int64_t>& u) {
  if (images < 0 || g.size() != g_.size() || i.size() != i_.size() || u.size() != u_.size()) {
    return InvalidArgument("tally: added counts have the wrong shape (" + std::to_string(g.size()) +
                           "/" + std::to_string(i.size()) + "/" + std::to_string(u.size()) +
                           " values, expected " + std::to_string(g_.size()) + "/" +
                           std::to_string(i_.size()) + "/" + std::to_string(u_.size()) + ")");
  }
  images_ += images;
  for (size_t k = 0; k < g_.size(); ++k) g_[k] += g[k];
  for (size_t k = 0; k < i_.size(); ++k) i_[k] += i[k];
  for (size_t k = 0; k < u_.size(); ++k) u_[k] += u[k];
  return Status::Ok();
}

}  // namespace nd
