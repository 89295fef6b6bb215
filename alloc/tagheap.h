// tagheap.h: the allocation API (the umbrella header).
//
//   Runtime rt({.gc_tags = {1}});
//   ThreadState ts(rt);
//   ts.attach();
//   void* p = ts.heap(1).allocate(32);   // a block on a GC-tagged heap
//   tagheap::free(p);                    // from any thread
//   ts.detach();
#pragma once

#include <cstddef>

#include "alloc/heap.h"
#include "alloc/runtime.h"
#include "alloc/tag.h"
#include "alloc/thread_state.h"

namespace tagheap {

// From any OS thread, for any block of any runtime; nullptr is a no-op.
// A pointer tagheap never gave out, an interior pointer or a double free is
// reported with the pointer named, then the process aborts.
void free(void* p) noexcept;
// Usable bytes of the block p points to (>= the size asked for).
std::size_t usable_size(const void* p) noexcept;
Tag tag_of(const void* p) noexcept;
// The start of the live block containing p (interior pointers included), or
// nullptr: for conservative root scanning. Exact while the world is stopped.
void* find_block(const void* p) noexcept;

inline constexpr const char* kVersion = "0.1.0";

}  // namespace tagheap
