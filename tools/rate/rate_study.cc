#include "tools/rate/rate_study.h"

#include <algorithm>
#include <cstdio>
#include <tuple>

#include "common/maths/rng.h"

namespace nd {
namespace {

constexpr uint64_t kOrderDomain = 3;
constexpr uint64_t kCatchDomain = 4;

uint64_t Hash(const std::string& s) {
  uint64_t h = 0xcbf29ce484222325ULL;
  for (unsigned char c : s) {
    h ^= c;
    h *= 0x100000001b3ULL;
  }
  return Mix64(h);
}

// Valid UTF-8 without control characters (C0, DEL, C1).
bool CleanUtf8(const std::string& s) {
  const auto* p = reinterpret_cast<const unsigned char*>(s.data());
  const size_t n = s.size();
  for (size_t i = 0; i < n;) {
    const unsigned c = p[i];
    if (c < 0x20 || c == 0x7f) return false;
    if (c < 0x80) {
      ++i;
      continue;
    }
    int len = 0;
    unsigned cp = 0;
    if ((c & 0xe0) == 0xc0) {
      len = 2;
      cp = c & 0x1f;
    } else if ((c & 0xf0) == 0xe0) {
      len = 3;
      cp = c & 0x0f;
    } else if ((c & 0xf8) == 0xf0) {
      len = 4;
      cp = c & 0x07;
    } else {
      return false;
    }
    if (i + len > n) return false;
    for (int k = 1; k < len; ++k) {
      if ((p[i + k] & 0xc0) != 0x80) return false;
      cp = (cp << 6) | (p[i + k] & 0x3f);
    }
    static const unsigned kMin[5] = {0, 0, 0x80, 0x800, 0x10000};
    if (cp < kMin[len] || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff)) return false;
    if (cp >= 0x80 && cp < 0xa0) return false;  // C1 controls
    i += len;
  }
  return true;
}

Status ValidateText(const std::string& s, size_t max, const std::string& what) {
  if (s.empty()) return InvalidArgument(what + " is empty");
  if (s.size() > max)
    return InvalidArgument(what + " is longer than " + std::to_string(max) + " bytes");
  if (!CleanUtf8(s)) return InvalidArgument(what + " is not UTF-8 text without control characters");
  if (s.front() == ' ' || s.back() == ' ')
    return InvalidArgument(what + " starts or ends with a space");
  return Status::Ok();
}

int ModeIndex(RateMode m) { return static_cast<int>(m); }

}  // namespace

const char* RateModeName(RateMode mode) {
  switch (mode) {
    case RateMode::kLabel:
      return "label";
    case RateMode::kName:
      return "name";
    case RateMode::kHuman:
      return "human";
  }
  return "?";
}

bool ParseRateMode(const std::string& text, RateMode* mode) {
  for (RateMode m : {RateMode::kLabel, RateMode::kName, RateMode::kHuman}) {
    if (text == RateModeName(m)) {
      *mode = m;
      return true;
    }
  }
  return false;
}

Status ValidateRaterName(const std::string& name) { return ValidateText(name, 40, "rater name"); }

Status ValidatePhrase(const std::string& phrase, const std::string& what) {
  return ValidateText(phrase, 80, what);
}

std::vector<StudyUnit> SelectStudyUnits(const TallyFile& tally, const RateConfig& rate,
                                        double cutoff) {
  std::vector<StudyUnit> units;
  for (const TallyUnit& t : tally.units) {
    if (t.label.empty()) continue;
    if (rate.detectors_only && !(t.iou > cutoff)) continue;
    units.push_back(StudyUnit{t.unit, t.label, t.category});
  }
  return units;
}

int64_t StudySize(const TallyFile& tally, const RateConfig& rate, double cutoff) {
  int64_t n = static_cast<int64_t>(SelectStudyUnits(tally, rate, cutoff).size());
  return rate.max_units > 0 ? std::min<int64_t>(n, rate.max_units) : n;
}

