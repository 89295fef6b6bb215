// collector.h: one collection, started when policy.h says it is due.
//
// A collection (collect()): take the registry lock, read the data segments
// of the loaded objects, stop the world, mark from the roots (roots.h) and
// trace objects by their kind, run finalization (finalization.h), sweep,
// resume, then run or announce the finalizers that became ready.
// GC_PRINT_STATS prints one line per collection to stderr, and a summary at
// exit.
#pragma once

#include <cstddef>
#include <cstdio>
#include <cstdint>
#include <utility>

#include "examples/libgc/policy.h"
#include "examples/libgc/threads.h"

namespace tagheap::libgc {

void init_collector();

// Counts `bytes` of new allocation on thread t (outside tagheap); collects
// when due. Cheap: a thread-local add, the global count every 64 KiB.
void note_allocation(ThreadRecord& t, std::size_t bytes);

// GC_start_mark_threads: the helper markers start now (GC_MARKERS > 1:
// instead of at the first collection; GC_MARKERS unset: one per usable CPU,
// which until now marked alone, as bdwgc's do until started).
void start_mark_threads();
// GC_pthread_create, GC_allow_register_threads: the default markers
// start, if nothing started them yet (bdwgc 8.2 starts its helpers there).
void start_default_markers();
// GC_get_parallel: the helper markers collections run with now (markers - 1).
unsigned helper_markers();
// GC_set_markers_count: before initialisation, the markers (the collecting
// thread included) the default helpers start with; 0: one per usable CPU.
void set_markers_count(unsigned n) noexcept;

// A full collection now (unless disabled: returns false then).
bool collect(const char* reason);
// Whether a collection runs on this thread now (its start callback, a mark
// procedure, ...): collect() would refuse.
bool collecting_on_this_thread() noexcept;
// GC_dump's second part: the heap's pages, blocks and bytes per kind (a walk
// of the runtime with the world stopped, printed once it runs again); a
// line saying why not from inside a collection or a walk (a finalizer).
void print_heap_by_kind(std::FILE* out);

void disable() noexcept;
void enable() noexcept;
bool is_disabled() noexcept;

std::uint64_t collections() noexcept;

// gc::MarkSweep's finalization, for finalization.cc.
std::pair<void (*)(void*, void*), void*> collector_register_finalizer(void* obj, void (*fn)(void*, void*), void* data,
                                                                     bool ordered);
std::size_t collector_run_finalizers();
std::size_t collector_finalizers_queued() noexcept;

}  // namespace tagheap::libgc
