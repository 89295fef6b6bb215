// heap_walk.h: walking the pages of some tags (for collectors and tools).
//
// for_each_page(runtime, tags, f) hands f a PageView of every page holding
// blocks whose tag is in `tags`: the pages of every thread state's heaps
// (partly used and full), abandoned pages in the pool, and huge pages. It
// reads nothing else, so its cost follows the pages of those tags
// (invariant 4). A page the last collection left to sweep lazily is swept
// first (its dead blocks are not live); an empty page is not shown.
//
// Rules (DESIGN.md, "Walking rules"): the world is stopped: no thread of the
// runtime allocates, frees, abandons or reclaims. Before f sees a page, the
// walk collects its thread-free list, so blocks freed by other threads are
// free to the walk. While f runs on a page, the page is marked in_walk: a
// free that empties it does not release it; the walk releases an emptied
// abandoned or huge page when it leaves it. f must not allocate. If f
// throws, the page is left exactly as if f had returned (in_walk cleared,
// an emptied page released), the walk count drops, and the exception
// reaches the caller: the runtime is as it was (visit_page, WalkScope).
#pragma once

#include <algorithm>
#include <bit>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <span>
#include <vector>

#include "alloc/internal/page.h"
#include "alloc/internal/runtime_core.h"
#include "alloc/internal/segment_map.h"
#include "alloc/runtime.h"
#include "alloc/tag.h"
#include "alloc/thread_state.h"

namespace tagheap {

// A page as a walk shows it: blocks, their liveness, and the side mark bitmap
// that collectors own (bit i stands for block i; alloc/ only clears it when a
// page is made).
class PageView {
 public:
  explicit PageView(internal::Page* page) noexcept : page_(page) {}

  Tag tag() const noexcept { return page_->tag; }
  std::size_t block_size() const noexcept { return page_->block_size; }
  std::uint32_t block_count() const noexcept { return page_->reserved; }
  bool is_huge() const noexcept { return page_->is_huge(); }
  bool is_abandoned() const noexcept { return page_->in_pool; }
  std::size_t committed_bytes() const noexcept { return page_->area_size; }
  std::uint32_t live_blocks() const noexcept { return page_->used; }
  void* block(std::uint32_t i) const noexcept { return reinterpret_cast<void*>(page_->block_at(i)); }
  std::uint32_t index_of(const void* block) const noexcept {
    return page_->block_index(reinterpret_cast<std::uintptr_t>(block));
  }
  bool in_use() const noexcept { return page_->in_use; }
  std::size_t size_class() const noexcept { return page_->size_class; }
  std::uintptr_t address() const noexcept { return page_->area; }
  bool is_live(std::uint32_t i) const noexcept { return i < page_->reserved && !page_->is_free_bit(i); }

  // f(void* block, std::uint32_t index) -> bool (false stops). Address order.
  template <class F>
  bool for_each_live_block(F&& f) const {
    // Locals, not page fields: f's stores could alias the page, and would
    // force a reload of both for every block.
    const std::uintptr_t start = page_->blocks_start;
    const std::size_t size = page_->block_size;
    return page_->for_each_live_index([&](std::uint32_t i) { return f(reinterpret_cast<void*>(start + i * size), i); });
  }
  // Word w of the liveness bitmap (bit set: live block), for bulk work.
  std::uint64_t live_word(std::uint32_t w) const noexcept {
    const std::uint64_t free = page_->free_word(w);
    return ~free & page_->valid_mask(w);
  }
  // The side mark bitmap: word w (bit i of word i / 64 stands for block i).
  std::uint64_t& mark_word(std::uint32_t w) const noexcept { return page_->mark_word(w); }
  // The side log bitmap (gc/'s incremental barrier: objects logged in a cycle), same layout.
  std::uint64_t& log_word(std::uint32_t w) const noexcept { return page_->log_word(w); }
  std::uint32_t bitmap_words() const noexcept { return page_->bitmap_words; }
  // gc/'s unlogged bits (internal/segment.h), for a generational write
  // barrier: the word and bit of the block starting at obj, and every
  // block of the page at once (a full collection's over-approximation).
  static std::uint64_t& unlogged_word(const void* obj) noexcept { return internal::Segment::unlogged_word(obj); }
  static std::uint64_t unlogged_bit(const void* obj) noexcept { return internal::Segment::unlogged_bit(obj); }
  void set_all_unlogged() const noexcept { page_->set_unlogged_range(true); }
  // The bits of obj's unlogged word that stand for the start of a marked
  // block (a word covers 1 KiB, within one page): what the word keeps
  // when a barrier clears the bits over young blocks and free space.
  std::uint64_t unlogged_bits_of_marked(const void* obj) const noexcept {
    const std::uintptr_t lo = reinterpret_cast<std::uintptr_t>(obj) & ~(internal::kUnloggedWordBytes - 1);
    const std::uint32_t end = first_block_from(lo + internal::kUnloggedWordBytes);
    std::uint64_t keep = 0;
    for (std::uint32_t i = first_block_from(lo); i < end;) {
      const std::uint32_t w = i >> 6, next = std::min(end, (w + 1) * 64);
      const std::uint64_t upto = next - w * 64 == 64 ? ~std::uint64_t{0} : (std::uint64_t{1} << (next - w * 64)) - 1;
      for (std::uint64_t m = page_->mark_word(w) & upto & (~std::uint64_t{0} << (i & 63)); m; m &= m - 1)
        keep |= unlogged_bit(block(w * 64 + static_cast<std::uint32_t>(std::countr_zero(m))));
      i = next;
    }
    return keep;
  }