std::string RatedResultDir(const PipelineConfig& config, const std::string& layer) {
  const auto& q = config.threshold.quantiles;
  return LayerResultDir(config.output.dir, layer, q.front(), q.size() > 1);
}

RateStudy::RateStudy(RateStudyOptions options, std::vector<StudyUnit> units,
                     std::vector<CatchLabel> catch_pool)
    : options_(std::move(options)), catch_pool_(std::move(catch_pool)) {
  for (StudyUnit& u : units) units_[u.unit] = std::move(u);
  for (const auto& [unit, u] : units_) order_.push_back(unit);  // ascending
  Rng rng(options_.seed ^ Hash(options_.layer), kOrderDomain, 0);
  rng.Shuffle(&order_);
  if (options_.max_units > 0 && order_.size() > static_cast<size_t>(options_.max_units)) {
    for (size_t i = options_.max_units; i < order_.size(); ++i) units_.erase(order_[i]);
    order_.resize(options_.max_units);
  }
}

std::string RateStudy::TrialId(const std::string& rater, RateMode mode, int unit,
                               int catch_index) const {
  const uint64_t h =
      Mix64(options_.seed ^ Hash(options_.layer + "\n" + rater + "\n" + RateModeName(mode) + "\n" +
                                 std::to_string(unit) + "\n" + std::to_string(catch_index)));
  char buf[20];
  std::snprintf(buf, sizeof(buf), "%016llx", static_cast<unsigned long long>(h));
  return buf;
}

RateStudy::CatchTrial RateStudy::MakeCatch(const std::string& rater, int index) const {
  CatchTrial c;
  if (order_.empty()) return c;
  Rng rng(options_.seed ^ Hash(options_.layer + "\n" + rater), kCatchDomain,
          static_cast<uint64_t>(index));
  std::vector<int> sorted(order_);
  std::sort(sorted.begin(), sorted.end());
  c.unit = sorted[rng.Below(sorted.size())];
  const StudyUnit& u = units_.at(c.unit);
  std::vector<const CatchLabel*> pool;
  for (const CatchLabel& l : catch_pool_)
    if (l.category != u.category && l.label != u.label) pool.push_back(&l);
  if (pool.empty()) return c;
  c.label = pool[rng.Below(pool.size())]->label;
  c.ok = true;
  return c;
}

bool RateStudy::HumanLabel(int unit, std::string* phrase, std::string* author) const {
  auto it = names_.find(unit);
  if (it == names_.end() || it->second.empty()) return false;
  *author = it->second.front().first;
  *phrase = it->second.front().second;
  return true;
}

int RateStudy::Complete(RateMode mode) const {
  const int target = mode == RateMode::kName ? options_.names_per_unit : options_.raters_per_unit;
  int n = 0;
  for (const auto& [unit, c] : count_[ModeIndex(mode)]) n += c >= target;
  return n;
}

Trial RateStudy::Next(const std::string& rater, RateMode mode) const {
  Trial t;
  t.mode = mode;
  t.total = static_cast<int>(order_.size());
  const int m = ModeIndex(mode);
  auto answered = answered_[m].find(rater);
  t.answered = answered == answered_[m].end() ? 0 : answered->second;
  t.complete = Complete(mode);
  const int target = mode == RateMode::kName ? options_.names_per_unit : options_.raters_per_unit;
  int next = 0;
  std::string phrase;
  for (int unit : order_) {
    if (seen_.count({rater, m, unit})) continue;
    auto c = count_[m].find(unit);
    if (c != count_[m].end() && c->second >= target) continue;
    if (mode == RateMode::kHuman) {
      std::string author;
      if (!HumanLabel(unit, &phrase, &author) || author == rater) continue;
    } else if (mode == RateMode::kLabel) {
      phrase = units_.at(unit).label;
    }
    next = unit;
    break;
  }
  if (next == 0) {
    t.done = true;
    return t;
  }
  if (mode == RateMode::kLabel && options_.catch_every > 0) {
    auto lt = label_trials_.find(rater);
    const int trials = lt == label_trials_.end() ? 0 : lt->second;
    if ((trials + 1) % options_.catch_every == 0) {
      auto cc = catches_.find(rater);
      const int index = cc == catches_.end() ? 0 : cc->second;
      CatchTrial c = MakeCatch(rater, index);
      if (c.ok) {
        t.unit = c.unit;
        t.phrase = c.label;
        t.is_catch = true;
        t.trial = TrialId(rater, mode, c.unit, index);
        return t;
      }
    }
  }
  t.unit = next;
  t.phrase = phrase;
  t.trial = TrialId(rater, mode, next, -1);
  return t;
}

