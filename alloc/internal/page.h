// internal/page.h: a page, the unit that holds blocks of one size.
// Internal: users must not rely on anything under alloc/internal/.
//
// Glossary
//   block      one allocation; its index i in the page gives its address
//              blocks_start + i * block_size
//   free_bits  one bit per block, 1 = free. Local frees set the bit directly
//   cache word the bitmap word allocation pops from, in place (alloc_word,
//              word cache_base / 64); a local free into it is reused at once
//   thread-free  blocks freed by threads that do not own the page: a bit
//              each in the page's thread-free bitmap (thread_free_word, in
//              the segment's mark table, away from the owner's lines), and
//              a count of those announced and not yet collected
//              (thread_free(), in the segment header beside the owner
//              tokens). A free never touches the block itself, and the
//              owner collects a word at a time, not a block at a time
//   used       blocks not free in free_bits: allocated, or freed by another
//              thread and not yet collected
//
// Invariants (Page::is_valid checks them):
//   used + popcount(free_bits) == reserved; no bit at or above `reserved`
//   alloc_word is g_no_word or points at free_bits word cache_base / 64
//   popcount(thread-free bitmap) <= announced count <= used, and no block is
//   both thread-freed and free (the count may run ahead of the bitmap: a
//   free announces itself, then sets its bit)
//   tag never changes while used > 0 (invariant 1)
//   populated <= area_size (pages not huge); populated only grows while the
//   page is in use (what was faulted in stays)
//   swept_epoch != the runtime's epoch (of a lazily swept tag) => the mark
//   bits are the last collection's: block i is dead iff live and unmarked
//
// Life cycle (who may touch the page in each state)
//   free        in its segment, not in use: the runtime's segment pool
//   owned       in a heap's queue (or its full queue): only the thread the
//               owner ThreadState is attached to, except the atomic
//               thread-free announcement and bit from any thread
//   abandoned   owner == nullptr, in the runtime's pool for its tag: only
//               under that pool's lock (frees take the lock too: the
//               page is closed to thread frees, kThreadFreeClosed)
//   reclaimed   owned again, by a heap of the same tag and runtime
//   huge        one block; owner == nullptr; held in the runtime's huge list
//               for its tag; freed from any thread under that list's lock
// A walk (world stopped) may read any page and collect its thread frees.
#pragma once

#include <atomic>
#include <bit>
#include <cstddef>
#include <cstdint>

#include "alloc/internal/asan.h"
#include "alloc/internal/config.h"
#include "alloc/internal/intrusive.h"
#include "alloc/internal/size_class.h"
#include "alloc/tag.h"

namespace tagheap {
class ThreadState;
class Heap;
}  // namespace tagheap

namespace tagheap::internal {

struct Segment;
struct BlockGeometry;

inline constexpr std::uint8_t kFillFresh = 0xCD;  // fresh blocks (debug_fill)
inline constexpr std::uint8_t kFillFreed = 0xDD;  // freed blocks (debug_fill)

// Never written: a page without a cache word points its alloc_word here.
extern std::uint64_t g_no_word;

struct alignas(64) Page {
  // --- the allocation and local-free fast paths read only this cache line ---
  // The bitmap word allocation pops from (the cache word), or a shared
  // word that stays zero when the page has none.
  std::uint64_t* alloc_word = &g_no_word;
  std::uint32_t cache_base = 0;  // index of the block bit 0 of the cache word stands for
  std::uint32_t used = 0;
  std::uintptr_t blocks_start = 0;
  std::size_t block_size = 0;
  std::uint64_t* free_bits = nullptr;  // in the segment header; word w: free_word(w)
  std::uint32_t block_inv = 0;         // ceil(2^32 / block_size); 0 on huge pages
  std::uint32_t reserved = 0;          // number of blocks
  std::uint16_t bitmap_words = 0;
  std::uint8_t size_class = 0;         // 0 on huge pages
  Tag tag = 0;
  // Nonzero sends a local free to Heap::on_free_slow: kSlowFreeFull while in
  // the owner heap's full queue, kSlowFreeFill while debug_fill is on.
  std::uint8_t slow_free = 0;
  PageKind kind = PageKind::kSmall;
  // gc/'s side bitmap, same layout, in the segment's mark table: on this
  // line, since a collector's mark of a block reads the geometry above and
  // then its mark word (on the next line it cost every mark a second line
  // of the header; 4% of a one-marker pause at 100 MiB).
  std::uint64_t* mark_bits = nullptr;
  // (The owner token lives in the segment, next to the other pages' ones:
  // owner_token().)

