#include "cache/activation_cache.h"

#include <lmdb.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <sys/types.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <condition_variable>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <map>
#include <mutex>
#include <shared_mutex>
#include <system_error>

#include "common/base/descriptors.h"
#include "common/base/log.h"

namespace nd {

// One open MDB_env, shared by every handle on the same directory in this process.
struct ActivationCache::Env {
  MDB_env* env = nullptr;
  MDB_dbi dbi = 0;
  std::string dir;
  bool read_only = false;  // opened with MDB_RDONLY
  uint64_t max_map_size = 0;
  pid_t pid = 0;
  std::pair<dev_t, ino_t> id;
  bool registered = false;  // listed in the process-wide registry
  size_t max_key_size = 0;
  // mdb_env_set_mapsize requires that no transaction of this process is active: every
  // transaction holds txn_mu shared, resizing holds it exclusively.
  mutable std::shared_mutex txn_mu;
  // Serialises this process's writers (LMDB would block a second writer thread on its own lock
  // anyway; holding ours first keeps the map-growth retry loop simple).
  std::mutex write_mu;

  ~Env();
};

namespace {

// Process-wide registry of open environments, keyed by the directory's (device, inode).
struct Registry {
  std::mutex mu;
  std::condition_variable closed;
  std::map<std::pair<dev_t, ino_t>, std::weak_ptr<ActivationCache::Env>> envs;
};

Registry& GetRegistry() {
  static Registry* r = new Registry;  // never destroyed: handles may outlive static teardown
  return *r;
}

constexpr int kMaxRetries = 64;
constexpr size_t kScanChunk = 4096;
constexpr size_t kDeleteChunk = 10000;

MDB_val Val(std::string_view s) { return MDB_val{s.size(), const_cast<char*>(s.data())}; }
std::string_view View(const MDB_val& v) {
  return std::string_view(static_cast<const char*>(v.mv_data), v.mv_size);
}

// Aborts a transaction on every exit path, exceptions from callbacks included.
class TxnGuard {
 public:
  explicit TxnGuard(MDB_txn* txn) : txn_(txn) {}
  ~TxnGuard() {
    if (txn_ != nullptr) mdb_txn_abort(txn_);
  }
  TxnGuard(const TxnGuard&) = delete;
  TxnGuard& operator=(const TxnGuard&) = delete;
  MDB_txn* get() const { return txn_; }
  // Commits; the transaction is freed either way.
  int Commit() {
    int rc = mdb_txn_commit(txn_);
    txn_ = nullptr;
    return rc;
  }

