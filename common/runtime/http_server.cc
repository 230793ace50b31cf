#include "common/runtime/http_server.h"

#include <boost/asio.hpp>
#include <cctype>
#include <chrono>
#include <exception>
#include <thread>

#include "common/base/descriptors.h"
#include "common/base/log.h"

namespace nd {
namespace {

namespace asio = boost::asio;
using tcp = asio::ip::tcp;
using boost::system::error_code;

constexpr size_t kMaxHead = 8192;
constexpr auto kReadTimeout = std::chrono::seconds(5);

std::string Describe(const error_code& ec) {
  if (ec == asio::error::address_in_use) return "address already in use";
  if (ec == asio::error::access_denied) return "permission denied";
  std::string m = ec.message();
  if (!m.empty()) m[0] = static_cast<char>(std::tolower(static_cast<unsigned char>(m[0])));
  return m;
}

std::string Serialize(const HttpResponse& r, bool head_only) {
  std::string out = "HTTP/1.1 " + std::to_string(r.status) + " " + HttpReason(r.status) + "\r\n";
  out += "Content-Type: " + r.content_type + "\r\n";
  out += "Content-Length: " + std::to_string(r.body.size()) + "\r\n";
  out += "Cache-Control: no-store\r\nConnection: close\r\n";
  for (const auto& [name, value] : r.headers) out += name + ": " + value + "\r\n";
  out += "\r\n";
  if (!head_only) out += r.body;
  return out;
}

// Lower-cases ASCII letters.
std::string Lower(std::string s) {
  for (char& c : s) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return s;
}

std::string Trim(const std::string& s) {
  size_t a = s.find_first_not_of(" \t"), b = s.find_last_not_of(" \t");
  return a == std::string::npos ? std::string() : s.substr(a, b - a + 1);
}

HttpResponse Plain(int status, const std::string& body) {
  HttpResponse r;
  r.status = status;
  r.body = body;
  return r;
}

// Parses the request head (request line and headers, without the blank line). On failure returns
// the response to send.
bool ParseHead(const std::string& head, HttpRequest* request, HttpResponse* error) {
  size_t line_end = head.find("\r\n");
  const std::string line = head.substr(0, line_end);
  size_t sp1 = line.find(' ');
  size_t sp2 = sp1 == std::string::npos ? sp1 : line.find(' ', sp1 + 1);
  if (sp1 == 0 || sp1 == std::string::npos || sp2 == std::string::npos ||
      line.compare(sp2 + 1, 5, "HTTP/") != 0 || sp2 == sp1 + 1) {
    *error = Plain(400, "malformed request line\n");
    return false;
  }
  request->method = line.substr(0, sp1);
  std::string target = line.substr(sp1 + 1, sp2 - sp1 - 1);
  size_t q = target.find('?');
  if (q != std::string::npos) {
    request->query = target.substr(q + 1);
    target.resize(q);
  }
  request->path = target;
  size_t at = line_end == std::string::npos ? head.size() : line_end + 2;
  while (at < head.size()) {
    size_t end = head.find("\r\n", at);
    if (end == std::string::npos) end = head.size();
    const std::string h = head.substr(at, end - at);
    at = end + 2;
    if (h.empty()) continue;
    const size_t colon = h.find(':');
    if (colon == std::string::npos || colon == 0 || h[0] == ' ' || h[0] == '\t') {
      *error = Plain(400, "malformed header line\n");
      return false;
    }
    request->headers.emplace_back(Lower(h.substr(0, colon)), Trim(h.substr(colon + 1)));
  }
  return true;
}

// One connection: read the request head and body, answer, close. Kept alive by the handlers it
// queues.
class Connection : public std::enable_shared_from_this<Connection> {
 public:
  Connection(tcp::socket socket, const HttpHandler& handler, size_t max_body)
      : socket_(std::move(socket)),
        timer_(socket_.get_executor()),
        buffer_(kMaxHead),
        handler_(handler),
        max_body_(max_body) {}

  void Start() {
    auto self = shared_from_this();
    Arm();
    asio::async_read_until(socket_, buffer_, "\r\n\r\n",
                           [self](const error_code& ec, size_t n) { self->OnHead(ec, n); });
  }

 private:
  void Arm() {
    auto self = shared_from_this();
    timer_.expires_after(kReadTimeout);
    timer_.async_wait([self](const error_code& ec) {
      if (!ec) self->Close();  // a silent client does not hold the connection forever
    });
  }

