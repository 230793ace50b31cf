// ArgParser: the one command-line parser of every executable (nd-pipeline and its subcommands,
// nd-report, nd-make-broden, nd-train, nd-bench, nd-explain-bench, the stage processes).
//
// Options are declared with a destination; Parse() fills the destinations and fails on the first
// bad argument with one line naming it:
//   "--seed needs a value"                    a value option at the end of the line
//   "--width: 'abc' is not an integer"        (or "is not a number", "is not on or off",
//   "--width: must be in 1..512, got 0"        "is not one of sgd, adam")
//   "--seed: must be >= 0, got -1"             (an Int whose upper bound is the type's maximum)
//   "unknown option '--bogus' (see --help)"
//   "unexpected argument 'x' (see --help)"    a positional argument where none is declared
// Values may follow as the next argument or inline: "--out m.pt" and "--out=m.pt". A flag (no
// value) given inline ("--overwrite=1") is an unknown option. "-h"/"--help" sets help() and is
// never an error. Destinations keep their value unless the option appears, so defaults are set by
// initialising them. Not thread-safe; one parser per main.
#pragma once

#include <cstdint>
#include <functional>
#include <limits>
#include <string>
#include <type_traits>
#include <vector>

#include "common/base/status.h"

namespace nd {

class ArgParser {
 public:
  // A flag without a value: sets *out = true.
  ArgParser& Flag(const std::string& name, bool* out);
  // A string value; `alias` is a second spelling ("-c" for "--config").
  ArgParser& String(const std::string& name, std::string* out, const std::string& alias = "");
  // A repeatable string value, appended in order ("--set k=v --set k2=v2").
  ArgParser& Strings(const std::string& name, std::vector<std::string>* out);
  // An integer in [lo, hi].
  template <typename T>
  ArgParser& Int(const std::string& name, T* out, T lo = std::numeric_limits<T>::min(),
                 T hi = std::numeric_limits<T>::max()) {
    static_assert(std::is_integral_v<T>);
    int64_t hi64 = 0;  // a uint64_t above INT64_MAX is parsed up to INT64_MAX
    if constexpr (std::is_unsigned_v<T>) {
      hi64 = static_cast<uint64_t>(hi) > uint64_t{INT64_MAX} ? INT64_MAX : static_cast<int64_t>(hi);
    } else {
      hi64 = static_cast<int64_t>(hi);
    }
    return AddInt(name, static_cast<int64_t>(lo), hi64, lo == std::numeric_limits<T>::min(),
                  hi == std::numeric_limits<T>::max(),
                  [out](int64_t v) { *out = static_cast<T>(v); });
  }
  // A finite real number in [lo, hi].
  ArgParser& Real(const std::string& name, double* out,
                  double lo = -std::numeric_limits<double>::max(),
                  double hi = std::numeric_limits<double>::max());
  // "on" or "off".
  ArgParser& OnOff(const std::string& name, bool* out);
  // One of `choices`.
  ArgParser& Choice(const std::string& name, std::string* out, std::vector<std::string> choices);
  // A value checked and stored by `apply`, whose error message is prefixed with "<name>: ".
  ArgParser& Custom(const std::string& name, std::function<Status(const std::string&)> apply);
  // Positional arguments, in order (without this, any is "unexpected argument").
  ArgParser& Positionals(std::vector<std::string>* out);

  // Parses `args` (without the program name).
  [[nodiscard]] Status Parse(const std::vector<std::string>& args);
  // Parses argv[first], ..., argv[argc - 1].
  [[nodiscard]] Status Parse(int argc, char** argv, int first = 1);

  bool help() const { return help_; }
  // Whether option `name` (its main spelling) appeared on the line.
  bool Seen(const std::string& name) const;
  // The first option of `names` that appeared, in command-line order; "" if none did.
  std::string FirstSeen(const std::vector<std::string>& names) const;

 private:
  struct Option {
    std::string name, alias;
    bool takes_value = true;
    std::function<Status(const std::string&)> apply;  // value → destination (flags get "")
  };
  ArgParser& Add(Option option);
  ArgParser& AddInt(const std::string& name, int64_t lo, int64_t hi, bool open_below,
                    bool open_above, std::function<void(int64_t)> store);
  const Option* Find(const std::string& spelling) const;

  std::vector<Option> options_;
  std::vector<std::string>* positionals_ = nullptr;
  std::vector<std::string> seen_;  // main spellings, command-line order
  bool help_ = false;
};

// The configuration options shared by every command that reads pipeline.toml:
// "-c/--config FILE" into *config_path and repeatable "--set KEY=VALUE" into *overrides.
void AddConfigOptions(ArgParser* parser, std::string* config_path,
                      std::vector<std::string>* overrides);

}  // namespace nd
