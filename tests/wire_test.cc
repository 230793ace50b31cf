#include "common/runtime/wire.h"

#include <gtest/gtest.h>

#include <thread>

#include "common/runtime/zmq_channel.h"
#include "tests/testing/status_assertions.h"

namespace nd {
namespace {

TEST(WireTest, ImageBatchRoundTrips) {
  ImageBatch b;
  b.batch_id = 42;
  b.images = {{3, "aa"}, {5, "bb"}};
  b.cached = {{4, "cc"}};
  b.skipped = {{6, "images/x.jpg: corrupt JPEG"}};
  b.height = 2;
  b.width = 1;
  b.tensor.assign(2 * 3 * 2 * 1 * sizeof(float), '\x01');
  auto parsed = ParseHeader(Encode(b).frames);
  ND_ASSERT_OK(parsed);
  ImageBatch out;
  ND_ASSERT_OK(Decode(*parsed, &out));
  EXPECT_EQ(out.batch_id, 42u);
  ASSERT_EQ(out.images.size(), 2u);
  EXPECT_EQ(out.images[1].row, 5u);
  EXPECT_EQ(out.images[1].digest, "bb");
  EXPECT_EQ(out.cached[0].digest, "cc");
  EXPECT_EQ(out.skipped[0].reason, "images/x.jpg: corrupt JPEG");
  EXPECT_EQ(out.tensor, b.tensor);
}

TEST(WireTest, WrongTensorSizeIsDataLoss) {
  ImageBatch b;
  b.images = {{0, "a"}};
  b.height = b.width = 2;
  b.tensor = std::string(7, '\0');
  auto parsed = ParseHeader(Encode(b).frames);
  ND_ASSERT_OK(parsed);
  ImageBatch out;
  Status s = Decode(*parsed, &out);
  EXPECT_EQ(s.code(), StatusCode::kDataLoss);
  EXPECT_NE(s.message().find("expected 48"), std::string::npos) << s.message();
}

TEST(WireTest, UnknownVersionAndTypeAndTruncatedBodyAreRejected) {
  auto frames = Encode(EndOfStream{10, 7, 1, {}, {}}).frames;
  auto bad_version = frames;
  bad_version[0][2] = 9;
  EXPECT_EQ(ParseHeader(bad_version).status().code(), StatusCode::kFailedPrecondition);
  auto bad_type = frames;
  bad_type[0][4] = 77;
  EXPECT_EQ(ParseHeader(bad_type).status().code(), StatusCode::kDataLoss);
  auto truncated = frames;
  truncated[1].pop_back();
  auto parsed = ParseHeader(truncated);
  ND_ASSERT_OK(parsed);
  EndOfStream eos;
  EXPECT_EQ(Decode(*parsed, &eos).code(), StatusCode::kDataLoss);
  EXPECT_EQ(ParseHeader({"garbage"}).status().code(), StatusCode::kDataLoss);
  // A READY body decoded as END_OF_STREAM is a type error, not a misread.
  auto ready = ParseHeader(Encode(ReadyBatch{}).frames);
  ND_ASSERT_OK(ready);
  EXPECT_FALSE(Decode(*ready, &eos).ok());
}

TEST(WireTest, HugeCountInBodyIsRejectedWithoutAllocating) {
  ReadyBatch r;
  auto frames = Encode(r).frames;
  // batch_id (8 bytes) then the image count: claim 2^31 images.
  frames[1][8 + 3] = 0x7f;
  auto parsed = ParseHeader(frames);
  ND_ASSERT_OK(parsed);
  ReadyBatch out;
  EXPECT_EQ(Decode(*parsed, &out).code(), StatusCode::kDataLoss);
}

TEST(ChannelTest, PushPullOverIpcWithBoundedWaits) {
  zmq::context_t ctx;
  std::string ep = "ipc:///tmp/nd_wire_test_" + std::to_string(::getpid()) + ".sock";
  auto push = Channel::Open(ctx, zmq::socket_type::push, ep, /*bind=*/true);
  ND_ASSERT_OK(push);
  auto pull = Channel::Open(ctx, zmq::socket_type::pull, ep, /*bind=*/false);
  ND_ASSERT_OK(pull);
  StageEvent ev{"score", "done", "ok", 3, 4};
  ND_ASSERT_OK(push->Send(Encode(ev), 2000));
  auto got = pull->Receive(2000);
  ND_ASSERT_OK(got);
  ASSERT_TRUE(got->has_value());
  StageEvent out;
  ND_ASSERT_OK(Decode(**got, &out));
  EXPECT_EQ(out.stage, "score");
  EXPECT_EQ(out.done, 3u);
  // Nothing more: the receive times out instead of blocking.
  auto none = pull->Receive(50);
  ND_ASSERT_OK(none);
  EXPECT_FALSE(none->has_value());
}

TEST(ChannelTest, SendWithoutPeerTimesOutAsUnavailable) {
  zmq::context_t ctx;
  std::string ep = "ipc:///tmp/nd_wire_test_nopeer_" + std::to_string(::getpid()) + ".sock";
  auto push = Channel::Open(ctx, zmq::socket_type::push, ep, true);
  ND_ASSERT_OK(push);
  Status s = push->Send(Encode(EndOfStream{}), 100);
  EXPECT_EQ(s.code(), StatusCode::kUnavailable);
  EXPECT_NE(s.message().find(ep), std::string::npos);
}

TEST(WireTest, StageTimingsTravelTypedInEndOfStream) {
  EndOfStream eos{3, 2, 1, {{"decode", 1.5}, {"extract", 0.25}}, {2, 0}};
  auto frames = Encode(eos).frames;
  // Body by hand: 3 u64 totals, u32 count 2, then (u32 length, bytes, f64 bits) per stage, then
  // u32 count 2 and the per-model forward counts (u64).
  std::string expected;
  auto u32 = [&](uint32_t v) { expected.append(reinterpret_cast<const char*>(&v), 4); };
  auto u64 = [&](uint64_t v) { expected.append(reinterpret_cast<const char*>(&v), 8); };
  u64(3), u64(2), u64(1), u32(2);
  u32(6), expected += "decode", u64(0x3FF8000000000000ull);   // 1.5
  u32(7), expected += "extract", u64(0x3FD0000000000000ull);  // 0.25
  u32(2), u64(2), u64(0);
  EXPECT_EQ(frames[1], expected);
  auto parsed = ParseHeader(frames);
  ND_ASSERT_OK(parsed);
  EndOfStream out;
  ND_ASSERT_OK(Decode(*parsed, &out));
  ASSERT_EQ(out.stage_seconds.size(), 2u);
  EXPECT_EQ(out.stage_seconds[1].stage, "extract");
  EXPECT_EQ(out.stage_seconds[1].seconds, 0.25);
  EXPECT_EQ(out.model_forward_images, (std::vector<uint64_t>{2, 0}));
  // A count larger than the body can hold is refused before reading.
  frames[1][24 + 3] = 0x7f;
  auto huge = ParseHeader(frames);
  ND_ASSERT_OK(huge);
  EXPECT_EQ(Decode(*huge, &out).code(), StatusCode::kDataLoss);
}

}  // namespace
}  // namespace nd
