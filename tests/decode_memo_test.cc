// The file digest memo (cache/file_digest_memo.h) and its use by DecodeStage: a file whose stat
// identity is unchanged since it was hashed is neither read nor hashed again, the way git's index
// works; a changed identity, a racy entry (file changed within 2 s of the stat) or a malformed one
// is a miss.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <map>
#include <opencv2/imgcodecs.hpp>
#include <sstream>
#include <string>
#include <vector>

#include "cache/activation_cache.h"
#include "cache/file_digest_memo.h"
#include "common/base/digest.h"
#include "common/base/file_identity.h"
#include "stages/decode/decode_stage.h"
#include "tests/testing/score_testing.h"
#include "tests/testing/status_assertions.h"

namespace nd {
namespace {

namespace fs = std::filesystem;
using testing_score::MakeTempDir;
using testing_score::SceneOnlyBroden;
using testing_score::WriteTestBroden;

std::string FileBytes(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

class DecodeMemoTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = MakeTempDir("decode_memo");
    ASSERT_FALSE(dir_.empty());
    ASSERT_TRUE(WriteTestBroden(SceneOnlyBroden(3), dir_));
    for (int i = 0; i < 3; ++i) {  // three different 8x8 photos
      cv::Mat photo(8, 8, CV_8UC3, cv::Scalar(40 * i, 100, 200 - 50 * i));
      ASSERT_TRUE(cv::imwrite(dir_ + "/images/img" + std::to_string(i) + ".jpg", photo));
    }
    auto ds = BrodenDataset::Open(dir_);
    ND_ASSERT_OK(ds);
    dataset_ = std::make_unique<BrodenDataset>(std::move(ds).value());
  }
  void TearDown() override { fs::remove_all(dir_); }

  std::string Photo(int i) const { return dir_ + "/images/img" + std::to_string(i) + ".jpg"; }

