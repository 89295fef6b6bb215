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
#include "alloc/internal/lookup_guard.h"
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
// The usable bytes of the block an allocation of `size` bytes (16-byte
// aligned) gets, before it is made: usable_size() of what Heap::allocate
// returns, its size class's block size (at most 12.5% over `size` above 128
// bytes), or for a huge block `size` rounded up to 16. 0 for a size no
// allocation can have. As mimalloc's mi_good_size: a caller that accounts
// for memory (a collector's budget) counts what an allocation takes.
constexpr std::size_t good_size(std::size_t size) noexcept {
  if (size > internal::kMaxAllocation) return 0;
  if (size <= internal::kLargeBlockMax) return internal::class_block_size(internal::size_class_of(size));
  return (size + 15) & ~std::size_t{15};
}
Tag tag_of(const void* p) noexcept;
namespace internal {
class RuntimeCore;
// Needs a BlockLookupScope open on this thread. runtime: only blocks of that
// runtime (the page is read only once the segment is known to be its), or
// nullptr for any.
void* find_block_in(const void* p, const RuntimeCore* runtime) noexcept;
}  // namespace internal

// While one lives on a thread, segments that any runtime releases stay
// mapped (they are already forgotten by lookups), so find_block may look up
// any word, including one into memory another runtime is freeing right now.
// find_block opens one itself; a scan of many words opens one around them
// all (nested scopes cost a thread-local increment). Unmapping deferred by a
// scope happens when the last scope of the process closes.
class BlockLookupScope {
 public:
  BlockLookupScope() noexcept {
    if (internal::t_lookup_depth++ == 0) internal::enter_lookups();
  }
  ~BlockLookupScope() {
    if (--internal::t_lookup_depth == 0) internal::leave_lookups();
  }
  BlockLookupScope(const BlockLookupScope&) = delete;
  BlockLookupScope& operator=(const BlockLookupScope&) = delete;
};

// The start of the live block containing p (interior pointers included), or
// nullptr: for conservative root scanning. Any word is fine: one into another
// runtime's memory, a freed segment or a hole gives nullptr or a block, and
// never a crash. Exact while the world of p's runtime is stopped.
void* find_block(const void* p) noexcept;
// Only blocks of `runtime`: never reads another runtime's pages, so it is
// exact while `runtime`'s world is stopped, whatever other runtimes do.
void* find_block(const void* p, const Runtime& runtime) noexcept;
// Whether p lies in memory that one of `runtime`'s segments covers now: a
// block (allocated or free), a free page, a segment header. What Boehm's
// GC_is_heap_ptr asks ("somewhere in the GC heap"). Any word, from any
// thread, with the world running: it reads the segment map and the
// segment's fixed fields (its runtime and size), never a page, so it needs
// no stopped world and no owner out of the way. An empty segment being laid
// out again for another page size reads as not there meanwhile.
bool in_runtime_memory(const void* p, const Runtime& runtime) noexcept;

inline constexpr const char* kVersion = "0.1.0";

}  // namespace tagheap
