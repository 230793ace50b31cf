#include "common/base/args.h"

#include <cerrno>
#include <cmath>
#include <cstdlib>
#include <utility>

#include "common/base/text_format.h"

namespace nd {

ArgParser& ArgParser::Add(Option option) {
  options_.push_back(std::move(option));
  return *this;
}

ArgParser& ArgParser::Flag(const std::string& name, bool* out) {
  return Add({name, "", false, [out](const std::string&) {
                *out = true;
                return Status::Ok();
              }});
}

ArgParser& ArgParser::String(const std::string& name, std::string* out, const std::string& alias) {
  return Add({name, alias, true, [out](const std::string& v) {
                *out = v;
                return Status::Ok();
              }});
}

ArgParser& ArgParser::Strings(const std::string& name, std::vector<std::string>* out) {
  return Add({name, "", true, [out](const std::string& v) {
                out->push_back(v);
                return Status::Ok();
              }});
}

ArgParser& ArgParser::AddInt(const std::string& name, int64_t lo, int64_t hi, bool open_below,
                             bool open_above, std::function<void(int64_t)> store) {
  return Add({name, "", true, [=](const std::string& v) {
                errno = 0;
                char* end = nullptr;
                const long long x = std::strtoll(v.c_str(), &end, 10);
                if (v.empty() || *end != '\0' || errno == ERANGE) {
                  return InvalidArgument("'" + v + "' is not an integer");
                }
                if (x < lo || x > hi) {
                  if (open_above)
                    return InvalidArgument("must be >= " + std::to_string(lo) + ", got " + v);
                  if (open_below)
                    return InvalidArgument("must be <= " + std::to_string(hi) + ", got " + v);
                  return InvalidArgument("must be in " + std::to_string(lo) + ".." +
                                         std::to_string(hi) + ", got " + v);
                }
                store(x);
                return Status::Ok();
              }});
}

ArgParser& ArgParser::Real(const std::string& name, double* out, double lo, double hi) {
  return Add({name, "", true, [=](const std::string& v) {
                errno = 0;
                char* end = nullptr;
                const double x = std::strtod(v.c_str(), &end);
                if (v.empty() || *end != '\0' || errno == ERANGE || !std::isfinite(x)) {
                  return InvalidArgument("'" + v + "' is not a number");
                }
                if (x < lo || x > hi) {
                  return InvalidArgument("must be in " + FormatG(lo, 6) + ".." + FormatG(hi, 6) +
                                         ", got " + v);
                }
                *out = x;
                return Status::Ok();
              }});
}

ArgParser& ArgParser::OnOff(const std::string& name, bool* out) {
  return Add({name, "", true, [out](const std::string& v) {
                if (v != "on" && v != "off") return InvalidArgument("'" + v + "' is not on or off");
                *out = v == "on";
                return Status::Ok();
              }});
}

ArgParser& ArgParser::Choice(const std::string& name, std::string* out,
                             std::vector<std::string> choices) {
  return Add({name, "", true, [out, choices = std::move(choices)](const std::string& v) {
                for (const std::string& c : choices) {
                  if (v == c) {
                    *out = v;
                    return Status::Ok();
                  }
                }
                std::string list;
                for (const std::string& c : choices) list += (list.empty() ? "" : ", ") + c;
                return InvalidArgument("'" + v + "' is not one of " + list);
              }});
}

ArgParser& ArgParser::Custom(const std::string& name,
                             std::function<Status(const std::string&)> apply) {
  return Add({name, "", true, std::move(apply)});
}

ArgParser& ArgParser::Positionals(std::vector<std::string>* out) {
  positionals_ = out;
  return *this;
}

const ArgParser::Option* ArgParser::Find(const std::string& spelling) const {
  for (const Option& o : options_) {
    if (o.name == spelling || (!o.alias.empty() && o.alias == spelling)) return &o;
  }
  return nullptr;
}

Status ArgParser::Parse(const std::vector<std::string>& args) {
  for (size_t i = 0; i < args.size(); ++i) {
    const std::string& arg = args[i];
    if (arg == "-h" || arg == "--help") {
      help_ = true;
      continue;
    }
    if (arg.size() < 2 || arg[0] != '-') {
      if (positionals_ == nullptr) {
        return InvalidArgument("unexpected argument '" + arg + "' (see --help)");
      }
      positionals_->push_back(arg);
      continue;
    }
    std::string spelling = arg, value;
    bool inline_value = false;
    if (const size_t eq = arg.find('='); arg.rfind("--", 0) == 0 && eq != std::string::npos) {
      spelling = arg.substr(0, eq);
      value = arg.substr(eq + 1);
      inline_value = true;
    }
    const Option* option = Find(spelling);
    if (option == nullptr || (inline_value && !option->takes_value)) {
      return InvalidArgument("unknown option '" + arg + "' (see --help)");
    }
    if (option->takes_value && !inline_value) {
      if (i + 1 >= args.size()) return InvalidArgument(spelling + " needs a value");
      value = args[++i];
    }
    Status s = option->apply(value);
    if (!s.ok()) return Status(s.code(), spelling + ": " + s.message());
    seen_.push_back(option->name);
  }
  return Status::Ok();
}

Status ArgParser::Parse(int argc, char** argv, int first) {
  std::vector<std::string> args;
  for (int i = first; i < argc; ++i) args.emplace_back(argv[i]);
  return Parse(args);
}

bool ArgParser::Seen(const std::string& name) const {
  for (const std::string& s : seen_) {
    if (s == name) return true;
  }
  return false;
}

std::string ArgParser::FirstSeen(const std::vector<std::string>& names) const {
  for (const std::string& s : seen_) {
    for (const std::string& n : names) {
      if (s == n) return s;
    }
  }
  return "";
}

void AddConfigOptions(ArgParser* parser, std::string* config_path,
                      std::vector<std::string>* overrides) {
  parser->String("--config", config_path, "-c").Strings("--set", overrides);
}

}  // namespace nd