  // --- cross-thread and life-cycle state ---
  // (The thread-free count lives in the segment header: thread_free(). On
  // this line, next to the owner's, every free from another thread paid a
  // contended locked add: larson 47-49 ns an operation, 40-42 with the count
  // in the header.)
  Heap* heap = nullptr;          // owning heap; only its thread or a stopped world
  std::uint8_t in_use = 0;       // carved from its segment
  std::uint8_t in_walk = 0;      // a walk stands here: emptying must not release it
  std::uint8_t in_pool = 0;      // in the abandoned pool (guarded by the pool lock)
  std::uint8_t pool_full = 0;    // in the pool's full list rather than a class bin
  std::uint8_t page_index = 0;   // index in its segment
  std::uint8_t debug_fill = 0;   // fixed while in use: fill blocks 0xCD / 0xDD
  std::uint8_t dirty = 0;        // free but still committed (SegmentPool's list)
  std::uintptr_t area = 0;       // first byte of the page's memory
  std::size_t area_size = 0;
  // The runtime's sweep epoch when this page was last swept (or made): a
  // page of an older epoch, of a tag the runtime sweeps lazily, still holds
  // the marks of the last collection (RuntimeCore::sweep_pending).
  std::uint32_t swept_epoch = 0;
  // Bytes of the area, from its start, faulted in or to be left to page
  // faults: the pool sets it to 0 when it hands out a page of memory the
  // process does not hold (RuntimeOptions::populate_small_pages), to
  // area_size otherwise; the owner heap populates ahead of its cache word
  // (Heap::populate_ahead) and never past area_size.
  std::uint32_t populated = 0;
  ListHook queue_hook;           // heap queue, full queue, pool list or huge list

  // The owner ThreadState's token; 0: abandoned, huge or free. Kept in the
  // segment header (Segment::page_owner), away from this struct's first line,
  // which the owner writes on every allocation: a free from another thread
  // reads the token and the block geometry there without pulling that line
  // out of the owner's cache. Defined in segment.h.
  std::atomic<std::uintptr_t>& owner_token() const noexcept;
  // kThreadFreeClosed | thread frees announced, not collected * kThreadFreeOne.
  // In the segment header (Segment::thread_free_counts), defined in segment.h.
  std::atomic<std::uintptr_t>& thread_free() const noexcept;

  // kSlowFreeSticky: a generational collector keeps its marks across
  // collections (a set mark bit means "old"); a freed block's mark and log
  // bits must be cleared, or the next block there would be born old.
  static constexpr std::uint8_t kSlowFreeFull = 1, kSlowFreeFill = 2, kSlowFreeSticky = 4;
  bool in_full() const noexcept { return slow_free & kSlowFreeFull; }
  void set_in_full(bool full) noexcept {
    slow_free = static_cast<std::uint8_t>((slow_free & ~kSlowFreeFull) | (full ? kSlowFreeFull : 0));
  }

