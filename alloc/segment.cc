// Segments: mapping, laying out pages, unmapping. (Taking pages and giving
// them back: segment_pool.cc; freed huge segments: segment_huge_cache.cc.)
#include <algorithm>
#include <new>

#include "alloc/internal/lookup_guard.h"
#include "alloc/internal/runtime_core.h"
#include "alloc/internal/segment.h"
#include "alloc/internal/segment_map.h"
#include "alloc/os.h"
#include "alloc/runtime.h"

namespace tagheap::internal {

bool Segment::is_valid() const noexcept {
  if (!cookie_ok()) fatal("segment %p: bad cookie", static_cast<const void*>(this));
  std::size_t in_use = 0;
  if (free_pages & ((std::uint64_t{1} << first_page) - 1))
    fatal("segment %p: a page under the header or mark table is free", static_cast<const void*>(this));
  for (std::size_t i = first_page; i < page_count; ++i) {
    const bool page_free = (free_pages >> i) & 1;
    if (pages[i].in_use == page_free)
      fatal("segment %p: page %zu in_use %u but free mask says %d", static_cast<const void*>(this), i,
            pages[i].in_use, page_free);
    in_use += pages[i].in_use;
    const BlockGeometry& g = geometry[i];
    if (pages[i].in_use && pages[i].block_size != 0 &&
        (g.blocks_start != pages[i].blocks_start || g.block_size != pages[i].block_size ||
         g.block_inv != pages[i].block_inv || g.reserved != pages[i].reserved ||
         g.debug_fill != pages[i].debug_fill || g.tag != pages[i].tag ||
         g.thread_free_bits != &pages[i].thread_free_word(0)))
      fatal("segment %p: page %zu: the geometry copy for remote frees is stale", static_cast<const void*>(this), i);
  }
  if (in_use != pages_in_use) fatal("segment %p: %zu pages in use, counter says %u", static_cast<const void*>(this), in_use, pages_in_use);
  return true;
}

Segment* SegmentPool::map_segment(PageKind kind, std::size_t size, bool huge_os_pages,
                                  std::int64_t* touch_ns) noexcept {
  huge_os_pages = huge_os_pages && kind == PageKind::kSmall;
  const bool timed = huge_os_pages && touch_ns != nullptr;
  if (touch_ns != nullptr) *touch_ns = -1;
  const std::int64_t t0 = timed ? cpu_ns() : 0;
  void* mem = os::map_aligned(size, kSegmentSize);
  if (mem == nullptr) return nullptr;
  // Before the header is written: the first touch of each 2 MiB decides.
  if (huge_os_pages) os::advise_huge_pages(mem, size);
  auto* seg = new (mem) Segment;  // default-init: the bitmaps are fresh zero pages, left untouched
  seg->huge_os_pages = huge_os_pages;
  seg->cookie = seg->base() ^ kCookieKey;
  seg->runtime = runtime_;
  seg->size = size;
  lay_out(seg, kind);
  if (timed) *touch_ns = cpu_ns() - t0;  // the mmap, and the header's first write faulting in its 2 MiB
  if (!SegmentMap::set(seg->base(), size, true, seg->page_shift)) {
    os::unmap(mem, size);
    return nullptr;
  }
  return seg;
}

// Pages of `kind` over the whole segment, all free. Also lays out an empty
// segment again for another kind: its free bitmaps and mark table may hold
// old words, but Page::init writes every word a page reads before it is
// used, and nothing reads past a page's bitmap_words.
void SegmentPool::lay_out(Segment* seg, PageKind kind) noexcept {
  const std::size_t size = seg->size;
  seg->kind = kind;
  seg->page_shift = static_cast<std::uint8_t>(page_shift_of(kind));
  const std::size_t page_size = kind == PageKind::kSmall    ? std::size_t{1} << kSmallPageShift
                              : kind == PageKind::kMedium ? std::size_t{1} << kMediumPageShift
                                                          : size;
  // The mark table follows the header; the pages' areas follow the table.
  // A page whose region they cover, or leave less than an eighth of, is
  // never used.
  const std::size_t marks = mark_table_size(kind);
  const std::size_t used_by_tables = header_size(kind) + marks;
  seg->page_count = static_cast<std::uint16_t>(kind == PageKind::kHuge ? 1 : size / page_size);
  std::size_t first = used_by_tables / page_size;
  if (kind != PageKind::kHuge && (first + 1) * page_size - used_by_tables < page_size / 8) ++first;
  seg->first_page = static_cast<std::uint16_t>(first);
  const std::uint64_t all = seg->page_count == 64 ? ~std::uint64_t{0} : (std::uint64_t{1} << seg->page_count) - 1;
  seg->free_pages = all & ~((std::uint64_t{1} << first) - 1);
  auto* mark_table = reinterpret_cast<std::uint64_t*>(seg->base() + header_size(kind));
  for (std::size_t i = 0; i < seg->page_count; ++i) {
    Page& page = seg->pages[i];
    page.kind = kind;
    page.page_index = static_cast<std::uint8_t>(i);
    page.free_bits = &seg->free_words[0][i][0];
    page.mark_bits = mark_table + i * kBitmapLineWords;
    const std::uintptr_t start = std::max(seg->base() + i * page_size, seg->base() + used_by_tables);
    const std::uintptr_t end = std::min(seg->base() + (i + 1) * page_size, seg->base() + size);
    page.area = i < first ? 0 : start;
    page.area_size = i < first ? 0 : end - start;
  }
}

void SegmentPool::unmap_segment(Segment* seg) noexcept {
  all_.erase(all_.iterator_to(*seg));
  unmap_unlisted(seg);
}

void SegmentPool::unmap_unlisted(Segment* seg) noexcept {
  ++unmapped_total_;
  release_segment_memory(seg);
}

// No lock needed: nothing of the pool's refers to seg any more.
void SegmentPool::release_segment_memory(Segment* seg) noexcept {
  asan::unpoison(seg->base(), seg->size);  // the OS may give the range to someone else
  seg->cookie = 0;
  unmap_segment_memory(seg);  // deferred while a find_block may be reading it
}

}  // namespace tagheap::internal
