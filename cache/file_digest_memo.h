// FileDigestMemo: remembers the SHA-256 of image files by their stat identity (common/
// file_identity.h), so that a rescore neither reads nor hashes files that have not changed, the
// way git's index avoids re-hashing the work tree. The content digest stays the cache's identity
// of an image; the memo only saves computing it again.
//
// Stored in the activation cache under `b/file-digest/<32 hex: first 16 bytes of SHA-256 of the
// path>` (cache/FORMAT.md): the text `nd-file-digest 1 <device> <inode> <size> <mtime_ns>
// <ctime_ns> <stat_time_ns> <sha256 hex>\n<path>`. Lookup trusts an entry only when the path, the
// identity and the racy-clean rule (IdentityIsSettled) all hold; anything else, a malformed entry
// included, is a miss: the file is read and hashed as if there were no memo.
//
// Thread-safety: Lookup is const and may run concurrently; Record from one thread.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "cache/activation_cache.h"
#include "common/base/file_identity.h"
#include "common/base/status.h"

namespace nd {

// The key of `path`'s entry.
std::string FileDigestKey(const std::string& path);
// The stored value of an entry, and its parser (false on anything malformed).
std::string EncodeFileDigestEntry(const FileDigestEntry& e);
bool DecodeFileDigestEntry(std::string_view value, FileDigestEntry* out);

class FileDigestMemo {
 public:
  // `cache` must outlive the memo.
  explicit FileDigestMemo(ActivationCache* cache) : cache_(cache) {}

  // The digest recorded for `path` when it had identity `id`, or "" (no entry, another identity,
  // a racy entry, a malformed one, or a cache read error).
  std::string Lookup(const std::string& path, const FileIdentity& id) const;

  // Stores the entries in one write transaction (later entries of one path win).
  [[nodiscard]] Status Record(const std::vector<FileDigestEntry>& entries);

 private:
  ActivationCache* cache_;
};

}  // namespace nd
