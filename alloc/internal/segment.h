// internal/segment.h: a segment, a 4 MiB-aligned region holding pages.
// Internal: users must not rely on anything under alloc/internal/.
//
// A pointer finds its segment by masking (p & ~kSegmentMask) and its page by
// an index: (p - segment) >> page_shift. The header (this struct, padded to
// header_size(kind); other kinds' headers stop short of the free bitmaps'
// rows they never use) sits at the start of the segment, then the mark
// table (mark_table_size), then the pages' areas: pages below first_page lie
// wholly under the two and are never used (a small segment's first two).
// Both are in the segment's first 2 MiB, which the header's first write
// faults in anyway: on huge OS pages, a bitmap touched in a segment whose
// later pages are unused does not fault in another 2 MiB page.
//
// A segment belongs to one runtime for its whole life (runtimes never share a
// page). Its pages may be owned by different heaps, of different tags and
// thread states: pages, not segments, carry tags and owners (a page's owner
// token is kept in the header's page_owner array, read by free() from any
// thread, so that other threads never read the page's first line, which its
// owner writes on every allocation; see Page::owner_token).
//
// Invariants (Segment::is_valid): cookie == address ^ kCookieKey;
// pages_in_use == number of pages with in_use, == page_count - first_page - popcount(free_pages);
// pages below first_page are never free nor in use;
// geometry[i] == page i's blocks_start, block_size, block_inv, reserved,
// debug_fill, tag and &thread_free_word(0) while it is in use.
#pragma once

#include <atomic>
#include <cstddef>
#include <cstdint>

#include "alloc/internal/config.h"
#include "alloc/internal/intrusive.h"
#include "alloc/internal/page.h"

namespace tagheap::internal {

class RuntimeCore;

inline constexpr std::uintptr_t kCookieKey = 0x7a67686561707365ull;  // "taghe aps e"

// What a free from another thread needs, copied out of the page when it is
// laid out: whether the pointer is a block start, and where its thread-free
// bit lies. Such a free reads no line of the page itself: the owner writes
// the first on every allocation and the second whenever the page moves
// between queues, and a read from another core pulls the line away from it
// (larson: the owner's next local free stalled on block_inv).
struct alignas(32) BlockGeometry {
  std::uintptr_t blocks_start = 0;
  std::size_t block_size = 0;
  std::uint32_t block_inv = 0;
  std::uint16_t reserved = 0;                 // at most kBitmapWords * 64 blocks
  std::uint8_t debug_fill = 0;                // the page's: fill a freed block with 0xDD
  Tag tag = 0;                                // the page's
  std::uint64_t* thread_free_bits = nullptr;  // &page.thread_free_word(0)

  std::uint64_t& thread_free_word(std::uint32_t w) const noexcept { return thread_free_bits[Page::bitmap_offset(w)]; }

  std::uint32_t block_index(std::uintptr_t p) const noexcept {
    return static_cast<std::uint32_t>(((p - blocks_start) * std::uint64_t{block_inv}) >> 32);
  }
  // p is the start of block i < reserved.
  bool is_block_start(std::uintptr_t p) const noexcept {
    const std::uint32_t i = block_index(p);
    return p >= blocks_start && i < reserved && blocks_start + i * block_size == p;
  }
};
static_assert(sizeof(BlockGeometry) == 32 && kBitmapWords * 64 <= UINT16_MAX);

struct Segment {
  // First, so that a page's address is the segment's plus index * 128: free()
  // needs no offset on top.
  Page pages[kMaxPagesPerSegment];
  std::uintptr_t cookie = 0;
  RuntimeCore* runtime = nullptr;
  std::size_t size = 0;           // bytes mapped
  PageKind kind = PageKind::kSmall;
  std::uint8_t page_shift = 0;
  // Backed by transparent huge pages (RuntimeOptions::huge_os_pages): its
  // free pages stay committed until it is unmapped or trimmed, since
  // releasing 64 KiB of a 2 MiB page would split it.
  bool huge_os_pages = false;
  // trim() withdrew the huge-page advice before decommitting its free
  // pages (khugepaged would otherwise collapse them back in: it fills a
  // 2 MiB range with as few as one present page); the next page taken
  // from it advises again.
  bool huge_advice_withdrawn = false;
  // Resident whole, and no page of it released since: the populator faulted
  // it in (SegmentPool::make_held), so a page taken from its free pages
  // needs no populating (Page::populated).
  bool faulted_in = false;
  std::uint16_t page_count = 0;
  std::uint16_t first_page = 0;   // the pages before lie under the header and mark table
  std::uint16_t pages_in_use = 0;
  // The runtime's sweep epoch in which sweep_pending_pages (heap_walk.h)
  // swept every pending page of this segment (and moved it to the back of
  // the list of all segments): until the next epoch none of its pages is
  // pending (a page laid out later is born swept), so later calls in the
  // same epoch stop at it. Only that function reads or writes it.
  std::uint32_t swept_epoch = 0;
  std::uint64_t free_pages = 0;   // bit i: page i is free
  std::int64_t emptied_at_ms = 0; // when its last page in use went back (while empty)
  ListHook avail_hook;            // in the pool's list of partly used or of empty segments
  ListHook all_hook;              // in the runtime's list of all its segments
  Segment* unmap_next = nullptr;  // released, waiting for lookups to end (lookup_guard.h)
  // Read-mostly copies for free(), written only when a page changes hands
  // or is laid out: the owner token of each page (free() compares it with
  // the caller's before touching the page), and the block geometry a free
  // from another thread checks the pointer against.
  std::atomic<std::uintptr_t> page_owner[kMaxPagesPerSegment];
  BlockGeometry geometry[kMaxPagesPerSegment];
  // Each page's thread-free count (Page::thread_free()): written by every
  // free from another thread, so kept off the page struct, whose lines the
  // owner keeps in its cache, and off the read-mostly copies above.
  alignas(64) std::atomic<std::uintptr_t> thread_free_counts[kMaxPagesPerSegment];
  // gc/'s unlogged bits, for a generational collector's write barrier: bit
  // g stands for the segment's 16-byte granule g (no two blocks start in
  // one), set when the block starting there is old and has not been logged
  // since the last collection, or may be so: a bit set over anything else
  // only sends one barrier to its slow path, which clears it. Keyed by
  // address, not block index, so the barrier needs neither the page nor a
  // division. Only gc/ sets them; Page::init clears those of its blocks
  // on the tags of a generational collector (other pages never touch them).
  std::uint64_t unlogged[kSegmentSize / kUnloggedWordBytes];
  // Free bitmaps of the pages, in the header rather than at each page's
  // start (64 KiB-aligned page starts all map to the same few cache sets, and
  // free() touches one of these words every time), interleaved by cache
  // line: row r holds words 8r..8r+7 of every page, one line each. A walk
  // reads eight words per line; pages with at most eight words (blocks of
  // 128 bytes and more) sit in one 4 KiB row. The mark bitmaps (gc/'s) are
  // a table of the same shape right after the header. Last: a segment of
  // bigger pages (at most 64 blocks a page, one word) has only the first
  // row, and its header ends there (header_size).
  std::uint64_t free_words[kBitmapWords / kBitmapLineWords][kMaxPagesPerSegment][kBitmapLineWords];
  static std::uint64_t& unlogged_word(const void* p) noexcept {
    return of(p)->unlogged[(reinterpret_cast<std::uintptr_t>(p) & kSegmentMask) / kUnloggedWordBytes];
  }
  static std::uint64_t unlogged_bit(const void* p) noexcept {
    return std::uint64_t{1} << ((reinterpret_cast<std::uintptr_t>(p) / kMinBlockSize) & 63);
  }

