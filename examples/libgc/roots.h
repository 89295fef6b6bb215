// roots.h: where the collector starts, found as bdwgc finds it.
//
//   - the writable PT_LOAD segments (data and bss) of every loaded object,
//     from dl_iterate_phdr, except this library's own (tagheap's state holds
//     no pointer to an object that must live);
//   - the ranges given to GC_add_roots;
//   - each registered thread's stack from where it stopped to its base, and
//     the registers it saved (threads.h); the collecting thread's own;
//   - the scanned uncollectable objects (GC_malloc_uncollectable), by a walk
//     of their tag.
// Every range is scanned conservatively: each aligned word that points into
// a live GC block marks that block (interior pointers included).
#pragma once

#include <cstddef>
#include <cstdint>
#include <vector>

namespace tagheap::libgc {

struct Range {
  const char* lo;
  const char* hi;
};

// Registry lock held, before the world stops (dl_iterate_phdr takes the
// loader's lock, which a stopped thread might hold): the data segments now.
void read_static_roots(std::vector<Range>& out);
// Of those, the bytes of sanitizer runtimes (roots.cc says why).
std::size_t sanitizer_runtime_bytes() noexcept;

void add_roots(const void* lo, const void* hi);
void remove_roots(const void* lo, const void* hi);
void clear_roots();

// World stopped, registry lock held: calls scan(lo, hi, is_stack) for every
// root range above (is_stack: a thread's stack or registers, where interior
// pointers always count; see object_scan.h). `collector_sp` is the collecting thread's stack pointer (its
// registers spilled above it).
template <class Scan>
void for_each_root_range(const std::vector<Range>& statics, const char* collector_sp, Scan&& scan);

// Conservative scans: every aligned word in [lo, hi) that could be an
// address (not in the first page: small integers are most words) handed to
// mark(word). Not instrumented by ASan: stacks and data segments hold
// redzones. Inlined into its caller (a call per traced object was 6% of
// GCBench's marking instructions), except under ASan, where the inlined
// reads would take the caller's instrumentation.
#if defined(__SANITIZE_ADDRESS__)
#define TAGHEAP_LIBGC_SCAN_INLINING gnu::noinline
#else
#define TAGHEAP_LIBGC_SCAN_INLINING gnu::always_inline
#endif
template <class Mark>
[[TAGHEAP_LIBGC_SCAN_INLINING, gnu::no_sanitize_address]] inline void scan_words(const void* lo, const void* hi, Mark&& mark) {
  auto p = (reinterpret_cast<std::uintptr_t>(lo) + 7) & ~std::uintptr_t{7};
  const auto end = reinterpret_cast<std::uintptr_t>(hi);
  for (; p + sizeof(std::uintptr_t) <= end; p += sizeof(std::uintptr_t)) {
    const std::uintptr_t w = *reinterpret_cast<const std::uintptr_t*>(p);
    if (w >= 4096) mark(w);
  }
}

std::vector<Range>& added_roots() noexcept;  // registry lock held

}  // namespace tagheap::libgc

#include "examples/libgc/roots_inl.h"
