// runtime.h: an isolated allocation domain (like one interpreter).
//
// A Runtime owns its segments, its abandoned pool (per tag) and the list of
// its thread states. Two runtimes never share a page: a block of one freed
// while a thread state of another is attached goes back to its own runtime.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>

#include "alloc/tag.h"

namespace tagheap {

namespace internal {
class RuntimeCore;
}
class ThreadState;

struct RuntimeOptions {
  TagSet gc_tags;           // tags whose blocks are GC objects
  bool debug_fill = false;  // fill fresh blocks with 0xCD, freed ones with 0xDD
  // Transparent huge pages for every segment of small pages (madvise
  // MADV_HUGEPAGE), where the kernel's THP mode is `madvise` or `always`:
  // far fewer page faults and TLB misses for dense heaps, up to 2 MiB more
  // resident memory per partly used segment, and free pages of a segment in
  // use stay committed (releasing 64 KiB would split a huge page).
  bool huge_os_pages = false;
  // The same, but only for segments mapped (or laid out anew) once this
  // many bytes of segments are in use (0: never): a large heap gets huge
  // pages, a small program does not pay 2 MiB per segment for them. Chosen
  // by measurement (README.md, "Memory and the operating system"): on a VM
  // where page faults are dear, GCBench 30% faster, binary-trees 9%, at
  // 1-4 MiB more peak RSS. Ignored when huge_os_pages is on.
  std::size_t huge_os_pages_above = std::size_t{8} << 20;
  // What a huge OS page's first touch may cost the thread that faults it
  // in, in CPU nanoseconds (0 or less: no limit), before segments mapped
  // later stop asking for huge pages under huge_os_pages_above. The pool
  // times the touches it makes itself: a new segment's header (its first
  // 2 MiB) and the populator's faulting in (populate_ahead_above). Once
  // three more touches have passed the limit than stayed under it
  // (internal/config.h, kHugeDearVerdict: one dear fault among cheap ones
  // is a hiccup), segments mapped later are on small OS pages for the
  // runtime's life. Zeroing 2 MiB takes 0.1-0.5 ms where memory is at
  // hand; on a VM whose host backs fresh memory lazily it took 7-20 ms
  // (bench/README.md, "Huge pages that come dear"), 5-20 times what the
  // same memory cost in 4 KiB faults, and stalled a mutator for as long.
  // 2 ms lies between.
  // Ignored by huge_os_pages, which always asks.
  std::int64_t huge_os_page_fault_limit_ns = 2'000'000;
  // Once this many bytes of segments are in use (0: never) and segments of
  // small pages get huge pages (above), a background thread of the runtime
  // maps and faults in the next such segment before it is needed, so a
  // growing heap's allocations do not wait for the kernel to zero 2 MiB
  // (measured on a VM: 4-5 ms for each huge page's first touch, the
  // longest stalls an incremental collector's mutator saw at 100 MiB
  // live). Once huge pages came dear (above) it goes on, on small OS
  // pages: the allocating threads then take none of those segments' 4 KiB
  // faults. Costs one thread per runtime whose heap passes it, parked
  // while the heap does not grow, and one segment (4 MiB) of resident
  // memory held ready: 32 MiB keeps that off small heaps (GCBench peaked
  // 6 MiB higher with it at 8 MiB, 35.6 against 29.5).
  std::size_t populate_ahead_above = std::size_t{32} << 20;
  // A page of small blocks (64 KiB) taken from memory the process does not
  // hold (a new segment's, or one whose memory went back to the OS) is
  // faulted in by its heap ahead of allocation, 16 KiB
  // (internal::kPopulateStepBytes) per system call (os::populate,
  // MADV_POPULATE_WRITE, Linux 5.14+; nothing where the kernel lacks it),
  // not a page fault per 4 KiB as its blocks are first written. On a
  // 2-core VM a fault cost 5-10 us, mostly the exception's way through the
  // hypervisor, and populating half that a page or less: w3m through the
  // Boehm API ran 0.61-0.64 s against 0.70-0.71 (system time 0.04-0.09 s
  // against 0.13-0.14), at 0.6 MiB more peak RSS; ECL no faster, at
  // 1.1-1.5 MiB more (README.md, "Memory and the operating system"). A
  // partly used page holds at most a step it has not written. Pages on
  // huge OS pages and of bigger blocks are never populated.
  bool populate_small_pages = true;
};

// Figures for one tag, taken by a walk (the world must be stopped).
struct TagStats {
  std::size_t pages = 0;            // pages in use, huge ones included
  std::size_t abandoned_pages = 0;  // of those, waiting in the pool
  std::size_t huge_pages = 0;
  std::size_t blocks = 0;           // live blocks
  std::size_t bytes_in_use = 0;     // sum of their usable sizes
  std::size_t bytes_committed = 0;  // page memory of those pages
  std::size_t abandoned_total = 0;  // pages ever abandoned into the pool
  std::size_t reclaimed_total = 0;  // pages ever reclaimed from it
};

struct RuntimeStats {
  TagStats tags[kTagCount];
  TagStats total;
  std::size_t segments = 0;                 // mapped now, huge and empty ones included
  std::size_t empty_segments = 0;           // of those, kept empty for reuse (not huge)
  std::size_t segments_mapped_total = 0;    // over the runtime's life
  std::size_t segments_unmapped_total = 0;
  // Huge pages came dear (RuntimeOptions::huge_os_page_fault_limit_ns):
  // segments mapped now are on small OS pages.
  bool huge_os_pages_declined = false;
  std::size_t thread_states = 0;
};

class Runtime {
 public:
  explicit Runtime(RuntimeOptions options = {});
  // Every ThreadState of the runtime must be gone: a fatal error otherwise.
  // Releases every segment, including blocks never freed.
  ~Runtime();
  Runtime(const Runtime&) = delete;
  Runtime& operator=(const Runtime&) = delete;

