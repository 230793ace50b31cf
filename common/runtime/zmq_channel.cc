#include "common/runtime/zmq_channel.h"

#include <filesystem>
#include <zmq_addon.hpp>

#include "common/base/log.h"

namespace nd {

Endpoints MakeEndpoints(const PipelineConfig& config) {
  Endpoints e;
  if (config.run.transport == "tcp") {
    auto at = [&](int k) {
      return "tcp://" + config.run.host + ":" + std::to_string(config.run.base_port + k);
    };
    e.events = at(0);
    e.images = at(1);
    e.ready = at(2);
    e.scored = at(3);
    e.metrics = at(4);
  } else {
    std::string dir = std::filesystem::absolute(RunDirectory(config)).string();
    e.events = "ipc://" + dir + "/events.sock";
    e.images = "ipc://" + dir + "/images.sock";
    e.ready = "ipc://" + dir + "/ready.sock";
    e.scored = "ipc://" + dir + "/scored.sock";
    e.metrics = "ipc://" + dir + "/metrics.sock";
  }
  return e;
}

bool CurveWanted(const PipelineConfig& config) {
  if (config.run.transport != "tcp" || config.run.curve == "off") return false;
  if (config.run.curve == "on") return true;
  const std::string& h = config.run.host;
  const bool loopback = h == "localhost" || h == "::1" || h == "[::1]" || h.rfind("127.", 0) == 0;
  return !loopback;
}

StatusOr<Channel> Channel::Open(zmq::context_t& context, zmq::socket_type type,
                                const std::string& endpoint, bool bind, int high_water_mark,
                                int linger_ms, const CurveKeys* curve) {
  try {
    zmq::socket_t socket(context, type);
    if (curve != nullptr) ApplyCurve(socket, *curve, bind);
    socket.set(zmq::sockopt::linger, linger_ms);
    socket.set(zmq::sockopt::sndhwm, high_water_mark);
    socket.set(zmq::sockopt::rcvhwm, high_water_mark);
    // A connect before the peer has bound (stages start side by side) is retried every
    // reconnect interval: 10 ms instead of ZeroMQ's 100 ms, which every run paid at start.
    socket.set(zmq::sockopt::reconnect_ivl, 10);
    if (bind) {
      socket.bind(endpoint);
    } else {
      socket.connect(endpoint);
    }
    return Channel(std::move(socket), endpoint);
  } catch (const zmq::error_t& e) {
    return Unavailable(std::string(bind ? "bind " : "connect ") + endpoint + ": " + e.what());
  }
}

Status Channel::Send(const WireMessage& message, int timeout_ms) {
  try {
    socket_.set(zmq::sockopt::sndtimeo, timeout_ms);
    for (size_t i = 0; i < message.frames.size(); ++i) {
      const std::string& f = message.frames[i];
      auto flags = i + 1 < message.frames.size() ? zmq::send_flags::sndmore : zmq::send_flags::none;
      auto sent = socket_.send(zmq::buffer(f.data(), f.size()), flags);
      if (!sent) {
        if (i == 0)
          return Unavailable("no peer took a message on " + endpoint_ + " within " +
                             std::to_string(timeout_ms / 1000) + " s");
        // Later frames of a multipart message are queued atomically with the first.
        return Internal("partial multipart send on " + endpoint_);
      }
    }
    return Status::Ok();
  } catch (const zmq::error_t& e) {
    return Unavailable("send on " + endpoint_ + ": " + e.what());
  }
}

StatusOr<std::optional<WireMessage>> Channel::Receive(int timeout_ms) {
  try {
    zmq::pollitem_t item{static_cast<void*>(socket_), 0, ZMQ_POLLIN, 0};
    int n = zmq::poll(&item, 1, std::chrono::milliseconds(timeout_ms));
    if (n == 0) return std::optional<WireMessage>();
    std::vector<zmq::message_t> parts;
    auto got = zmq::recv_multipart(socket_, std::back_inserter(parts), zmq::recv_flags::dontwait);
    if (!got) return std::optional<WireMessage>();
    std::vector<std::string> frames;
    frames.reserve(parts.size());
    for (auto& p : parts) frames.emplace_back(static_cast<const char*>(p.data()), p.size());
    auto parsed = ParseHeader(std::move(frames));
    if (!parsed.ok()) return parsed.status().WithContext(endpoint_);
    return std::optional<WireMessage>(std::move(parsed).value());
  } catch (const zmq::error_t& e) {
    if (e.num() == EINTR) return std::optional<WireMessage>();
    return Unavailable("receive on " + endpoint_ + ": " + e.what());
  }
}

void ReportEvent(Channel* events, const StageEvent& event) {
  if (!events) return;
  Status s = events->Send(Encode(event), 2000);
  if (!s.ok())
    LogWarning("could not report '" + event.kind + "' to the supervisor: " + s.message());
}

}  // namespace nd
