// ActivationCache: the persistent LMDB store of activations, thresholds and blobs shared by the
// stages of nd-pipeline. Keys come from cache/cache_keys.h, values from cache/activation_record.h;
// the on-disk layout is documented in cache/FORMAT.md.
//
// Transactions: every PutBatch/Delete is ONE LMDB write transaction (a crash loses at most the
// batch in flight and never corrupts the cache: LMDB is copy-on-write with an atomic meta-page
// flip). When the map is full the transaction is aborted, the map doubled and the batch retried.
// Readers use short read transactions (one per Get/Contains/GetActivation, one per chunk of a
// Scan), so they never hold old pages for long and never block writers.
//
// Processes: any number of processes may open the same directory; LMDB serialises writers with
// a lock shared across processes. When another process grows the map, this one adopts the new
// size on its next transaction (MDB_MAP_RESIZED).
//
// Ownership and threads: an ActivationCache is a move-only handle. Handles opened on the same
// directory in one process share one MDB_env (LMDB forbids opening an environment twice in a
// process); the environment closes when the last handle goes. All methods are thread-safe:
// concurrent readers run in parallel (MDB_NOTLS: read transactions are not tied to threads), and
// writers in one process take turns. A process must not use a handle inherited through fork();
// the child opens its own.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "cache/activation_record.h"
#include "cache/cache_keys.h"
#include "common/base/activation_map.h"
#include "common/base/status.h"

namespace nd {

struct CacheOptions {
  std::string dir;  // the cache directory; created with its parents unless read_only
  // Initial map size. The map is only address space (the file grows as data is written) and is
  // doubled automatically when full; an existing larger map is kept.
  uint64_t map_size_bytes = uint64_t{1} << 30;
  // Open without write access: PutBatch and Delete fail with FailedPrecondition, and a directory
  // without a cache is NotFound.
  bool read_only = false;
  // Upper bound for automatic growth; a batch that does not fit below it fails with IoError.
  uint64_t max_map_size_bytes = uint64_t{1} << 42;  // 4 TiB
};

// Entry counts and sizes of one key group (see KeyGroup(): "a/<layer-hash>/", "t/<layer-hash>/",
// "m/<layer-hash>/", "b/<ns>/").
struct CacheGroupStats {
  std::string group;
  uint64_t entries = 0;
  uint64_t key_bytes = 0;
  uint64_t value_bytes = 0;
  std::optional<LayerManifest> manifest;  // for a/, t/, m/ groups whose manifest is stored
};

struct CacheStats {
  uint64_t entries = 0;
  uint64_t map_size_bytes = 0;  // current map size
  uint64_t used_bytes = 0;      // pages in use * page size (the data file's live size)
  uint64_t page_size = 0;
  std::vector<CacheGroupStats> groups;  // sorted by group
};

struct CacheVerifyReport {
  uint64_t records_checked = 0;  // a/ and NDAC t/ records decoded, m/ manifests parsed
  uint64_t bad_records = 0;
  std::vector<std::string> bad;  // "key: reason" for the first 100 bad records
  int stale_readers_cleared = 0;
};

class ActivationCache {
 public:
  // Opens (creating if needed) the cache in options.dir. Flags: MDB_NOTLS, MDB_NOMETASYNC (a
  // crash of the OS may lose the last committed batch, never consistency; a crash of the process
  // loses nothing committed). Clears reader slots left by dead processes. A writer that died
  // inside a transaction (SIGKILL, holding LMDB's write lock) loses only that transaction: its
  // pages were never made reachable, and LMDB's write mutex is a robust process-shared mutex, so
  // the next writer takes it over (or, when no process has the cache open, the lock file is
  // re-initialised on open).
  // Errors: InvalidArgument (empty dir), IoError naming the dir (cannot create, not writable,
  // LMDB failure with mdb_strerror), NotFound (read_only and no cache there),
  // FailedPrecondition (already open read-only in this process and read-write requested).
  [[nodiscard]] static StatusOr<ActivationCache> Open(const CacheOptions& options);