  const RuntimeOptions& options() const noexcept { return options_; }

  // Around fork() in a process whose other threads may be inside this
  // runtime (pthread_atfork's prepare and parent handlers; the child calls
  // after_fork_child): before_fork takes every lock of the runtime, in lock
  // order, and holds them until after_fork_parent, so that no thread (the
  // segment pool's populator included) is halfway through what they guard
  // when the child is made. A thread's own heap takes no lock: the caller
  // keeps its other threads out of their heaps meanwhile (a VM stops them
  // at a safepoint; examples/libgc holds them out of tagheap). Not from
  // inside a walk. A second before_fork on the same thread before
  // after_fork_parent, or an after_fork_parent on a thread that did not
  // call before_fork, throws std::logic_error and changes nothing.
  void before_fork();
  void after_fork_parent();
  // In a fork() child, before anything else: every thread state but
  // `survivor` belonged to a thread that no longer exists; abandon them all
  // (their pages go to the pool, reclaimable by tag). Locks held by vanished
  // threads are reset, and so are the block-lookup scopes they held
  // (BlockLookupScope), which would otherwise defer the child's unmaps forever.
  void after_fork_child(ThreadState& survivor);
  // The same when the forking thread had no thread state of this runtime:
  // every one is abandoned.
  void after_fork_child();

  // stats(), verify() and trim() are refused (std::logic_error) inside a
  // walk of this runtime on the calling thread (a visitor's, a finalizer's
  // or a collector callback's call): the walk holds what they need.
  // World stopped: statistics for every tag, by a walk.
  RuntimeStats stats();
  // World stopped: checks every invariant of every page, queue and pool;
  // fatal with a message on the first violation. Returns the pages checked.
  std::size_t verify();
  // Returns empty abandoned pages to their segments (also done by reclaim),
  // then gives the OS back all free memory: decommits every free page and
  // unmaps every empty segment and cached huge one. Returns the pages
  // taken from the pool.
  std::size_t trim();

  std::size_t thread_state_count() const noexcept;
  // Bytes of blocks of `tags` allocated since the runtime began, for
  // collection policies: counted as heaps take a bitmap word's free blocks
  // (and at each huge block), added to the total every 64 KiB per heap
  // (RuntimeCore::kAllocatedFlushBytes) and whenever the world is stopped
  // for a lazy sweep; monotonic, any thread, no lock.
  std::uint64_t allocated_bytes(TagSet tags) const noexcept;
  internal::RuntimeCore& core() noexcept { return *core_; }
  const internal::RuntimeCore& core() const noexcept { return *core_; }

 private:
  friend class ThreadState;
  void after_fork_child_keeping(ThreadState* survivor);  // nullptr: none
  RuntimeOptions options_;
  std::unique_ptr<internal::RuntimeCore> core_;
};

}  // namespace tagheap
