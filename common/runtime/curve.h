// ZeroMQ CURVE for stage connections between hosts (run.transport = "tcp").
//
// One run = one trust domain: the supervisor generates a server and a client key pair per run
// (GenerateCurveKeys) and writes them to <run.dir>/curve.keys, mode 0600 (WriteCurveKeys); the run
// plan names the file and every stage reads it (ReadCurveKeys). Every socket that binds is a CURVE
// server holding the server secret; every socket that connects is a CURVE client that knows the
// server's public key and holds the client pair. CURVE alone accepts any client that knows the
// server's public key, so each process that binds also runs a ZAP handler (CurveAuthenticator)
// that admits only the run's client public key and logs every refusal with the peer's address.
// Traffic is encrypted and authenticated both ways (CurveZMQ: Curve25519, XSalsa20-Poly1305).
//
// curve.keys: four lines "<name> = <40 Z85 characters>" for server_public, server_secret,
// client_public, client_secret, in that order (Z85 is ZeroMQ's key text).
#pragma once

#include <atomic>
#include <memory>
#include <string>
#include <thread>
#include <zmq.hpp>

#include "common/base/status.h"

namespace nd {

struct CurveKeys {
  std::string server_public, server_secret;  // Z85, 40 characters each
  std::string client_public, client_secret;
};

// Whether this libzmq supports CURVE (built with libsodium or tweetnacl).
bool CurveAvailable();
// Errors: FailedPrecondition when CURVE is not available.
[[nodiscard]] StatusOr<CurveKeys> GenerateCurveKeys();
// Writes atomically with mode 0600. Errors: IoError naming the file.
[[nodiscard]] Status WriteCurveKeys(const std::string& path, const CurveKeys& keys);
// Errors: NotFound; InvalidArgument naming the file and line (a missing, misnamed or malformed
// key); IoError.
[[nodiscard]] StatusOr<CurveKeys> ReadCurveKeys(const std::string& path);

// Makes `socket` a CURVE server (bind side) or client (connect side) of the run. Call before
// bind/connect. Throws zmq::error_t like the socket's own setters.
void ApplyCurve(zmq::socket_t& socket, const CurveKeys& keys, bool bind);

// The ZAP handler of one ZeroMQ context (ZeroMQ RFC 27): answers the context's authentication
// requests on inproc://zeromq.zap.01 from its own thread, admitting CURVE clients whose public key
// is the run's client key and refusing (status 400) every other, with one log line naming the
// peer address. At most one per context; stops (and joins) in the destructor.
class CurveAuthenticator {
 public:
  // Errors: Unavailable when the handler socket cannot be bound (another handler in `context`).
  [[nodiscard]] static StatusOr<std::unique_ptr<CurveAuthenticator>> Start(zmq::context_t& context,
                                                                           const CurveKeys& keys,
                                                                           const std::string& who);
  ~CurveAuthenticator();
  CurveAuthenticator(const CurveAuthenticator&) = delete;
  CurveAuthenticator& operator=(const CurveAuthenticator&) = delete;

  // Clients refused so far.
  uint64_t refused() const { return refused_.load(); }

 private:
  CurveAuthenticator(zmq::socket_t socket, std::string client_key, std::string who);
  void Loop();

  zmq::socket_t socket_;    // REP on inproc://zeromq.zap.01, used only by thread_
  std::string client_key_;  // the admitted client public key, 32 raw bytes
  std::string who_;         // for log lines: "supervisor", "decode", …
  std::atomic<bool> stop_{false};
  std::atomic<uint64_t> refused_{0};
  std::thread thread_;
};

}  // namespace nd
