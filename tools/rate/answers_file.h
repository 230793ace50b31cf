// The rating server's one durable state: an append-only file of answers, one JSON object per line
// (tools/rate/FORMAT.md describes the format).
//
// Durability: Append() writes the whole line with one write(2) on a descriptor opened O_APPEND and
// returns only after fdatasync(2) succeeded, so an answer the page was told "recorded" survives
// kill -9 of the server and a power loss. A line is written whole or, after a crash inside the
// write (power loss, full disk), as a prefix without its final '\n': Open() cuts such a torn tail
// off (ftruncate to the last '\n', logged) before appending, so the file always ends with a newline
// and every line is complete. A complete line that does not parse is DataLoss naming the line; it
// is never skipped silently.
//
// One writer per file: Open() takes an exclusive flock(2) on the file, so a second server on the
// same answers fails at start-up (FailedPrecondition) instead of interleaving. Readers
// (ReadAnswersFile, `nd-pipeline rate --summary`) take no lock and ignore a torn tail.
//
// Thread-safety: AnswersFile is not thread-safe (the rating server calls it from its one HTTP
// thread); the free functions are pure or read-only.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "common/base/status.h"

namespace nd {

// One answer. Units are 1-based, as in tally.csv and the report.
struct AnswerRecord {
  std::string layer;  // the layer rated
  std::string rater;  // as typed by the rater (validated by the server: 1..40 bytes, no controls)
  int unit = 0;       // 1-based
  std::string mode;   // "label", "name" or "human"
  std::string trial;  // the server's trial id: idempotency key together with layer and rater
  bool is_catch = false;  // a catch trial of label mode (expected answer "no")
  std::string phrase;     // label/human: the phrase shown; name: the phrase the rater wrote
  std::string answer;     // label/human: "yes" or "no"; name: "named"
  std::string time;       // UTC, ISO 8601 with milliseconds: "2026-12-02T10:11:12.345Z"

  bool operator==(const AnswerRecord& o) const;
};

// The record as one line of the file, with its final '\n'.
std::string FormatAnswerLine(const AnswerRecord& record);

// Parses one line (without '\n'). Errors (DataLoss) are "<where>: <reason>".
[[nodiscard]] StatusOr<AnswerRecord> ParseAnswerLine(const std::string& line,
                                                     const std::string& where);

// All complete records of `path` in file order; a missing file is an empty list; a torn last line
// (no '\n') is ignored.
[[nodiscard]] StatusOr<std::vector<AnswerRecord>> ReadAnswersFile(const std::string& path);

// The current time as AnswerRecord::time writes it.
std::string AnswerTimeNow();

// The open, locked answers file. Move-only; closing releases the lock.
class AnswersFile {
 public:
  // Creates the file (and its directory) when missing, locks it, reads every record and cuts a torn
  // tail. Errors name the path.
  [[nodiscard]] static StatusOr<AnswersFile> Open(const std::string& path);
  AnswersFile(AnswersFile&& other) noexcept;
  AnswersFile& operator=(AnswersFile&& other) noexcept;
  AnswersFile(const AnswersFile&) = delete;
  AnswersFile& operator=(const AnswersFile&) = delete;
  ~AnswersFile();

  // Appends one line and syncs it to disk; on error nothing is recorded in records() (the bytes
  // that may have reached the file are cut off by the next Open()).
  [[nodiscard]] Status Append(const AnswerRecord& record);

  // Every record, file order (those read by Open() and those appended since).
  const std::vector<AnswerRecord>& records() const { return records_; }
  const std::string& path() const { return path_; }
  // Bytes of a torn last line that Open() cut off (0 normally).
  int64_t torn_bytes() const { return torn_bytes_; }

 private:
  AnswersFile() = default;
  std::string path_;
  int fd_ = -1;
  std::vector<AnswerRecord> records_;
  int64_t torn_bytes_ = 0;
};

}  // namespace nd
