// counting_new.cc: the replaced operators (counting_new.h).
#include "gc/counting_new.h"

#include <algorithm>
#include <atomic>
#include <cstdlib>
#include <new>

namespace {

std::atomic<long> g_calls{0};
thread_local long t_calls = 0;

void count() noexcept {
  g_calls.fetch_add(1, std::memory_order_relaxed);
  ++t_calls;
}
void* counted_malloc(std::size_t n) noexcept {
  count();
  return std::malloc(n != 0 ? n : 1);
}
void* counted_malloc_or_throw(std::size_t n) {
  if (void* p = counted_malloc(n)) return p;
  throw std::bad_alloc();
}
void* counted_aligned_alloc(std::size_t n, std::align_val_t al) noexcept {
  count();
  const std::size_t a = std::max(static_cast<std::size_t>(al), sizeof(void*));
  return std::aligned_alloc(a, (n + a - 1) / a * a + (n == 0 ? a : 0));
}
void* counted_aligned_alloc_or_throw(std::size_t n, std::align_val_t al) {
  if (void* p = counted_aligned_alloc(n, al)) return p;
  throw std::bad_alloc();
}

}  // namespace

namespace tagheap::test {
long new_calls() noexcept { return g_calls.load(std::memory_order_relaxed); }
long new_calls_on_this_thread() noexcept { return t_calls; }
}  // namespace tagheap::test

// GCC cannot see that the replacements pair malloc with free.
#pragma GCC diagnostic ignored "-Wmismatched-new-delete"
void* operator new(std::size_t n) { return counted_malloc_or_throw(n); }
void* operator new[](std::size_t n) { return counted_malloc_or_throw(n); }
void* operator new(std::size_t n, const std::nothrow_t&) noexcept { return counted_malloc(n); }
void* operator new[](std::size_t n, const std::nothrow_t&) noexcept { return counted_malloc(n); }
void* operator new(std::size_t n, std::align_val_t al) { return counted_aligned_alloc_or_throw(n, al); }
void* operator new[](std::size_t n, std::align_val_t al) { return counted_aligned_alloc_or_throw(n, al); }
void* operator new(std::size_t n, std::align_val_t al, const std::nothrow_t&) noexcept {
  return counted_aligned_alloc(n, al);
}
void* operator new[](std::size_t n, std::align_val_t al, const std::nothrow_t&) noexcept {
  return counted_aligned_alloc(n, al);
}
void operator delete(void* p) noexcept { std::free(p); }
void operator delete[](void* p) noexcept { std::free(p); }
void operator delete(void* p, std::size_t) noexcept { std::free(p); }
void operator delete[](void* p, std::size_t) noexcept { std::free(p); }
void operator delete(void* p, const std::nothrow_t&) noexcept { std::free(p); }
void operator delete[](void* p, const std::nothrow_t&) noexcept { std::free(p); }
void operator delete(void* p, std::align_val_t) noexcept { std::free(p); }
void operator delete[](void* p, std::align_val_t) noexcept { std::free(p); }
void operator delete(void* p, std::size_t, std::align_val_t) noexcept { std::free(p); }
void operator delete[](void* p, std::size_t, std::align_val_t) noexcept { std::free(p); }
void operator delete(void* p, std::align_val_t, const std::nothrow_t&) noexcept { std::free(p); }
void operator delete[](void* p, std::align_val_t, const std::nothrow_t&) noexcept { std::free(p); }