  // --- block arithmetic ---
  std::uint32_t block_index(std::uintptr_t p) const noexcept {
    return static_cast<std::uint32_t>(((p - blocks_start) * std::uint64_t{block_inv}) >> 32);
  }
  std::uintptr_t block_at(std::uint32_t index) const noexcept { return blocks_start + index * block_size; }
  // p is the start of block i < reserved (as BlockGeometry::is_block_start).
  bool is_block_start(std::uintptr_t p) const noexcept {
    return p >= blocks_start && p - blocks_start < std::uint64_t{reserved} * block_size &&
           block_at(block_index_containing(p)) == p;
  }
  // Index of the block containing p (blocks_start <= p < the last block's
  // end): exact for any byte, where block_index may round up inside blocks
  // over 1 KiB.
  std::uint32_t block_index_containing(std::uintptr_t p) const noexcept {
    const std::uint32_t i = block_index(p);
    return block_at(i) > p ? i - 1 : i;
  }
  // Bitmaps are interleaved by cache line (segment.h): eight words of a page
  // per line, for walks; the lines of all pages of a segment side by side,
  // so the many pages with at most eight words share few cache sets.
  static std::size_t bitmap_offset(std::uint32_t w) noexcept {
    return (w / kBitmapLineWords) * kBitmapRowWords + w % kBitmapLineWords;
  }
  std::uint64_t& free_word(std::uint32_t w) const noexcept { return free_bits[bitmap_offset(w)]; }
  std::uint64_t& mark_word(std::uint32_t w) const noexcept { return mark_bits[bitmap_offset(w)]; }
  // gc/'s log bits (a remembered set), the same layout behind the mark rows.
  std::uint64_t& log_word(std::uint32_t w) const noexcept { return mark_bits[table_words() + bitmap_offset(w)]; }
  // The thread-free bitmap (blocks freed by other threads, not collected
  // yet), behind the log rows. Set and taken only atomically.
  std::uint64_t& thread_free_word(std::uint32_t w) const noexcept {
    return mark_bits[2 * table_words() + bitmap_offset(w)];
  }
  // Words in each of the table's three parts (marks, logs, thread frees):
  // segment.h's mark_table_rows rows.
  std::size_t table_words() const noexcept {
    return (kind == PageKind::kSmall ? kBitmapWords / kBitmapLineWords : 1) * kBitmapRowWords;
  }
  // Clears, or sets, the segment's unlogged bits (segment.h) of every
  // granule where a block of this page may start.
  void set_unlogged_range(bool set) const noexcept;
  bool is_thread_freed(std::uint32_t i) const noexcept {
    return (std::atomic_ref<std::uint64_t>(thread_free_word(i >> 6)).load(std::memory_order_acquire) >> (i & 63)) & 1;
  }
  // Bits of word w that stand for real blocks.
  std::uint64_t valid_mask(std::uint32_t w) const noexcept {
    const std::uint32_t first = w * 64;
    if (first + 64 <= reserved) return ~std::uint64_t{0};
    return first >= reserved ? 0 : (std::uint64_t{1} << (reserved - first)) - 1;
  }
  bool is_huge() const noexcept { return kind == PageKind::kHuge; }
  bool has_free_in_bits() const noexcept { return used < reserved; }
  // Block of index i is free in the bitmap (not counting thread_free).
  bool is_free_bit(std::uint32_t i) const noexcept {
    const std::uint64_t bit = std::uint64_t{1} << (i & 63);
    return (free_word(i >> 6) & bit) != 0;
  }

  // --- allocation (owner thread) ---
  void* pop_cache() noexcept {
    const std::uint64_t c = *alloc_word;
    *alloc_word = c & (c - 1);
    ++used;
    const std::uintptr_t block = block_at(cache_base + static_cast<std::uint32_t>(std::countr_zero(c)));
    if constexpr (asan::kEnabled) asan::unpoison(block, block_size);
    return reinterpret_cast<void*>(block);
  }
  bool cache_empty() const noexcept { return *alloc_word == 0; }
  // The end of the cache word's first block (the block bit 0 stands for).
  std::uintptr_t cache_first_block_end() const noexcept {
    return blocks_start + (std::uintptr_t{cache_base} + 1) * block_size;
  }
  // That block reaches past the bytes populated so far (Heap::populate_ahead).
  bool cache_past_populated() const noexcept {
    return populated < area_size && cache_first_block_end() > area + populated;
  }
  // Makes the next word with free bits the cache word. False: the bitmap is
  // empty. Inline for the common case, the word right after the last one.
  bool refill_cache() noexcept {
    if (used >= reserved) return false;  // assumes the cache word is empty
    const std::uint32_t next = (cache_base >> 6) + 1;
    if (next < bitmap_words && free_word(next) != 0) [[likely]] {
      alloc_word = &free_word(next);
      cache_base = next * 64;
      return true;
    }
    return refill_cache_scan();
  }
  bool refill_cache_scan() noexcept;
  // Leaves no cache word (when the page changes hands or goes back).
  void drop_cache() noexcept { alloc_word = &g_no_word; }

