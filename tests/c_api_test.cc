// The C API (alloc/tagheap_c.h) never lets an exception cross extern "C":
// out of memory, from operator new or from the OS, makes every function that
// can fail return NULL (or -1), and the runtime stays usable.
//
// This binary replaces the global operator new with one that fails on
// demand (FailingNew below), the way a C host's allocator would run dry;
// os::refuse_after makes the OS refuse segments.
#include <doctest/doctest.h>

#include <atomic>
#include <cstdlib>
#include <new>

#include "alloc/tagheap.h"
#include "alloc/tagheap_c.h"
#include "tests/test_util.h"

namespace {
// Allocations left before operator new starts failing; < 0: never fails.
std::atomic<long> g_news_before_failure{-1};

bool new_fails() noexcept {
  long n = g_news_before_failure.load(std::memory_order_relaxed);
  while (n >= 0) {
    if (n == 0) return true;
    if (g_news_before_failure.compare_exchange_weak(n, n - 1, std::memory_order_relaxed)) return false;
  }
  return false;
}

void* allocate_or_null(std::size_t size, std::size_t align) noexcept {
  if (new_fails()) return nullptr;
  if (size == 0) size = 1;
  if (align <= alignof(std::max_align_t)) return std::malloc(size);
  return std::aligned_alloc(align, (size + align - 1) & ~(align - 1));
}

// operator new succeeds `skip` more times, then fails, for the scope.
struct FailingNew {
  explicit FailingNew(long skip) { g_news_before_failure.store(skip); }
  ~FailingNew() { g_news_before_failure.store(-1); }
};
}  // namespace

void* operator new(std::size_t size) {
  if (void* p = allocate_or_null(size, 0)) return p;
  throw std::bad_alloc();
}
void* operator new[](std::size_t size) { return operator new(size); }
void* operator new(std::size_t size, std::align_val_t align) {
  if (void* p = allocate_or_null(size, static_cast<std::size_t>(align))) return p;
  throw std::bad_alloc();
}
void* operator new[](std::size_t size, std::align_val_t align) { return operator new(size, align); }
void* operator new(std::size_t size, const std::nothrow_t&) noexcept { return allocate_or_null(size, 0); }
void* operator new[](std::size_t size, const std::nothrow_t&) noexcept { return allocate_or_null(size, 0); }
void* operator new(std::size_t size, std::align_val_t align, const std::nothrow_t&) noexcept {
  return allocate_or_null(size, static_cast<std::size_t>(align));
}
void operator delete(void* p) noexcept { std::free(p); }
void operator delete[](void* p) noexcept { std::free(p); }
void operator delete(void* p, std::size_t) noexcept { std::free(p); }
void operator delete[](void* p, std::size_t) noexcept { std::free(p); }
void operator delete(void* p, std::align_val_t) noexcept { std::free(p); }
void operator delete[](void* p, std::align_val_t) noexcept { std::free(p); }
void operator delete(void* p, std::size_t, std::align_val_t) noexcept { std::free(p); }
void operator delete[](void* p, std::size_t, std::align_val_t) noexcept { std::free(p); }
void operator delete(void* p, const std::nothrow_t&) noexcept { std::free(p); }

static_assert(noexcept(tagheap_runtime_new(nullptr)) && noexcept(tagheap_thread_state_new(nullptr)) &&
                  noexcept(tagheap_heap_allocate(nullptr, 0, 0)) && noexcept(tagheap_visit_blocks(nullptr, 0, nullptr, nullptr)),
              "no exception crosses the C API");

TEST_SUITE("alloc.c_api") {
  TEST_CASE("the C API returns NULL when operator new runs out, and works again after") {
    const tagheap_runtime_options o{0x2, 0};
    // Each allocation the constructors make, failing in turn.
    for (long skip = 0; skip < 4; ++skip) {
      CAPTURE(skip);
      tagheap_runtime* rt = nullptr;
      {
        FailingNew fail(skip);
        rt = tagheap_runtime_new(&o);
      }
      if (rt == nullptr) continue;  // this allocation failed: NULL, nothing thrown
      tagheap_thread_state* ts = nullptr;
      {
        FailingNew fail(skip);
        ts = tagheap_thread_state_new(rt);
      }
      if (ts != nullptr) tagheap_thread_state_delete(ts);
      tagheap_runtime_delete(rt);
    }
    // (No CHECK inside a FailingNew scope: doctest may allocate.)
    tagheap_runtime* no_rt = nullptr;
    {
      FailingNew fail(0);
      no_rt = tagheap_runtime_new(&o);
    }
    CHECK(no_rt == nullptr);
    tagheap_runtime* rt = tagheap_runtime_new(&o);
    REQUIRE(rt != nullptr);
    tagheap_thread_state* no_ts = nullptr;
    {
      FailingNew fail(1);  // the thread state's heap storage
      no_ts = tagheap_thread_state_new(rt);
    }
    CHECK(no_ts == nullptr);
    tagheap_thread_state* ts = tagheap_thread_state_new(rt);
    REQUIRE(ts != nullptr);
    REQUIRE(tagheap_thread_state_attach(ts) == 0);
    void* p = nullptr;
    {
      FailingNew fail(0);  // allocation needs no operator new
      p = tagheap_heap_allocate(ts, 1, 64);
    }
    CHECK(p != nullptr);
    tagheap_free(p);
    tagheap_thread_state_detach(ts);
    tagheap_thread_state_delete(ts);
    tagheap_runtime_delete(rt);
  }

  TEST_CASE("the C API's allocations return NULL when the OS refuses memory") {
    const tagheap_runtime_options o{0x2, 1};
    tagheap_runtime* rt = tagheap_runtime_new(&o);
    tagheap_thread_state* ts = tagheap_thread_state_new(rt);
    REQUIRE(tagheap_thread_state_attach(ts) == 0);
    {
      tagheap::test::RefuseGuard refuse(0);
      for (std::size_t size : {std::size_t{64}, std::size_t{20000}, std::size_t{300000}, std::size_t{3} << 20}) {
        CAPTURE(size);
        CHECK(tagheap_heap_allocate(ts, 1, size) == nullptr);
        CHECK(tagheap_heap_allocate_zeroed(ts, 0, size) == nullptr);
      }
    }
    CHECK(tagheap_heap_allocate(ts, 16, 64) == nullptr);  // a bad tag is NULL too
    void* p = tagheap_heap_allocate(ts, 1, 64);
    CHECK(p != nullptr);
    long seen = tagheap_visit_gc_blocks(rt, [](const tagheap_block_ref*, void*) { return 1; }, nullptr);
    CHECK(seen == 1);
    tagheap_free(p);
    tagheap_thread_state_detach(ts);
    tagheap_thread_state_delete(ts);
    tagheap_runtime_delete(rt);
  }
}