  std::string dir_;
  std::unique_ptr<BrodenDataset> dataset_;
};

TEST_F(DecodeMemoTest, ARememberedDigestOfACachedImageSkipsReadingTheFile) {
  const std::string remembered(64, 'a');  // not img1's real digest: proves it was not hashed
  FileIdentity id1;
  ASSERT_TRUE(ReadFileIdentity(Photo(1), &id1));
  DecodeOptions o;
  o.input_size = 8;
  o.batch_size = 3;
  o.workers = 2;
  DecodeStage stage(*dataset_, o, [&](const std::string& d) { return d == remembered; });
  std::map<std::string, int> lookups;
  stage.SetDigestMemo([&, id1](const std::string& path, const FileIdentity& id) {
    return path == Photo(1) && id == id1 ? remembered : std::string();
  });
  const int64_t before = WallClockNs();
  auto batch = stage.Next();
  const int64_t after = WallClockNs();
  ASSERT_TRUE(batch.has_value());
  ASSERT_EQ(batch->cached.size(), 1u);
  EXPECT_EQ(batch->cached[0].row, 1u);
  EXPECT_EQ(batch->cached[0].digest, remembered);
  ASSERT_EQ(batch->images.size(), 2u);
  EXPECT_EQ(stage.rows_from_memo(), 1u);
  // The other two were read, hashed and reported for the memo, with the identity read first.
  const std::vector<FileDigestEntry> hashed = stage.TakeHashedFiles();
  ASSERT_EQ(hashed.size(), 2u);
  for (size_t k = 0; k < 2; ++k) {
    const int i = k == 0 ? 0 : 2;
    EXPECT_EQ(batch->images[k].row, static_cast<uint32_t>(i));
    EXPECT_EQ(hashed[k].path, Photo(i));
    EXPECT_EQ(hashed[k].digest, Sha256Hex(FileBytes(Photo(i))));
    EXPECT_EQ(batch->images[k].digest, hashed[k].digest);
    FileIdentity now;
    ASSERT_TRUE(ReadFileIdentity(Photo(i), &now));
    EXPECT_TRUE(hashed[k].identity == now);
    EXPECT_GE(hashed[k].stat_time_ns, before);
    EXPECT_LE(hashed[k].stat_time_ns, after);
  }
  EXPECT_TRUE(stage.TakeHashedFiles().empty());
}

TEST_F(DecodeMemoTest, ARememberedDigestWhoseActivationsAreMissingIsReadAndHashed) {
  FileIdentity id0;
  ASSERT_TRUE(ReadFileIdentity(Photo(0), &id0));
  DecodeOptions o;
  o.input_size = 8;
  o.batch_size = 1;
  DecodeStage stage(*dataset_, o, [](const std::string&) { return false; });
  stage.SetDigestMemo([](const std::string&, const FileIdentity&) { return std::string(64, 'b'); });
  auto batch = stage.Next();
  ASSERT_TRUE(batch.has_value());
  ASSERT_EQ(batch->images.size(), 1u);
  EXPECT_EQ(batch->images[0].digest, Sha256Hex(FileBytes(Photo(0))));
  EXPECT_EQ(stage.rows_from_memo(), 0u);
}

TEST(FileDigestMemoTest, EntriesRoundTripAndMalformedOnesAreRejected) {
  FileDigestEntry e;
  e.path = "/data/broden/images/a b.jpg";
  e.identity = FileIdentity{2049, 123456789, 4242, 1700000000123456789, 1700000001000000000};
  e.stat_time_ns = 1800000000000000000;
  e.digest = std::string(64, 'c');
  FileDigestEntry back;
  ASSERT_TRUE(DecodeFileDigestEntry(EncodeFileDigestEntry(e), &back));
  EXPECT_EQ(back.path, e.path);
  EXPECT_TRUE(back.identity == e.identity);
  EXPECT_EQ(back.stat_time_ns, e.stat_time_ns);
  EXPECT_EQ(back.digest, e.digest);
  EXPECT_FALSE(DecodeFileDigestEntry("", &back));
  EXPECT_FALSE(DecodeFileDigestEntry("nd-file-digest 2 1 2 3 4 5 6 " + e.digest + "\nx", &back));
  EXPECT_FALSE(DecodeFileDigestEntry("nd-file-digest 1 1 2 3 4 5 6 xyz\nx", &back));
  EXPECT_FALSE(DecodeFileDigestEntry("nd-file-digest 1 1 2 3 4 5 " + e.digest + "\nx", &back));
  EXPECT_EQ(FileDigestKey(e.path).size(), std::string("b/file-digest/").size() + 32);
}

TEST(FileDigestMemoTest, LookupTrustsOnlySettledEntriesOfTheSamePathAndIdentity) {
  const std::string dir = MakeTempDir("memo_cache");
  ASSERT_FALSE(dir.empty());
  {
    auto cache = ActivationCache::Open({dir + "/cache"});
    ND_ASSERT_OK(cache);
    FileDigestMemo memo(&*cache);
    const FileIdentity id{1, 2, 3, 10'000'000'000, 10'000'000'000};
    FileDigestEntry settled{"/x/settled.jpg", id, 12'000'000'001, std::string(64, 'd')};
    FileDigestEntry racy{"/x/racy.jpg", id, 11'999'999'999, std::string(64, 'e')};
    ND_ASSERT_OK(memo.Record({settled, racy}));
    EXPECT_EQ(memo.Lookup("/x/settled.jpg", id), std::string(64, 'd'));
    EXPECT_EQ(memo.Lookup("/x/racy.jpg", id), "");  // changed 2 s or less before its stat
    FileIdentity touched = id;
    touched.ctime_ns += 1;
    EXPECT_EQ(memo.Lookup("/x/settled.jpg", touched), "");
    FileIdentity replaced = id;
    replaced.inode += 1;
    EXPECT_EQ(memo.Lookup("/x/settled.jpg", replaced), "");
    EXPECT_EQ(memo.Lookup("/x/other.jpg", id), "");
    // A damaged entry is a miss, not an error.
    ND_ASSERT_OK(cache->PutBatch({{FileDigestKey("/x/bad.jpg"), "garbage"}}));
    EXPECT_EQ(memo.Lookup("/x/bad.jpg", id), "");
  }
  fs::remove_all(dir);
}

}  // namespace
}  // namespace nd
