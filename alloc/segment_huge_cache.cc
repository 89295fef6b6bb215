// Huge segments: one block each, sized to fit; freed ones are kept whole for
// a while in a small array (SegmentPool's kHugeCacheSlots, segment_pool.h).
#include <algorithm>

#include "alloc/internal/runtime_core.h"
#include "alloc/internal/segment.h"
#include "alloc/os.h"

namespace tagheap::internal {

Page* SegmentPool::take_huge_page(std::size_t size, std::size_t align) noexcept {
  const std::size_t os_page = os::page_size();
  TAGHEAP_DASSERT(size <= kMaxAllocation && align < kSegmentSize);  // allocate_huge rejects the rest
  // Header, alignment slack, the block, the mark table.
  const std::size_t total =
      ((header_size(PageKind::kHuge) + (align - 1) + size + os_page - 1) & ~(os_page - 1)) + mark_table_size(PageKind::kHuge);
  if (Page* page = take_cached_huge(total)) return page;
  Segment* seg = map_segment(PageKind::kHuge, total);
  if (seg == nullptr) {  // out of memory: give back what is held ahead, and try once more
    bool released;
    {
      std::lock_guard lock(mu_);
      released = release_held();
    }
    if (released) seg = map_segment(PageKind::kHuge, total);
    if (seg == nullptr) return nullptr;
  }
  seg->page_count = 1;
  seg->free_pages = 0;
  seg->pages_in_use = 1;
  seg->pages[0].in_use = 1;
  seg->pages[0].area_size = total - header_size(PageKind::kHuge) - mark_table_size(PageKind::kHuge);
  std::lock_guard lock(mu_);
  all_.push_back(*seg);
  ++mapped_total_;
  count_huge_in_use(seg->size);
  return &seg->pages[0];
}

void SegmentPool::count_huge_in_use(std::size_t size) noexcept {
  huge_in_use_ += size;
  huge_in_use_peak_ = std::max(huge_in_use_peak_, huge_in_use_);
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
    if (huge_cache_bytes_ <= cap && now - oldest.cached_at_ms < kHugeCacheAgeMs) break;
    unmap_oldest_cached_huge();
  }
}

}  // namespace tagheap::internal
