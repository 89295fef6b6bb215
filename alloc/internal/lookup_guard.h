// internal/lookup_guard.h: lookups of arbitrary words against the segment
// map, safe against segments being unmapped meanwhile. Internal.
//
// find_block takes any word (a conservative scan hands it stack slots), looks
// its unit up in the process-wide segment map, then reads the segment header
// and a page there. A segment of another runtime may be released at any time
// (its world is not stopped): without care, it is unmapped between the map
// lookup and the header read.
//
// Protocol (a Dekker pair through read-modify-writes of one counter, which
// its modification order serialises; no fences, which TSan can't follow):
//   reader  enter(): ++lookups; then read the map, and headers it names;
//           leave(): --lookups.
//   unmap   clear the segment's map bytes; then lookups += 0 (a
//           read-modify-write, not a load): 0, unmap now;
//           otherwise push the segment on a deferred list, unmapped by
//           whoever next sees lookups at 0 (the last reader leaving, or the
//           pusher itself re-checking after the push).
// Either the reader's map read comes after the clear (it finds nothing), or
// its increment comes before the unmapper's read (the unmap waits): no
// reader ever reads a header of memory that is unmapped. A reader may still
// read a header whose map bytes were just cleared; it stays mapped until the
// reader leaves. Equations: a segment is unmapped only when map bytes == 0
// and, since they were cleared, lookups has been 0.
//
// Lookups nest per thread (t_lookup_depth): only the outermost scope touches
// the shared counter, so a scan takes one scope around all its words and the
// per-word lookups inside cost a thread-local increment. Unmapping costs one
// atomic read-modify-write more; free() and allocate() are untouched.
#pragma once

#include "alloc/internal/config.h"

namespace tagheap::internal {

struct Segment;

// Lookup scopes open on this thread. Initial-exec, as t_current_owner: in
// a shared library (examples/libgc's libgc.so.1) the default model calls
// __tls_get_addr for every scope, one per conservatively scanned word
// (2% of w3m's profile on tagheap's libgc).
extern constinit thread_local unsigned t_lookup_depth __attribute__((tls_model("initial-exec")));

void enter_lookups() noexcept;
void leave_lookups() noexcept;

// Forgets seg in the segment map and unmaps its memory, at once or, while
// any lookup is in progress, once none is.
void unmap_segment_memory(Segment* seg) noexcept;

// In a fork() child (Runtime::after_fork_child): scopes that other threads
// held at the fork are gone with them, so the count becomes this thread's
// own, the lock is made anew, and what was deferred is unmapped if no scope
// is left. Without it, one scope held by any thread at the fork kept every
// later unmap of the child deferred forever.
void lookups_after_fork_child() noexcept;

}  // namespace tagheap::internal
