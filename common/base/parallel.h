// The one worker pool of the project: short-lived threads for a fork-join step (decode a batch,
// score a layer, render a dataset), the calling thread working as thread 0.
//
// Errors: ParallelFor keeps the error of the lowest failing index and starts no item after a
// failure was seen (items already running finish), so a failing run reports the same item however
// the threads were scheduled whenever the items before it succeed. Thread start-up failures
// (std::system_error) become Internal errors naming `what`; no exception leaves these functions
// except those thrown by `fn` itself, which the caller's function must not throw.
//
// Thread-safety: reentrant; `fn` is called concurrently from `threads` threads.
#pragma once

#include <cstddef>
#include <functional>
#include <string>

#include "common/base/status.h"

namespace nd {

// `requested` when > 0, else the number of hardware threads (at least 1).
int WorkerCount(int requested);

// Runs fn(t) for t in [0, threads) on `threads` threads (t = 0 on the calling thread) and joins
// them. REQUIRES: threads >= 1.
[[nodiscard]] Status RunOnThreads(int threads, const std::function<void(int)>& fn,
                                  const std::string& what);

// Calls fn(i) for every i in [0, n), spread dynamically over min(threads, n) threads, and returns
// the error of the lowest failing i (OK when all succeed). REQUIRES: threads >= 1.
[[nodiscard]] Status ParallelFor(size_t n, int threads, const std::function<Status(size_t)>& fn,
                                 const std::string& what);

// The same, with fn(i, t) also told which thread t in [0, min(threads, n)) runs it (for per-thread
// scratch state).
[[nodiscard]] Status ParallelForThreads(size_t n, int threads,
                                        const std::function<Status(size_t, int)>& fn,
                                        const std::string& what);

}  // namespace nd
