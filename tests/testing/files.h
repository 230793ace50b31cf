// Temporary directories and whole-file reads and writes for the test suites.
//
// TempDir is an RAII owner of a fresh directory (mkdtemp under the system temporary folder, so
// parallel ctest runs never share one); the destructor restores owner permissions (tests that make
// a folder read-only) and removes it with everything in it. keep() leaves it for inspection.
#pragma once

#include <stdlib.h>

#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <system_error>

namespace nd::testing {

// A fresh directory "<tmp>/nd_<tag>_XXXXXX"; "" when mkdtemp fails.
inline std::string MakeTempDir(const std::string& tag) {
  std::string tmpl = (std::filesystem::temp_directory_path() / ("nd_" + tag + "_XXXXXX")).string();
  if (mkdtemp(tmpl.data()) == nullptr) return "";
  return tmpl;
}

class TempDir {
 public:
  explicit TempDir(const std::string& tag = "test") : path_(MakeTempDir(tag)) {}
  ~TempDir() {
    if (path_.empty() || kept_) return;
    std::error_code ec;
    for (auto it = std::filesystem::recursive_directory_iterator(path_, ec);
         !ec && it != std::filesystem::recursive_directory_iterator(); it.increment(ec)) {
      std::filesystem::permissions(it->path(), std::filesystem::perms::owner_all,
                                   std::filesystem::perm_options::add, ec);
    }
    std::filesystem::permissions(path_, std::filesystem::perms::owner_all,
                                 std::filesystem::perm_options::add, ec);
    std::filesystem::remove_all(path_, ec);
  }
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;

  const std::string& path() const { return path_; }
  std::filesystem::path operator/(const std::string& name) const {
    return std::filesystem::path(path_) / name;
  }
  void keep() { kept_ = true; }

 private:
  std::string path_;
  bool kept_ = false;
};

// The whole file as bytes; "" when it cannot be read.
inline std::string ReadAll(const std::filesystem::path& path) {
  std::ifstream f(path, std::ios::binary);
  std::stringstream ss;
  ss << f.rdbuf();
  return ss.str();
}

// Writes `text` as the whole file (truncating); false when it cannot be written.
inline bool WriteText(const std::filesystem::path& path, const std::string& text) {
  std::ofstream f(path, std::ios::binary | std::ios::trunc);
  f << text;
  return static_cast<bool>(f);
}

}  // namespace nd::testing
