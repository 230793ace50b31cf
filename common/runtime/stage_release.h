// End-of-stream hand-off between stage processes.
//
// A producer that has sent END_OF_STREAM must not exit on its own: ZeroMQ may still hold the tail
// of its stream (in its send queue or in the consumer's pipe), and that tail is lost when the
// producer's connection goes away before the consumer has read it — linger alone does not cover
// messages already handed to the peer's pipe. So every producer waits, after its last send, until
// the supervisor releases it (SIGTERM once the last stage has finished) or `timeout_ms` passes.
#pragma once

#include <chrono>
#include <thread>

#include "common/runtime/stage_process.h"

namespace nd {

inline void AwaitSupervisorRelease(int timeout_ms) {
  auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(timeout_ms);
  while (!StageProcess::stop_requested() && std::chrono::steady_clock::now() < deadline)
    std::this_thread::sleep_for(std::chrono::milliseconds(2));
}

}  // namespace nd
