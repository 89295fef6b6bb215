// pause_allocation.h: memory for this library's own C++ code while the
// world is stopped.
//
// A thread is stopped by signal wherever it is (threads.h), also inside
// glibc's malloc holding an arena lock; a collector that calls malloc or
// free before resuming then waits for that lock forever (threads share
// arenas: past 8 per core, under MALLOC_ARENA_MAX, and free takes the lock
// of the block's arena whoever frees it). Our own code keeps clear of malloc
// in the pause, but gc::MarkSweep allocates there through operator new
// (Tracer::mark_weak's slot list on every collection with weak links, the
// finalizer table's snapshot, a mark stack that grows): malloc_stop_test
// hung on every run before this file.
//
// So this library defines operator new and delete for its own code,
// tagheap's and gc/'s included (the version script keeps them local: the
// host program's operators are untouched). Outside a pause they are malloc
// and free behind a 16-byte header. During a pause (begin_pause_allocation
// .. end_pause_allocation), on the collecting thread and on the collector's
// helper marker threads alike: a new block is an anonymous mapping of its
// own (mmap takes no user-space lock), and a free of a malloc'd block is
// deferred, pushed on a lock-free list through the block, until
// free_deferred_after_pause(); a mapped block is unmapped at once.
//
// Invariants
//   header(p).mapped_bytes != 0  <=>  p lies in an mmap of that many bytes at header(p).base
//   The pause flag is set only between stop_world and resume_world, when
//   the registered threads are stopped and only the collector's threads
//   run this library's code.
#pragma once

namespace tagheap::libgc {

void begin_pause_allocation() noexcept;      // right after stop_world()
void end_pause_allocation() noexcept;        // right before resume_world()
void free_deferred_after_pause() noexcept;   // after resume_world()

}  // namespace tagheap::libgc