StatusOr<RateStudy::Checked> RateStudy::Check(const Submission& s) const {
  ND_RETURN_IF_ERROR(ValidateRaterName(s.rater));
  if (!InStudy(s.unit))
    return NotFound("unit " + std::to_string(s.unit) + " is not in the study of layer '" +
                    options_.layer + "'");
  if (s.mode == RateMode::kName) {
    ND_RETURN_IF_ERROR(ValidatePhrase(s.phrase, "name"));
  } else if (s.answer != "yes" && s.answer != "no") {
    return InvalidArgument("answer must be \"yes\" or \"no\"");
  }
  Checked out;
  auto prior = by_trial_.find({s.rater, s.trial});
  if (prior != by_trial_.end()) {
    out.record = prior->second;
    out.already = true;
    return out;
  }
  AnswerRecord& r = out.record;
  r.layer = options_.layer;
  r.rater = s.rater;
  r.unit = s.unit;
  r.mode = RateModeName(s.mode);
  r.trial = s.trial;
  r.phrase = s.phrase;
  r.answer = s.mode == RateMode::kName ? "named" : s.answer;
  const int m = ModeIndex(s.mode);
  const bool real = s.trial == TrialId(s.rater, s.mode, s.unit, -1);
  if (!real) {
    if (s.mode == RateMode::kLabel) {
      auto cc = catches_.find(s.rater);
      const int index = cc == catches_.end() ? 0 : cc->second;
      CatchTrial c = MakeCatch(s.rater, index);
      if (c.ok && c.unit == s.unit && s.trial == TrialId(s.rater, s.mode, s.unit, index)) {
        if (s.phrase != c.label)
          return FailedPrecondition("the phrase is not the one this trial showed");
        r.is_catch = true;
        return out;
      }
    }
    return FailedPrecondition("trial '" + s.trial + "' was not given to this rater");
  }
  if (seen_.count({s.rater, m, s.unit}))  // cannot happen: the same id was answered
    return FailedPrecondition("this rater answered unit " + std::to_string(s.unit) + " already");
  if (s.mode == RateMode::kLabel && s.phrase != units_.at(s.unit).label)
    return FailedPrecondition("the phrase is not the unit's label");
  if (s.mode == RateMode::kHuman) {
    std::string phrase, author;
    if (!HumanLabel(s.unit, &phrase, &author))
      return FailedPrecondition("unit " + std::to_string(s.unit) + " has no human label yet");
    if (author == s.rater) return FailedPrecondition("raters do not judge their own names");
    if (s.phrase != phrase) return FailedPrecondition("the phrase is not the unit's human label");
  }
  return out;
}

void RateStudy::Add(const AnswerRecord& r) {
  if (r.layer != options_.layer || !InStudy(r.unit)) return;
  RateMode mode;
  if (!ParseRateMode(r.mode, &mode)) return;
  const int m = ModeIndex(mode);
  by_trial_[{r.rater, r.trial}] = r;
  if (mode == RateMode::kLabel) ++label_trials_[r.rater];
  if (r.is_catch) {
    ++catches_[r.rater];
    return;
  }
  if (!seen_.insert({r.rater, m, r.unit}).second) return;
  ++count_[m][r.unit];
  ++answered_[m][r.rater];
  if (mode == RateMode::kName) names_[r.unit].emplace_back(r.rater, r.phrase);
}

void RateStudy::Replay(const std::vector<AnswerRecord>& records) {
  for (const AnswerRecord& r : records) Add(r);
}

}  // namespace nd
