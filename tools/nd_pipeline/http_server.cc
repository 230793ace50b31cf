#include "tools/nd_pipeline/http_server.h"

#include <boost/asio.hpp>
#include <cctype>
#include <chrono>
#include <exception>
#include <istream>
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
  out += "Cache-Control: no-store\r\nConnection: close\r\n\r\n";
  if (!head_only) out += r.body;
  return out;
}

// One connection: read the request head, answer, close. Kept alive by the handlers it queues.
class Connection : public std::enable_shared_from_this<Connection> {
 public:
  Connection(tcp::socket socket, const HttpHandler& handler)
      : socket_(std::move(socket)),
        timer_(socket_.get_executor()),
        buffer_(kMaxHead),
        handler_(handler) {}

  void Start() {
    auto self = shared_from_this();
    timer_.expires_after(kReadTimeout);
    timer_.async_wait([self](const error_code& ec) {
      if (!ec) self->Close();  // a silent client does not hold the connection forever
    });
    asio::async_read_until(socket_, buffer_, "\r\n\r\n",
                           [self](const error_code& ec, size_t) { self->OnHead(ec); });
  }

 private:
  void OnHead(const error_code& ec) {
    HttpResponse response;
    bool head_only = false;
    if (ec == asio::error::not_found) {  // the buffer filled up before the blank line
      response.status = 431;
      response.body = "request head larger than 8 KiB\n";
    } else if (ec) {
      Close();
      return;
    } else {
      std::istream in(&buffer_);
      std::string line;
      std::getline(in, line);
      if (!line.empty() && line.back() == '\r') line.pop_back();
      HttpRequest request;
      size_t sp1 = line.find(' ');
      size_t sp2 = sp1 == std::string::npos ? sp1 : line.find(' ', sp1 + 1);
      if (sp1 == std::string::npos || sp2 == std::string::npos ||
          line.compare(sp2 + 1, 5, "HTTP/") != 0) {
        response.status = 400;
        response.body = "malformed request line\n";
      } else {
        request.method = line.substr(0, sp1);
        request.path = line.substr(sp1 + 1, sp2 - sp1 - 1);
        size_t q = request.path.find('?');
        if (q != std::string::npos) request.path.resize(q);
        head_only = request.method == "HEAD";
        try {
          response = handler_(request);
        } catch (const std::exception& e) {
          response = HttpResponse{500, "text/plain; charset=utf-8",
                                  std::string("internal error: ") + e.what() + "\n"};
        }
      }
    }
    out_ = Serialize(response, head_only);
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
  std::string out_;
  const HttpHandler& handler_;
};

}  // namespace

struct HttpServer::Impl {
  asio::io_context io;
  tcp::acceptor acceptor{io};
  asio::steady_timer retry{io};
  HttpHandler handler;
  std::thread thread;

  void Accept() {
    acceptor.async_accept([this](const error_code& ec, tcp::socket socket) {
      if (!acceptor.is_open() || ec == asio::error::operation_aborted) return;
      if (!ec) {
        std::make_shared<Connection>(std::move(socket), handler)->Start();
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
  if (port < 0 || port > 65535)
    return InvalidArgument(what + " " + std::to_string(port) + ": not a port (0..65535)");
  auto impl = std::make_unique<Impl>();
  impl->handler = std::move(handler);
  error_code ec;
  tcp::endpoint endpoint(asio::ip::address_v4::loopback(), static_cast<unsigned short>(port));
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
    case 405:
      return "Method Not Allowed";
    case 431:
      return "Request Header Fields Too Large";
    case 500:
      return "Internal Server Error";
  }
  return "Unknown";
}

}  // namespace nd