  // Frees every live block i with bit i of `dead` set, calling before(block)
  // first; page-at-a-time, without the free() path. Returns blocks freed.
  template <class F>
  std::uint32_t free_blocks(std::uint32_t w, std::uint64_t dead, F&& before) noexcept {
    internal::Page* p = page_;
    dead &= live_word(w);
    for (std::uint64_t d = dead; d; d &= d - 1) {
      void* b = reinterpret_cast<void*>(p->block_at(w * 64 + static_cast<std::uint32_t>(std::countr_zero(d))));
      before(b);
      if (p->debug_fill) __builtin_memset(b, internal::kFillFreed, p->block_size);
      internal::asan::poison(reinterpret_cast<std::uintptr_t>(b), p->block_size);
    }
    // Count the bits set here, not `dead`: a block freed while the callbacks
    // ran (free() from another thread during the walk breaks the walking
    // rules, but must not corrupt the page) has left `used` already, and
    // counting it twice would wrap `used` and strand the page forever.
    const std::uint64_t was_free = p->free_word(w);
    const auto n = static_cast<std::uint32_t>(std::popcount(dead & ~was_free));
    p->free_word(w) = was_free | dead;
    p->used -= n;
    return n;
  }

  internal::Page* raw() const noexcept { return page_; }

  // The page of a block of a live segment (no check: the caller knows p is a
  // block tagheap gave out).
  // The page shift comes from the segment map, a byte per 4 MiB in a
  // table that stays in cache, not from the segment's header: the headers
  // of all segments lie at the same offsets from 4 MiB boundaries and
  // evict one another from the cache sets they share when a collection's
  // pages are spread over many segments.
  static PageView of(const void* p) noexcept {
    const auto a = reinterpret_cast<std::uintptr_t>(p);
    internal::Segment* seg = internal::Segment::of(p);
    const unsigned shift = internal::SegmentMap::block_page_shift(a);  // a block of ours: in its segment's first 4 MiB
    return PageView(&seg->pages[(a - seg->base()) >> shift]);
  }
  // The page of p when a segment of `runtime` still starts in p's 4 MiB
  // unit; nullopt when p's segment went back to the OS, belongs to another
  // runtime now, or is a huge one covering p from an earlier unit (p freed
  // by hand since the caller learnt of it). Reads no segment header before
  // the segment map says it is there. Needs a BlockLookupScope open.
  static std::optional<PageView> of_if_mapped(const void* p, const internal::RuntimeCore* runtime) noexcept {
    const internal::Segment* seg = internal::SegmentMap::lookup(reinterpret_cast<std::uintptr_t>(p));
    if (seg != internal::Segment::of(p) || seg->runtime != runtime) return std::nullopt;
    return of(p);
  }
  // The runtime the page belongs to.
  internal::RuntimeCore* runtime() const noexcept {
    return internal::Segment::of(reinterpret_cast<void*>(page_->area))->runtime;
  }

 private:
  // Index of the first block that starts at or after address a (reserved
  // when none does).
  std::uint32_t first_block_from(std::uintptr_t a) const noexcept {
    const internal::Page& p = *page_;
    if (p.reserved == 0 || a <= p.blocks_start) return 0;
    if (a > p.block_at(p.reserved - 1)) return p.reserved;
    const std::uint32_t i = p.block_index_containing(a);
    return p.block_at(i) == a ? i : i + 1;
  }

