// Segments: mapping, carving pages, taking them back.
#include <algorithm>
#include <chrono>
#include <limits>
#include <new>

#include "alloc/internal/lookup_guard.h"
#include "alloc/internal/runtime_core.h"
#include "alloc/internal/segment.h"
#include "alloc/internal/segment_map.h"
#include "alloc/os.h"

namespace tagheap::internal {

bool Segment::is_valid() const noexcept {
  if (!cookie_ok()) fatal("segment %p: bad cookie", static_cast<const void*>(this));
  std::size_t in_use = 0;
  for (std::size_t i = 0; i < page_count; ++i) {
    const bool page_free = (free_pages >> i) & 1;
    if (pages[i].in_use == page_free)
      fatal("segment %p: page %zu in_use %u but free mask says %d", static_cast<const void*>(this), i,
            pages[i].in_use, page_free);
    in_use += pages[i].in_use;
    const BlockGeometry& g = geometry[i];
    if (pages[i].in_use && pages[i].block_size != 0 &&
        (g.blocks_start != pages[i].blocks_start || g.block_size != pages[i].block_size ||
         g.block_inv != pages[i].block_inv || g.reserved != pages[i].reserved))
      fatal("segment %p: page %zu: the geometry copy for remote frees is stale", static_cast<const void*>(this), i);
  }
  if (in_use != pages_in_use) fatal("segment %p: %zu pages in use, counter says %u", static_cast<const void*>(this), in_use, pages_in_use);
  return true;
}

SegmentPool::~SegmentPool() {
  huge_cached_ = 0;  // all_ holds them too
  for (auto& list : young_) list.clear();
  for (auto& list : old_) list.clear();
  while (!all_.empty()) {
    Segment* seg = &all_.front();
    if (seg->kind != PageKind::kHuge && seg->free_pages != 0) {  // then in avail_
      auto& list = avail_[static_cast<std::size_t>(seg->kind)];
      list.erase(list.iterator_to(*seg));
    }
    unmap_segment(seg);
  }
}

Segment* SegmentPool::map_segment(PageKind kind, std::size_t size) noexcept {
  void* mem = os::map_aligned(size, kSegmentSize);
  if (mem == nullptr) return nullptr;
  auto* seg = new (mem) Segment;  // default-init: the bitmaps are fresh zero pages, left untouched
  seg->cookie = seg->base() ^ kCookieKey;
  seg->runtime = runtime_;
  seg->size = size;
  seg->kind = kind;
  seg->page_shift = static_cast<std::uint8_t>(page_shift_of(kind));
  const std::size_t page_size = kind == PageKind::kSmall    ? std::size_t{1} << kSmallPageShift
                              : kind == PageKind::kMedium ? std::size_t{1} << kMediumPageShift
                                                          : size;
  // The mark table ends the segment: the pages are those with room left
  // before it (a small segment's table fills its whole last page).
  const std::size_t marks = mark_table_size(kind);
  seg->page_count = static_cast<std::uint16_t>((size - marks + page_size - 1) / page_size);
  seg->free_pages = seg->page_count == 64 ? ~std::uint64_t{0} : (std::uint64_t{1} << seg->page_count) - 1;
  const std::size_t last_page_cut = seg->page_count * page_size + marks - size;
  auto* mark_table = reinterpret_cast<std::uint64_t*>(seg->base() + size - marks);
  for (std::size_t i = 0; i < seg->page_count; ++i) {
    Page& page = seg->pages[i];
    page.kind = kind;
    page.page_index = static_cast<std::uint8_t>(i);
    page.area = seg->base() + i * page_size;
    page.area_size = page_size;
    page.free_bits = &seg->free_words[0][i][0];
    page.mark_bits = mark_table + i * kBitmapLineWords;
    if (i == 0) {
      page.area += kSegmentHeaderSize;
      page.area_size -= kSegmentHeaderSize;
    }
    if (i + 1 == seg->page_count) page.area_size -= last_page_cut;
  }
  if (!SegmentMap::set(seg->base(), size, true, seg->page_shift)) {
    os::unmap(mem, size);
    return nullptr;
  }
  return seg;
}

void SegmentPool::unmap_segment(Segment* seg) noexcept {
  all_.erase(all_.iterator_to(*seg));
  asan::unpoison(seg->base(), seg->size);  // the OS may give the range to someone else
  seg->cookie = 0;
  unmap_segment_memory(seg);  // deferred while a find_block may be reading it
}

Page* SegmentPool::take_page(PageKind kind) noexcept {
  const auto k = static_cast<std::size_t>(kind);
  std::unique_lock lock(mu_);
  Page* page;
  if (PageList& list = !young_[k].empty() ? young_[k] : old_[k]; !list.empty()) {
    // The most recently freed page: still committed, likely still cached.
    page = &list.front();
    list.pop_front();
    dirty_bytes_ -= page->area_size;
  } else {
    if (avail_[k].empty()) {
      lock.unlock();
      Segment* fresh = map_segment(kind, kSegmentSize);
      if (fresh == nullptr) return nullptr;
      lock.lock();
      all_.push_back(*fresh);
      avail_[k].push_front(*fresh);
      ++empty_count_;  // counted as empty until its first page is taken, just below
    }
    Segment& seg = avail_[k].front();
    page = &seg.pages[std::countr_zero(seg.free_pages)];
  }
  Segment* seg = Segment::of(reinterpret_cast<void*>(page->area));
  seg->free_pages &= ~(std::uint64_t{1} << page->page_index);
  if (seg->pages_in_use++ == 0) --empty_count_;
  if (seg->free_pages == 0) avail_[k].erase(avail_[k].iterator_to(*seg));
  page->in_use = 1;
  page->dirty = 0;
  committed_in_use_ += page->area_size;
  in_use_peak_ = std::max(in_use_peak_, committed_in_use_);
  return page;
}

Page* SegmentPool::take_huge_page(std::size_t size, std::size_t align) noexcept {
  const std::size_t os_page = os::page_size();
  TAGHEAP_DASSERT(size <= kMaxAllocation && align < kSegmentSize);  // allocate_huge rejects the rest
  // Header, alignment slack, the block, the mark table.
  const std::size_t total =
      ((kSegmentHeaderSize + (align - 1) + size + os_page - 1) & ~(os_page - 1)) + mark_table_size(PageKind::kHuge);
  if (Page* page = take_cached_huge(total)) return page;
  Segment* seg = map_segment(PageKind::kHuge, total);
  if (seg == nullptr) return nullptr;
  seg->page_count = 1;
  seg->free_pages = 0;
  seg->pages_in_use = 1;
  seg->pages[0].in_use = 1;
  seg->pages[0].area_size = total - kSegmentHeaderSize - mark_table_size(PageKind::kHuge);
  std::lock_guard lock(mu_);
  all_.push_back(*seg);
  count_huge_in_use(seg->size);
  return &seg->pages[0];
}

void SegmentPool::count_huge_in_use(std::size_t size) noexcept {
  huge_in_use_ += size;
  huge_in_use_peak_ = std::max(huge_in_use_peak_, huge_in_use_);
}

void SegmentPool::give_back(Page* page) noexcept {
  Segment* seg = Segment::of(reinterpret_cast<void*>(page->area));
  page->in_use = 0;
  page->owner_token().store(0, std::memory_order_relaxed);
  page->heap = nullptr;
  page->drop_cache();
  page->used = 0;
  page->reserved = 0;
  page->slow_free = page->in_walk = page->in_pool = page->pool_full = 0;
  if (page->kind == PageKind::kHuge) {
    cache_huge(seg);
    return;
  }
  asan::poison(page->area, page->area_size);
  const auto k = static_cast<std::size_t>(page->kind);
  std::lock_guard lock(mu_);
  committed_in_use_ -= page->area_size;
  const bool was_full = seg->free_pages == 0;
  seg->free_pages |= std::uint64_t{1} << page->page_index;
  if (was_full) avail_[k].push_front(*seg);
  page->dirty = 1;  // committed: see kPurgeDelayMs
  young_[k].push_front(*page);
  dirty_bytes_ += page->area_size;
  if (--seg->pages_in_use == 0) {
    avail_[k].erase(avail_[k].iterator_to(*seg));
    if (empty_count_ < kSegmentCacheMax) {
      ++empty_count_;
      avail_[k].push_back(*seg);  // empty segments last: partly used ones fill first
    } else {
      forget_dirty_pages(seg);
      unmap_segment(seg);
    }
  }
  purge_aged_and_excess();
}

void SegmentPool::forget_dirty_pages(Segment* seg) noexcept {
  for (std::size_t i = 0; i < seg->page_count; ++i) {
    Page& page = seg->pages[i];
    if (!page.dirty) continue;
    PageList& list = (page.dirty == 1 ? young_ : old_)[static_cast<std::size_t>(page.kind)];
    list.erase(list.iterator_to(page));
    dirty_bytes_ -= page.area_size;
    page.dirty = 0;
  }
}

// Under the lock: a page leaves its list only once its memory is
// decommitted, so take_page never hands out a page mid-purge.
void SegmentPool::decommit_dirty(Page& page) noexcept {
  PageList& list = (page.dirty == 1 ? young_ : old_)[static_cast<std::size_t>(page.kind)];
  os::decommit(reinterpret_cast<void*>(page.area), page.area_size);
  list.erase(list.iterator_to(page));
  dirty_bytes_ -= page.area_size;
  page.dirty = 0;
}

std::int64_t SegmentPool::now_ms() noexcept {
  return std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now().time_since_epoch())
      .count();
}

