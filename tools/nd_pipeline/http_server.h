// A minimal HTTP/1.1 server for the supervisor's GET /metrics and GET /status (Boost.Asio).
//
// It listens on 127.0.0.1 only, serves one request per connection (Connection: close) on its own
// thread, and hands each request to a handler, which runs on that thread (so it must be
// thread-safe with respect to whatever it reads). A request head larger than 8 KiB is answered
// 431; a client that sends nothing for 5 s is disconnected. Asio errors never leave the server
// thread; a failing connection is closed and the server keeps accepting.
#pragma once

#include <functional>
#include <memory>
#include <string>

#include "common/base/status.h"

namespace nd {

struct HttpRequest {
  std::string method;  // "GET", "HEAD", …
  std::string path;    // the target without its query string: "/metrics"
};

struct HttpResponse {
  int status = 200;
  std::string content_type = "text/plain; charset=utf-8";
  std::string body;
};

using HttpHandler = std::function<HttpResponse(const HttpRequest&)>;

class HttpServer {
 public:
  // Binds 127.0.0.1:`port` (0 = an ephemeral port, see port()) and starts serving. A port in use
  // is an error naming `what` and the port: "run.http_port 8080: address already in use".
  static StatusOr<std::unique_ptr<HttpServer>> Start(int port, HttpHandler handler,
                                                     const std::string& what = "run.http_port");
  ~HttpServer();  // Stop()
  HttpServer(const HttpServer&) = delete;
  HttpServer& operator=(const HttpServer&) = delete;

  // The port actually bound.
  int port() const { return port_; }
  // Closes the listener and open connections and joins the thread. Idempotent.
  void Stop();

 private:
  struct Impl;
  explicit HttpServer(std::unique_ptr<Impl> impl, int port);
  std::unique_ptr<Impl> impl_;
  int port_ = 0;
};

// "200 OK", "404 Not Found", … for the status codes the server uses.
const char* HttpReason(int status);

}  // namespace nd