  void OnHead(const error_code& ec, size_t head_size) {
    if (ec == asio::error::not_found) {  // the buffer filled up before the blank line
      Send(Plain(431, "request head larger than 8 KiB\n"));
      return;
    }
    if (ec) {
      Close();
      return;
    }
    const std::string data(asio::buffers_begin(buffer_.data()), asio::buffers_end(buffer_.data()));
    buffer_.consume(buffer_.size());
    HttpResponse error;
    if (!ParseHead(data.substr(0, head_size - 4), &request_, &error)) {
      Send(error);
      return;
    }
    head_only_ = request_.method == "HEAD";
    if (!request_.Header("transfer-encoding").empty()) {
      Send(Plain(411, "a body needs a Content-Length\n"));
      return;
    }
    size_t length = 0;
    const std::string cl = request_.Header("content-length");
    if (!cl.empty()) {
      if (cl.size() > 18 || cl.find_first_not_of("0123456789") != std::string::npos) {
        Send(Plain(400, "malformed Content-Length\n"));
        return;
      }
      length = static_cast<size_t>(std::stoull(cl));
    }
    if (length > max_body_) {
      Send(Plain(413, "request body larger than " + std::to_string(max_body_) + " bytes\n"));
      return;
    }
    request_.body = data.substr(head_size, length);
    if (request_.body.size() == length) {
      Answer();
      return;
    }
    const size_t have = request_.body.size();
    request_.body.resize(length);
    Arm();
    auto self = shared_from_this();
    auto read_body = [self, have, length] {
      asio::async_read(self->socket_, asio::buffer(&self->request_.body[have], length - have),
                       [self](const error_code& e, size_t) {
                         if (e) {
                           self->Close();
                           return;
                         }
                         self->Answer();
                       });
    };
    if (Lower(request_.Header("expect")) != "100-continue") {
      read_body();
      return;
    }
    // curl and other clients wait for this before sending a body (RFC 9110 §10.1.1).
    static const char kContinue[] = "HTTP/1.1 100 Continue\r\n\r\n";
    asio::async_write(socket_, asio::buffer(kContinue, sizeof(kContinue) - 1),
                      [self, read_body](const error_code& e, size_t) {
                        if (e) {
                          self->Close();
                          return;
                        }
                        read_body();
                      });
  }

  void Answer() {
    HttpResponse response;
    try {
      response = handler_(request_);
    } catch (const std::exception& e) {
      response = Plain(500, std::string("internal error: ") + e.what() + "\n");
    }
    Send(response);
  }

  void Send(const HttpResponse& response) {
    out_ = Serialize(response, head_only_);
    auto self = shared_from_this();
    asio::async_write(socket_, asio::buffer(out_),
                      [self](const error_code&, size_t) { self->Close(); });
  }

  void Close() {
    error_code ignored;
    try {
      timer_.cancel();
    } catch (const boost::system::system_error&) {
    }
    socket_.shutdown(tcp::socket::shutdown_both, ignored);
    socket_.close(ignored);
  }

  tcp::socket socket_;
  asio::steady_timer timer_;
  asio::streambuf buffer_;
  HttpRequest request_;
  bool head_only_ = false;
  std::string out_;
  const HttpHandler& handler_;
  const size_t max_body_;
};

}  // namespace

struct HttpServer::Impl {
  asio::io_context io;
  tcp::acceptor acceptor{io};
  asio::steady_timer retry{io};
  HttpHandler handler;
  size_t max_body = 0;
  std::thread thread;

  void Accept() {
    acceptor.async_accept([this](const error_code& ec, tcp::socket socket) {
      if (!acceptor.is_open() || ec == asio::error::operation_aborted) return;
      if (!ec) {
        std::make_shared<Connection>(std::move(socket), handler, max_body)->Start();
        Accept();
        return;
      }
      // Out of descriptors and the like: pause instead of spinning on the error.
      retry.expires_after(std::chrono::milliseconds(100));
      retry.async_wait([this](const error_code& e) {
        if (!e) Accept();
      });
    });
  }

