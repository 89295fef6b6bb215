// Heaps: the allocation slow path, retiring pages, abandoning them.
#include "alloc/heap.h"

#include <algorithm>
#include <cstring>
#include <iterator>

#include "alloc/os.h"
#include "alloc/runtime.h"
#include "alloc/tagheap.h"
#include "alloc/thread_state.h"

namespace tagheap {

using internal::g_empty_page;
using internal::Page;

Heap::Heap(ThreadState& ts, internal::RuntimeCore& runtime, Tag tag, bool debug_fill)
    : thread_state_(&ts), runtime_(&runtime), owner_(ts.owner_token()), tag_(tag), debug_fill_(debug_fill) {
  for (auto& p : current_) p = &g_empty_page;
}

Heap::~Heap() {
  // The thread state abandons before deleting heaps; nothing may be left.
  TAGHEAP_CHECK(page_count() == 0, "tagheap: heap of tag %u destroyed while owning pages", tag_);
}

std::size_t Heap::page_count() const noexcept {
  std::size_t n = full_.size();
  for (const auto& q : queues_) n += q.size();
  return n;
}

void Heap::make_current(std::size_t c) noexcept {
  // A debug_fill heap keeps the fast path off, so every block gets filled.
  if (queues_[c].empty() || debug_fill_) {
    current_[c] = &g_empty_page;
    return;
  }
  Page* front = &queues_[c].front();
  runtime_->sweep_if_pending(front);  // the fast path pops from it without a look
  current_[c] = front;
}

void Heap::flush_allocated() noexcept {
  runtime_->allocated_bytes[tag_].fetch_add(unflushed_bytes_, std::memory_order_relaxed);
  unflushed_bytes_ = 0;
}

void Heap::prepare_lazy_sweep() noexcept {
  while (!full_.empty()) {
    Page& page = full_.front();
    full_.pop_front();
    page.set_in_full(false);
    queues_[page.size_class].push_back(page);
  }
  for (auto& page : current_) page = &g_empty_page;
  flush_allocated();
}

void Heap::not_attached_here() const noexcept {
  internal::fatal("tagheap: allocation from heap %p (tag %u) of ThreadState %p, which is not attached to this OS "
                  "thread (attach() it here first)",
                  static_cast<const void*>(this), tag_, static_cast<void*>(thread_state_));
}

void* Heap::allocate_slow(std::size_t size) noexcept {
  if (size > internal::kLargeBlockMax) [[unlikely]]
    return runtime_->allocate_huge(tag_, size, 16, debug_fill_);
  const std::size_t c = size <= internal::kFastSizeMax ? internal::kFastClassTable[(size + 15) >> 4]
                                                       : internal::size_class_of(size);
  Page* page = current_[c];
  // Sizes up to kFastSizeMax come here from allocate_next_word with the
  // current page already full (refill_cache then returns at once); larger
  // ones may still find free bits in the current page's other words.
  // g_empty_page has used == reserved == 0.
  if (page->cache_empty()) {
    if (page->refill_cache()) {
      note_taken(page);
    } else {
      page = find_page(c);
      if (page == nullptr) [[unlikely]] return nullptr;
      sweep_ahead(c);
    }
  }
  void* block = page->pop_cache();
  if (debug_fill_) [[unlikely]]
    std::memset(block, internal::kFillFresh, page->block_size);
  return block;
}

void Heap::populate_ahead(Page* page) noexcept {
  // Through the step holding the cache word's first block, which covers the
  // word when its blocks are small; a word of big blocks spans the whole
  // page, and a class that allocates a few of them would hold the rest
  // resident for nothing (ECL: 2.8 MiB more peak RSS). Blocks past the step
  // fault in as they are written, or come with the next word's step.
  constexpr std::size_t kStep = internal::kPopulateStepBytes;
  const std::size_t first_end = page->cache_first_block_end() - page->area;
  const std::size_t to = std::min((first_end + kStep - 1) & ~(kStep - 1), page->area_size);
  os::populate(reinterpret_cast<void*>(page->area + page->populated), to - page->populated);
  page->populated = static_cast<std::uint32_t>(to);
}

void* Heap::allocate_next_word(Page* page, std::size_t size) noexcept {
  // g_empty_page (also a debug_fill heap's current page) never refills.
  if (page->refill_cache()) [[likely]] {
    note_taken(page);
    return page->pop_cache();
  }
  return allocate_slow(size);
}

// A search looks at no more than this many full pages before it takes
// another: after a collection every page waits to be swept, and an old heap
// of full pages (1 GiB of live data, 16,000 of them) swept in one search
// stalled an allocation for 15-20 ms; 1,024 is about 1 ms. The pages left
// stay queued, and each later search sweeps its share. (32 cost binary-trees
// and GCBench 11-12% more peak memory: fresh pages taken while unswept ones
// had room; 1,024 costs none measurable.)
constexpr int kFullPagesPerSearch = 1024;

Page* Heap::find_page(std::size_t c) noexcept {
  internal::PageList& queue = queues_[c];
  int full_seen = 0;
  for (int round = 0; round < 2 && full_seen < kFullPagesPerSearch; ++round) {
    while (!queue.empty() && full_seen < kFullPagesPerSearch) {
      Page& page = queue.front();
      runtime_->sweep_if_pending(&page);
      const bool refilled = page.cache_empty() && (page.refill_cache() ||
                                                   (page.collect_thread_free() != 0 && page.refill_cache()));
      if (refilled || !page.cache_empty()) {
        if (refilled) note_taken(&page);
        make_current(c);
        TAGHEAP_XASSERT(page.is_valid());
        return &page;
      }
      // Full: move aside, where walks still find it and frees bring it back.
      queue.pop_front();
      page.set_in_full(true);
      full_.push_back(page);
      ++full_seen;
    }
    // Cross-thread frees into full pages are noticed by scanning the full
    // queue, at most once per full_.size() / 8 fresh pages: amortised O(1),
    // and a chunk per search (scan_full_queue).
    if (round == 0 && full_seen < kFullPagesPerSearch && fresh_since_full_scan_ * 8 >= full_.size()) {
      scan_full_queue();
      continue;
    }
    break;
  }
  runtime_->check_no_walk("an allocation");
  Page* page = runtime_->reclaim(tag_, c, this, owner_);
  if (page == nullptr) page = fresh_page(c);
  if (page == nullptr) {
    make_current(c);
    return nullptr;
  }
  queue.push_front(*page);
  make_current(c);
  if (page->cache_empty()) {
    if (!page->refill_cache()) internal::fatal("tagheap: a page taken for class %zu has no free block", c);
    note_taken(page);
  }
  TAGHEAP_XASSERT(page->is_valid());
  return page;
}

// After a collection every page of the heap waits to be swept, and
// allocation sweeps the pages of the classes it allocates from (find_page).
// The pages of a class it no longer allocates from would wait for the next
// collection, which sweeps them in its pause: at 1 GiB, 22,000 such pages
// took 4.4-6.3 ms of an incremental cycle's first pause. So each page a
// search takes also sweeps up to kSweepAheadPages pages (per 64 KiB of the
// page taken) from the backs of the other classes' queues (where
// prepare_lazy_sweep left the pending ones), one class after another, out
// of any pause. Not the class being allocated from: its own search sweeps
// it from the front, and sweeping it from the back too cost GCBench 4 MiB
// more peak RSS (33.5 against 29.4). A swept page goes where a search would
// put it: to the full queue, or next after the front of its queue when it
// has free blocks (an emptied page too, reused in place or given back by
// the next collection's pass).
constexpr std::size_t kSweepAheadPages = 2;

void Heap::sweep_ahead(std::size_t allocating) noexcept {
  if (swept_ahead_epoch_ == runtime_->sweep_epoch || !((runtime_->sweep_tags >> tag_) & 1u)) return;
  // Per small page's worth taken: a medium page counts for 8, a large one
  // (a whole segment) for 64.
  const internal::PageKind kind = internal::page_kind_of_class(allocating);
  const std::size_t small_pages = kind == internal::PageKind::kLarge
                                      ? internal::kMaxPagesPerSegment
                                      : std::size_t{1} << (internal::page_shift_of(kind) - internal::kSmallPageShift);
  const std::size_t budget = kSweepAheadPages * small_pages;
  std::size_t swept = 0;
  for (std::size_t looked = 0; swept < budget;) {
    internal::PageList& queue = queues_[sweep_ahead_class_];
    if (sweep_ahead_class_ == allocating || queue.empty() || !runtime_->sweep_pending(queue.back())) {
      // This class is done (or its back page was swept by a search):
      // the next one; a round over every class with nothing found ends
      // the sweeping ahead until the next collection.
      if (++sweep_ahead_class_ == internal::kClassCount) sweep_ahead_class_ = 0;
      if (++looked == internal::kClassCount) {
        swept_ahead_epoch_ = runtime_->sweep_epoch;
        return;
      }
      continue;
    }
    looked = 0;
    Page& page = queue.back();
    runtime_->sweep_if_pending(&page);
    page.collect_thread_free();
    ++swept;
    queue.pop_back();
    if (page.has_free_in_bits()) {
      // The page a search takes next: the front, or next after it when the
      // front is the class's current page (a pending front page is not,
      // and goes on to the back as the swept ones come before it).
      const bool front_is_current = !queue.empty() && &queue.front() == current_[sweep_ahead_class_];
      queue.insert(front_is_current ? std::next(queue.begin()) : queue.begin(), page);
    } else {
      page.set_in_full(true);
      full_.push_back(page);
    }
  }
}

Page* Heap::fresh_page(std::size_t c) noexcept {
  Page* page = runtime_->segments.take_page(internal::page_kind_of_class(c));
  if (page == nullptr) return nullptr;
  const std::size_t bs = internal::class_block_size(c);
  const std::size_t align = std::min<std::size_t>(std::size_t{1} << std::countr_zero(bs), internal::kMaxNaturalAlign);
  page->init(bs, static_cast<std::uint8_t>(c), tag_, debug_fill_, align);
  page->heap = this;
  page->owner_token().store(owner_, std::memory_order_release);
  ++fresh_since_full_scan_;
  return page;
}

// One chunk of a round over the full queue: from its front, pages nothing
// was freed into go to its back, so the next chunk goes on where this one
// stopped. The round ends once it has seen as many pages as the queue held
// when it began; only then can fresh pages start the next one.
void Heap::scan_full_queue() noexcept {
  if (full_.empty()) {
    full_scan_left_ = fresh_since_full_scan_ = 0;
    return;
  }
  if (full_scan_left_ == 0) full_scan_left_ = full_.size();
  std::size_t n = std::min({internal::kFullScanChunk, full_scan_left_, full_.size()});
  full_scan_left_ -= n;
  if (full_scan_left_ == 0) fresh_since_full_scan_ = 0;
  full_pages_scanned_ += n;
  while (n-- > 0) {
    Page& page = full_.front();
    full_.pop_front();
    if (page.collect_thread_free() == 0) {
      full_.push_back(page);
      continue;
    }
    page.set_in_full(false);
    if (page.used == 0 && !page.in_walk) {
      runtime_->release_page(&page);
      continue;
    }
    queues_[page.size_class].push_back(page);
    make_current(page.size_class);
  }
}

void Heap::on_free_slow(Page* page, std::uintptr_t p) noexcept {
  if (page->slow_free & Page::kSlowFreeSticky) page->clear_gc_bits(page->block_index(p));
  if (page->debug_fill) {
    internal::asan::unpoison(p, page->block_size);  // free() poisoned it already
    std::memset(reinterpret_cast<void*>(p), internal::kFillFreed, page->block_size);
    internal::asan::poison(p, page->block_size);
  }
  if (page->in_full()) {
    full_.erase(full_.iterator_to(*page));
    page->set_in_full(false);
    queues_[page->size_class].push_back(*page);
    make_current(page->size_class);
  }
  if (page->used == 0 && !page->in_walk) retire(page);
}

void Heap::after_walk(Page* page) noexcept {
  if (page->in_full() && page->has_free_in_bits()) {
    full_.erase(full_.iterator_to(*page));
    page->set_in_full(false);
    queues_[page->size_class].push_back(*page);
    make_current(page->size_class);
  }
  if (page->used == 0 && !page->in_full()) retire(page);
}

void Heap::retire(Page* page) noexcept {
  internal::PageList& queue = queues_[page->size_class];
  // Keep the last page of a class: a free/allocate cycle at the edge of a
  // page would otherwise map and unmap it each time.
  if (queue.size() <= 1) return;
  queue.erase(queue.iterator_to(*page));
  make_current(page->size_class);
  page->heap = nullptr;
  page->owner_token().store(0, std::memory_order_relaxed);
  runtime_->release_page(page);
}

void Heap::abandon_all() noexcept {
  internal::TagShard& shard = runtime_->shards[tag_];
  std::lock_guard lock(shard.mu);
  auto move_all = [&](internal::PageList& list) {
    while (!list.empty()) {
      Page& page = list.front();
      list.pop_front();
      runtime_->abandon_page_locked(shard, &page);
    }
  };
  for (auto& q : queues_) move_all(q);
  move_all(full_);
  for (std::size_t c = 0; c < internal::kClassCount; ++c) current_[c] = &g_empty_page;
  flush_allocated();
  fresh_since_full_scan_ = full_scan_left_ = 0;
}

bool Heap::is_valid() const noexcept {
  for (std::size_t c = 0; c < internal::kClassCount; ++c) {
    for (const Page& page : queues_[c])
      if (page.size_class != c || page.in_full() || page.tag != tag_)
        internal::fatal("heap %p: page %p in queue %zu has class %u, in_full %d, tag %u", static_cast<const void*>(this),
                        static_cast<const void*>(&page), c, page.size_class, page.in_full(), page.tag);
    const Page* cur = current_[c];
    if (cur != &g_empty_page && (queues_[c].empty() || cur != &queues_[c].front()))
      internal::fatal("heap %p: current page of class %zu is not its queue's front", static_cast<const void*>(this), c);
  }
  for (const Page& page : full_)
    if (!page.in_full() || page.tag != tag_)
      internal::fatal("heap %p: page %p in the full queue is not marked full", static_cast<const void*>(this),
                      static_cast<const void*>(&page));
  return true;
}

void* Heap::allocate_zeroed(std::size_t size) noexcept {
  void* p = allocate(size);
  if (p != nullptr) std::memset(p, 0, size);
  return p;
}

void* Heap::reallocate(void* p, std::size_t size) noexcept {
  if (p == nullptr) return allocate(size);
  const std::size_t old = usable_size(p);  // fatal for a pointer that is not tagheap's
  internal::Segment* seg = internal::Segment::of(p);
  if (seg->runtime != runtime_) [[unlikely]]
    internal::fatal("tagheap: reallocate(%p): a block of another runtime", p);
  internal::Page* page = seg->kind == internal::PageKind::kHuge ? &seg->pages[0] : seg->page_of(p);
  if (!page->is_block_start(reinterpret_cast<std::uintptr_t>(p))) [[unlikely]]
    internal::fatal("tagheap: reallocate(%p): not the start of a block (tag %u, block size %zu)", p, page->tag,
                    page->block_size);
  if (page->tag == tag_ && size <= old && size > old / 2) return p;
  void* q = allocate(size);
  if (q == nullptr) return nullptr;
  std::memcpy(q, p, std::min(size, old));
  tagheap::free(p);
  return q;
}

void* Heap::allocate_aligned(std::size_t size, std::size_t alignment) noexcept {
  if constexpr (internal::kChecked) check_attached_here();
  if (alignment == 0 || (alignment & (alignment - 1)) != 0) return nullptr;
  if (alignment <= internal::kMinBlockSize) return allocate(size);
  if (size > internal::kMaxAllocation || alignment >= internal::kSegmentSize) return nullptr;
  // Blocks of a class whose size is a multiple of `alignment` start aligned
  // (pages align their first block to the size's largest power-of-two
  // divisor, up to kMaxNaturalAlign).
  if (alignment <= internal::kMaxNaturalAlign) {
    const std::size_t n = (std::max(size, alignment) + alignment - 1) & ~(alignment - 1);
    if (n <= internal::kLargeBlockMax) {
      for (std::size_t c = internal::size_class_of(n); c < internal::kClassCount; ++c)
        if (internal::class_block_size(c) % alignment == 0) return allocate(internal::class_block_size(c));
    }
  }
  return runtime_->allocate_huge(tag_, size, alignment, debug_fill_);
}

}  // namespace tagheap