Page* SegmentPool::take_cached_huge(std::size_t total) noexcept {
  std::lock_guard lock(mu_);
  std::size_t best = huge_cached_;
  for (std::size_t i = 0; i < huge_cached_; ++i) {
    const std::size_t size = huge_cache_[i].size;
    if (size < total || size / 4 > total) continue;
    if (best == huge_cached_ || size < huge_cache_[best].size) best = i;
  }
  if (best == huge_cached_) return nullptr;
  Segment& seg = *huge_cache_[best].seg;
  drop_cached_huge(best);
  count_huge_in_use(seg.size);
  seg.free_pages = 0;
  seg.pages_in_use = 1;
  seg.pages[0].in_use = 1;
  return &seg.pages[0];  // area and area_size as when it was mapped
}

void SegmentPool::drop_cached_huge(std::size_t i) noexcept {
  huge_cache_bytes_ -= huge_cache_[i].size;
  std::copy(huge_cache_ + i + 1, huge_cache_ + huge_cached_, huge_cache_ + i);
  --huge_cached_;
}

void SegmentPool::cache_huge(Segment* seg) noexcept {
  asan::poison(seg->pages[0].area, seg->pages[0].area_size);
  std::lock_guard lock(mu_);
  const std::int64_t now = now_ms();
  rotate_if_due(now);  // before the decrement: this block counts in the peak
  huge_in_use_ -= seg->size;
  if (seg->size > kHugeCacheBytes / 4) {
    unmap_segment(seg);
  } else {
    if (huge_cached_ == kHugeCacheSlots) unmap_oldest_cached_huge();
    seg->free_pages = 1;
    seg->pages_in_use = 0;
    huge_cache_[huge_cached_++] = CachedHuge{seg, seg->size, now};
    huge_cache_bytes_ += seg->size;
  }
  evict_huge(now);
}

