// internal/runtime_core.h: what a Runtime owns. Internal.
//
// Ownership and locks (lock order: shard.mu -> segments.mu; threads_mu alone)
//   segments   SegmentPool (segment_pool.h): every segment of this runtime;
//              carves free pages out of them, takes pages back, keeps free
//              memory while the recent peak wants it. Its own mutex; slow
//              path only.
//   shards[t]  per tag t: the abandoned pool (pages with free blocks binned by
//              size class, full ones in a list) and the huge pages of tag t,
//              under shard.mu. Reclaim looks only at shards[heap.tag()]
//              (invariants 2 and 8).
//   threads    the ThreadStates of this runtime, under threads_mu. A thread
//              state joins once fully built and leaves after its pages are
//              abandoned (invariant 9).
//
// Lazy sweeping (a collector's marks, freed later; gc/ drives it through
// heap_walk.h's begin_lazy_sweep):
//   sweep_epoch  bumped, with the world stopped, when a collection ends its
//                pause with its marks still to be swept
//   pending      page.swept_epoch != sweep_epoch and page.tag in sweep_tags:
//                the page holds the last collection's marks; a block of it
//                is dead iff live and unmarked
//   Nothing allocates from, walks, reclaims or reports a block of a pending
//   page before sweeping it (Page::sweep_unmarked): the heap's page choice
//   (Heap::make_current, find_page), reclaim, abandonment, trim, walks and
//   find_block all go through sweep_if_pending or read the marks. A new
//   collection first sweeps every pending page (a walk does, or
//   heap_walk.h's sweep_pending_pages, over several pauses if need be).
#pragma once

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <mutex>
#include <vector>

#include "alloc/internal/intrusive.h"
#include "alloc/internal/page.h"
#include "alloc/internal/remote_free_buffer.h"
#include "alloc/internal/segment.h"
#include "alloc/internal/segment_pool.h"
#include "alloc/internal/size_class.h"
#include "alloc/tag.h"

namespace tagheap {
struct RuntimeOptions;
class ThreadState;
}  // namespace tagheap

namespace tagheap::internal {

struct TagShard {
  std::mutex mu;
  PageList bins[kClassCount];  // abandoned pages with free blocks
  PageList full;               // abandoned pages without
  PageList huge;               // huge pages of this tag
  std::atomic<std::size_t> available{0};  // pages in bins: read without the lock
  std::size_t abandoned_total = 0;        // pages ever abandoned
  std::size_t reclaimed_total = 0;        // pages ever reclaimed

  // The pool's bookkeeping, all under mu: a page with free blocks sits in
  // its class's bin (and counts in `available`), a full one in `full`.
  // A page with thread frees announced but not collected goes to its bin:
  // they free blocks (reclaim collects them).
  void add(Page& page) noexcept {
    page.in_pool = 1;
    page.pool_full = !page.has_free_in_bits() && page.thread_frees_pending() == 0;
    if (page.pool_full) {
      full.push_back(page);
    } else {
      bins[page.size_class].push_back(page);
      available.fetch_add(1, std::memory_order_relaxed);
    }
  }
  void remove(Page& page) noexcept {
    if (page.pool_full) {
      full.erase(full.iterator_to(page));
    } else {
      bins[page.size_class].erase(bins[page.size_class].iterator_to(page));
      available.fetch_sub(1, std::memory_order_relaxed);
    }
    page.in_pool = 0;
  }
  // A full page that gained free blocks moves to its bin, where reclaim looks.
  void refile(Page& page) noexcept {
    if (page.pool_full && page.has_free_in_bits()) {
      remove(page);
      add(page);
    }
  }
};

// Walks (of any runtime) in progress on this OS thread: frees from it during
// a walk are the visitor's or a finalizer's, which the walking rules allow.
extern constinit thread_local int t_walks_on_this_thread __attribute__((tls_model("initial-exec")));

// A thread state's link in its runtime's list (the ThreadState embeds it).
struct ThreadNode {
  ListHook hook;
  ThreadState* self = nullptr;
  // Its frees into others' pages while attached: taken at the first such
  // free, given back at detach; nullptr before, or when none was to be had.
  RemoteFreeBuffer* remote_frees = nullptr;
  bool remote_frees_tried = false;  // since it attached
};
using ThreadList = IntrusiveList<ThreadNode, &ThreadNode::hook>;

class RuntimeCore {
 public:
  explicit RuntimeCore(const RuntimeOptions& options);
  ~RuntimeCore();

  const RuntimeOptions& options;
  SegmentPool segments{this};
  TagShard shards[kTagCount];

  std::mutex threads_mu;
  ThreadList threads;
  // The thread between Runtime::before_fork and after_fork_parent (an
  // address of its own), or 0: a second before_fork on it would wait for
  // itself, an after_fork_parent elsewhere would unlock what it does not hold.
  std::atomic<std::uintptr_t> fork_holder{0};
  // Walks in progress: debug builds refuse slow-path work while one runs,
  // and checked builds refuse frees from threads that are not walking.
  std::atomic<int> walkers{0};
  // The list of pages a pass by segment puts back when it is over
  // (heap_walk.h, DeferredAfterWalk), capacity kept from one pass to the
  // next: a collection's pause then allocates nothing for it (libgc's
  // pause allocator mapped and unmapped the growing list on every
  // collection, a tenth of ECL's run time on control.lsp). Taken by one
  // pass at a time; a pass that finds it taken uses a list of its own.
  std::vector<Page*> deferred_pages;
  std::atomic<bool> deferred_pages_taken{false};

