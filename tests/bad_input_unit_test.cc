// Unit-level cases of the bad-input matrix (issue 5), where a whole pipeline run is overkill:
// the LMDB cache after a writer crashed inside a transaction (robust write lock), the cache on a
// full disk (RLIMIT_FSIZE), a cache directory that cannot be created, ±Inf activations in
// calibrate, and one-line errors of the CSV and label-PNG readers on hostile input (the shapes the
// fuzz targets found).
#include <gtest/gtest.h>
#include <lmdb.h>
#include <signal.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cmath>
#include <csignal>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <future>
#include <limits>
#include <string>
#include <vector>

#include "cache/activation_cache.h"
#include "common/broden/broden_dataset.h"
#include "common/broden/csv.h"
#include "stages/calibrate/calibrate_stage.h"
#include "tests/testing/status_assertions.h"

namespace nd {
namespace {

namespace fs = std::filesystem;

class ScratchDir {
 public:
  ScratchDir() {
    path_ = fs::temp_directory_path() /
            ("nd_bad_unit_" + std::to_string(::getpid()) + "_" + std::to_string(counter_++));
    fs::remove_all(path_);
    fs::create_directories(path_);
  }
  ~ScratchDir() { fs::remove_all(path_); }
  const fs::path& path() const { return path_; }

