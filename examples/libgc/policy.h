// policy.h: when to collect, as bdwgc decides it.
//
// bdwgc collects once the bytes allocated since the last collection pass
//   budget = (2 x scanned live + atomic live / 4 + root bytes) / divisor
// (its GC_min_bytes_allocd: scanning a pointerful byte costs more than
// allocating one, an atomic byte costs almost nothing), with divisor =
// GC_free_space_divisor: 3 by default, GC_FREE_SPACE_DIVISOR or
// GC_set_free_space_divisor. A larger divisor: more collections, less
// memory. This file keeps that rule (the budget is never below min_budget:
// max(GC_INITIAL_HEAP_SIZE, 1 MiB) plus what GC_expand_hp asked for), so a
// client tuned for bdwgc gets the heap it was tuned for.
//
// Why not gc::MarkSweep's own policy (Options::heap_growth and
// min_budget_bytes, MarkSweep::collection_due): it weighs every live byte the
// same (an atomic-heavy client like w3m would get a budget several times
// bdwgc's), and its Options are fixed at construction, while a Boehm client
// may change the divisor, the heap limit or the initial heap at any time.
// TAGHEAP_GC_GROWTH=g selects gc::Options' rule instead (budget =
// g x live bytes), for comparison (bench/libgc_bench.py).
//
// GC_MAXIMUM_HEAP_SIZE / GC_set_max_heap_size cap live + allocated since the
// last collection: past it an allocation collects first and fails if that
// did not help (heap.cc).
//
// Invariants
//   budget() >= min_budget >= 1 MiB, so an empty heap never collects in a loop.
//   Counters are atomics: any thread reads them without a lock; the settings
//   are written under the registry lock or before the first allocation.
#pragma once

#include <cstddef>
#include <cstdint>

namespace tagheap::libgc {

// What the last collection found: the inputs of the budget.
struct LiveHeap {
  std::size_t scanned = 0;  // bytes of live objects of scanned kinds
  std::size_t atomic = 0;   // bytes of live objects never scanned
  std::size_t roots = 0;    // bytes of roots scanned (data, stacks, uncollectable objects)
};

// Once, from init: reads GC_FREE_SPACE_DIVISOR, GC_INITIAL_HEAP_SIZE,
// GC_MAXIMUM_HEAP_SIZE and TAGHEAP_GC_GROWTH.
void init_policy();

void add_allocated(std::size_t bytes) noexcept;  // the global count (heap.cc flushes into it)
bool collection_due() noexcept;
// The count since the last collection, restarted (world stopped).
std::size_t take_allocated_since() noexcept;
// After a collection (registry lock held): the next budget.
void after_collection(const LiveHeap& live) noexcept;
// Whether an allocation of `bytes` would pass the heap limit.
bool over_heap_limit(std::size_t bytes) noexcept;

void set_free_space_divisor(std::size_t divisor) noexcept;  // 0 is taken as 1
std::size_t free_space_divisor() noexcept;
void set_max_heap_size(std::size_t bytes) noexcept;         // 0: no limit
void expand_heap(std::size_t bytes) noexcept;

std::size_t heap_size() noexcept;            // live after the last collection + budget
std::size_t bytes_since_collection() noexcept;
std::size_t live_bytes() noexcept;           // after the last collection
std::size_t total_allocated() noexcept;
std::size_t budget() noexcept;

}  // namespace tagheap::libgc
