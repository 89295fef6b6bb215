// allocator.h: one adaptor per allocator, chosen at compile time.
//
// Each benchmark source is compiled once per allocator with exactly one of
// BENCH_TAGHEAP, BENCH_MIMALLOC, BENCH_JEMALLOC, BENCH_GLIBC defined (see
// bench/BUILD). The adaptor offers:
//   Process             constructed once in main (tagheap: the Runtime)
//   Thread(Process&)    one per OS thread that allocates (tagheap: a
//                       ThreadState attached to it, heap of tag 0)
//   thread.alloc(n)     allocate n bytes
//   bench_free(p)       free from any thread
//   kAllocatorName      the name printed in results
//
// mimalloc is called through mi_malloc/mi_free. Note: Debian's libmimalloc.so
// also exports malloc/free, so linking it replaces malloc for the whole
// process; jemalloc (no je_ prefix on Debian) does the same on purpose.
#pragma once

#include <cstddef>

#if defined(BENCH_TAGHEAP)
#include <cstdlib>

#include "alloc/tagheap.h"
#include "bench/common.h"
#elif defined(BENCH_MIMALLOC)
#include <mimalloc.h>
#elif defined(BENCH_JEMALLOC)
#include <jemalloc/jemalloc.h>
#include <cstdlib>
#elif defined(BENCH_GLIBC)
#include <cstdlib>
#else
#error "define one of BENCH_TAGHEAP, BENCH_MIMALLOC, BENCH_JEMALLOC, BENCH_GLIBC"
#endif

namespace bench {

#if defined(BENCH_TAGHEAP)
inline constexpr const char* kAllocatorName = "tagheap";
// The library's default options, unless BENCH_HUGE_OS_PAGES says otherwise
// (common.h), for A/B runs.
inline tagheap::RuntimeOptions runtime_options() {
  tagheap::RuntimeOptions o;
  bench::apply_huge_os_pages_env(o);
  return o;
}
struct Process {
  tagheap::Runtime runtime{runtime_options()};
};
class Thread {
 public:
  explicit Thread(Process& p) : ts_(p.runtime) {
    ts_.attach();
    heap_ = &ts_.heap(0);
  }
  ~Thread() { ts_.detach(); }
  void* alloc(std::size_t n) { return heap_->allocate(n); }

 private:
  tagheap::ThreadState ts_;
  tagheap::Heap* heap_;
};
inline void bench_free(void* p) { tagheap::free(p); }

#elif defined(BENCH_MIMALLOC)
inline constexpr const char* kAllocatorName = "mimalloc";
struct Process {};
struct Thread {
  explicit Thread(Process&) {}
  void* alloc(std::size_t n) { return mi_malloc(n); }
};
inline void bench_free(void* p) { mi_free(p); }

#else
#if defined(BENCH_JEMALLOC)
inline constexpr const char* kAllocatorName = "jemalloc";
struct Process {
  // Fails loudly if malloc is not jemalloc's (e.g. the link order changed).
  Process() {
    const char* version = nullptr;
    std::size_t len = sizeof(version);
    if (mallctl("version", &version, &len, nullptr, 0) != 0 || version == nullptr) std::abort();
  }
};
#else
inline constexpr const char* kAllocatorName = "glibc";
struct Process {};
#endif
struct Thread {
  explicit Thread(Process&) {}
  void* alloc(std::size_t n) { return std::malloc(n); }
};
inline void bench_free(void* p) { std::free(p); }
#endif

}  // namespace bench
