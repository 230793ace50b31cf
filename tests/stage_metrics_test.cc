// The METRICS wire message and the stage-side MetricsPublisher (a real XPUB → SUB pair on ipc://).
#include <gtest/gtest.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <future>
#include <optional>
#include <thread>

#include "common/runtime/stage_process.h"
#include "common/runtime/wire.h"
#include "common/runtime/zmq_channel.h"
#include "tests/testing/status_assertions.h"

namespace nd {
namespace {

namespace fs = std::filesystem;

StageMetrics Sample() {
  StageMetrics m;
  m.stage = "extract";
  m.pid = 4242;
  m.sequence = 7;
  m.final = true;
  m.items_in = 40;
  m.items_out = 32;
  m.items_total = 40;
  m.skipped = 2;
  m.errors = 1;
  m.rate_instant = 12.5;
  m.rate_average = 9.75;
  m.blocked_s = 0.25;
  m.waiting_s = 1.5;
  m.rss_bytes = 123456789;
  m.uptime_s = 3.5;
  return m;
}

TEST(StageMetricsWireTest, RoundTripsEveryField) {
  const StageMetrics m = Sample();
  auto parsed = ParseHeader(Encode(m).frames);
  ND_ASSERT_OK(parsed);
  EXPECT_EQ(parsed->type, MessageType::kMetrics);
  EXPECT_STREQ(MessageTypeName(parsed->type), "METRICS");
  StageMetrics out;
  ND_ASSERT_OK(Decode(*parsed, &out));
  EXPECT_EQ(out.stage, "extract");
  EXPECT_EQ(out.pid, 4242u);
  EXPECT_EQ(out.sequence, 7u);
  EXPECT_TRUE(out.final);
  EXPECT_EQ(out.items_in, 40u);
  EXPECT_EQ(out.items_out, 32u);
  EXPECT_EQ(out.items_total, 40u);
  EXPECT_EQ(out.skipped, 2u);
  EXPECT_EQ(out.errors, 1u);
  EXPECT_EQ(out.rate_instant, 12.5);
  EXPECT_EQ(out.rate_average, 9.75);
  EXPECT_EQ(out.blocked_s, 0.25);
  EXPECT_EQ(out.waiting_s, 1.5);
  EXPECT_EQ(out.rss_bytes, 123456789u);
  EXPECT_EQ(out.uptime_s, 3.5);
}

TEST(StageMetricsWireTest, EveryTruncationAndTrailingByteIsDataLoss) {
  const auto frames = Encode(Sample()).frames;
  for (size_t keep = 0; keep < frames[1].size(); ++keep) {
    auto cut = frames;
    cut[1].resize(keep);
    auto parsed = ParseHeader(cut);
    ND_ASSERT_OK(parsed);
    StageMetrics out;
    EXPECT_EQ(Decode(*parsed, &out).code(), StatusCode::kDataLoss) << "kept " << keep;
  }
  auto longer = frames;
  longer[1].push_back('\0');
  StageMetrics out;
  EXPECT_EQ(Decode(*ParseHeader(longer), &out).code(), StatusCode::kDataLoss);
}

TEST(StageMetricsWireTest, FinalFlagOtherThanZeroOrOneIsDataLoss) {
  auto frames = Encode(Sample()).frames;
  // stage string (4 + 7 bytes), pid, sequence, then the flag.
  frames[1][4 + 7 + 8 + 8] = 2;
  StageMetrics out;
  EXPECT_EQ(Decode(*ParseHeader(frames), &out).code(), StatusCode::kDataLoss);
}

TEST(StageMetricsWireTest, OtherTypesAreRejectedAsMetricsAndTypeSixIsUnknown) {
  StageMetrics out;
  auto event = ParseHeader(Encode(StageEvent{"decode", "done", "", 0, 0}).frames);
  ND_ASSERT_OK(event);
  EXPECT_EQ(Decode(*event, &out).code(), StatusCode::kInvalidArgument);
  auto frames = Encode(Sample()).frames;
  frames[0][4] = 6;
  EXPECT_EQ(ParseHeader(frames).status().code(), StatusCode::kDataLoss);
  auto three = Encode(Sample()).frames;
  three.push_back("x");
  EXPECT_EQ(Decode(*ParseHeader(three), &out).code(), StatusCode::kDataLoss);
}

TEST(DurationCounterTest, OpenSpanCountsLiveAndClosesOnce) {
  DurationCounter c;
  {
    ScopedMicros span(c);
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
    EXPECT_EQ(c.load(), 0u);        // not closed yet
    EXPECT_GE(c.live_us(), 5000u);  // but visible
  }
  uint64_t closed = c.load();
  EXPECT_GE(closed, 5000u);
  EXPECT_EQ(c.live_us(), closed);  // nothing open any more
  c += 10;
  EXPECT_EQ(c.load(), closed + 10);
}

TEST(ResidentBytesTest, IsPositiveOnLinux) { EXPECT_GT(ResidentBytes(), 0u); }

class MetricsPublisherTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::temp_directory_path() / ("nd_metrics_pub_" + std::to_string(::getpid()));
    fs::create_directories(dir_);
    endpoint_ = "ipc://" + (dir_ / "metrics.sock").string();
  }
  void TearDown() override { fs::remove_all(dir_); }