  internal::Page* page_;
};

namespace internal {

// After a walk left a page whose blocks it (or its visitor) may have freed:
// an emptied page goes back to its segment (owned pages by their heap's
// retire policy), a full page with free blocks again goes where allocation
// finds it. Out of line: not on any fast path.
void after_walk(RuntimeCore& core, Page* page) noexcept;

// Brackets the visit of one page (see the header comment): the last
// collection's dead blocks are not live, so a pending page is swept first,
// and its thread frees collected. An empty page (a sweep may empty the next
// page too, as a heap picks its new current page) has nothing to show. A
// page shown to f is in_walk meanwhile. Then, normally or by an exception
// from f (so no page stays in_walk, where nothing would release it), the
// page goes to put_back(page, used_before): after_walk at once for a walk,
// later for a pass by segment.
template <class F, class PutBack>
bool visit_page(RuntimeCore& core, Page* page, F& f, PutBack&& put_back) {
  const std::uint32_t used_before = page->used;
  core.sweep_if_pending(page);
  page->collect_thread_free();
  if (page->used == 0) {
    put_back(page, used_before);
    return true;
  }
  struct InWalk {
    Page* page;
    std::uint32_t used_before;
    PutBack& put_back;
    ~InWalk() {
      page->in_walk = 0;
      put_back(page, used_before);
    }
  } in_walk{page, used_before, put_back};
  page->in_walk = 1;
  return f(PageView(page));
}

template <class F>
bool walk_one_page(RuntimeCore& core, Page* page, F& f) {
  return visit_page(core, page, f, [&](Page* p, std::uint32_t) noexcept { after_walk(core, p); });
}

// The runtime this thread is walking (innermost), or nullptr: a thread state
// of it must not be made or destroyed from inside the walk (its visitor, or
// a collector's callbacks), which would wait for the lock the walk holds.
inline thread_local RuntimeCore* t_walking = nullptr;

// A walk of the runtime this thread is walking already (from a visitor, a
// finalizer, a model callback): throws std::logic_error, saying `what`. The
// outer walk holds the thread list and may hold the next page of a list,
// which the inner one could move or release: it would deadlock, or worse.
[[noreturn, gnu::cold]] void throw_nested_walk(const char* what);
inline void refuse_inside_walk(RuntimeCore& core, const char* what) {
  if (t_walking == &core) [[unlikely]] throw_nested_walk(what);
}

// RAII count of walks in progress, per runtime and on this thread (debug
// builds refuse slow paths meanwhile; checked builds refuse frees from
// threads that are not walking). A walk of the runtime inside a walk of it
// on the same thread is refused (throw_nested_walk): before anything is
// taken, so the outer walk goes on or unwinds as its visitor chooses.
struct WalkScope {
  RuntimeCore& core;
  RuntimeCore* outer;
  explicit WalkScope(RuntimeCore& c) : core(c), outer(t_walking) {
    refuse_inside_walk(core, "a walk");
    // The world is stopped: frees any thread gathered land first, so the
    // walk shows none of their blocks (invariant 3).
    core.flush_remote_frees();
    core.walkers.fetch_add(1, std::memory_order_relaxed);
    t_walking = &core;
    ++t_walks_on_this_thread;
  }
  ~WalkScope() {
    --t_walks_on_this_thread;
    t_walking = outer;
    core.walkers.fetch_sub(1, std::memory_order_relaxed);
  }
  WalkScope(const WalkScope&) = delete;
  WalkScope& operator=(const WalkScope&) = delete;
};

template <class F>
bool walk_tag(RuntimeCore& core, Tag tag, F& f) {
  {
    // Thread states join and make heaps under this lock, so a walk never
    // reads a half-built one (invariant 9).
    std::lock_guard lock(core.threads_mu);
    for (ThreadNode& node : core.threads) {
      Heap* heap = node.self->heap_if_made(tag);
      if (heap != nullptr && !heap->for_each_page([&](Page& page) { return walk_one_page(core, &page, f); }))
        return false;
    }
  }
  TagShard& shard = core.shards[tag];
  auto walk_list = [&](PageList& list) {
    for (auto it = list.begin(); it != list.end();) {
      Page* page = &*it++;  // advance first: the page may leave the list
      if (!walk_one_page(core, page, f)) return false;
    }
    return true;
  };
  for (PageList& bin : shard.bins)
    if (!bin.empty() && !walk_list(bin)) return false;
  return walk_list(shard.full) && walk_list(shard.huge);
}

// Inside a WalkScope of core: every page of `tags`, as for_each_page.
template <class F>
void walk_tags(RuntimeCore& core, TagSet tags, F& f) {
  for (Tag tag : tags)
    if (!walk_tag(core, tag, f)) return;
}

}  // namespace internal

// A segment as for_each_segment shows it: where it is and its pages, used or
// not (PageView::in_use). For tools such as the heap map.
class SegmentView {
 public:
  explicit SegmentView(internal::Segment* seg) noexcept : seg_(seg) {}
  std::uintptr_t base() const noexcept { return seg_->base(); }
  std::size_t size() const noexcept { return seg_->size; }
  bool is_huge() const noexcept { return seg_->kind == internal::PageKind::kHuge; }
  // 0 small (64 KiB pages), 1 medium (512 KiB), 2 large (one page), 3 huge.
  int kind() const noexcept { return static_cast<int>(seg_->kind); }
  std::size_t page_count() const noexcept { return seg_->page_count; }
  std::size_t page_bytes() const noexcept {
    return seg_->page_count > 1 ? std::size_t{1} << seg_->page_shift : seg_->size;
  }
  PageView page(std::size_t i) const noexcept { return PageView(&seg_->pages[i]); }

