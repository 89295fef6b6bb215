// pause_allocation.cc: operator new and delete for this library (pause_allocation.h).
#include "examples/libgc/pause_allocation.h"

#include <sys/mman.h>

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <new>

namespace tagheap::libgc {

namespace {

struct Header {  // the 16 bytes right before every block
  void* base;                // what malloc or mmap returned
  std::size_t mapped_bytes;  // 0: malloc'd
};
static_assert(sizeof(Header) == 16);

// Set from the stop to the resume. Process-wide, not per thread: the
// collector's helper marker threads allocate in the pause too (mark stacks,
// weak slot lists). Any other thread that runs this library's code then is
// one the stop does not cover; it maps and defers too, which is only slower.
std::atomic<bool> g_in_pause{false};
// malloc'd blocks freed in the pause, linked through their first word; any
// marker may push.
std::atomic<void*> g_deferred{nullptr};

Header* header_of(void* p) noexcept { return static_cast<Header*>(p) - 1; }

void* raw_allocate(std::size_t n, std::size_t align) noexcept {
  if (align < alignof(std::max_align_t)) align = alignof(std::max_align_t);
  if (n < sizeof(void*)) n = sizeof(void*);  // room for the deferred link
  const std::size_t raw_bytes = n + align + sizeof(Header);
  if (raw_bytes < n) return nullptr;
  void* raw;
  std::size_t mapped = 0;
  if (g_in_pause.load(std::memory_order_relaxed)) [[unlikely]] {
    mapped = (raw_bytes + 4095) & ~std::size_t{4095};
    raw = mmap(nullptr, mapped, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (raw == MAP_FAILED) return nullptr;
  } else {
    raw = std::malloc(raw_bytes);
    if (raw == nullptr) return nullptr;
  }
  const auto start = reinterpret_cast<std::uintptr_t>(raw) + sizeof(Header);
  void* p = reinterpret_cast<void*>((start + align - 1) & ~(std::uintptr_t{align} - 1));
  *header_of(p) = Header{raw, mapped};
  return p;
}

void raw_release(void* p) noexcept {
  if (p == nullptr) return;
  const Header h = *header_of(p);
  if (h.mapped_bytes != 0) {
    munmap(h.base, h.mapped_bytes);
  } else if (g_in_pause.load(std::memory_order_relaxed)) [[unlikely]] {
    void* head = g_deferred.load(std::memory_order_relaxed);
    do {
      *static_cast<void**>(p) = head;
    } while (!g_deferred.compare_exchange_weak(head, p, std::memory_order_release, std::memory_order_relaxed));
  } else {
    std::free(h.base);
  }
}

void* raw_allocate_or_throw(std::size_t n, std::size_t align) {
  void* p = raw_allocate(n, align);
  if (p == nullptr) throw std::bad_alloc();
  return p;
}

}  // namespace

// The helpers start and finish each marking round under their pool's
// mutex, which orders their reads of the flag after begin and before end.
void begin_pause_allocation() noexcept { g_in_pause.store(true, std::memory_order_relaxed); }
void end_pause_allocation() noexcept { g_in_pause.store(false, std::memory_order_relaxed); }
void free_deferred_after_pause() noexcept {
  void* p = g_deferred.exchange(nullptr, std::memory_order_acquire);
  while (p != nullptr) {
    void* next = *static_cast<void**>(p);
    std::free(header_of(p)->base);
    p = next;
  }
}

}  // namespace tagheap::libgc

// Local to libgc.so (libgc.lds exports GC_* only): every new and delete in
// this library's code, and in tagheap's and gc/'s templates and sources
// linked into it, comes here.
namespace lg = tagheap::libgc;
void* operator new(std::size_t n) { return lg::raw_allocate_or_throw(n, 0); }
void* operator new[](std::size_t n) { return lg::raw_allocate_or_throw(n, 0); }
void* operator new(std::size_t n, const std::nothrow_t&) noexcept { return lg::raw_allocate(n, 0); }
void* operator new[](std::size_t n, const std::nothrow_t&) noexcept { return lg::raw_allocate(n, 0); }
void* operator new(std::size_t n, std::align_val_t a) { return lg::raw_allocate_or_throw(n, static_cast<std::size_t>(a)); }
void* operator new[](std::size_t n, std::align_val_t a) { return lg::raw_allocate_or_throw(n, static_cast<std::size_t>(a)); }
void* operator new(std::size_t n, std::align_val_t a, const std::nothrow_t&) noexcept {
  return lg::raw_allocate(n, static_cast<std::size_t>(a));
}
void* operator new[](std::size_t n, std::align_val_t a, const std::nothrow_t&) noexcept {
  return lg::raw_allocate(n, static_cast<std::size_t>(a));
}
void operator delete(void* p) noexcept { lg::raw_release(p); }
void operator delete[](void* p) noexcept { lg::raw_release(p); }
void operator delete(void* p, std::size_t) noexcept { lg::raw_release(p); }
void operator delete[](void* p, std::size_t) noexcept { lg::raw_release(p); }
void operator delete(void* p, const std::nothrow_t&) noexcept { lg::raw_release(p); }
void operator delete[](void* p, const std::nothrow_t&) noexcept { lg::raw_release(p); }
void operator delete(void* p, std::align_val_t) noexcept { lg::raw_release(p); }
void operator delete[](void* p, std::align_val_t) noexcept { lg::raw_release(p); }
void operator delete(void* p, std::size_t, std::align_val_t) noexcept { lg::raw_release(p); }
void operator delete[](void* p, std::size_t, std::align_val_t) noexcept { lg::raw_release(p); }
void operator delete(void* p, std::align_val_t, const std::nothrow_t&) noexcept { lg::raw_release(p); }
void operator delete[](void* p, std::align_val_t, const std::nothrow_t&) noexcept { lg::raw_release(p); }
