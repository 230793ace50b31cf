#include "common/runtime/curve.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zmq.h>

#include <cerrno>
#include <cstring>
#include <fstream>
#include <sstream>
#include <vector>

#include "common/base/log.h"

namespace nd {
namespace {

constexpr size_t kZ85KeyLength = 40;
constexpr const char* kKeyNames[4] = {"server_public", "server_secret", "client_public",
                                      "client_secret"};

std::string* KeyField(CurveKeys* keys, int k) {
  switch (k) {
    case 0:
      return &keys->server_public;
    case 1:
      return &keys->server_secret;
    case 2:
      return &keys->client_public;
    default:
      return &keys->client_secret;
  }
}

// 32 raw bytes from a Z85 key; "" when it is not one.
std::string DecodeKey(const std::string& z85) {
  if (z85.size() != kZ85KeyLength) return "";
  uint8_t raw[32];
  if (zmq_z85_decode(raw, z85.c_str()) == nullptr) return "";
  return std::string(reinterpret_cast<const char*>(raw), 32);
}

}  // namespace

bool CurveAvailable() { return zmq_has("curve") != 0; }

StatusOr<CurveKeys> GenerateCurveKeys() {
  if (!CurveAvailable()) {
    return FailedPrecondition("ZeroMQ here has no CURVE support (libzmq built without libsodium)");
  }
  CurveKeys keys;
  char pub[41], sec[41];
  if (zmq_curve_keypair(pub, sec) != 0) return Internal("zmq_curve_keypair failed");
  keys.server_public = pub;
  keys.server_secret = sec;
  if (zmq_curve_keypair(pub, sec) != 0) return Internal("zmq_curve_keypair failed");
  keys.client_public = pub;
  keys.client_secret = sec;
  return keys;
}

Status WriteCurveKeys(const std::string& path, const CurveKeys& keys) {
  CurveKeys copy = keys;
  std::string text =
      "# written by nd-pipeline up: this run's CURVE keys (common/runtime/curve.h); keep private\n";
  for (int k = 0; k < 4; ++k)
    text += std::string(kKeyNames[k]) + " = " + *KeyField(&copy, k) + "\n";
  const std::string tmp = path + ".tmp";
  const int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
  if (fd < 0) return IoError(tmp + ": cannot create: " + std::strerror(errno));
  const bool written = ::write(fd, text.data(), text.size()) == static_cast<ssize_t>(text.size());
  const int err = errno;
  const bool synced = written && ::fsync(fd) == 0;
  ::close(fd);
  if (!written || !synced) {
    ::unlink(tmp.c_str());
    return IoError(tmp + ": cannot write: " + std::strerror(err));
  }
  if (::rename(tmp.c_str(), path.c_str()) != 0) {
    const int rename_err = errno;
    ::unlink(tmp.c_str());
    return IoError(path + ": cannot replace: " + std::strerror(rename_err));
  }
  return Status::Ok();
}

StatusOr<CurveKeys> ReadCurveKeys(const std::string& path) {
  std::ifstream in(path);
  if (!in) {
    if (errno == ENOENT) return NotFound(path + ": no CURVE keys");
    return IoError(path + ": cannot read: " + std::strerror(errno));
  }
  CurveKeys keys;
  std::string line;
  int k = 0, line_no = 0;
  while (std::getline(in, line)) {
    ++line_no;
    if (line.empty() || line[0] == '#') continue;
    const std::string where = path + ":" + std::to_string(line_no) + ": ";
    if (k >= 4) return InvalidArgument(where + "unexpected line after the four keys");
    const std::string name = std::string(kKeyNames[k]) + " = ";
    if (line.rfind(name, 0) != 0) return InvalidArgument(where + "expected " + kKeyNames[k]);
    const std::string value = line.substr(name.size());
    if (DecodeKey(value).empty()) {
      return InvalidArgument(where + kKeyNames[k] + " is not a 40-character Z85 key");
    }
    *KeyField(&keys, k++) = value;
  }
  if (k < 4) return InvalidArgument(path + ": " + kKeyNames[k] + " missing");
  return keys;
}

void ApplyCurve(zmq::socket_t& socket, const CurveKeys& keys, bool bind) {
  if (bind) {
    socket.set(zmq::sockopt::curve_server, 1);
    socket.set(zmq::sockopt::curve_secretkey, keys.server_secret);
    socket.set(zmq::sockopt::zap_domain, "nd-pipeline");
  } else {
    socket.set(zmq::sockopt::curve_serverkey, keys.server_public);
    socket.set(zmq::sockopt::curve_publickey, keys.client_public);
    socket.set(zmq::sockopt::curve_secretkey, keys.client_secret);
  }
}

StatusOr<std::unique_ptr<CurveAuthenticator>> CurveAuthenticator::Start(zmq::context_t& context,
                                                                        const CurveKeys& keys,
                                                                        const std::string& who) {
  const std::string client_key = DecodeKey(keys.client_public);
  if (client_key.empty()) return InvalidArgument("CURVE: the client public key is not Z85");
  try {
    zmq::socket_t socket(context, zmq::socket_type::rep);
    socket.set(zmq::sockopt::linger, 0);
    socket.bind("inproc://zeromq.zap.01");
    std::unique_ptr<CurveAuthenticator> a(
        new CurveAuthenticator(std::move(socket), client_key, who));
    a->thread_ = std::thread([raw = a.get()] { raw->Loop(); });
    return a;
  } catch (const zmq::error_t& e) {
    return Unavailable(std::string("CURVE: cannot start the ZAP handler: ") + e.what());
  }
}

CurveAuthenticator::CurveAuthenticator(zmq::socket_t socket, std::string client_key,
                                       std::string who)
    : socket_(std::move(socket)), client_key_(std::move(client_key)), who_(std::move(who)) {}

CurveAuthenticator::~CurveAuthenticator() {
  stop_ = true;
  if (thread_.joinable()) thread_.join();
}

void CurveAuthenticator::Loop() {
  try {
    socket_.set(zmq::sockopt::rcvtimeo, 100);
    while (!stop_.load()) {
      // Request (RFC 27): version, request id, domain, address, identity, mechanism, credentials.
      std::vector<zmq::message_t> frames;
      zmq::message_t frame;
      if (!socket_.recv(frame)) continue;
      frames.push_back(std::move(frame));
      while (frames.back().more()) {
        zmq::message_t next;
        if (!socket_.recv(next)) break;
        frames.push_back(std::move(next));
      }
      // A malformed request is refused too: a REP socket must answer every request it takes.
      auto field = [&](size_t i) { return i < frames.size() ? frames[i].to_string() : ""; };
      const std::string request_id = field(1);
      const std::string address = field(3);
      const std::string mechanism = field(5);
      const bool admitted = frames.size() >= 7 && mechanism == "CURVE" && field(6) == client_key_;
      if (!admitted) {
        ++refused_;
        LogWarning(who_ + ": refused a " + mechanism + " peer from " + address +
                   (mechanism == "CURVE" ? ": not this run's client key" : ": not CURVE"));
      }
      const std::string status = admitted ? "200" : "400";
      const std::string text = admitted ? "OK" : "unknown key";
      socket_.send(zmq::buffer(std::string("1.0")), zmq::send_flags::sndmore);
      socket_.send(zmq::buffer(request_id), zmq::send_flags::sndmore);
      socket_.send(zmq::buffer(status), zmq::send_flags::sndmore);
      socket_.send(zmq::buffer(text), zmq::send_flags::sndmore);
      socket_.send(zmq::buffer(std::string(admitted ? "run" : "")), zmq::send_flags::sndmore);
      socket_.send(zmq::buffer(std::string()), zmq::send_flags::none);
    }
  } catch (const zmq::error_t& e) {
    if (e.num() != ETERM) LogWarning(who_ + ": CURVE ZAP handler stopped: " + e.what());
  }
}

}  // namespace nd
