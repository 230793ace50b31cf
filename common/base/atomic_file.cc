#include "common/base/atomic_file.h"

#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>

namespace nd {

Status WriteFileAtomically(const std::string& path, std::string_view bytes) {
  // The pid keeps two processes writing the same file from sharing a temporary file.
  const std::string tmp = path + ".tmp." + std::to_string(::getpid());
  std::error_code ignored;
  {
    std::ofstream out(tmp, std::ios::binary | std::ios::trunc);
    if (!out) return IoError(path + ": cannot create " + tmp + ": " + std::strerror(errno));
    out.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
    out.flush();
    if (!out) {
      std::filesystem::remove(tmp, ignored);
      return IoError(path + ": cannot write " + tmp + " (disk full or not writable?)");
    }
  }
  std::error_code ec;
  std::filesystem::rename(tmp, path, ec);
  if (ec) {
    std::filesystem::remove(tmp, ignored);
    return IoError(path + ": cannot rename " + tmp + " into place: " + ec.message());
  }
  return Status::Ok();
}

StatusOr<std::string> ReadFileText(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return NotFound(path + ": cannot open file");
  std::ostringstream buffer;
  buffer << in.rdbuf();
  if (in.bad()) return IoError(path + ": read error");
  return buffer.str();
}

}  // namespace nd