 private:
  static inline int counter_ = 0;
  fs::path path_;
};

std::vector<std::pair<std::string, std::string>> Batch(const std::string& prefix, int n,
                                                       size_t value_bytes) {
  std::vector<std::pair<std::string, std::string>> kv;
  for (int i = 0; i < n; ++i)
    kv.emplace_back(prefix + std::to_string(i),
                    std::string(value_bytes, static_cast<char>('a' + i)));
  return kv;
}

TEST(BadInputUnitTest, WriterKilledInsideATransactionLosesOnlyThatTransaction) {
  ScratchDir dir;
  CacheOptions options;
  options.dir = (dir.path() / "cache").string();
  auto cache = ActivationCache::Open(options);
  ND_ASSERT_OK(cache);
  ND_ASSERT_OK(cache->PutBatch(Batch("b/test/committed-", 3, 1000)));

  // Another process takes the write lock, puts records and is killed before committing, while this
  // process keeps the environment open (so the lock file is not re-initialised on the next open:
  // LMDB must notice the dead owner of its robust write mutex).
  int ready[2];
  ASSERT_EQ(::pipe(ready), 0);
  const pid_t child = ::fork();
  ASSERT_GE(child, 0);
  if (child == 0) {
    MDB_env* env = nullptr;
    MDB_txn* txn = nullptr;
    MDB_dbi dbi;
    if (mdb_env_create(&env) || mdb_env_set_mapsize(env, size_t{1} << 30) ||
        mdb_env_set_maxreaders(env, 1024) ||
        mdb_env_open(env, options.dir.c_str(), MDB_NOTLS | MDB_NOMETASYNC, 0664) ||
        mdb_txn_begin(env, nullptr, 0, &txn) || mdb_dbi_open(txn, nullptr, 0, &dbi))
      ::_exit(3);
    for (int i = 0; i < 50; ++i) {
      std::string key = "b/test/uncommitted-" + std::to_string(i), value(3000, 'u');
      MDB_val k{key.size(), key.data()}, v{value.size(), value.data()};
      if (mdb_put(txn, dbi, &k, &v, 0)) ::_exit(4);
    }
    if (::write(ready[1], "k", 1) != 1) ::_exit(5);
    for (;;) ::pause();
  }
  ::close(ready[1]);
  char byte = 0;
  ASSERT_EQ(::read(ready[0], &byte, 1), 1) << "the child could not open the cache";
  ::close(ready[0]);
  ASSERT_EQ(::kill(child, SIGKILL), 0);
  int status = 0;
  ASSERT_EQ(::waitpid(child, &status, 0), child);
  ASSERT_TRUE(WIFSIGNALED(status));

  // The next write takes over the dead writer's lock (bounded wait: a non-robust lock would hang).
  auto write = std::async(std::launch::async,
                          [&] { return cache->PutBatch(Batch("b/test/after-", 2, 500)); });
  if (write.wait_for(std::chrono::seconds(30)) != std::future_status::ready) {
    ADD_FAILURE() << "PutBatch still blocked on the crashed writer's lock after 30 s";
    std::_Exit(1);
  }
  const Status written = write.get();
  ND_ASSERT_OK(written);
  std::string value;
  for (int i = 0; i < 3; ++i) {
    ND_ASSERT_OK(cache->Get("b/test/committed-" + std::to_string(i), &value));
    EXPECT_EQ(value, std::string(1000, static_cast<char>('a' + i)));
  }
  ND_EXPECT_OK(cache->Get("b/test/after-1", &value));
  for (int i = 0; i < 50; i += 7) {
    auto has = cache->Contains("b/test/uncommitted-" + std::to_string(i));
    ND_ASSERT_OK(has);
    EXPECT_FALSE(*has) << i;
  }
  auto report = cache->Verify();
  ND_ASSERT_OK(report);
  EXPECT_EQ(report->bad_records, 0u);
}

TEST(BadInputUnitTest, DiskFullIsAOneLineErrorNamingTheCacheAndKeepsCommittedBatches) {
  ScratchDir dir;
  const std::string cache_dir = (dir.path() / "cache").string();
  // In a child: file size limit 256 KiB (writes past it fail with EFBIG once SIGXFSZ is ignored,
  // as stages do), then 20 KiB batches until one fails. The child reports the batches committed
  // and the error through a pipe.
  int out[2];
  ASSERT_EQ(::pipe(out), 0);
  const pid_t child = ::fork();
  ASSERT_GE(child, 0);
  if (child == 0) {
    ::close(out[0]);
    std::signal(SIGXFSZ, SIG_IGN);
    rlimit limit{256 * 1024, 256 * 1024};
    if (::setrlimit(RLIMIT_FSIZE, &limit) != 0) ::_exit(3);
    CacheOptions options;
    options.dir = cache_dir;
    auto cache = ActivationCache::Open(options);
    if (!cache.ok()) ::_exit(4);
    std::string report;
    int batch = 0;
    for (; batch < 100; ++batch) {
      Status s = cache->PutBatch(Batch("b/full/" + std::to_string(batch) + "-", 4, 5000));
      if (!s.ok()) {
        report = std::to_string(batch) + "\n" + s.message();
        break;
      }
    }
    if (::write(out[1], report.data(), report.size()) < 0) ::_exit(5);
    ::_exit(0);
  }
  ::close(out[1]);
  std::string text;
  char buf[1024];
  for (ssize_t n; (n = ::read(out[0], buf, sizeof(buf))) > 0;) text.append(buf, n);
  ::close(out[0]);
  int status = 0;
  ASSERT_EQ(::waitpid(child, &status, 0), child);
  ASSERT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0) << status;
  const size_t newline = text.find('\n');
  ASSERT_NE(newline, std::string::npos) << "no batch failed under a 256 KiB file size limit";
  const int committed = std::stoi(text.substr(0, newline));
  const std::string message = text.substr(newline + 1);
  EXPECT_EQ(message.find('\n'), std::string::npos) << message;
  EXPECT_EQ(message.rfind("cache '" + cache_dir + "': disk full (File too large", 0), 0u)
      << message;
  EXPECT_GT(committed, 1);