 private:
  internal::Segment* seg_;
};

// World stopped: every segment of the runtime, in no particular order.
template <class F>
void for_each_segment(Runtime& runtime, F&& f) {
  runtime.core().segments.for_each_segment([&](internal::Segment& seg) { f(SegmentView(&seg)); });
}

// World stopped, marking done: leaves the marks on the pages of `tags` to be
// swept lazily (RuntimeCore::begin_lazy_sweep): pages are swept before they
// are allocated from, reclaimed, abandoned, trimmed or walked, and dead
// huge blocks are freed now. `keep_marks`: the sweep leaves the marks set
// (sticky mark bits: generational collectors).
inline void begin_lazy_sweep(Runtime& runtime, TagSet tags, bool keep_marks) noexcept {
  runtime.core().begin_lazy_sweep(tags, keep_marks);
}
// World stopped: the marks of `tags` stay set between collections from now
// on (a generational collector's sticky mark bits): every free of such a
// block clears its mark and log bits.
inline void make_marks_sticky(Runtime& runtime, TagSet tags) noexcept { runtime.core().make_marks_sticky(tags); }
// Whether the page still holds the marks of a collection to be swept.
inline bool sweep_pending(Runtime& runtime, PageView page) noexcept {
  return runtime.core().sweep_pending(*page.raw());
}

// f(PageView) -> bool; false stops the walk.
template <class F>
void for_each_page(Runtime& runtime, TagSet tags, F&& f) {
  internal::RuntimeCore& core = runtime.core();
  internal::WalkScope scope(core);
  internal::walk_tags(core, tags, f);
}

namespace internal {

// The pages a pass by segment leaves for after_walk: those whose sweep,
// thread frees or visitor freed blocks, and empty ones. after_walk may
// release a page and with it unmap empty segments, which would pull the
// segment list from under the pass: so they go back once it is over. A
// page listed here is in use until its own after_walk, so its segment
// stays mapped meanwhile. Short of memory for the list, a walk of every
// page does the same (for_each_page calls after_walk on each).
class DeferredAfterWalk {
 public:
  DeferredAfterWalk(RuntimeCore& core, TagSet tags) noexcept
      : core_(core),
        tags_(tags),
        shared_(!core.deferred_pages_taken.exchange(true, std::memory_order_acquire)),
        pages_(shared_ ? core.deferred_pages : own_) {}
  ~DeferredAfterWalk() {
    for (Page* page : pages_) after_walk(core_, page);
    if (overflowed_) {  // still inside the pass's WalkScope: no new one
      auto put_back = [](PageView) { return true; };
      walk_tags(core_, tags_, put_back);
    }
    pages_.clear();  // capacity kept for the next pass
    if (shared_) core_.deferred_pages_taken.store(false, std::memory_order_release);
  }
  DeferredAfterWalk(const DeferredAfterWalk&) = delete;
  DeferredAfterWalk& operator=(const DeferredAfterWalk&) = delete;
  void add(Page* page) noexcept {
    if (overflowed_) return;
    try {
      pages_.push_back(page);
    } catch (...) {
      overflowed_ = true;
    }
  }

