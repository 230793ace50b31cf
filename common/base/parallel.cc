#include "common/base/parallel.h"

#include <algorithm>
#include <atomic>
#include <limits>
#include <mutex>
#include <system_error>
#include <thread>
#include <vector>

namespace nd {

int WorkerCount(int requested) {
  if (requested > 0) return requested;
  return static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
}

Status RunOnThreads(int threads, const std::function<void(int)>& fn, const std::string& what) {
  std::vector<std::thread> pool;
  try {
    for (int t = 1; t < threads; ++t) pool.emplace_back(fn, t);
  } catch (const std::system_error& e) {
    for (auto& th : pool) th.join();
    return Internal(what + ": cannot start worker threads: " + e.what());
  }
  fn(0);
  for (auto& th : pool) th.join();
  return Status::Ok();
}

Status ParallelFor(size_t n, int threads, const std::function<Status(size_t)>& fn,
                   const std::string& what) {
  return ParallelForThreads(
      n, threads, [&fn](size_t i, int) { return fn(i); }, what);
}

Status ParallelForThreads(size_t n, int threads, const std::function<Status(size_t, int)>& fn,
                          const std::string& what) {
  if (n == 0) return Status::Ok();
  std::atomic<size_t> next{0};
  std::atomic<bool> failed{false};
  std::mutex mu;
  size_t first_index = std::numeric_limits<size_t>::max();
  Status first = Status::Ok();
  auto work = [&](int t) {
    for (size_t i; !failed.load(std::memory_order_relaxed) && (i = next.fetch_add(1)) < n;) {
      Status s = fn(i, t);
      if (s.ok()) continue;
      std::lock_guard<std::mutex> lock(mu);
      if (i < first_index) {
        first_index = i;
        first = std::move(s);
      }
      failed = true;
    }
  };
  const int used = static_cast<int>(std::min<size_t>(static_cast<size_t>(std::max(1, threads)), n));
  ND_RETURN_IF_ERROR(RunOnThreads(used, work, what));
  return first;
}

}  // namespace nd
