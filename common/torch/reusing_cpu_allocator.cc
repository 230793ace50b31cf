#include "common/torch/reusing_cpu_allocator.h"

#include <c10/core/Allocator.h>
#include <c10/core/CPUAllocator.h>

#include <cstdlib>
#include <map>
#include <mutex>
#include <new>
#include <unordered_map>
#include <vector>

namespace nd {
namespace {

class ReusingCpuAllocator final : public c10::Allocator {
 public:
  explicit ReusingCpuAllocator(size_t max_cached) : max_cached_(max_cached) {}

  c10::DataPtr allocate(size_t n) const override {
    if (n < kMinReusedBytes) return fallback_->allocate(n);
    const size_t size = ReusedSizeClass(n);
    void* p = nullptr;
    std::lock_guard<std::mutex> lock(mu_);
    auto it = free_.find(size);
    if (it != free_.end() && !it->second.empty()) {
      p = it->second.back();
      it->second.pop_back();
      cached_ -= size;
      ++reused_;
    } else {
      if (::posix_memalign(&p, 64, size) != 0) throw std::bad_alloc();
      ++fresh_;
    }
    live_[p] = size;
    return {p, p, &Release, c10::Device(c10::DeviceType::CPU)};
  }

  c10::DeleterFnPtr raw_deleter() const override { return &Release; }

  ReusingCpuAllocatorStats Stats() const {
    std::lock_guard<std::mutex> lock(mu_);
    return {fresh_, reused_, cached_};
  }

  static ReusingCpuAllocator* instance;

 private:
  static void Release(void* p) { instance->Free(p); }

  void Free(void* p) const {
    if (p == nullptr) return;
    std::unique_lock<std::mutex> lock(mu_);
    auto it = live_.find(p);
    if (it == live_.end()) {  // not ours (cannot happen: our DataPtrs carry this deleter)
      lock.unlock();
      std::free(p);
      return;
    }
    const size_t size = it->second;
    live_.erase(it);
    if (cached_ + size <= max_cached_) {
      free_[size].push_back(p);
      cached_ += size;
      return;
    }
    lock.unlock();
    std::free(p);
  }

  const size_t max_cached_;
  c10::Allocator* fallback_ = c10::GetDefaultCPUAllocator();
  mutable std::mutex mu_;
  mutable std::map<size_t, std::vector<void*>> free_;
  mutable std::unordered_map<void*, size_t> live_;
  mutable uint64_t fresh_ = 0, reused_ = 0, cached_ = 0;
};

ReusingCpuAllocator* ReusingCpuAllocator::instance = nullptr;

}  // namespace

size_t ReusedSizeClass(size_t n) {
  size_t pow2 = kMinReusedBytes;
  while (pow2 < n) pow2 <<= 1;  // n <= pow2 < 2n
  const size_t step = pow2 / 8;
  return (n + step - 1) / step * step;
}

void InstallReusingCpuAllocator(size_t max_cached_bytes) {
  static std::once_flag once;
  std::call_once(once, [&] {
    ReusingCpuAllocator::instance = new ReusingCpuAllocator(max_cached_bytes);  // never freed
    c10::SetCPUAllocator(ReusingCpuAllocator::instance, /*priority=*/100);
  });
}

ReusingCpuAllocatorStats GetReusingCpuAllocatorStats() {
  return ReusingCpuAllocator::instance ? ReusingCpuAllocator::instance->Stats()
                                       : ReusingCpuAllocatorStats{};
}

}  // namespace nd