 private:
  RuntimeCore& core_;
  TagSet tags_;
  bool shared_;  // pages_ is the runtime's list (RuntimeCore::deferred_pages)
  std::vector<Page*> own_;
  std::vector<Page*>& pages_;
  bool overflowed_ = false;
};

// f(Page&) -> bool over the page headers of a segment in order, the next
// ones prefetched (they lie side by side: memory speed, where a list of
// pages costs a miss per page); false stops.
template <class F>
void for_each_page_header(Segment& seg, F&& f) {
  constexpr std::size_t kAhead = 4;
  for (std::size_t i = 0; i < seg.page_count; ++i) {
    if (i + kAhead < seg.page_count) {
      __builtin_prefetch(&seg.pages[i + kAhead]);
      __builtin_prefetch(reinterpret_cast<const char*>(&seg.pages[i + kAhead]) + 64);
    }
    if (!f(seg.pages[i])) return;
  }
}

// One page of a pass by segment, as walk_one_page, but put back only if the
// pass or f freed blocks of it, or it is empty; false stops the pass.
template <class F>
bool visit_in_segment(RuntimeCore& core, Page* page, F& f, DeferredAfterWalk& deferred) {
  return visit_page(core, page, f, [&](Page* p, std::uint32_t used_before) noexcept {
    if (p->used < used_before || p->used == 0) deferred.add(p);
  });
}

}  // namespace internal

// f(PageView) -> bool, as for_each_page (the same pages, swept and with
// their thread frees collected first; the same rules; false stops the
// pass), but segment by segment rather than along the heaps' and the
// pool's lists. A segment's page headers lie side by side, so the pass
// reads them at memory speed with the next ones prefetched, where a list
// costs a cache miss per page: at 1 GiB (46,000 pages, headers cold) a
// list walk took 2.4-3 ms before it did any sweeping. Pages whose blocks
// the pass (or f, which may free blocks of the page it is shown and of no
// other) freed go back where they belong (after_walk) when it is over. For
// counts and bitmap passes over every page in a pause; the order is the
// segments', not the heaps'.
template <class F>
void for_each_page_by_segment(Runtime& runtime, TagSet tags, F&& f) {
  internal::RuntimeCore& core = runtime.core();
  internal::WalkScope scope(core);
  internal::DeferredAfterWalk deferred(core, tags);
  std::lock_guard lock(core.threads_mu);  // as walk_tag: no thread state is half built meanwhile
  bool go_on = true;
  core.segments.for_each_segment([&](internal::Segment& seg) {
    if (!go_on) return;
    internal::for_each_page_header(seg, [&](internal::Page& page) {
      if (page.in_use && tags.contains(page.tag)) go_on = internal::visit_in_segment(core, &page, f, deferred);
      return go_on;
    });
  });
}

// World stopped: sweeps the pages the last collection left pending (its
// lazy sweep's leftovers), segment by segment as for_each_page_by_segment,
// asking go_on() before each segment after the first whether to carry on.
// A segment so swept is marked for the runtime's sweep epoch and skipped by
// the later calls until a collection begins a new lazy sweep: no page of it
// can be pending before then. So a collector can finish the lazy sweep over
// several short pauses instead of one; it is finished (no page of the
// runtime pending) once a call returns true. `pages_swept` counts the
// pages swept. A call reads the page headers of the segments it sweeps and
// no other segment: the ones done go to the back of the runtime's list of
// segments, and a call stops at the first of them (a list walk costs a
// cache and TLB miss per segment: 2 ms for 800 segments on rewire, 1 GiB).
template <class GoOn>
bool sweep_pending_pages(Runtime& runtime, GoOn&& go_on, std::size_t& pages_swept) {
  internal::RuntimeCore& core = runtime.core();
  internal::WalkScope scope(core);  // first: refused inside a walk, whatever is pending
  if (core.sweep_tags == 0) return true;  // no collection has left marks yet
  internal::DeferredAfterWalk deferred(core, TagSet::from_bits(core.sweep_tags));
  std::lock_guard lock(core.threads_mu);
  const auto nothing_to_see = [](PageView) { return true; };
  bool finished = true, first = true;
  // Segments done in this epoch go to the back of the list, so the first
  // one met marks the end of those left (a segment mapped since is behind
  // it, but has no page older than the epoch). go_on() is asked before
  // each segment but the first, so a call that sweeps the last one says
  // it finished.
  core.segments.for_each_segment_until([&](internal::Segment& seg) {
    if (seg.swept_epoch == core.sweep_epoch) return false;
    if (!first && !go_on()) {
      finished = false;
      return false;
    }
    first = false;
    internal::for_each_page_header(seg, [&](internal::Page& page) {
      if (page.in_use && core.sweep_pending(page)) {
        internal::visit_in_segment(core, &page, nothing_to_see, deferred);
        ++pages_swept;
      }
      return true;
    });
    seg.swept_epoch = core.sweep_epoch;
    core.segments.move_to_back(seg);
    return true;
  });
  return finished;
}

}  // namespace tagheap