void SegmentPool::unmap_oldest_cached_huge() noexcept {
  Segment* seg = huge_cache_[0].seg;
  drop_cached_huge(0);
  unmap_segment(seg);
}

void SegmentPool::evict_huge(std::int64_t now) noexcept {
  const std::size_t cap = std::max(kHugeCacheBytes, huge_in_use_peak_);
  while (huge_cached_ != 0) {
    const CachedHuge& oldest = huge_cache_[0];
    if (huge_cache_bytes_ <= cap && now - oldest.cached_at_ms < 2 * kPurgeDelayMs) break;
    unmap_oldest_cached_huge();
  }
}

// Every kPurgeDelayMs: the peaks start again from what is in use now, the
// pages still in old_ are decommitted and young_ becomes old_.
void SegmentPool::rotate_if_due(std::int64_t now) noexcept {
  if (now - last_rotation_ms_ < kPurgeDelayMs) return;
  last_rotation_ms_ = now;
  in_use_peak_ = committed_in_use_;
  huge_in_use_peak_ = huge_in_use_;
  for (std::size_t k = 0; k < 3; ++k) {
    while (!old_[k].empty()) decommit_dirty(old_[k].back());
    for (Page& page : young_[k]) page.dirty = 2;
    old_[k].splice(old_[k].end(), young_[k]);
  }
}

void SegmentPool::purge_aged_and_excess() noexcept {
  const std::int64_t now = now_ms();
  evict_huge(now);
  rotate_if_due(now);
  purge_oldest_until(std::max(kDirtyBytesMin, in_use_peak_));
}

void SegmentPool::purge_oldest_until(std::size_t keep) noexcept {
  while (dirty_bytes_ > keep) {
    // The oldest generation first; within it, the kind holding the most.
    PageList* lists = old_;
    if (old_[0].empty() && old_[1].empty() && old_[2].empty()) lists = young_;
    std::size_t k = 0;
    for (std::size_t j = 1; j < 3; ++j)
      if (lists[j].size() > lists[k].size()) k = j;
    decommit_dirty(lists[k].back());
  }
}

void SegmentPool::purge_all() noexcept {
  std::lock_guard lock(mu_);
  purge_oldest_until(0);
  evict_huge(std::numeric_limits<std::int64_t>::max());
}

}  // namespace tagheap::internal
