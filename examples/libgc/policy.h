// policy.h: when to collect, as bdwgc decides it.
//
// bdwgc collects when its heap has no free block left for an allocation
// and the bytes allocated since the last collection pass
//   min_bytes = (2 x scanned live + atomic live / 4 + root bytes) / divisor
// (its GC_min_bytes_allocd: scanning a pointerful byte costs more than
// allocating one, an atomic byte costs almost nothing), with divisor =
// GC_free_space_divisor: 3 by default, GC_FREE_SPACE_DIVISOR or
// GC_set_free_space_divisor. A larger divisor: more collections, less
// memory. Short of min_bytes it grows the heap instead, and the heap never
// shrinks: so a collection comes once the whole free part of the heap is
// used, however much that is. This file keeps both halves of that rule: it
// tracks the heap bdwgc would have (the initial heap, max(GC_INITIAL_HEAP_SIZE,
// 1 MiB), grown by GC_expand_hp and, whenever live + min_bytes passes it,
// a divisor-th at a time, from 256 KiB to 8 MiB a step, as bdwgc grows it),
// and the budget after a collection is the heap's free part, heap - live
// (at least min_bytes: the heap grows to hold it, and the grown heap's free
// part is the budget, as bdwgc fills a heap it grew before it collects
// again). Allocation counts what it takes, its size class, as bdwgc's
// GC_bytes_allocd counts its size map's class (heap.h, counted_bytes). So
// a client tuned for bdwgc gets the heap, and the collections, it was tuned
// for. (Collecting every min_bytes alone, whatever the heap, made 3.6x
// bdwgc's collections on GCBench and 1.3x on w3m; budgeting only min_bytes
// after a growth, 1.66x and 1.2x.)
//
// Why not gc::MarkSweep's own policy (Options::heap_growth and
// min_budget_bytes, MarkSweep::collection_due): it weighs every live byte the
// same (an atomic-heavy client like w3m would get a budget several times
// bdwgc's), and its Options are fixed at construction, while a Boehm client
// may change the divisor, the heap limit or the initial heap at any time.
// TAGHEAP_GC_GROWTH=g selects gc::Options' rule instead (budget =
// g x live bytes, the heap's free part not counted), for comparison
// (bench/libgc_bench.py).
//
// Besides: a registration that would double bdwgc's table of links or of
// finalizers past 4096 buckets collects first (finalization.cc).
//
// GC_MAXIMUM_HEAP_SIZE / GC_set_max_heap_size cap live + allocated since the
// last collection: past it an allocation collects first and fails if that
// did not help (heap.cc).
//
// Invariants
//   budget() >= 1 MiB, so an empty heap never collects in a loop.
//   After a collection, heap_size() == live + budget() (>= under
//   TAGHEAP_GC_GROWTH), and heap_size() never shrinks (the high-water mark
//   of what bdwgc would map).
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

// A size from the environment: digits with an optional k, M or G suffix;
// dflt when unset or empty.
std::size_t env_size(const char* name, std::size_t dflt);

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
// GC_expand_hp: false, and the heap as it was, past GC_set_max_heap_size's
// limit or past what the kernel would map (physical memory and swap), as
// bdwgc fails then.
bool expand_heap(std::size_t bytes) noexcept;

std::size_t heap_size() noexcept;            // the heap bdwgc would have (at least live + since)
std::size_t bytes_since_collection() noexcept;
std::size_t live_bytes() noexcept;           // after the last collection
std::size_t total_allocated() noexcept;
std::size_t budget() noexcept;

}  // namespace tagheap::libgc