  ActivationCache(ActivationCache&&) noexcept;
  ActivationCache& operator=(ActivationCache&&) noexcept;
  ActivationCache(const ActivationCache&) = delete;
  ActivationCache& operator=(const ActivationCache&) = delete;
  ~ActivationCache();

  const std::string& dir() const;
  bool read_only() const { return read_only_; }
  // The current map size of this process's view of the environment.
  uint64_t map_size_bytes() const;

  // Writes all pairs in ONE write transaction (later pairs win on duplicate keys; existing keys
  // are overwritten). Grows the map and retries on MDB_MAP_FULL. On error nothing of the batch
  // is stored.
  // Errors: InvalidArgument (empty key or longer than LMDB's maximum, 511 bytes), IoError (map
  // could not grow past max_map_size_bytes, LMDB failure), FailedPrecondition (read-only).
  // A full disk (ENOSPC), a file-size limit (EFBIG; the process must ignore SIGXFSZ, as stage
  // processes do) or a quota (EDQUOT), also when LMDB reports it as a short write (EIO), is
  // IoError "cache '<dir>': disk full (<why>) during write batch; batches committed before are
  // kept": every earlier batch stays readable.
  [[nodiscard]] Status PutBatch(const std::vector<std::pair<std::string, std::string>>& kv);

  [[nodiscard]] StatusOr<bool> Contains(std::string_view key) const;
  // True when `key` holds an activation record whose header this build accepts
  // (DecodeActivationHeader): false for a missing key, a record of a superseded format (a float16
  // record of format version 1, written before per-unit scaling) or a damaged header. decode uses
  // it to forward such images again, so that extract rewrites their records.
  [[nodiscard]] StatusOr<bool> ContainsCurrentActivation(std::string_view key) const;

  // Copies the value of `key` into *value. Errors: NotFound naming the key and dir.
  [[nodiscard]] Status Get(std::string_view key, std::string* value) const;

  // Reads and decodes one activation record inside a short read transaction (the float32 map is
  // written straight from the mapped page into *out), then unmaps the record's whole pages from
  // this process (madvise MADV_DONTNEED on the read-only shared map: they stay in the page cache,
  // and out of this process's RSS). Errors: NotFound, DataLoss naming the key.
  [[nodiscard]] Status GetActivation(std::string_view key, ActivationMap* out) const;

  // Calls fn(key, value) for every key starting with `prefix`, in ascending byte order, until fn
  // returns false. Runs in chunks of short read transactions: every key present for the whole
  // scan is visited exactly once; keys written or deleted during the scan may or may not be.
  // The views are valid only during the call.
  // REQUIRES: fn does not call PutBatch/Delete on a handle of this cache (it may read).
  [[nodiscard]] Status Scan(
      std::string_view prefix,
      const std::function<bool(std::string_view key, std::string_view value)>& fn) const;

  // Deletes the given keys in one write transaction; returns how many existed.
  [[nodiscard]] StatusOr<uint64_t> Delete(const std::vector<std::string>& keys);
  // Deletes every key starting with `prefix` (in transactions of up to 10,000 keys); returns the
  // count. REQUIRES: prefix is not empty (use a directory removal to drop the whole cache).
  [[nodiscard]] StatusOr<uint64_t> DeletePrefix(std::string_view prefix);

  // Counts entries and bytes per key group, and attaches each layer's manifest.
  [[nodiscard]] StatusOr<CacheStats> Stats() const;

  // Clears stale reader slots (mdb_reader_check), then decodes every a/ record and every t/
  // record in the activation-record format (magic "NDAC"; other t/ formats are skipped), and
  // parses every m/ record, counting the bad ones. Corruption is reported, not an error: the Status
  // is only for failures to read the cache at all.
  [[nodiscard]] StatusOr<CacheVerifyReport> Verify() const;

  // Implementation detail (the shared MDB_env and its locks), defined in activation_cache.cc.
  struct Env;

 private:
  ActivationCache(std::shared_ptr<Env> env, bool read_only);

  std::shared_ptr<Env> env_;
  bool read_only_ = false;
};

}  // namespace nd
