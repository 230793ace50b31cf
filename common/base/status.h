// Status and StatusOr<T>: the error type at every boundary of nd-pipeline.
//
// A Status is either OK or carries a code and a one-line, human-readable message that names the
// file, row, key or peer involved ("index.csv:17: column 'ih': 'abc' is not a number"). Messages
// never end with a newline. Functions that can fail return Status or StatusOr<T> and are marked
// [[nodiscard]]; exceptions from LibTorch, ZeroMQ, OpenCV or toml++ are caught at one adapter per
// library and turned into a Status with context. Thread-compatible value types.
#pragma once

#include <cassert>
#include <optional>
#include <string>
#include <utility>

namespace nd {

enum class StatusCode {
  kOk = 0,
  kInvalidArgument,  // bad input: config value, CSV cell, flag
  kNotFound,         // missing file, key, layer, label
  kDataLoss,         // corrupt file or record
  kIoError,          // OS-level failure: read, write, full disk, permissions
  kFailedPrecondition,
  kUnavailable,  // dead or silent peer, timeout
  kCancelled,    // stopped by a signal or a shutdown message
  kInternal,
};

const char* StatusCodeName(StatusCode code);

class [[nodiscard]] Status {
 public:
  Status() = default;
  Status(StatusCode code, std::string message) : code_(code), message_(std::move(message)) {}

  static Status Ok() { return Status(); }
  bool ok() const { return code_ == StatusCode::kOk; }
  StatusCode code() const { return code_; }
  const std::string& message() const { return message_; }
  // "message" for errors, "OK" for success.
  std::string ToString() const { return ok() ? "OK" : message_; }
  // Returns a copy whose message is "prefix: message". OK stays OK.
  Status WithContext(const std::string& prefix) const {
    if (ok()) return *this;
    return Status(code_, prefix + ": " + message_);
  }
  void IgnoreError() const {}

 private:
  StatusCode code_ = StatusCode::kOk;
  std::string message_;
};

inline Status InvalidArgument(std::string m) {
  return Status(StatusCode::kInvalidArgument, std::move(m));
}
inline Status NotFound(std::string m) { return Status(StatusCode::kNotFound, std::move(m)); }
inline Status DataLoss(std::string m) { return Status(StatusCode::kDataLoss, std::move(m)); }
inline Status IoError(std::string m) { return Status(StatusCode::kIoError, std::move(m)); }
inline Status FailedPrecondition(std::string m) {
  return Status(StatusCode::kFailedPrecondition, std::move(m));
}
inline Status Unavailable(std::string m) { return Status(StatusCode::kUnavailable, std::move(m)); }
inline Status Cancelled(std::string m) { return Status(StatusCode::kCancelled, std::move(m)); }
inline Status Internal(std::string m) { return Status(StatusCode::kInternal, std::move(m)); }

// Either a value or a non-OK Status. REQUIRES: constructed from a non-OK Status when no value.
template <typename T>
class [[nodiscard]] StatusOr {
 public:
  StatusOr(Status status) : status_(std::move(status)) {  // NOLINT: implicit by design
    if (status_.ok()) status_ = Internal("StatusOr constructed from OK without a value");
  }
  StatusOr(T value) : value_(std::move(value)) {}  // NOLINT: implicit by design

  bool ok() const { return status_.ok(); }
  const Status& status() const { return status_; }
  // REQUIRES: ok().
  T& value() & {
    assert(ok());
    return *value_;
  }
  const T& value() const& {
    assert(ok());
    return *value_;
  }
  T&& value() && {
    assert(ok());
    return std::move(*value_);
  }
  T* operator->() { return &value(); }
  const T* operator->() const { return &value(); }
  T& operator*() & { return value(); }
  const T& operator*() const& { return value(); }

 private:
  Status status_;
  std::optional<T> value_;
};

}  // namespace nd

#define ND_CONCAT_INNER_(a, b) a##b
#define ND_CONCAT_(a, b) ND_CONCAT_INNER_(a, b)

// Returns the Status from the enclosing function if `expr` is not OK.
#define ND_RETURN_IF_ERROR(expr)             \
  do {                                       \
    ::nd::Status nd_status_ = (expr);        \
    if (!nd_status_.ok()) return nd_status_; \
  } while (0)

// ND_ASSIGN_OR_RETURN(auto x, MakeX()); declares x from a StatusOr or returns its error.
#define ND_ASSIGN_OR_RETURN(lhs, rexpr) \
  ND_ASSIGN_OR_RETURN_IMPL_(ND_CONCAT_(nd_statusor_, __LINE__), lhs, rexpr)
#define ND_ASSIGN_OR_RETURN_IMPL_(var, lhs, rexpr) \
  auto var = (rexpr);                              \
  if (!var.ok()) return var.status();              \
  lhs = std::move(var).value()
