// The rating protocols of the human evaluation (the paper's §3.3 study, for any model), as pure
// logic without sockets or files: which trial a rater gets next, whether a submitted answer is
// valid, and the state rebuilt from the answers file.
//
// Modes (all on one layer, units 1-based as in tally.csv):
//  - "label" (the paper's label check): "does <phrase> describe most of the highlighted regions?"
//    yes/no, the phrase being the unit's Network Dissection label (tally.csv). Every
//    `catch_every`-th label trial of a rater (the 5th, 10th, … with catch_every = 5) is a catch
//    trial: a unit drawn at random from the study with a label of another category (any label of
//    the dataset whose category differs from the unit's tally category), expected answer "no".
//    The page cannot tell a catch trial from a real one; catch trials do not count as having seen
//    the unit.
//  - "name": the rater writes a short phrase for the unit (the human label the paper compares to).
//    Each unit collects `names_per_unit` names.
//  - "human" (the paper's human consistency): yes/no on the unit's human label, which is its first
//    name in the answers file, asked of raters other than its author.
// Each unit collects `raters_per_unit` answers in label and human mode.
//
// Order: one seeded permutation of the study units per layer (rng.h: stream (seed ^ H(layer), 3,
// 0), Fisher-Yates over the units in ascending order); every rater and mode walks it and gets the
// first unit that (a) the rater has not answered in this mode, (b) still needs answers in this
// mode, (c) in human mode has a human label by someone else. Units are therefore completed in
// order, and a rater never sees a unit twice in one mode (a rater may see a unit once per mode).
// Catch trial c of a rater draws from stream (seed ^ H(layer, rater), 4, c). H is FNV-1a 64 of
// the bytes (layer and rater joined by '\n') passed through Mix64.
//
// Trial ids: 16 hex digits, Mix64 of (seed, layer, rater, mode, unit, catch index) hashed as above;
// deterministic, so a restarted server hands out and accepts the same ids, and opaque, so the page
// cannot tell catch trials. (layer, rater, trial) identifies an answer: a resubmission of an
// answered trial is "already recorded", whatever it says, and writes nothing.
//
// Thread-safety: not thread-safe; the server calls it from its one HTTP thread.
#pragma once

#include <cstdint>
#include <map>
#include <set>
#include <string>
#include <tuple>
#include <utility>
#include <vector>

#include "common/base/config.h"
#include "common/base/status.h"
#include "common/results/result_files.h"
#include "tools/rate/answers_file.h"

namespace nd {

enum class RateMode { kLabel, kName, kHuman };
const char* RateModeName(RateMode mode);  // "label", "name", "human"
bool ParseRateMode(const std::string& text, RateMode* mode);

// Rater names: 1..40 bytes, valid UTF-8, no control characters, no leading/trailing space.
// Phrases: 1..80 bytes, the same rules. Errors are InvalidArgument naming `what`.
[[nodiscard]] Status ValidateRaterName(const std::string& name);
[[nodiscard]] Status ValidatePhrase(const std::string& phrase, const std::string& what);

struct StudyUnit {
  int unit = 0;                 // 1-based
  std::string label, category;  // tally.csv's
};

struct CatchLabel {
  std::string label, category;
};

struct RateStudyOptions {
  std::string layer;
  uint64_t seed = 1;
  int raters_per_unit = 3;
  int names_per_unit = 1;
  int catch_every = 5;  // 0 = no catch trials
  int max_units = 0;    // keep the first max_units units of the seeded order; 0 = all
};

struct Trial {
  bool done = false;  // nothing left for this rater in this mode
  RateMode mode = RateMode::kLabel;
  int unit = 0;
  std::string trial;      // the id to send back with the answer
  std::string phrase;     // label/human: the phrase to judge; name: ""
  bool is_catch = false;  // never shown to the page
  int answered = 0;       // this rater's answers in this mode (catch trials not counted)
  int total = 0;          // study units (the most a rater can answer in one mode)
  int complete = 0;       // study units that have all their answers in this mode
};

// An answer as the page submits it.
struct Submission {
  std::string rater;
  RateMode mode = RateMode::kLabel;
  int unit = 0;
  std::string trial, phrase, answer;  // name mode: the phrase is the name written
};

// The study units of a layer: its tally's units with a label, only the detectors (IoU > cutoff)
// when rate.detectors_only; in unit order (RateStudy applies rate.max_units after its shuffle).
std::vector<StudyUnit> SelectStudyUnits(const TallyFile& tally, const RateConfig& rate,
                                        double cutoff);
// How many units the study has: SelectStudyUnits' count, at most rate.max_units when set.
int64_t StudySize(const TallyFile& tally, const RateConfig& rate, double cutoff);
// The layer's result folder that the rating uses (the first quantile's).
std::string RatedResultDir(const PipelineConfig& config, const std::string& layer);

class RateStudy {
 public:
  // `units`: the study (any order; unit numbers distinct); `catch_pool`: the labels catch trials
  // draw from (the dataset's, with their categories).
  RateStudy(RateStudyOptions options, std::vector<StudyUnit> units,
            std::vector<CatchLabel> catch_pool);

  // Adds recorded answers (from the answers file; other layers' records are ignored, as are
  // records of units outside the study).
  void Replay(const std::vector<AnswerRecord>& records);

  Trial Next(const std::string& rater, RateMode mode) const;

  struct Checked {
    AnswerRecord record;   // to append (time filled in), or the one recorded before
    bool already = false;  // this trial was answered before: write nothing
  };
  // Validates a submission. Errors: InvalidArgument (bad name, phrase or answer), NotFound (a
  // unit outside the study), FailedPrecondition (a trial id this rater was not given, or a phrase
  // that is not the trial's).
  [[nodiscard]] StatusOr<Checked> Check(const Submission& s) const;

  // Records an answer that was appended to the file. REQUIRES: it passed Check().
  void Add(const AnswerRecord& record);

  const std::vector<int>& order() const { return order_; }
  const RateStudyOptions& options() const { return options_; }
  bool InStudy(int unit) const { return units_.count(unit) > 0; }

  // The id of a trial (see the header comment); catch_index -1 for real trials.
  std::string TrialId(const std::string& rater, RateMode mode, int unit, int catch_index) const;

 private:
  struct CatchTrial {
    int unit = 0;
    std::string label;
    bool ok = false;  // false when no label of another category exists
  };
  CatchTrial MakeCatch(const std::string& rater, int index) const;
  // The unit's human label and its author; false when the unit has no name yet.
  bool HumanLabel(int unit, std::string* phrase, std::string* author) const;
  int Complete(RateMode mode) const;

  RateStudyOptions options_;
  std::map<int, StudyUnit> units_;
  std::vector<CatchLabel> catch_pool_;
  std::vector<int> order_;
  // State from the answers.
  std::map<std::pair<std::string, std::string>, AnswerRecord> by_trial_;  // (rater, trial)
  std::set<std::tuple<std::string, int, int>> seen_;  // (rater, mode, unit), real trials
  std::map<int, int> count_[3];                       // per mode: unit -> real answers
  std::map<std::string, int> label_trials_, catches_, answered_[3];
  std::map<int, std::vector<std::pair<std::string, std::string>>> names_;  // unit -> (rater, name)
};

}  // namespace nd
