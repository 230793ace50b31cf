// The one adapter between LibTorch exceptions and nd::Status for the extract stage.
//
// LibTorch reports errors by throwing c10::Error (and, rarely, std exceptions). Every call into
// LibTorch made by stages/extract goes through GuardTorch, so no exception crosses the stage's API.
// Stateless; thread-safe.
#pragma once

#include <c10/util/Exception.h>

#include <exception>
#include <string>
#include <utility>

#include "common/status.h"

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

}  // namespace nd
