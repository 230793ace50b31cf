// The stat(2) identity of a file, as git's index keeps it to tell an unchanged file without
// reading it: device, inode, size, and modification and status-change times in nanoseconds.
// A file whose identity is unchanged since it was hashed has, with the racy-clean rule below, the
// same bytes: every write changes mtime and ctime, and ctime cannot be set by a user.
#pragma once

#include <cstdint>
#include <string>

namespace nd {

struct FileIdentity {
  uint64_t device = 0, inode = 0;
  int64_t size = 0;
  int64_t mtime_ns = 0, ctime_ns = 0;

  bool operator==(const FileIdentity& o) const {
    return device == o.device && inode == o.inode && size == o.size && mtime_ns == o.mtime_ns &&
           ctime_ns == o.ctime_ns;
  }
};

// One hashed file: its identity, read before its bytes were, and when (cache/file_digest_memo.h
// stores these).
struct FileDigestEntry {
  std::string path;
  FileIdentity identity;
  int64_t stat_time_ns = 0;
  std::string digest;  // SHA-256 of the bytes, 64 lowercase hex
};

// stat(2) of `path` (following symlinks) into *out; false when the file cannot be stat'ed.
bool ReadFileIdentity(const std::string& path, FileIdentity* out);

// CLOCK_REALTIME in nanoseconds, the clock file times are stamped with.
int64_t WallClockNs();

// The racy-clean rule: a digest recorded for a file whose identity was read at `stat_time_ns` can
// be trusted later only if the file's mtime and ctime were at least `kRacyWindowNs` older than that
// moment. A file changed within the window (in the same timestamp tick as the stat, or while it was
// being read) may have kept its identity with other bytes: it is hashed again (and recorded again,
// after which it is trusted).
inline constexpr int64_t kRacyWindowNs = 2'000'000'000;
inline bool IdentityIsSettled(const FileIdentity& id, int64_t stat_time_ns) {
  return id.mtime_ns < stat_time_ns - kRacyWindowNs && id.ctime_ns < stat_time_ns - kRacyWindowNs;
}

}  // namespace nd