  // Receives METRICS messages until `accept` says yes or 10 s pass.
  template <typename Accept>
  std::optional<StageMetrics> ReceiveUntil(Channel& sub, Accept accept) {
    auto until = std::chrono::steady_clock::now() + std::chrono::seconds(10);
    while (std::chrono::steady_clock::now() < until) {
      auto msg = sub.Receive(200);
      if (!msg.ok() || !msg->has_value()) continue;
      StageMetrics m;
      if (!Decode(**msg, &m).ok()) continue;
      if (accept(m)) return m;
    }
    return std::nullopt;
  }

  fs::path dir_;
  std::string endpoint_;
};

TEST_F(MetricsPublisherTest, PublishesSnapshotsAndAFinalOneOnStop) {
  zmq::context_t context;
  auto sub = Channel::Open(context, zmq::socket_type::sub, endpoint_, /*bind=*/true, 100, 0);
  ND_ASSERT_OK(sub);
  sub->socket().set(zmq::sockopt::subscribe, "");
  StageCounters counters;
  counters.items_in = 5;
  counters.items_out = 3;
  counters.items_total = 10;
  MetricsPublisher::Options options;
  options.interval = std::chrono::milliseconds(50);  // keep the test short; not asserted on
  auto publisher = MetricsPublisher::Start(context, endpoint_, "calibrate", counters,
                                           std::chrono::steady_clock::now(), options);
  ND_ASSERT_OK(publisher);

  auto first = ReceiveUntil(*sub, [](const StageMetrics&) { return true; });
  ASSERT_TRUE(first.has_value()) << "no snapshot within 10 s";
  EXPECT_EQ(first->stage, "calibrate");
  EXPECT_EQ(first->pid, static_cast<uint64_t>(::getpid()));
  EXPECT_EQ(first->items_in, 5u);
  EXPECT_EQ(first->items_total, 10u);
  EXPECT_FALSE(first->final);
  EXPECT_GT(first->rss_bytes, 0u);

  counters.items_out = 10;
  counters.skipped = 1;
  (*publisher)->Stop();
  auto last = ReceiveUntil(*sub, [](const StageMetrics& m) { return m.final; });
  ASSERT_TRUE(last.has_value()) << "no final snapshot";
  EXPECT_EQ(last->items_out, 10u);
  EXPECT_EQ(last->skipped, 1u);
  EXPECT_GT(last->sequence, first->sequence);
  (*publisher)->Stop();  // idempotent
}

TEST_F(MetricsPublisherTest, StopWithoutSubscriberReturns) {
  // Nobody binds the endpoint: the publisher must still stop (bounded final wait), not hang.
  zmq::context_t context;
  StageCounters counters;
  MetricsPublisher::Options options;
  options.final_wait = std::chrono::milliseconds(100);
  auto publisher = MetricsPublisher::Start(context, endpoint_, "score", counters,
                                           std::chrono::steady_clock::now(), options);
  ND_ASSERT_OK(publisher);
  auto stopped = std::async(std::launch::async, [&] { (*publisher)->Stop(); });
  EXPECT_EQ(stopped.wait_for(std::chrono::seconds(10)), std::future_status::ready);
}

}  // namespace
}  // namespace nd