  // --- free ---
  // The caller owns the page (or holds its pool lock, or the world is
  // stopped). Sets the block free; fatal on an interior pointer or double free.
  void free_block_owned(std::uintptr_t p) noexcept;
  // thread_free's low bit: set while the page is abandoned. An announcement
  // then fails, and the free goes through the pool's lock instead
  // (RuntimeCore::free_in_abandoned). A free announces itself (count + 1,
  // in the locked add that reads the closed bit), then sets its
  // block's bit, and touches the page no more: once its bit is set, the
  // block may be collected and the page released at any moment.
  // Abandonment closes, then collects: a free that announced in time stays
  // counted until its bit is collected, and while the count is not zero the
  // page waits in its pool bin (never the full list), where reclaim
  // collects it; a later free finds the page closed and takes the lock.
  static constexpr std::uintptr_t kThreadFreeClosed = 1;
  static constexpr std::uintptr_t kThreadFreeOne = 2;
  enum class RemoteFree { kDone, kClosed };
  // From any thread: a thread free of block p. Fatal on an interior pointer
  // or a block freed twice by other threads. kClosed, nothing done, when the
  // page is abandoned.
  [[nodiscard]] RemoteFree free_block_remote(std::uintptr_t p) noexcept;
  // The free itself, for block i at p, already checked against g, the
  // page's BlockGeometry copy in its segment header, with `count` its
  // thread_free() (the caller, free(), knows the page's index). Reads no
  // field of the page (segment.h, BlockGeometry), but to report a double
  // free.
  [[nodiscard]] RemoteFree push_thread_free(std::atomic<std::uintptr_t>& count, const BlockGeometry& g,
                                            std::uintptr_t p, std::uint32_t i) noexcept;
  // Thread frees announced and not collected (some may not have set their
  // bit yet).
  std::uintptr_t thread_frees_pending() const noexcept {
    return thread_free().load(std::memory_order_acquire) / kThreadFreeOne;
  }
  // Owner (or pool lock or stopped world): moves the thread-free bits into
  // free_bits and takes their number off the count, leaving the page open or
  // closed as it was. Returns the blocks collected.
  std::uint32_t collect_thread_free() noexcept {
    if (thread_free().load(std::memory_order_acquire) < kThreadFreeOne) return 0;
    return take_thread_free();
  }
  // Close then collect (abandonment, under the pool lock), or collect then
  // open (reclaim, under the pool lock, before the new owner is published).
  std::uint32_t close_thread_free() noexcept;
  std::uint32_t open_thread_free() noexcept;
  void check_block_start(std::uintptr_t p) const noexcept;
  std::uint32_t take_thread_free() noexcept;

  // --- lazy sweeping (the caller may modify the page: owner, pool lock or
  // stopped world) ---
  // Frees every live block whose mark bit is clear (filling and poisoning
  // it like any freed block), after collecting thread_free; clears the mark
  // bits unless keep_marks; records `epoch`. Returns the blocks freed.
  std::uint32_t sweep_unmarked(std::uint32_t epoch, bool keep_marks) noexcept;
  bool is_marked_bit(std::uint32_t i) const noexcept { return (mark_word(i >> 6) >> (i & 63)) & 1; }
  // A block is free again: its mark and log bits go (atomically: a write
  // barrier on another thread may read or set bits of the same words).
  void clear_gc_bits(std::uint32_t i) noexcept {
    const std::uint64_t keep = ~(std::uint64_t{1} << (i & 63));
    std::atomic_ref<std::uint64_t>(mark_word(i >> 6)).fetch_and(keep, std::memory_order_relaxed);
    std::atomic_ref<std::uint64_t>(log_word(i >> 6)).fetch_and(keep, std::memory_order_relaxed);
  }

  // --- life cycle ---
  // Lays out an unused page for blocks of `block_size` (class `size_class`,
  // 0 for huge) aligned to `align`.
  void init(std::size_t block_size, std::uint8_t size_class, Tag tag, bool debug_fill,
            std::size_t align) noexcept;
  // Checks every invariant above; fatal with a message on the first broken one.
  bool is_valid() const noexcept;

  // --- walking (stopped world) ---
  // Calls f(index) for every allocated block not on thread_free, in address
  // order. Collect thread_free first. f returns false to stop; returns false
  // if stopped. The live bits of a word are read before f runs, so f may free
  // the block it was handed.
  // A full page (used == reserved: no free bit, by the invariant used +
  // free bits == reserved) takes a plain count, with no bit to find and
  // clear per block: a dense heap's usual case (bench walk_all 0.84 -> 0.60
  // ns a block); a partly free one, its bitmap. The count is unrolled four
  // times: a loop of one block a step takes a branch a block, and AMD's Zen
  // cores before Zen 3 take one taken branch in two cycles (bench walk_all
  // 0.67-0.76 -> 0.38-0.42 ns a block, pinned, on an EPYC).
  template <class F>
  bool for_each_live_index(F&& f) const {
    if (used == reserved) {
#pragma GCC unroll 4
      for (std::uint32_t i = 0, n = reserved; i < n; ++i)
        if (!f(i)) return false;
      return true;
    }
    for (std::uint32_t w = 0; w < bitmap_words; ++w) {
      std::uint64_t live = ~free_word(w) & valid_mask(w);
      while (live) {
        const std::uint32_t i = w * 64 + static_cast<std::uint32_t>(std::countr_zero(live));
        live &= live - 1;
        if (!f(i)) return false;
      }
    }
    return true;
  }
};

// Page reached when a class has no page: its cache is empty, so the fast path
// falls through to the slow path without a null check.
extern Page g_empty_page;

static_assert(sizeof(Page) == 128, "pages are found by a shift: keep the struct at two cache lines");

}  // namespace tagheap::internal