  static Segment* of(const void* p) noexcept {
    return reinterpret_cast<Segment*>(reinterpret_cast<std::uintptr_t>(p) & ~kSegmentMask);
  }
  std::uintptr_t base() const noexcept { return reinterpret_cast<std::uintptr_t>(this); }
  Page* page_of(const void* p) noexcept {
    return &pages[(reinterpret_cast<std::uintptr_t>(p) - base()) >> page_shift];
  }
  bool cookie_ok() const noexcept { return cookie == (base() ^ kCookieKey); }
  bool is_valid() const noexcept;
};

inline std::atomic<std::uintptr_t>& Page::owner_token() const noexcept {
  return Segment::of(this)->page_owner[page_index];
}
inline std::atomic<std::uintptr_t>& Page::thread_free() const noexcept {
  return Segment::of(this)->thread_free_counts[page_index];
}

// The header's size: a small segment's holds every row of free_words (the
// largest, kSegmentHeaderSize); the others' end after the first row.
constexpr std::size_t header_size(PageKind kind) {
  const std::size_t bytes = kind == PageKind::kSmall
                                ? sizeof(Segment)
                                : sizeof(Segment) - sizeof(Segment::free_words) + sizeof(Segment::free_words[0]);
  return (bytes + 4095) & ~std::size_t{4095};
}
inline constexpr std::size_t kSegmentHeaderSize = header_size(PageKind::kSmall);
// Under two small pages: a small segment loses its first two pages and
// most of its third to the header and the mark table; a medium or large
// segment, 48 KiB and its mark table.
static_assert(kSegmentHeaderSize < (std::size_t{1} << kSmallPageShift) * 2);
static_assert(header_size(PageKind::kMedium) <= 48 * 1024);
// The mark table, after the header: rows of kBitmapRowWords words.
// Small pages need up to kBitmapWords words each (kBitmapWords /
// kBitmapLineWords rows); medium and large pages hold at most 64 blocks, one
// word, so their segments need one row. Behind the mark rows, as many rows
// of log bits (gc/'s incremental barrier: Page::log_word), then as many of
// thread-free bits (Page::thread_free_word: other threads set them, so they
// live apart from the free bitmaps the owner writes).
constexpr std::size_t mark_table_rows(PageKind kind) {
  return kind == PageKind::kSmall ? kBitmapWords / kBitmapLineWords : 1;
}
constexpr std::size_t mark_table_size(PageKind kind) {
  return (3 * mark_table_rows(kind) * kBitmapRowWords * sizeof(std::uint64_t) + 4095) & ~std::size_t{4095};
}
static_assert((std::size_t{1} << kMediumPageShift) / kSmallBlockMax <= 64,
              "a medium page's blocks (over kSmallBlockMax) fit one bitmap word");

constexpr std::size_t page_shift_of(PageKind kind) {
  return kind == PageKind::kSmall ? kSmallPageShift
       : kind == PageKind::kMedium ? kMediumPageShift
                                   : 48;  // one page: every offset maps to page 0
}

}  // namespace tagheap::internal
