#include "cache/file_digest_memo.h"

#include <cstdio>
#include <sstream>

#include "common/base/digest.h"

namespace nd {

std::string FileDigestKey(const std::string& path) {
  return "b/file-digest/" + Sha256Hex(path).substr(0, 32);
}

std::string EncodeFileDigestEntry(const FileDigestEntry& e) {
  char head[256];
  std::snprintf(
      head, sizeof(head), "nd-file-digest 1 %llu %llu %lld %lld %lld %lld ",
      static_cast<unsigned long long>(e.identity.device),
      static_cast<unsigned long long>(e.identity.inode), static_cast<long long>(e.identity.size),
      static_cast<long long>(e.identity.mtime_ns), static_cast<long long>(e.identity.ctime_ns),
      static_cast<long long>(e.stat_time_ns));
  return head + e.digest + "\n" + e.path;
}

bool DecodeFileDigestEntry(std::string_view value, FileDigestEntry* out) {
  const size_t newline = value.find('\n');
  if (newline == std::string_view::npos) return false;
  std::istringstream in(std::string(value.substr(0, newline)));
  std::string magic, digest;
  int version = 0;
  unsigned long long device = 0, inode = 0;
  long long size = 0, mtime = 0, ctime = 0, stat_time = 0;
  if (!(in >> magic >> version >> device >> inode >> size >> mtime >> ctime >> stat_time >>
        digest)) {
    return false;
  }
  std::string rest;
  if (magic != "nd-file-digest" || version != 1 || digest.size() != 64 || (in >> rest)) {
    return false;
  }
  for (char c : digest) {
    if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'))) return false;
  }
  out->identity = FileIdentity{device, inode, size, mtime, ctime};
  out->stat_time_ns = stat_time;
  out->digest = digest;
  out->path = std::string(value.substr(newline + 1));
  return true;
}

std::string FileDigestMemo::Lookup(const std::string& path, const FileIdentity& id) const {
  std::string value;
  if (!cache_->Get(FileDigestKey(path), &value).ok()) return "";
  FileDigestEntry e;
  if (!DecodeFileDigestEntry(value, &e) || e.path != path || !(e.identity == id) ||
      !IdentityIsSettled(e.identity, e.stat_time_ns)) {
    return "";
  }
  return e.digest;
}

Status FileDigestMemo::Record(const std::vector<FileDigestEntry>& entries) {
  if (entries.empty()) return Status::Ok();
  std::vector<std::pair<std::string, std::string>> kv;
  kv.reserve(entries.size());
  for (const FileDigestEntry& e : entries) {
    kv.emplace_back(FileDigestKey(e.path), EncodeFileDigestEntry(e));
  }
  return cache_->PutBatch(kv);
}

}  // namespace nd
