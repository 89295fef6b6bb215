// collector.h: when to collect, and the collection itself.
//
// Policy (the gc::Options rule, kept here until gc::MarkSweep has its own):
// a collection is due when the bytes allocated since the last one pass
//   budget = max(min_budget, growth * live bytes after the last one)
// min_budget is max(GC_INITIAL_HEAP_SIZE, 1 MiB) plus whatever GC_expand_hp
// asked for; growth is TAGHEAP_GC_GROWTH (default 1.0: the heap grows to
// about twice the live data). GC_MAXIMUM_HEAP_SIZE caps live + allocated:
// past it an allocation collects first and fails if that did not help.
// GC_PRINT_STATS prints one line per collection to stderr, and a summary at
// exit.
//
// A collection (collect()): take the registry lock, read the data segments
// of the loaded objects, stop the world, mark from the roots (roots.h) and
// trace objects by their kind, run finalization (finalization.h), sweep,
// resume, then run or announce the finalizers that became ready.
#pragma once

#include <cstddef>
#include <cstdint>
#include <utility>

#include "examples/libgc/threads.h"

namespace tagheap::libgc {

void init_collector();

// Counts `bytes` of new allocation on thread t (outside tagheap); collects
// when due. Cheap: a thread-local add, the global count every 64 KiB.
void note_allocation(ThreadRecord& t, std::size_t bytes);
// Whether an allocation of `bytes` would pass GC_MAXIMUM_HEAP_SIZE.
bool over_heap_limit(std::size_t bytes) noexcept;

// A full collection now (unless disabled: returns false then).
bool collect(const char* reason);

void disable() noexcept;
void enable() noexcept;
bool is_disabled() noexcept;
void expand_heap(std::size_t bytes) noexcept;

std::uint64_t collections() noexcept;
std::size_t heap_size() noexcept;            // live after the last collection + budget
std::size_t bytes_since_collection() noexcept;
std::size_t live_bytes() noexcept;           // after the last collection
std::size_t total_allocated() noexcept;

// gc::MarkSweep's finalization, for finalization.cc.
std::pair<void (*)(void*, void*), void*> collector_register_finalizer(void* obj, void (*fn)(void*, void*), void* data,
                                                                     bool ordered);
std::size_t collector_run_finalizers();
std::size_t collector_finalizers_queued() noexcept;

// The count allocation adds into (heap.cc flushes into it).
void add_allocated(std::size_t bytes) noexcept;

}  // namespace tagheap::libgc