 private:
  MDB_txn* txn_;
};

class CursorGuard {
 public:
  CursorGuard() = default;
  ~CursorGuard() {
    if (cursor != nullptr) mdb_cursor_close(cursor);
  }
  CursorGuard(const CursorGuard&) = delete;
  CursorGuard& operator=(const CursorGuard&) = delete;
  MDB_cursor* cursor = nullptr;
};

}  // namespace

ActivationCache::Env::~Env() {
  // A child process must not touch an environment inherited through fork().
  if (env != nullptr && pid == getpid()) mdb_env_close(env);
  if (!registered) return;  // (also: Open may hold the registry lock while destroying us)
  Registry& r = GetRegistry();
  std::lock_guard<std::mutex> lock(r.mu);
  auto it = r.envs.find(id);
  if (it != r.envs.end() && it->second.expired()) r.envs.erase(it);
  r.closed.notify_all();
}

namespace {

// Why a failed write of the cache was a full disk, or "" when it was not. LMDB turns a short write
// into EIO, and a write that runs into a full disk or the file-size limit (RLIMIT_FSIZE) is first
// short (ENOSPC / EFBIG only come when not even one byte fits), so EIO is checked against both.
std::string DiskFullReason(const std::string& dir, int rc) {
  if (rc == ENOSPC || rc == EFBIG || rc == EDQUOT) return mdb_strerror(rc);
  if (rc != EIO) return "";
  struct rlimit limit;
  struct stat st;
  if (getrlimit(RLIMIT_FSIZE, &limit) == 0 && limit.rlim_cur != RLIM_INFINITY &&
      stat((dir + "/data.mdb").c_str(), &st) == 0 &&
      static_cast<uint64_t>(st.st_size) + (uint64_t{1} << 16) >= limit.rlim_cur) {
    return "File too large: data.mdb reached the file size limit of " +
           std::to_string(limit.rlim_cur) + " bytes";
  }
  struct statvfs fs;
  if (statvfs(dir.c_str(), &fs) == 0 &&
      static_cast<uint64_t>(fs.f_bavail) * fs.f_frsize < (uint64_t{1} << 20)) {
    return "No space left on device: " +
           std::to_string(static_cast<uint64_t>(fs.f_bavail) * fs.f_frsize) + " bytes free";
  }
  return "";
}

Status LmdbError(const std::string& dir, const char* what, int rc) {
  if (const std::string full = DiskFullReason(dir, rc); !full.empty()) {
    // EFBIG: past the process's file-size limit (RLIMIT_FSIZE); EDQUOT: past a quota. For the
    // user all three are the same: the cache cannot grow. Committed batches are intact (LMDB only
    // flips the meta page after every page of a transaction is written).
    return IoError("cache '" + dir + "': disk full (" + full + ") during " + what +
                   "; batches committed before are kept");
  }
  std::string msg = "cache '" + dir + "': " + what + ": " + mdb_strerror(rc);
  if (rc == ENOSPC || rc == EACCES || rc == EROFS || rc == EIO || rc == ENOMEM ||
      rc == MDB_MAP_FULL) {
    return IoError(msg);
  }
  if (rc == MDB_CORRUPTED || rc == MDB_PAGE_NOTFOUND || rc == MDB_INVALID ||
      rc == MDB_VERSION_MISMATCH) {
    return DataLoss(msg);
  }
  return IoError(msg);
}

std::string Printable(std::string_view key) {
  std::string out;
  for (char c : key) {
    if (c >= 0x20 && c < 0x7F) {
      out += c;
    } else {
      char buf[5];
      std::snprintf(buf, sizeof(buf), "\\x%02x", static_cast<unsigned char>(c));
      out += buf;
    }
  }
  return out;
}

// Runs body(txn) inside a read transaction; adopts a map grown by another process.
template <typename Body>
Status WithReadTxn(ActivationCache::Env* e, Body&& body) {
  for (int attempt = 0;; ++attempt) {
    std::shared_lock<std::shared_mutex> lock(e->txn_mu);
    MDB_txn* txn = nullptr;
    int rc = mdb_txn_begin(e->env, nullptr, MDB_RDONLY, &txn);
    if (rc == MDB_MAP_RESIZED && attempt < kMaxRetries) {
      lock.unlock();
      std::unique_lock<std::shared_mutex> excl(e->txn_mu);
      rc = mdb_env_set_mapsize(e->env, 0);
      if (rc != 0) return LmdbError(e->dir, "adopting the grown map", rc);
      continue;
    }
    if (rc != 0) return LmdbError(e->dir, "begin read transaction", rc);
    TxnGuard guard(txn);
    return body(txn);
  }
}

}  // namespace

ActivationCache::ActivationCache(std::shared_ptr<Env> env, bool read_only)
    : env_(std::move(env)), read_only_(read_only) {}
ActivationCache::ActivationCache(ActivationCache&&) noexcept = default;
ActivationCache& ActivationCache::operator=(ActivationCache&&) noexcept = default;
ActivationCache::~ActivationCache() = default;

const std::string& ActivationCache::dir() const { return env_->dir; }

uint64_t ActivationCache::map_size_bytes() const {
  MDB_envinfo info;
  std::shared_lock<std::shared_mutex> lock(env_->txn_mu);
  if (mdb_env_info(env_->env, &info) != 0) return 0;
  return info.me_mapsize;
}

StatusOr<ActivationCache> ActivationCache::Open(const CacheOptions& options) {
  const std::string& dir = options.dir;
  if (dir.empty()) return InvalidArgument("cache: cache.dir is empty");
  if (!options.read_only) {
    std::error_code ec;
    std::filesystem::create_directories(dir, ec);
    if (ec) return IoError("cache dir '" + dir + "': cannot create: " + ec.message());
  }
  struct stat st;
  if (stat(dir.c_str(), &st) != 0) {
    int err = errno;
    std::string msg = "cache dir '" + dir + "': " + std::strerror(err);
    return err == ENOENT ? NotFound(msg) : IoError(msg);
  }
  if (!S_ISDIR(st.st_mode)) return InvalidArgument("cache dir '" + dir + "' is not a directory");
  if (!options.read_only && access(dir.c_str(), W_OK) != 0) {
    return IoError("cache dir '" + dir + "' is not writable: " + std::strerror(errno));
  }
  if (options.read_only && access((dir + "/data.mdb").c_str(), F_OK) != 0) {
    return NotFound("cache dir '" + dir + "' holds no cache (no data.mdb)");
  }

  const std::pair<dev_t, ino_t> id{st.st_dev, st.st_ino};
  Registry& r = GetRegistry();
  std::unique_lock<std::mutex> lock(r.mu);
  for (;;) {
    auto it = r.envs.find(id);
    if (it == r.envs.end()) break;
    if (auto shared = it->second.lock()) {
      if (shared->pid != getpid()) {  // inherited through fork(): ignore it
        r.envs.erase(it);
        break;
      }
      if (shared->read_only && !options.read_only) {
        return FailedPrecondition("cache dir '" + dir +
                                  "' is already open read-only in this process");
      }
      return ActivationCache(std::move(shared), options.read_only);
    }
    // Expired but its destructor has not finished closing it yet: wait, never open twice.
    r.closed.wait(lock);
  }

  auto env = std::make_shared<Env>();
  env->dir = dir;
  env->read_only = options.read_only;
  env->max_map_size = std::max(options.max_map_size_bytes, options.map_size_bytes);
  env->pid = getpid();
  env->id = id;
  int rc = mdb_env_create(&env->env);
  if (rc != 0) return LmdbError(dir, "mdb_env_create", rc);
  // Readers of this process plus other processes; each live read transaction takes one slot.
  rc = mdb_env_set_maxreaders(env->env, 1024);
  if (rc == 0) rc = mdb_env_set_mapsize(env->env, options.map_size_bytes);
  if (rc != 0) return LmdbError(dir, "configuring the environment", rc);
  unsigned flags = MDB_NOTLS | MDB_NOMETASYNC | (options.read_only ? MDB_RDONLY : 0);
  rc = mdb_env_open(env->env, dir.c_str(), flags, 0664);
  if (rc != 0) {
    // mdb_env_close is still required after a failed open; ~Env does it.
    return LmdbError(dir, "opening the LMDB environment", rc);
  }
  {
    // LMDB's data file descriptor (its lock file is opened O_CLOEXEC by LMDB itself where the
    // platform has it); a forked child must not inherit either (descriptors.h).
    mdb_filehandle_t fd = -1;
    if (mdb_env_get_fd(env->env, &fd) == 0) SetCloseOnExec(fd);
  }
  int dead = 0;
  mdb_reader_check(env->env, &dead);
  if (dead > 0) LogInfo("cache '" + dir + "': cleared " + std::to_string(dead) + " stale readers");
  env->max_key_size = static_cast<size_t>(mdb_env_get_maxkeysize(env->env));
  {
    MDB_txn* txn = nullptr;
    rc = mdb_txn_begin(env->env, nullptr, options.read_only ? MDB_RDONLY : 0, &txn);
    if (rc == MDB_MAP_RESIZED) {
      mdb_env_set_mapsize(env->env, 0);
      rc = mdb_txn_begin(env->env, nullptr, options.read_only ? MDB_RDONLY : 0, &txn);
    }
    if (rc != 0) return LmdbError(dir, "begin transaction", rc);
    rc = mdb_dbi_open(txn, nullptr, 0, &env->dbi);
    if (rc != 0) {
      mdb_txn_abort(txn);
      return LmdbError(dir, "opening the main database", rc);
    }
    rc = mdb_txn_commit(txn);
    if (rc != 0) return LmdbError(dir, "commit", rc);
  }
  env->registered = true;
  r.envs[id] = env;
  return ActivationCache(std::move(env), options.read_only);
}

namespace {

// Doubles the map (after adopting any larger size another process set). REQUIRES: e->write_mu.
Status GrowMap(ActivationCache::Env* e) {
  std::unique_lock<std::shared_mutex> excl(e->txn_mu);
  // The map is at least our own size (not yet recorded in the file when the failed transaction
  // was the first after a growth) and at least the size another process recorded in the file.
  MDB_envinfo info;
  int rc = mdb_env_info(e->env, &info);
  if (rc != 0) return LmdbError(e->dir, "mdb_env_info", rc);
  const uint64_t ours = info.me_mapsize;
  rc = mdb_env_set_mapsize(e->env, 0);  // adopt the size recorded in the file
  if (rc == 0) rc = mdb_env_info(e->env, &info);
  if (rc != 0) return LmdbError(e->dir, "reading the map size", rc);
  const uint64_t current = std::max<uint64_t>(ours, info.me_mapsize);
  if (current >= e->max_map_size) {
    return IoError("cache '" + e->dir + "': map full at " + std::to_string(current) +
                   " bytes (the limit); split the batch or raise the limit");
  }
  const uint64_t grown = std::min<uint64_t>(current * 2, e->max_map_size);
  rc = mdb_env_set_mapsize(e->env, grown);
  if (rc != 0) return LmdbError(e->dir, "growing the map", rc);
  LogDebug("cache '" + e->dir + "': map grown to " + std::to_string(grown) + " bytes");
  return Status::Ok();
}

// Runs body(txn) -> LMDB rc in one write transaction, retrying after map growth or resize.
// REQUIRES: e->write_mu held.
template <typename Body>
Status WithWriteTxn(ActivationCache::Env* e, const char* what, Body&& body) {
  for (int attempt = 0; attempt < kMaxRetries; ++attempt) {
    int rc;
    {
      std::shared_lock<std::shared_mutex> lock(e->txn_mu);
      MDB_txn* txn = nullptr;
      rc = mdb_txn_begin(e->env, nullptr, 0, &txn);
      if (rc == 0) {
        TxnGuard guard(txn);
        rc = body(txn);
        if (rc == 0) rc = guard.Commit();
      }
    }
    if (rc == 0) return Status::Ok();
    if (rc == MDB_MAP_RESIZED) {
      std::unique_lock<std::shared_mutex> excl(e->txn_mu);
      rc = mdb_env_set_mapsize(e->env, 0);
      if (rc != 0) return LmdbError(e->dir, "adopting the grown map", rc);
      continue;
    }
    if (rc == MDB_MAP_FULL) {
      ND_RETURN_IF_ERROR(GrowMap(e));
      continue;
    }
    return LmdbError(e->dir, what, rc);
  }
  return IoError("cache '" + e->dir + "': " + what + ": gave up after " +
                 std::to_string(kMaxRetries) + " retries");
}

}  // namespace

Status ActivationCache::PutBatch(const std::vector<std::pair<std::string, std::string>>& kv) {
  if (read_only_) return FailedPrecondition("cache '" + env_->dir + "' is open read-only");
  for (const auto& [key, value] : kv) {
    if (key.empty() || key.size() > env_->max_key_size) {
      return InvalidArgument("cache '" + env_->dir + "': key '" + Printable(key) + "' has " +
                             std::to_string(key.size()) + " bytes; allowed 1.." +
                             std::to_string(env_->max_key_size));
    }
  }
  if (kv.empty()) return Status::Ok();
  Env* e = env_.get();
  std::lock_guard<std::mutex> wlock(e->write_mu);
  return WithWriteTxn(e, "write batch", [&](MDB_txn* txn) {
    for (const auto& [key, value] : kv) {
      MDB_val k = Val(key), v = Val(value);
      int rc = mdb_put(txn, e->dbi, &k, &v, 0);
      if (rc != 0) return rc;
    }
    return 0;
  });
}

namespace {

// Looks `key` up in one short read transaction and, when present, returns test(value) (the view is
// valid only during the call); false when absent.
template <typename Test>
StatusOr<bool> TestValue(ActivationCache::Env* e, std::string_view key, Test&& test) {
  if (key.empty()) return false;
  bool result = false;
  ND_RETURN_IF_ERROR(WithReadTxn(e, [&](MDB_txn* txn) -> Status {
    MDB_val k = Val(key), v;
    int rc = mdb_get(txn, e->dbi, &k, &v);
    if (rc == MDB_NOTFOUND) return Status::Ok();
    if (rc != 0) return LmdbError(e->dir, "get", rc);
    result = test(View(v));
    return Status::Ok();
  }));
  return result;
}

// Looks `key` up in one short read transaction and hands its value to read(value) (the view is
// valid only during the call). Errors: NotFound naming the cache and the key; read's own.
template <typename Read>
Status ReadValue(ActivationCache::Env* e, std::string_view key, Read&& read) {
  return WithReadTxn(e, [&](MDB_txn* txn) -> Status {
    MDB_val k = Val(key), v;
    int rc = key.empty() ? MDB_NOTFOUND : mdb_get(txn, e->dbi, &k, &v);
    if (rc == MDB_NOTFOUND) {
      return NotFound("cache '" + e->dir + "': key '" + Printable(key) + "' not found");
    }
    if (rc != 0) return LmdbError(e->dir, "get", rc);
    return read(View(v));
  });
}

}  // namespace

StatusOr<bool> ActivationCache::Contains(std::string_view key) const {
  return TestValue(env_.get(), key, [](std::string_view) { return true; });
}

StatusOr<bool> ActivationCache::ContainsCurrentActivation(std::string_view key) const {
  // The header only (no copy, no CRC): a superseded or damaged record is "not current", so the
  // image is forwarded again and the record rewritten.
  return TestValue(env_.get(), key,
                   [](std::string_view value) { return DecodeActivationHeader(value).ok(); });
}

Status ActivationCache::Get(std::string_view key, std::string* value) const {
  return ReadValue(env_.get(), key, [&](std::string_view v) {
    value->assign(v.data(), v.size());
    return Status::Ok();
  });
}

namespace {

// Unmaps the whole pages inside `value` (a view into LMDB's read-only shared map) from this
// process. The pages stay in the page cache (a later read maps them again, a minor fault); what
// goes is their share of this process's resident set: a stage that reads every record of a layer
// (score, calibrate) otherwise ends with the whole layer's records counted in its RSS.
void UnmapValuePages(std::string_view value) {
  static const uintptr_t page = static_cast<uintptr_t>(::sysconf(_SC_PAGESIZE));
  const uintptr_t begin = (reinterpret_cast<uintptr_t>(value.data()) + page - 1) & ~(page - 1);
  const uintptr_t end = (reinterpret_cast<uintptr_t>(value.data()) + value.size()) & ~(page - 1);
  if (end > begin) ::madvise(reinterpret_cast<void*>(begin), end - begin, MADV_DONTNEED);
}

}  // namespace

Status ActivationCache::GetActivation(std::string_view key, ActivationMap* out) const {
  Env* e = env_.get();
  return ReadValue(e, key, [&](std::string_view v) {
    Status decoded = DecodeActivation(v, out).WithContext("cache '" + e->dir + "': key '" +
                                                          Printable(key) + "'");
    UnmapValuePages(v);
    return decoded;
  });
}

Status ActivationCache::Scan(
    std::string_view prefix,
    const std::function<bool(std::string_view key, std::string_view value)>& fn) const {
  Env* e = env_.get();
  std::string resume(prefix);  // first chunk: seek to prefix; later: to the last key visited
  bool visited_any = false;
  bool done = false;
  while (!done) {
    ND_RETURN_IF_ERROR(WithReadTxn(e, [&](MDB_txn* txn) -> Status {
      CursorGuard c;
      int rc = mdb_cursor_open(txn, e->dbi, &c.cursor);
      if (rc != 0) return LmdbError(e->dir, "open cursor", rc);
      MDB_val k = Val(resume), v;
      rc = resume.empty() ? mdb_cursor_get(c.cursor, &k, &v, MDB_FIRST)
                          : mdb_cursor_get(c.cursor, &k, &v, MDB_SET_RANGE);
      if (rc == 0 && visited_any && View(k) == resume) {
        rc = mdb_cursor_get(c.cursor, &k, &v, MDB_NEXT);
      }
      size_t n = 0;
      while (rc == 0) {
        std::string_view key = View(k);
        if (key.substr(0, prefix.size()) != prefix || !fn(key, View(v))) {
          done = true;
          return Status::Ok();
        }
        if (++n >= kScanChunk) {
          resume.assign(key);
          visited_any = true;
          return Status::Ok();  // end this read transaction; the next chunk resumes after key
        }
        rc = mdb_cursor_get(c.cursor, &k, &v, MDB_NEXT);
      }
      if (rc != MDB_NOTFOUND) return LmdbError(e->dir, "scan", rc);
      done = true;
      return Status::Ok();
    }));
  }
  return Status::Ok();
}

StatusOr<uint64_t> ActivationCache::Delete(const std::vector<std::string>& keys) {
  if (read_only_) return FailedPrecondition("cache '" + env_->dir + "' is open read-only");
  Env* e = env_.get();
  std::lock_guard<std::mutex> wlock(e->write_mu);
  uint64_t deleted = 0;
  ND_RETURN_IF_ERROR(WithWriteTxn(e, "delete", [&](MDB_txn* txn) {
    deleted = 0;  // a retried transaction starts over
    for (const std::string& key : keys) {
      if (key.empty() || key.size() > e->max_key_size) continue;
      MDB_val k = Val(key);
      int rc = mdb_del(txn, e->dbi, &k, nullptr);
      if (rc == MDB_NOTFOUND) continue;
      if (rc != 0) return rc;
      ++deleted;
    }
    return 0;
  }));
  return deleted;
}

StatusOr<uint64_t> ActivationCache::DeletePrefix(std::string_view prefix) {
  if (prefix.empty()) return InvalidArgument("cache '" + env_->dir + "': empty delete prefix");
  uint64_t total = 0;
  for (;;) {
    std::vector<std::string> keys;
    ND_RETURN_IF_ERROR(Scan(prefix, [&](std::string_view key, std::string_view) {
      keys.emplace_back(key);
      return keys.size() < kDeleteChunk;
    }));
    if (keys.empty()) return total;
    ND_ASSIGN_OR_RETURN(uint64_t n, Delete(keys));
    total += n;
  }
}

StatusOr<CacheStats> ActivationCache::Stats() const {
  CacheStats stats;
  Env* e = env_.get();
  std::map<std::string, CacheGroupStats> groups;
  std::map<std::string, LayerManifest> manifests;  // by layer hash
  ND_RETURN_IF_ERROR(Scan("", [&](std::string_view key, std::string_view value) {
    ++stats.entries;
    CacheGroupStats& g = groups[std::string(KeyGroup(key))];
    ++g.entries;
    g.key_bytes += key.size();
    g.value_bytes += value.size();
    if (key.substr(0, 2) == "m/" && !KeyLayerHash(key).empty()) {
      LayerManifest m;
      if (DecodeLayerManifest(value, &m).ok()) manifests[std::string(KeyLayerHash(key))] = m;
    }
    return true;
  }));
  for (auto& [name, g] : groups) {
    g.group = name;
    auto it = manifests.find(std::string(KeyLayerHash(name)));
    if (it != manifests.end()) g.manifest = it->second;
    stats.groups.push_back(std::move(g));
  }
  MDB_envinfo info;
  MDB_stat st;
  {
    std::shared_lock<std::shared_mutex> lock(e->txn_mu);
    int rc = mdb_env_info(e->env, &info);
    if (rc == 0) rc = mdb_env_stat(e->env, &st);
    if (rc != 0) return LmdbError(e->dir, "stat", rc);
  }
  stats.map_size_bytes = info.me_mapsize;
  stats.page_size = st.ms_psize;
  stats.used_bytes = (static_cast<uint64_t>(info.me_last_pgno) + 1) * st.ms_psize;
  return stats;
}

StatusOr<CacheVerifyReport> ActivationCache::Verify() const {
  CacheVerifyReport report;
  Env* e = env_.get();
  int dead = 0;
  int rc = mdb_reader_check(e->env, &dead);
  if (rc != 0) return LmdbError(e->dir, "mdb_reader_check", rc);
  report.stale_readers_cleared = dead;
  ActivationMap scratch;
  auto bad = [&](std::string_view key, const std::string& why) {
    ++report.bad_records;
    if (report.bad.size() < 100) report.bad.push_back(Printable(key) + ": " + why);
  };
  ND_RETURN_IF_ERROR(Scan("", [&](std::string_view key, std::string_view value) {
    if (key.substr(0, 2) == "a/") {
      ++report.records_checked;
      Status s = DecodeActivation(value, &scratch);
      if (!s.ok()) bad(key, s.message());
    } else if (key.substr(0, 2) == "m/") {
      ++report.records_checked;
      LayerManifest m;
      Status s = DecodeLayerManifest(value, &m);
      if (!s.ok()) {
        bad(key, s.message());
      } else if (ManifestKey(m.id()) != key) {
        bad(key, "manifest describes another layer (hash mismatch)");
      }
    }
    return true;
  }));
  return report;
}

}  // namespace nd