  // Every batch committed before the failure is intact; the failed one is absent.
  CacheOptions options;
  options.dir = cache_dir;
  auto cache = ActivationCache::Open(options);
  ND_ASSERT_OK(cache);
  std::string value;
  for (int b = 0; b < committed; ++b)
    for (int i = 0; i < 4; ++i) {
      ND_ASSERT_OK(cache->Get("b/full/" + std::to_string(b) + "-" + std::to_string(i), &value));
      EXPECT_EQ(value, std::string(5000, static_cast<char>('a' + i)));
    }
  for (int i = 0; i < 4; ++i) {
    auto has = cache->Contains("b/full/" + std::to_string(committed) + "-" + std::to_string(i));
    ND_ASSERT_OK(has);
    EXPECT_FALSE(*has);
  }
  auto report = cache->Verify();
  ND_ASSERT_OK(report);
  EXPECT_EQ(report->bad_records, 0u);
}

TEST(BadInputUnitTest, CacheDirThatCannotBeCreatedIsOneLineNamingIt) {
  ScratchDir dir;
  std::ofstream(dir.path() / "file") << "x";
  CacheOptions options;
  options.dir = (dir.path() / "file" / "cache").string();
  auto cache = ActivationCache::Open(options);
  ASSERT_FALSE(cache.ok());
  EXPECT_EQ(cache.status().code(), StatusCode::kIoError);
  EXPECT_EQ(cache.status().message(),
            "cache dir '" + options.dir + "': cannot create: Not a directory");
}

TEST(BadInputUnitTest, InfiniteActivationsAreCountedAndExcludedLikeNan) {
  CalibrateStage stage({{0.5}, 2});
  const float inf = std::numeric_limits<float>::infinity();
  ActivationMap a, b;
  a.units = b.units = 1;
  a.h = b.h = 1;
  a.w = b.w = 4;
  a.data = {1, inf, 3, NAN};
  b.data = {2, -inf, 4, 5};
  EXPECT_EQ(CountNonFinite(a).nan, 1);
  EXPECT_EQ(CountNonFinite(a).inf, 1);
  EXPECT_FALSE(CountNonFinite(ActivationMap{1, 1, 1, {7}}).any());
  ND_ASSERT_OK(stage.Consume(a));
  ND_ASSERT_OK(stage.Consume(b));
  auto t = stage.Finish();
  ND_ASSERT_OK(t);
  EXPECT_EQ(stage.nan_values(), 1);
  EXPECT_EQ(stage.inf_values(), 2);
  EXPECT_DOUBLE_EQ((*t)[0].values[0], 3.0);  // median of the finite 1,2,3,4,5
}

TEST(BadInputUnitTest, CsvErrorsStayOneLineWhenHeaderCellsSpanLines) {
  // Found by csv_fuzz: a quoted header cell with a line break made the "missing column" error,
  // which lists the columns, two lines.
  auto table = CsvTable::Parse("\"na\nme\",b\r\n1,2\n", "x.csv");
  ND_ASSERT_OK(table);
  Status missing = table->RequireColumn("image").status();
  EXPECT_EQ(missing.message(), "x.csv:1: missing column 'image'; columns are: na me, b");
  Status range = table->GetIntInRange(0, 0, 5, 9).status();
  EXPECT_EQ(range.message(), "x.csv:3: column 'na me': 1 is out of range [5, 9]");
  auto bad = CsvTable::Parse("a\n\"x\ny\"\n", "y.csv");
  ND_ASSERT_OK(bad);
  EXPECT_EQ(bad->GetInt(0, 0).status().message(), "y.csv:2: column 'a': 'x y' is not an integer");
}

// Writes a PNG chunk.
std::string Chunk(const char* type, const std::string& data) {
  std::string out;
  const uint32_t n = static_cast<uint32_t>(data.size());
  for (int s = 24; s >= 0; s -= 8) out += static_cast<char>(n >> s);
  out += std::string(type, 4) + data;
  out += "\0\0\0\0";  // CRC deliberately wrong: the size check comes first
  return out;
}

TEST(BadInputUnitTest, PngClaimingAHugeSizeIsRefusedBeforeDecoding) {
  // IHDR: 100000 x 100000, 8-bit RGB, then a few bytes of junk and no IEND.
  std::string ihdr;
  for (uint32_t v : {100000u, 100000u})
    for (int s = 24; s >= 0; s -= 8) ihdr += static_cast<char>(v >> s);
  ihdr += std::string("\x08\x02\x00\x00\x00", 5);
  const std::string png = std::string("\x89PNG\r\n\x1a\n", 8) + Chunk("IHDR", ihdr) + "junk";
  std::vector<uint16_t> out;
  Status s = DecodeLabelPngBytes(reinterpret_cast<const uint8_t*>(png.data()), png.size(),
                                 "huge.png", 32, 32, &out);
  EXPECT_EQ(s.code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(s.message(), "huge.png: size 100000x100000 (rows x cols) differs from sh x sw = 32x32");
  EXPECT_TRUE(out.empty());
  Status empty = DecodeLabelPngBytes(nullptr, 0, "empty.png", 4, 4, &out);
  EXPECT_EQ(empty.code(), StatusCode::kDataLoss);
  EXPECT_EQ(empty.message(), "empty.png: empty file");
}

}  // namespace
}  // namespace nd
