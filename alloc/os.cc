#include "alloc/os.h"

#include <sys/mman.h>
#include <errno.h>
#include <time.h>
#include <unistd.h>

#include <atomic>
#include <cstdint>

namespace tagheap::os {
namespace {
std::atomic<long> g_refuse_after{-1};
std::atomic<std::size_t> g_regions{0};
std::atomic<std::size_t> g_bytes{0};
std::atomic<std::size_t> g_map_calls{0}, g_unmap_calls{0}, g_decommit_calls{0}, g_huge_advice_calls{0}, g_no_huge_advice_calls{0},
    g_populate_calls{0};
// The kernel answered EINVAL to MADV_POPULATE_WRITE (before Linux 5.14).
std::atomic<bool> g_populate_unsupported{false};

void* counted_mmap(std::size_t size, int prot, int flags) noexcept {
  g_map_calls.fetch_add(1, std::memory_order_relaxed);
  return mmap(nullptr, size, prot, flags, -1, 0);
}
void counted_munmap(void* p, std::size_t size) noexcept {
  g_unmap_calls.fetch_add(1, std::memory_order_relaxed);
  munmap(p, size);
}

bool refused() noexcept {
  long n = g_refuse_after.load(std::memory_order_relaxed);
  while (n >= 0) {
    if (n == 0) return true;
    if (g_refuse_after.compare_exchange_weak(n, n - 1, std::memory_order_relaxed)) return false;
  }
  return false;
}
}  // namespace

std::int64_t thread_cpu_ns() noexcept {
  timespec ts{};
  clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
  return std::int64_t{ts.tv_sec} * 1'000'000'000 + ts.tv_nsec;
}

std::size_t page_size() noexcept {
  static const std::size_t size = static_cast<std::size_t>(sysconf(_SC_PAGESIZE));
  return size;
}

void* map_aligned(std::size_t size, std::size_t alignment) noexcept {
  if (refused()) return nullptr;
  if (size == 0 || size > (std::size_t{1} << 46) || alignment > (std::size_t{1} << 40)) return nullptr;
  const int prot = PROT_READ | PROT_WRITE, flags = MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE;
  // Try exact first: the kernel often hands out aligned ranges back to back.
  void* p = counted_mmap(size, prot, flags);
  if (p == MAP_FAILED) return nullptr;
  if ((reinterpret_cast<std::uintptr_t>(p) & (alignment - 1)) != 0) {
    counted_munmap(p, size);
    const std::size_t over = size + alignment;
    void* q = counted_mmap(over, prot, flags);
    if (q == MAP_FAILED) return nullptr;
    const auto base = reinterpret_cast<std::uintptr_t>(q);
    const auto aligned = (base + alignment - 1) & ~(alignment - 1);
    if (aligned > base) counted_munmap(q, aligned - base);
    const auto end = aligned + size, over_end = base + over;
    if (over_end > end) counted_munmap(reinterpret_cast<void*>(end), over_end - end);
    p = reinterpret_cast<void*>(aligned);
  }
  g_regions.fetch_add(1, std::memory_order_relaxed);
  g_bytes.fetch_add(size, std::memory_order_relaxed);
  return p;
}

void unmap(void* p, std::size_t size) noexcept {
  counted_munmap(p, size);
  g_regions.fetch_sub(1, std::memory_order_relaxed);
  g_bytes.fetch_sub(size, std::memory_order_relaxed);
}

void decommit(void* p, std::size_t size) noexcept {
  g_decommit_calls.fetch_add(1, std::memory_order_relaxed);
  madvise(p, size, MADV_DONTNEED);
}

void advise_huge_pages(void* p, std::size_t size) noexcept {
  g_huge_advice_calls.fetch_add(1, std::memory_order_relaxed);
  madvise(p, size, MADV_HUGEPAGE);  // EINVAL without THP in the kernel: nothing to do
}

void advise_no_huge_pages(void* p, std::size_t size) noexcept {
  g_no_huge_advice_calls.fetch_add(1, std::memory_order_relaxed);
  madvise(p, size, MADV_NOHUGEPAGE);
}

bool populate(void* p, std::size_t size) noexcept {
#ifndef MADV_POPULATE_WRITE
  constexpr int MADV_POPULATE_WRITE = 23;  // Linux 5.14; older headers lack it
#endif
  if (g_populate_unsupported.load(std::memory_order_relaxed)) return false;
  g_populate_calls.fetch_add(1, std::memory_order_relaxed);
  if (madvise(p, size, MADV_POPULATE_WRITE) == 0) return true;
  if (errno == EINVAL) g_populate_unsupported.store(true, std::memory_order_relaxed);
  return false;
}

void release_lazily(void* p, std::size_t size) noexcept {
  g_decommit_calls.fetch_add(1, std::memory_order_relaxed);
  if (madvise(p, size, MADV_FREE) != 0) madvise(p, size, MADV_DONTNEED);  // kernels before 4.5
}

void refuse_after(long n) noexcept { g_refuse_after.store(n, std::memory_order_relaxed); }
bool refusal_armed() noexcept { return g_refuse_after.load(std::memory_order_relaxed) >= 0; }
std::size_t mapped_regions() noexcept { return g_regions.load(std::memory_order_relaxed); }
std::size_t mapped_bytes() noexcept { return g_bytes.load(std::memory_order_relaxed); }
CallCounts call_counts() noexcept {
  return {g_map_calls.load(std::memory_order_relaxed), g_unmap_calls.load(std::memory_order_relaxed),
          g_decommit_calls.load(std::memory_order_relaxed), g_huge_advice_calls.load(std::memory_order_relaxed),
          g_no_huge_advice_calls.load(std::memory_order_relaxed), g_populate_calls.load(std::memory_order_relaxed)};
}

}  // namespace tagheap::os
