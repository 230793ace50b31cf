// A minimal HTTP/1.1 server (Boost.Asio) for the supervisor's GET /metrics and GET /status and for
// the rating server's page and answers (tools/rate).
//
// It listens on one address (127.0.0.1 unless told otherwise), serves one request per connection
// (Connection: close) on its own thread, and hands each request to a handler, which runs on that
// thread (so requests are handled one at a time, and the handler must be thread-safe only with
// respect to whatever else reads its data).
//
// Limits, each answered without calling the handler: a request head larger than 8 KiB is 431; a
// malformed request line or header, or a Content-Length that is not a number, is 400; a body longer
// than `max_body` bytes (0 by default: no body at all) is 413, and its bytes are not read; a body
// sent with Transfer-Encoding (chunked) is 411 (a Content-Length is required); a client that sent
// "Expect: 100-continue" with an acceptable length gets "100 Continue" first. A client that sends
// nothing for 5 s, or does not finish its body within 5 s, is disconnected. Asio errors never leave
// the server thread; a failing connection is closed and the server keeps accepting.
//
// The request target is split at the first '?': `path` is what comes before it, unchanged (not
// percent-decoded: a handler compares it with its routes as bytes, so "/a%2f.." never names a
// file), `query` what follows. ParseForm() decodes a query string or a form body.
#pragma once

#include <functional>
#include <map>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "common/base/status.h"

namespace nd {

struct HttpRequest {
  std::string method;  // "GET", "HEAD", "POST", …
  std::string path;    // the target without its query string: "/metrics"
  std::string query;   // after the first '?', raw: "rater=ann&mode=label"; "" when none
  std::vector<std::pair<std::string, std::string>> headers;  // names lower-cased, values trimmed
  std::string body;                                          // at most max_body bytes

  // The value of the first header named `name` (lower case), "" when absent.
  std::string Header(const std::string& name) const;
};

struct HttpResponse {
  int status = 200;
  std::string content_type = "text/plain; charset=utf-8";
  std::string body;
  std::vector<std::pair<std::string, std::string>> headers;  // extra headers, sent as given
};

using HttpHandler = std::function<HttpResponse(const HttpRequest&)>;

struct HttpServerOptions {
  std::string host = "127.0.0.1";      // an IPv4 or IPv6 address literal (no name lookup)
  int port = 0;                        // 0 = an ephemeral port, see HttpServer::port()
  size_t max_body = 0;                 // bytes; larger bodies are refused with 413
  std::string what = "run.http_port";  // names the setting in errors
};

class HttpServer {
 public:
  // Binds host:port and starts serving. Errors name `what`, the port and the reason: "run.http_port
  // 8080: address already in use"; a host that is not an address literal is InvalidArgument.
  static StatusOr<std::unique_ptr<HttpServer>> Start(const HttpServerOptions& options,
                                                     HttpHandler handler);
  // The supervisor's form: 127.0.0.1:`port`, no request bodies.
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

// Decodes an application/x-www-form-urlencoded string (a query string or a form body): pairs
// separated by '&', name and value by the first '=', '+' is a space, %XX a byte. A name given twice
// keeps its first value. Errors (InvalidArgument): a '%' not followed by two hex digits, a decoded
// NUL byte.
[[nodiscard]] StatusOr<std::map<std::string, std::string>> ParseForm(const std::string& text);

}  // namespace nd
