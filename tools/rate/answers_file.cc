#include "tools/rate/answers_file.h"

#include <fcntl.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <boost/property_tree/json_parser.hpp>
#include <boost/property_tree/ptree.hpp>
#include <cerrno>
#include <chrono>
#include <cstring>
#include <ctime>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "common/base/atomic_file.h"
#include "common/base/log.h"
#include "common/base/text_format.h"

namespace nd {
namespace {

namespace fs = std::filesystem;
namespace pt = boost::property_tree;

std::string Errno(const std::string& path, const std::string& what) {
  return path + ": " + what + ": " + std::strerror(errno);
}

// Reads every byte of `fd` from offset 0.
Status ReadAll(int fd, const std::string& path, std::string* out) {
  out->clear();
  char buf[1 << 16];
  off_t at = 0;
  for (;;) {
    const ssize_t n = ::pread(fd, buf, sizeof(buf), at);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return IoError(Errno(path, "read"));
    if (n == 0) return Status::Ok();
    out->append(buf, static_cast<size_t>(n));
    at += n;
  }
}

// Parses the complete lines of `text` (a torn tail after the last '\n' is left out).
StatusOr<std::vector<AnswerRecord>> ParseLines(const std::string& text, const std::string& path) {
  std::vector<AnswerRecord> out;
  size_t at = 0;
  int line_no = 0;
  for (;;) {
    const size_t end = text.find('\n', at);
    if (end == std::string::npos) break;
    ++line_no;
    const std::string line = text.substr(at, end - at);
    at = end + 1;
    ND_ASSIGN_OR_RETURN(AnswerRecord r,
                        ParseAnswerLine(line, path + ":" + std::to_string(line_no)));
    out.push_back(std::move(r));
  }
  return out;
}

}  // namespace

bool AnswerRecord::operator==(const AnswerRecord& o) const {
  return layer == o.layer && rater == o.rater && unit == o.unit && mode == o.mode &&
         trial == o.trial && is_catch == o.is_catch && phrase == o.phrase && answer == o.answer &&
         time == o.time;
}

std::string FormatAnswerLine(const AnswerRecord& r) {
  return "{\"v\": 1, \"layer\": " + JsonString(r.layer) + ", \"rater\": " + JsonString(r.rater) +
         ", \"unit\": " + std::to_string(r.unit) + ", \"mode\": " + JsonString(r.mode) +
         ", \"trial\": " + JsonString(r.trial) + ", \"catch\": " + (r.is_catch ? "true" : "false") +
         ", \"phrase\": " + JsonString(r.phrase) + ", \"answer\": " + JsonString(r.answer) +
         ", \"time\": " + JsonString(r.time) + "}\n";
}

StatusOr<AnswerRecord> ParseAnswerLine(const std::string& line, const std::string& where) {
  pt::ptree tree;
  try {
    std::istringstream in(line);
    pt::read_json(in, tree);
  } catch (const pt::json_parser_error& e) {
    return DataLoss(where + ": not a JSON object: " + e.message());
  }
  AnswerRecord r;
  auto get = [&](const char* key, std::string* out) -> Status {
    auto v = tree.get_optional<std::string>(key);
    if (!v) return DataLoss(where + ": no \"" + key + "\"");
    *out = *v;
    return Status::Ok();
  };
  std::string version, unit, is_catch;
  ND_RETURN_IF_ERROR(get("v", &version));
  if (version != "1") return DataLoss(where + ": version " + version + " (this reader knows 1)");
  ND_RETURN_IF_ERROR(get("layer", &r.layer));
  ND_RETURN_IF_ERROR(get("rater", &r.rater));
  ND_RETURN_IF_ERROR(get("unit", &unit));
  ND_RETURN_IF_ERROR(get("mode", &r.mode));
  ND_RETURN_IF_ERROR(get("trial", &r.trial));
  ND_RETURN_IF_ERROR(get("catch", &is_catch));
  ND_RETURN_IF_ERROR(get("phrase", &r.phrase));
  ND_RETURN_IF_ERROR(get("answer", &r.answer));
  ND_RETURN_IF_ERROR(get("time", &r.time));
  if (unit.empty() || unit.size() > 9 ||
      unit.find_first_not_of("0123456789") != std::string::npos || std::stoi(unit) < 1)
    return DataLoss(where + ": unit '" + unit + "' is not a positive integer");
  r.unit = std::stoi(unit);
  if (is_catch != "true" && is_catch != "false")
    return DataLoss(where + ": catch '" + is_catch + "' is not true or false");
  r.is_catch = is_catch == "true";
  if (r.mode != "label" && r.mode != "name" && r.mode != "human")
    return DataLoss(where + ": unknown mode '" + r.mode + "'");
  return r;
}

StatusOr<std::vector<AnswerRecord>> ReadAnswersFile(const std::string& path) {
  std::error_code ec;
  if (!fs::exists(path, ec)) return std::vector<AnswerRecord>{};
  ND_ASSIGN_OR_RETURN(const std::string text, ReadFileText(path));
  return ParseLines(text, path);
}

std::string AnswerTimeNow() {
  const auto now = std::chrono::system_clock::now();
  const std::time_t t = std::chrono::system_clock::to_time_t(now);
  const long ms =
      std::chrono::duration_cast<std::chrono::milliseconds>(now.time_since_epoch()).count() % 1000;
  std::tm tm{};
  ::gmtime_r(&t, &tm);
  char buf[64];
  std::snprintf(buf, sizeof(buf), "%04d-%02d-%02dT%02d:%02d:%02d.%03ldZ", tm.tm_year + 1900,
                tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, ms);
  return buf;
}

StatusOr<AnswersFile> AnswersFile::Open(const std::string& path) {
  std::error_code ec;
  const fs::path dir = fs::path(path).parent_path();
  const bool existed = fs::exists(path, ec);
  if (!dir.empty()) {
    fs::create_directories(dir, ec);
    if (ec) return IoError(dir.string() + ": cannot create: " + ec.message());
  }
  AnswersFile f;
  f.path_ = path;
  f.fd_ = ::open(path.c_str(), O_RDWR | O_APPEND | O_CREAT | O_CLOEXEC, 0644);
  if (f.fd_ < 0) return IoError(Errno(path, "cannot open"));
  if (::flock(f.fd_, LOCK_EX | LOCK_NB) != 0) {
    if (errno == EWOULDBLOCK)
      return FailedPrecondition(path + ": another rating server has it open");
    return IoError(Errno(path, "cannot lock"));
  }
  if (!existed && !dir.empty()) {
    // The new directory entry must be durable too, or an fsync'd answer could vanish with it.
    const int dfd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (dfd >= 0) {
      ::fsync(dfd);
      ::close(dfd);
    }
  }
  std::string text;
  ND_RETURN_IF_ERROR(ReadAll(f.fd_, path, &text));
  const size_t last_newline = text.rfind('\n');
  const size_t keep = last_newline == std::string::npos ? 0 : last_newline + 1;
  if (keep < text.size()) {
    f.torn_bytes_ = static_cast<int64_t>(text.size() - keep);
    LogWarning(path + ": cutting off a torn last line of " + std::to_string(f.torn_bytes_) +
               " bytes (an answer that was never confirmed)");
    if (::ftruncate(f.fd_, static_cast<off_t>(keep)) != 0 || ::fdatasync(f.fd_) != 0)
      return IoError(Errno(path, "cannot cut the torn last line"));
    text.resize(keep);
  }
  ND_ASSIGN_OR_RETURN(f.records_, ParseLines(text, path));
  return f;
}

AnswersFile::AnswersFile(AnswersFile&& o) noexcept
    : path_(std::move(o.path_)),
      fd_(o.fd_),
      records_(std::move(o.records_)),
      torn_bytes_(o.torn_bytes_) {
  o.fd_ = -1;
}

AnswersFile& AnswersFile::operator=(AnswersFile&& o) noexcept {
  if (this != &o) {
    if (fd_ >= 0) ::close(fd_);
    path_ = std::move(o.path_);
    fd_ = o.fd_;
    records_ = std::move(o.records_);
    torn_bytes_ = o.torn_bytes_;
    o.fd_ = -1;
  }
  return *this;
}

AnswersFile::~AnswersFile() {
  if (fd_ >= 0) ::close(fd_);
}

Status AnswersFile::Append(const AnswerRecord& record) {
  if (fd_ < 0) return FailedPrecondition(path_ + ": not open");
  const std::string line = FormatAnswerLine(record);
  struct stat st;
  if (::fstat(fd_, &st) != 0) return IoError(Errno(path_, "cannot stat"));
  // A failed write may leave part of the line: cut it so that the next answer starts a line.
  auto undo = [&](const std::string& what) {
    Status s = IoError(Errno(path_, what));
    if (::ftruncate(fd_, st.st_size) != 0)
      LogWarning(path_ + ": cannot cut a partly written answer; the next start will");
    return s;
  };
  size_t done = 0;
  while (done < line.size()) {
    const ssize_t n = ::write(fd_, line.data() + done, line.size() - done);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return undo("cannot append the answer");
    done += static_cast<size_t>(n);
  }
  if (::fdatasync(fd_) != 0) return undo("cannot sync the answer to disk");
  records_.push_back(record);
  return Status::Ok();
}

}  // namespace nd
