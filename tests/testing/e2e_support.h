// Helpers for the end-to-end tests that drive the real executables (nd-pipeline, nd-make-broden)
// through a shell: run a command with a hard time limit, read a file, split a CSV line, read a
// number from summary.json. Header-only; every wait is bounded by the command's time limit.
#pragma once

#include <sys/wait.h>

#include <array>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

namespace nd_e2e {

struct Result {
  int code = -1;       // the exit status; -1 when the command did not exit normally
  std::string output;  // stdout and stderr together
};

// Runs `command` under `timeout -k 5 <limit_s>`, capturing stdout and stderr. A command that
// runs past the limit is killed and reports exit code 124 (or 137).
inline Result Sh(const std::string& command, int limit_s = 240) {
  std::string full = "timeout -k 5 " + std::to_string(limit_s) + " " + command + " 2>&1";
  Result r;
  FILE* pipe = ::popen(full.c_str(), "r");
  if (!pipe) return r;
  std::array<char, 4096> buf;
  size_t n;
  while ((n = std::fread(buf.data(), 1, buf.size(), pipe)) > 0) r.output.append(buf.data(), n);
  int status = ::pclose(pipe);
  r.code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  return r;
}

// The file's bytes; "" when it cannot be read.
inline std::string Read(const std::filesystem::path& p) {
  std::ifstream in(p, std::ios::binary);
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

// Cells of one unquoted CSV line; '\r' is dropped (tally.csv ends lines with "\r\n").
inline std::vector<std::string> Split(const std::string& line, char sep) {
  std::vector<std::string> out;
  std::string cur;
  for (char c : line) {
    if (c == sep) {
      out.push_back(cur);
      cur.clear();
    } else if (c != '\r') {
      cur += c;
    }
  }
  out.push_back(cur);
  return out;
}

// nd-make-broden --out OUT --images N --seed S --size SIZE --threads 2 (ND_BIN_DIR).
inline Result MakeBroden(const std::filesystem::path& out, int images, int seed, int size = 128) {
  return Sh(std::string(ND_BIN_DIR) + "/nd-make-broden --out " + out.string() + " --images " +
            std::to_string(images) + " --seed " + std::to_string(seed) + " --size " +
            std::to_string(size) + " --threads 2");
}

// Debian's python3 running tests/fixtures/<script> with `args` (the scripts export test models).
inline Result RunFixture(const std::string& script, const std::string& args) {
  return Sh("/usr/bin/python3 " + std::string(ND_SOURCE_DIR) + "/tests/fixtures/" + script + " " +
            args);
}

// A number from summary.json: the text after "\"key\": "; -1 when the key is absent.
inline double JsonNumber(const std::string& json, const std::string& key) {
  size_t at = json.find("\"" + key + "\": ");
  if (at == std::string::npos) return -1;
  return std::stod(json.substr(at + key.size() + 4));
}

}  // namespace nd_e2e