  void Run() {
    for (;;) {
      try {
        io.run();
        return;
      } catch (const std::exception& e) {
        // A handler threw past its own catch; keep serving rather than end the process.
        LogWarning(std::string("http: ") + e.what());
      }
    }
  }
};

StatusOr<std::unique_ptr<HttpServer>> HttpServer::Start(int port, HttpHandler handler,
                                                        const std::string& what) {
  HttpServerOptions options;
  options.port = port;
  options.what = what;
  return Start(options, std::move(handler));
}

StatusOr<std::unique_ptr<HttpServer>> HttpServer::Start(const HttpServerOptions& options,
                                                        HttpHandler handler) {
  const int port = options.port;
  const std::string& what = options.what;
  if (port < 0 || port > 65535)
    return InvalidArgument(what + " " + std::to_string(port) + ": not a port (0..65535)");
  error_code ec;
  const asio::ip::address address = asio::ip::make_address(options.host, ec);
  if (ec)
    return InvalidArgument(what + ": host '" + options.host +
                           "' is not an IP address (e.g. 127.0.0.1 or ::1)");
  auto impl = std::make_unique<Impl>();
  impl->handler = std::move(handler);
  impl->max_body = options.max_body;
  tcp::endpoint endpoint(address, static_cast<unsigned short>(port));
  auto fail = [&](const error_code& e) {
    return Unavailable(what + " " + std::to_string(port) + ": " + Describe(e));
  };
  impl->acceptor.open(endpoint.protocol(), ec);
  if (ec) return fail(ec);
  SetCloseOnExec(impl->acceptor.native_handle());  // Asio opens sockets without SOCK_CLOEXEC
  // Lets a restarted supervisor reuse the port while old connections sit in TIME_WAIT; a port
  // with a live listener still fails to bind (Linux semantics of SO_REUSEADDR).
  impl->acceptor.set_option(tcp::acceptor::reuse_address(true), ec);
  if (ec) return fail(ec);
  impl->acceptor.bind(endpoint, ec);
  if (ec) return fail(ec);
  impl->acceptor.listen(asio::socket_base::max_listen_connections, ec);
  if (ec) return fail(ec);
  int bound = impl->acceptor.local_endpoint(ec).port();
  if (ec) return fail(ec);
  impl->Accept();
  Impl* raw = impl.get();
  try {
    impl->thread = std::thread([raw] { raw->Run(); });
  } catch (const std::system_error& e) {
    return Internal(what + ": cannot start the http thread: " + e.what());
  }
  return std::unique_ptr<HttpServer>(new HttpServer(std::move(impl), bound));
}

HttpServer::HttpServer(std::unique_ptr<Impl> impl, int port)
    : impl_(std::move(impl)), port_(port) {}

HttpServer::~HttpServer() { Stop(); }

void HttpServer::Stop() {
  if (!impl_ || !impl_->thread.joinable()) return;
  // Ends the loop now; queued handlers (open connections) are destroyed with the io_context.
  impl_->io.stop();
  impl_->thread.join();
  error_code ignored;
  impl_->acceptor.close(ignored);
}

const char* HttpReason(int status) {
  switch (status) {
    case 200:
      return "OK";
    case 400:
      return "Bad Request";
    case 404:
      return "Not Found";
    case 401:
      return "Unauthorized";
    case 403:
      return "Forbidden";
    case 405:
      return "Method Not Allowed";
    case 409:
      return "Conflict";
    case 411:
      return "Length Required";
    case 413:
      return "Payload Too Large";
    case 415:
      return "Unsupported Media Type";
    case 431:
      return "Request Header Fields Too Large";
    case 500:
      return "Internal Server Error";
  }
  return "Unknown";
}

std::string HttpRequest::Header(const std::string& name) const {
  for (const auto& [n, v] : headers)
    if (n == name) return v;
  return "";
}

StatusOr<std::map<std::string, std::string>> ParseForm(const std::string& text) {
  auto hex = [](char c) -> int {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
  };
  auto decode = [&](const std::string& s, std::string* out) -> Status {
    out->clear();
    for (size_t i = 0; i < s.size(); ++i) {
      char c = s[i];
      if (c == '+') {
        c = ' ';
      } else if (c == '%') {
        const int hi = i + 2 < s.size() ? hex(s[i + 1]) : -1;
        const int lo = i + 2 < s.size() ? hex(s[i + 2]) : -1;
        if (hi < 0 || lo < 0) return InvalidArgument("malformed %-escape in form data");
        c = static_cast<char>(hi * 16 + lo);
        i += 2;
      }
      if (c == '\0') return InvalidArgument("NUL byte in form data");
      *out += c;
    }
    return Status::Ok();
  };
  std::map<std::string, std::string> fields;
  size_t at = 0;
  while (at <= text.size()) {
    size_t end = text.find('&', at);
    if (end == std::string::npos) end = text.size();
    const std::string pair = text.substr(at, end - at);
    at = end + 1;
    if (pair.empty()) continue;
    const size_t eq = pair.find('=');
    std::string name, value;
    ND_RETURN_IF_ERROR(decode(pair.substr(0, eq), &name));
    if (eq != std::string::npos) ND_RETURN_IF_ERROR(decode(pair.substr(eq + 1), &value));
    fields.emplace(std::move(name), std::move(value));
  }
  return fields;
}

}  // namespace nd
