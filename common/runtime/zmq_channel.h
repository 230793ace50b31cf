// ZeroMQ sockets as nd-pipeline uses them: one adapter that turns cppzmq exceptions into Status.
//
// Channel owns one socket (move-only). Data channels are PUSH/PULL with a bounded high-water mark,
// so a slow consumer applies back-pressure to its producer instead of dropping messages; the
// supervisor's event channel is PULL (bound by the supervisor) fed by every stage's PUSH.
// Every send and receive takes a finite timeout so that a dead peer is noticed. Linger is set so
// that closing never blocks for long. Not thread-safe (ZeroMQ sockets are not).
#pragma once

#include <optional>
#include <string>
#include <zmq.hpp>

#include "common/base/config.h"
#include "common/base/status.h"
#include "common/runtime/curve.h"
#include "common/runtime/wire.h"

namespace nd {

// The well-known endpoints of one pipeline run. ipc:// sockets live in the run directory; with
// run.transport = "tcp" they are run.host:run.base_port + k.
struct Endpoints {
  std::string events;   // stages → supervisor (supervisor binds PULL)
  std::string images;   // decode → extract (decode binds PUSH)
  std::string ready;    // extract → calibrate (extract binds PUSH)
  std::string scored;   // calibrate → score (calibrate binds PUSH)
  std::string metrics;  // stages → supervisor, StageMetrics once per second (supervisor binds
                        // SUB, stages connect PUB)
};
Endpoints MakeEndpoints(const PipelineConfig& config);
// Whether the run's stage connections use CURVE: run.curve = "on", or "auto" (the default) with
// run.transport = "tcp" on an address other than loopback (127.0.0.0/8, localhost, ::1).
bool CurveWanted(const PipelineConfig& config);

class Channel {
 public:
  // Opens a socket of `type` (zmq::socket_type::push / pull) and binds or connects it.
  // `linger_ms`: how long closing waits to deliver queued messages. A producer that ends its
  // stream must linger long enough for a slow consumer to drain (the run timeout); otherwise the
  // tail of the stream, END_OF_STREAM included, is dropped when the process exits.
  // With `curve`, the socket is a CURVE server (bind) or client (connect) of the run (curve.h).
  static StatusOr<Channel> Open(zmq::context_t& context, zmq::socket_type type,
                                const std::string& endpoint, bool bind, int high_water_mark = 4,
                                int linger_ms = 1000, const CurveKeys* curve = nullptr);

  Channel(Channel&&) = default;
  Channel& operator=(Channel&&) = default;

  // Sends all frames; waits at most `timeout_ms` for room (back-pressure). Unavailable on
  // timeout, naming the endpoint.
  Status Send(const WireMessage& message, int timeout_ms);
  // Waits at most `timeout_ms`; nullopt on timeout; a malformed message is an error.
  StatusOr<std::optional<WireMessage>> Receive(int timeout_ms);

  const std::string& endpoint() const { return endpoint_; }
  zmq::socket_t& socket() { return socket_; }

 private:
  Channel(zmq::socket_t socket, std::string endpoint)
      : socket_(std::move(socket)), endpoint_(std::move(endpoint)) {}
  zmq::socket_t socket_;
  std::string endpoint_;
};

// Sends one StageEvent to the supervisor, best effort (errors are logged, not returned): a stage
// must be able to report even while shutting down.
void ReportEvent(Channel* events, const StageEvent& event);

}  // namespace nd
