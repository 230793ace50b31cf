// The one adapter between LibTorch and nd::Status: exceptions and device names.
//
// LibTorch reports errors by throwing c10::Error (and, rarely, std exceptions). Every call into
// LibTorch made by extract, the tensor scorer, nd-train and nd-bench goes through GuardTorch, so no
// exception crosses a component's API. Stateless; thread-safe.
#pragma once

#include <c10/core/Device.h>
#include <c10/util/Exception.h>

#include <exception>
#include <string>
#include <utility>

#include "common/base/status.h"

namespace nd {

// First line of a LibTorch error message, without the C++ backtrace that 1.13 appends.
inline std::string TorchErrorLine(const std::string& message) {
  std::string line = message.substr(0, message.find('\n'));
  while (!line.empty() && (line.back() == ' ' || line.back() == '\r')) line.pop_back();
  return line.empty() ? std::string("unknown LibTorch error") : line;
}

// Runs `fn` (returning Status); if it throws, returns on_error(reason), where reason is the first
// line of the exception message.
template <typename Fn, typename OnError>
[[nodiscard]] Status GuardTorchWith(Fn&& fn, OnError&& on_error) {
  try {
    return std::forward<Fn>(fn)();
  } catch (const c10::Error& e) {
    return on_error(TorchErrorLine(e.what_without_backtrace()));
  } catch (const std::exception& e) {
    return on_error(TorchErrorLine(e.what()));
  } catch (...) {
    return on_error(std::string("unknown exception"));
  }
}

// Runs `fn` (returning Status) and turns any exception into a Status with code `code` and the
// message "context: <first line of the exception message>".
template <typename Fn>
[[nodiscard]] Status GuardTorch(const std::string& context, Fn&& fn,
                                StatusCode code = StatusCode::kInternal) {
  return GuardTorchWith(std::forward<Fn>(fn), [&](const std::string& reason) {
    return Status(code, context + ": " + reason);
  });
}

// Parses a device name: "cpu", "cuda", "cuda:N", and "auto" (CUDA device 0 when CUDA is
// available, else the CPU) when `allow_auto`, and checks that a CUDA device exists. Errors name
// `what` (e.g. "score device 'cuda:3'"): InvalidArgument for a malformed name,
// FailedPrecondition when CUDA is not available or the device index does not exist; `remedy` is
// appended to the "not available" message (e.g. "set score.device = \"cpu\"").
[[nodiscard]] StatusOr<c10::Device> ParseTorchDevice(const std::string& spec, bool allow_auto,
                                                     const std::string& what,
                                                     const std::string& remedy);

}  // namespace nd
