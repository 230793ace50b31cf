// Helpers for the monitoring tests: a blocking HTTP/1.1 client on 127.0.0.1 with bounded
// timeouts, a free-port finder, and child processes with bounded waits. Header-only, POSIX.
#pragma once

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstring>
#include <string>
#include <thread>
#include <vector>

namespace nd::testing {

struct HttpResult {
  int status = -1;  // -1: no answer (connection refused, timeout, malformed)
  std::string head;
  std::string body;
};

// Sends "<method> <target> HTTP/1.1" to 127.0.0.1:port and reads until the server closes; every
// socket call gives up after `timeout_s`.
// A TCP connection to 127.0.0.1:port whose sends and receives time out after `timeout_s`; -1 when
// nothing accepts it.
inline int ConnectLoopback(int port, int timeout_s = 5) {
  int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  if (fd < 0) return -1;
  timeval tv{timeout_s, 0};
  ::setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
  ::setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(static_cast<uint16_t>(port));
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0) {
    ::close(fd);
    return -1;
  }
  return fd;
}

inline HttpResult HttpRequest(int port, const std::string& method, const std::string& target,
                              int timeout_s = 5) {
  HttpResult r;
  const int fd = ConnectLoopback(port, timeout_s);
  if (fd < 0) return r;
  std::string request = method + " " + target + " HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n";
  if (::send(fd, request.data(), request.size(), MSG_NOSIGNAL) !=
      static_cast<ssize_t>(request.size())) {
    ::close(fd);
    return r;
  }
  std::string in;
  char buf[4096];
  for (;;) {
    ssize_t n = ::recv(fd, buf, sizeof(buf), 0);
    if (n <= 0) break;  // EOF, or the timeout
    in.append(buf, static_cast<size_t>(n));
  }
  ::close(fd);
  size_t end = in.find("\r\n\r\n");
  if (in.rfind("HTTP/1.1 ", 0) != 0 || end == std::string::npos) return r;
  r.status = std::atoi(in.c_str() + 9);
  r.head = in.substr(0, end);
  r.body = in.substr(end + 4);
  return r;
}

inline HttpResult HttpGet(int port, const std::string& target) {
  return HttpRequest(port, "GET", target);
}

// A port on 127.0.0.1 that was free a moment ago (bind 0, read it, close).
inline int FreePort() {
  int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t len = sizeof(addr);
  int port = -1;
  if (::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) == 0 &&
      ::getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len) == 0)
    port = ntohs(addr.sin_port);
  ::close(fd);
  return port;
}

// A listening socket on an ephemeral 127.0.0.1 port, closed on destruction.
class Listener {
 public:
  Listener() {
    fd_ = ::socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t len = sizeof(addr);
    if (::bind(fd_, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) == 0 &&
        ::listen(fd_, 4) == 0 && ::getsockname(fd_, reinterpret_cast<sockaddr*>(&addr), &len) == 0)
      port_ = ntohs(addr.sin_port);
  }
  ~Listener() { ::close(fd_); }
  int port() const { return port_; }

 private:
  int fd_ = -1;
  int port_ = -1;
};

// Starts `exe` (default argv[0]) with `argv`, stdout and stderr appended to `log_path`, stdin
// from /dev/null.
inline pid_t Spawn(const std::vector<std::string>& argv, const std::string& log_path,
                   const std::string& exe = "") {
  pid_t pid = ::fork();
  if (pid == 0) {
    int fd = ::open(log_path.c_str(), O_WRONLY | O_CREAT | O_APPEND, 0644);
    if (fd >= 0) {
      ::dup2(fd, 1);
      ::dup2(fd, 2);
    }
    int devnull = ::open("/dev/null", O_RDONLY);
    if (devnull >= 0) ::dup2(devnull, 0);
    std::vector<char*> args;
    for (const auto& a : argv) args.push_back(const_cast<char*>(a.c_str()));
    args.push_back(nullptr);
    ::execv(exe.empty() ? args[0] : exe.c_str(), args.data());
    ::_exit(127);
  }
  return pid;
}

// Exit code of `pid` (128 + signal when killed), waiting at most `limit_s`; on timeout the child
// is killed and -1 returned.
inline int WaitExit(pid_t pid, int limit_s) {
  auto until = std::chrono::steady_clock::now() + std::chrono::seconds(limit_s);
  for (;;) {
    int status = 0;
    pid_t got = ::waitpid(pid, &status, WNOHANG);
    if (got == pid) return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
    if (got < 0) return -1;
    if (std::chrono::steady_clock::now() > until) {
      ::kill(pid, SIGKILL);
      ::waitpid(pid, &status, 0);
      return -1;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
}

// True while `pid` (a child of this process) has not exited; reaps it when it has, storing the
// exit code in *code.
inline bool StillRunning(pid_t pid, int* code) {
  int status = 0;
  pid_t got = ::waitpid(pid, &status, WNOHANG);
  if (got == 0) return true;
  if (got == pid) *code = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
  return false;
}

}  // namespace nd::testing
