// ReusingCpuAllocator: LibTorch's CPU allocator for processes that run the same forward pass over
// and over (extract, the benchmark's floor), keeping large freed blocks for reuse instead of
// returning them to the system.
//
// Why: glibc serves every allocation above its mmap threshold (at most 32 MiB, not tunable higher)
// with a fresh mmap and unmaps it on free, so each forward pass of a batch page-faults all of its
// large intermediate tensors in again (ResNet-18 at batch 32: ~100 MB per early activation). On
// the 2-core box a cold 1,000-image run took 12.4 million minor faults and ~100 s of system time
// for ~220 s of user time. Reusing blocks makes each page fault once per process.
//
// Policy: requests of at least kMinReusedBytes are rounded up to a size class (the next multiple
// of 1/8 of their power of two, at most 12.5% waste) and served from a free list of that class,
// or with a fresh 64-byte aligned block; freed blocks go back to their list while the lists hold
// at most `max_cached_bytes`, else back to the system. Smaller requests go to LibTorch's default
// CPU allocator. Blocks are never shared: a block is handed out once until freed.
//
// Thread-safety: allocate and free may run concurrently from any thread (one mutex).
// Lifetime: Install() sets a process-wide allocator with static lifetime; it is never destroyed
// (tensors may outlive main's locals).
#pragma once

#include <cstddef>
#include <cstdint>

namespace nd {

inline constexpr size_t kMinReusedBytes = size_t{1} << 20;

// Statistics of the installed allocator (zeros when none is installed).
struct ReusingCpuAllocatorStats {
  uint64_t fresh_blocks = 0;   // blocks obtained from the system
  uint64_t reused_blocks = 0;  // requests served from a free list
  uint64_t cached_bytes = 0;   // bytes held in the free lists now
};

// Installs the allocator as LibTorch's CPU allocator (c10::SetCPUAllocator, priority above the
// default). Idempotent. Call before the tensors whose memory should be reused are created.
void InstallReusingCpuAllocator(size_t max_cached_bytes = size_t{2} << 30);

ReusingCpuAllocatorStats GetReusingCpuAllocatorStats();

// The size class of a request of n >= kMinReusedBytes bytes (exposed for tests).
size_t ReusedSizeClass(size_t n);

}  // namespace nd
