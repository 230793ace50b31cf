// extract's relay (stages/extract/relay_pool.h): cached references become READY notices as
// ExtractPool passes cached images on, and an image that needs the network stops it with one line.
#include "stages/extract/relay_pool.h"

#include <gtest/gtest.h>

#include <thread>

#include "tests/testing/status_assertions.h"

namespace nd {
namespace {

ImageRef Ref(uint32_t row) {
  ImageRef r;
  r.row = row;
  r.digest = std::string(64, static_cast<char>('a' + row % 6));
  return r;
}

TEST(RelayPoolTest, CachedReferencesGoOnSortedByRowWithSkipsAndNothingForwarded) {
  ND_ASSERT_OK_AND_ASSIGN(auto pool, RelayPool::Open(PipelineConfig{}));
  ImageBatch batch;
  batch.batch_id = 7;
  batch.cached = {Ref(5), Ref(2), Ref(9)};
  batch.skipped = {SkippedRow{3, "truncated JPEG"}};
  ND_ASSERT_OK(pool->Submit(batch));
  EXPECT_EQ(pool->in_flight(), 1u);
  ReadyBatch ready;
  ND_ASSERT_OK_AND_ASSIGN(RelayPool::Event event, pool->Next(1000, &ready));
  ASSERT_EQ(event, RelayPool::Event::kReady);
  EXPECT_EQ(ready.batch_id, 7u);
  ASSERT_EQ(ready.images.size(), 3u);
  EXPECT_EQ(ready.images[0].row, 2u);
  EXPECT_EQ(ready.images[1].row, 5u);
  EXPECT_EQ(ready.images[2].row, 9u);
  EXPECT_EQ(ready.images[1].digest, Ref(5).digest);
  EXPECT_EQ(ready.forwarded, 0u);
  ASSERT_EQ(ready.skipped.size(), 1u);
  EXPECT_EQ(ready.skipped[0].row, 3u);
  ND_ASSERT_OK_AND_ASSIGN(event, pool->Next(10, &ready));
  EXPECT_EQ(event, RelayPool::Event::kTimeout);
  pool->Close();
  ND_ASSERT_OK_AND_ASSIGN(event, pool->Next(1000, &ready));
  EXPECT_EQ(event, RelayPool::Event::kDrained);
  EXPECT_EQ(pool->Submit(ImageBatch{}).code(), StatusCode::kFailedPrecondition);
}

TEST(RelayPoolTest, AnImageToForwardStopsItNamingTheRow) {
  ND_ASSERT_OK_AND_ASSIGN(auto pool, RelayPool::Open(PipelineConfig{}));
  ImageBatch batch;
  batch.images = {Ref(12)};
  batch.cached = {Ref(1)};
  const Status s = pool->Submit(batch);
  EXPECT_EQ(s.code(), StatusCode::kFailedPrecondition);
  EXPECT_EQ(s.message(),
            "extract relay: row 12 needs a forward pass (its image changed after the run was "
            "planned); `nd-pipeline up` again forwards it");
  // The receiving thread aborts the pool with that status; Next reports it.
  pool->Abort(s);
  ReadyBatch ready;
  EXPECT_EQ(pool->Next(1000, &ready).status().message(), s.message());
}

}  // namespace
}  // namespace nd
