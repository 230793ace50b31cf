// CURVE on stage connections (common/runtime/curve.h): the keys file, and real ZeroMQ sockets on
// 127.0.0.1 where only a peer holding the run's client key gets a message through.
#include "common/runtime/curve.h"

#include <gtest/gtest.h>
#include <sys/stat.h>

#include <string>

#include "common/runtime/wire.h"
#include "common/runtime/zmq_channel.h"
#include "tests/testing/files.h"
#include "tests/testing/monitor_testing.h"
#include "tests/testing/status_assertions.h"

namespace nd {
namespace {

using ::nd::testing::TempDir;
using ::nd::testing::WriteText;

WireMessage Hello() {
  EndOfStream eos;
  eos.images = 7;
  return Encode(eos);
}

// Sends one message from a client holding `client` keys to a CURVE server of `run` on a fresh
// loopback port; returns whether it arrived within the wait, and the refusals the server logged.
struct Attempt {
  bool delivered = false;
  uint64_t refused = 0;
};
Attempt TrySend(const CurveKeys& run, const CurveKeys& client) {
  Attempt a;
  const std::string endpoint = "tcp://127.0.0.1:" + std::to_string(testing::FreePort());
  zmq::context_t server_context, client_context;
  auto auth = CurveAuthenticator::Start(server_context, run, "test-server");
  EXPECT_TRUE(auth.ok()) << auth.status().message();
  if (!auth.ok()) return a;
  auto in =
      Channel::Open(server_context, zmq::socket_type::pull, endpoint, /*bind=*/true, 4, 0, &run);
  EXPECT_TRUE(in.ok()) << in.status().message();
  auto out = Channel::Open(client_context, zmq::socket_type::push, endpoint, /*bind=*/false, 4, 0,
                           &client);
  EXPECT_TRUE(out.ok()) << out.status().message();
  if (!in.ok() || !out.ok()) return a;
  // A PUSH socket queues until a handshake completes; a refused handshake never completes.
  const Status sent = out->Send(Hello(), 1500);
  if (sent.ok()) {
    auto got = in->Receive(1500);
    a.delivered = got.ok() && got->has_value();
  }
  a.refused = (*auth)->refused();
  return a;
}

TEST(CurveTest, KeysFileRoundTripsWithOwnerOnlyMode) {
  if (!CurveAvailable()) GTEST_SKIP() << "libzmq without CURVE";
  TempDir dir("curve_keys");
  ND_ASSERT_OK_AND_ASSIGN(const CurveKeys keys, GenerateCurveKeys());
  EXPECT_EQ(keys.server_public.size(), 40u);
  EXPECT_NE(keys.server_public, keys.client_public);
  const std::string path = (dir / "curve.keys").string();
  ND_ASSERT_OK(WriteCurveKeys(path, keys));
  struct stat st {};
  ASSERT_EQ(::stat(path.c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0600u);
  ND_ASSERT_OK_AND_ASSIGN(const CurveKeys back, ReadCurveKeys(path));
  EXPECT_EQ(back.server_public, keys.server_public);
  EXPECT_EQ(back.server_secret, keys.server_secret);
  EXPECT_EQ(back.client_public, keys.client_public);
  EXPECT_EQ(back.client_secret, keys.client_secret);
}

TEST(CurveTest, MalformedKeysFilesNameTheLine) {
  TempDir dir("curve_bad");
  const std::string path = (dir / "curve.keys").string();
  EXPECT_EQ(ReadCurveKeys(path).status().code(), StatusCode::kNotFound);
  const std::string k40(40, '0');  // "0000…" is valid Z85 (all zero bytes)
  ASSERT_TRUE(WriteText(path, "# c\nserver_public = " + k40 + "\nserver_secret = short\n"));
  EXPECT_EQ(ReadCurveKeys(path).status().message(),
            path + ":3: server_secret is not a 40-character Z85 key");
  ASSERT_TRUE(WriteText(path, "client_public = " + k40 + "\n"));
  EXPECT_EQ(ReadCurveKeys(path).status().message(), path + ":1: expected server_public");
  ASSERT_TRUE(WriteText(path, "server_public = " + k40 + "\nserver_secret = " + k40 + "\n"));
  EXPECT_EQ(ReadCurveKeys(path).status().message(), path + ": client_public missing");
}

TEST(CurveTest, OnlyTheRunsClientKeyGetsThrough) {
  if (!CurveAvailable()) GTEST_SKIP() << "libzmq without CURVE";
  ND_ASSERT_OK_AND_ASSIGN(const CurveKeys run, GenerateCurveKeys());
  ND_ASSERT_OK_AND_ASSIGN(const CurveKeys other, GenerateCurveKeys());

  const Attempt good = TrySend(run, run);
  EXPECT_TRUE(good.delivered);
  EXPECT_EQ(good.refused, 0u);

  // Knows the server's public key (it is no secret) but holds another client pair: refused by
  // the ZAP handler, logged.
  CurveKeys stranger = run;
  stranger.client_public = other.client_public;
  stranger.client_secret = other.client_secret;
  const Attempt refused = TrySend(run, stranger);
  EXPECT_FALSE(refused.delivered);
  EXPECT_GE(refused.refused, 1u);

  // The run's client pair but another run's server key: the handshake itself fails.
  CurveKeys wrong_server = run;
  wrong_server.server_public = other.server_public;
  EXPECT_FALSE(TrySend(run, wrong_server).delivered);
}

TEST(CurveTest, WantedForTcpOffLoopbackOrWhenForced) {
  PipelineConfig c;
  EXPECT_FALSE(CurveWanted(c));  // ipc
  c.run.transport = "tcp";
  c.run.host = "127.0.0.1";
  EXPECT_FALSE(CurveWanted(c));  // loopback stays as it is
  c.run.host = "10.1.2.3";
  EXPECT_TRUE(CurveWanted(c));
  c.run.curve = "off";
  EXPECT_FALSE(CurveWanted(c));
  c.run.host = "localhost";
  c.run.curve = "on";
  EXPECT_TRUE(CurveWanted(c));
}

}  // namespace
}  // namespace nd