  // --- lazy sweeping (see the top of this file) ---
  std::uint32_t sweep_epoch = 0;
  std::uint16_t sweep_tags = 0;
  bool sweep_keeps_marks = false;  // generational collectors: marks mean "old"
  // Tags whose marks stay set between collections (generational): their
  // pages send frees to the slow path (Page::kSlowFreeSticky).
  std::uint16_t sticky_tags = 0;
  // World stopped: marks of `tags` become sticky, on every page in use and
  // every page made from now on.
  void make_marks_sticky(TagSet tags) noexcept;
  bool sweep_pending(const Page& page) const noexcept {
    return page.swept_epoch != sweep_epoch && ((sweep_tags >> page.tag) & 1u);
  }
  void sweep_if_pending(Page* page) noexcept {
    if (sweep_pending(*page)) [[unlikely]] page->sweep_unmarked(sweep_epoch, sweep_keeps_marks);
  }

  // --- allocation volume, per tag (for collection policies) ---
  // Bytes of blocks heaps took from their pages' bitmaps (a cache word's
  // free blocks when it is taken, a huge block when made), monotonic. Heaps
  // add to it every kAllocatedFlushBytes, so no atomic sits on the
  // allocation fast path; a stopped world flushes every heap.
  static constexpr std::size_t kAllocatedFlushBytes = std::size_t{64} << 10;
  std::atomic<std::uint64_t> allocated_bytes[kTagCount] = {};

  // --- pages ---
  void release_page(Page* page) noexcept { segments.give_back(page); }
  void* allocate_huge(Tag tag, std::size_t size, std::size_t align, bool debug_fill) noexcept;
  void free_huge(Page* page, std::uintptr_t p) noexcept;

  // --- the abandoned pool ---
  // Moves a page out of a heap into the pool of its tag (caller holds shard.mu).
  void abandon_page_locked(TagShard& shard, Page* page) noexcept;
  // A page of class c and tag `tag` with free blocks, now owned by `heap`.
  Page* reclaim(Tag tag, std::size_t c, Heap* heap, std::uintptr_t owner) noexcept;
  // free() of a block whose page has no owner.
  void free_in_abandoned(Page* page, std::uintptr_t p) noexcept;
  // After a walk emptied a pool or huge page that it stood on.
  void release_if_empty_unowned(Page* page) noexcept;
  // Collects thread-free lists of pool pages and returns the empty ones.
  std::size_t trim_pool() noexcept;
  // World stopped, marking done: the pages of `tags` now hold the marks of a
  // collection whose sweep happens lazily (see the top of this file). Dead
  // huge blocks are freed at once.
  void begin_lazy_sweep(TagSet tags, bool keep_marks) noexcept;
  // World stopped: every thread state's gathered frees land on their pages
  // (remote_free_buffer.h), so a walk or a sweep sees them freed.
  void flush_remote_frees() noexcept;

  // --- frees gathered by thread states (remote_free_buffer.h) ---
  // Every buffer made for this runtime, linked by `next`, freed only with
  // it: find_block may read them from any thread without a lock.
  std::atomic<RemoteFreeBuffer*> remote_free_buffers{nullptr};
  // Buffers holding frees now: find_block looks in them only when not 0.
  std::atomic<std::uint32_t> remote_free_buffers_holding{0};
  // A buffer for an attached thread state at its first free into another
  // thread's page (a given-back one, or one mapped now), or nullptr when
  // memory is short; given back flushed at detach.
  RemoteFreeBuffer* take_remote_free_buffer() noexcept;
  static std::size_t remote_free_buffer_bytes() noexcept;  // mapped for one
  void give_back_remote_free_buffer(RemoteFreeBuffer* buffer) noexcept;
  // Whether some thread state gathered the free of block i of `page`.
  bool remote_free_noted(const Page& page, std::uint32_t i) const noexcept {
    if (remote_free_buffers_holding.load(std::memory_order_acquire) == 0) return false;
    for (const RemoteFreeBuffer* b = remote_free_buffers.load(std::memory_order_acquire); b != nullptr; b = b->next)
      if (b->holds(&page, i)) return true;
    return false;
  }

  // Checked builds, in free(): the world is stopped during a walk (or a
  // collection's sweep), so only a walking thread (a visitor, a finalizer)
  // may free; a free from any other thread is a contract violation that
  // would race with the walk's own updates of the page. Fatal, naming p.
  void check_free_outside_walk(std::uintptr_t p) const noexcept {
    if (walkers.load(std::memory_order_relaxed) != 0 && t_walks_on_this_thread == 0) [[unlikely]]
      free_during_walk(p);
  }
  [[noreturn, gnu::cold, gnu::noinline]] static void free_during_walk(std::uintptr_t p) noexcept;

  void check_no_walk(const char* what) const noexcept {
    if (kDebug && walkers.load(std::memory_order_relaxed) != 0)
      fatal("tagheap: %s while a walk of this runtime is in progress "
            "(a visitor must not allocate; the world must be stopped)", what);
  }
};

}  // namespace tagheap::internal
