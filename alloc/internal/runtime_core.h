// internal/runtime_core.h: what a Runtime owns. Internal.
//
// Ownership and locks (lock order: shard.mu -> segments.mu; threads_mu alone)
//   segments   SegmentPool: every segment of this runtime; carves free pages
//              out of them and takes pages back. Its own mutex; slow path only.
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
//   collection first sweeps every pending page (a walk does).
#pragma once

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <mutex>

#include "alloc/internal/intrusive.h"
#include "alloc/internal/page.h"
#include "alloc/internal/segment.h"
#include "alloc/internal/size_class.h"
#include "alloc/tag.h"

namespace tagheap {
struct RuntimeOptions;
class ThreadState;
}  // namespace tagheap

namespace tagheap::internal {

using PageList = IntrusiveList<Page, &Page::queue_hook>;
using SegmentList = IntrusiveList<Segment, &Segment::avail_hook>;
using AllSegmentList = IntrusiveList<Segment, &Segment::all_hook>;

class SegmentPool {
 public:
  explicit SegmentPool(RuntimeCore* runtime) : runtime_(runtime) {}
  ~SegmentPool();
  SegmentPool(const SegmentPool&) = delete;
  SegmentPool& operator=(const SegmentPool&) = delete;

  // An unused page of the kind, with area and area_size set; nullptr when the
  // OS refuses memory.
  Page* take_page(PageKind kind) noexcept;
  // A huge segment for one block of `size` bytes aligned to `align` (both
  // checked by the caller: size <= kMaxAllocation, align < kSegmentSize).
  Page* take_huge_page(std::size_t size, std::size_t align) noexcept;
  // The page must be unlinked from every list. Its memory stays committed
  // for a while (below); an empty segment is cached (up to kSegmentCacheMax)
  // or unmapped.
  void give_back(Page* page) noexcept;
  // Decommits every free page still committed (Runtime::trim).
  void purge_all() noexcept;

  template <class F>
  void for_each_segment(F&& f) {
    for (Segment& s : all_) f(s);
  }
  std::size_t segment_count() const noexcept { return all_.size(); }
  void reset_lock_after_fork() noexcept { new (&mu_) std::mutex(); }

 private:
  Segment* map_segment(PageKind kind, std::size_t size) noexcept;
  void unmap_segment(Segment* seg) noexcept;
  void forget_dirty_pages(Segment* seg) noexcept;
  void purge_aged_and_excess() noexcept;
  void purge_oldest_until(std::size_t keep) noexcept;
  void decommit_dirty(Page& page) noexcept;

  // Free pages keep their memory committed for a while: a page emptied by a
  // sweep or a retire is usually taken again soon, and faulting 64 KiB back
  // in costs more than its whole reuse. Two generations: a page freed goes
  // to `young_`; every kPurgeDelayMs the pages still in `old_` (unused for
  // one to two periods) are decommitted and `young_` becomes `old_`. Beyond
  // that, committed free pages never exceed max(kDirtyBytesMin, the most
  // memory the pages in use had since the last rotation), oldest first: the
  // recent peak, not the current use, so a sweep that empties most of the
  // heap does not decommit what the mutators are about to fill again.
  static constexpr std::size_t kDirtyBytesMin = std::size_t{8} << 20;
  static constexpr std::int64_t kPurgeDelayMs = 100;
  // A freed huge segment of at most kHugeCacheBytes / 4 is kept whole
  // (mapped and committed) for up to two purge periods, while the cache
  // holds at most max(kHugeCacheBytes (config.h), the most bytes of huge
  // segments in use since the last rotation) in at most kHugeCacheSlots
  // segments: like dirty pages, bounded by the recent peak of what is in
  // use. A huge block takes the smallest cached segment that fits it and is
  // at most 4 times its size (the rest stays mapped, and committed only
  // where an earlier block touched it). The cache is a small array,
  // not a list through the segments: a lookup reads one or two cache lines
  // instead of a header in each cached segment.
  static constexpr std::size_t kHugeCacheSlots = 64;
  struct CachedHuge {
    Segment* seg;
    std::size_t size;
    std::int64_t cached_at_ms;
  };

  Page* take_cached_huge(std::size_t total) noexcept;
  void cache_huge(Segment* seg) noexcept;
  void evict_huge(std::int64_t now) noexcept;
  void drop_cached_huge(std::size_t i) noexcept;
  void count_huge_in_use(std::size_t size) noexcept;
  void unmap_oldest_cached_huge() noexcept;
  void rotate_if_due(std::int64_t now) noexcept;
  static std::int64_t now_ms() noexcept;

  RuntimeCore* runtime_;
  std::mutex mu_;
  SegmentList avail_[3];  // small, medium, large segments with a free page
  AllSegmentList all_;
  std::size_t empty_count_ = 0;
  PageList young_[3];  // free, committed pages per kind, most recent first (Page::dirty 1)
  PageList old_[3];    // likewise, freed before the last rotation (Page::dirty 2)
  std::size_t dirty_bytes_ = 0;
  std::size_t committed_in_use_ = 0;
  std::size_t in_use_peak_ = 0;  // of committed_in_use_ since the last rotation
  std::int64_t last_rotation_ms_ = 0;
  CachedHuge huge_cache_[kHugeCacheSlots];  // [0, huge_cached_): oldest first
  std::size_t huge_cached_ = 0;
  std::size_t huge_cache_bytes_ = 0;
  std::size_t huge_in_use_ = 0;       // bytes of huge segments holding a block
  std::size_t huge_in_use_peak_ = 0;  // of huge_in_use_ since the last rotation
};

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
  void add(Page& page) noexcept {
    page.in_pool = 1;
    page.pool_full = !page.has_free_in_bits();
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
extern constinit thread_local int t_walks_on_this_thread;

// A thread state's link in its runtime's list (the ThreadState embeds it).
struct ThreadNode {
  ListHook hook;
  ThreadState* self = nullptr;
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
  // Walks in progress: debug builds refuse slow-path work while one runs,
  // and checked builds refuse frees from threads that are not walking.
  std::atomic<int> walkers{0};

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
