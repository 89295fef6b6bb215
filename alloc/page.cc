#include "alloc/internal/page.h"

#include <algorithm>
#include <cstring>

#include "alloc/internal/runtime_core.h"
#include "alloc/internal/segment.h"

namespace tagheap::internal {

std::uint64_t g_no_word = 0;
Page g_empty_page;

void Page::init(std::size_t bs, std::uint8_t cls, Tag t, bool fill, std::size_t align) noexcept {
  block_size = bs;
  size_class = cls;
  tag = t;
  debug_fill = fill;
  const std::uintptr_t end = area + area_size;
  blocks_start = (area + align - 1) & ~(std::uintptr_t{align} - 1);
  if (kind == PageKind::kHuge) {
    block_inv = 0;
    reserved = 1;
  } else {
    block_inv = static_cast<std::uint32_t>(((std::uint64_t{1} << 32) + bs - 1) / bs);
    reserved = static_cast<std::uint32_t>((end - blocks_start) / bs);
  }
  const std::size_t words = (reserved + 63) / 64;
  TAGHEAP_DASSERT(words <= kBitmapWords);
  bitmap_words = static_cast<std::uint16_t>(words);
  for (std::size_t w = 0; w < words; ++w) {
    free_word(static_cast<std::uint32_t>(w)) = valid_mask(static_cast<std::uint32_t>(w));
    mark_word(static_cast<std::uint32_t>(w)) = 0;
    log_word(static_cast<std::uint32_t>(w)) = 0;
    std::atomic_ref<std::uint64_t>(thread_free_word(static_cast<std::uint32_t>(w))).store(0, std::memory_order_relaxed);
  }
  Segment::of(this)->geometry[page_index] = BlockGeometry{blocks_start, block_size, block_inv,
                                                         static_cast<std::uint16_t>(reserved), debug_fill, tag,
                                                         &thread_free_word(0)};
  asan::poison(area, area_size);  // every block is free, slack never used
  alloc_word = &g_no_word;
  cache_base = ~0u & ~63u;  // no word: refill starts at word 0
  used = 0;
  thread_free().store(0, std::memory_order_relaxed);
  const RuntimeCore* core = Segment::of(this)->runtime;
  slow_free = static_cast<std::uint8_t>((fill ? kSlowFreeFill : 0) |
                                        (((core->sticky_tags >> t) & 1u) ? kSlowFreeSticky : 0));
  // A generational collector's tag: bits a full collection set over this
  // area in an earlier life would each cost a slow barrier. Other tags'
  // pages never touch the bits (0.8% of their memory otherwise: stale bits
  // only cost, never break, and a barrier on them is a VM's mistake).
  if (slow_free & kSlowFreeSticky) set_unlogged_range(false);
  in_walk = in_pool = pool_full = 0;
  swept_epoch = core->sweep_epoch;  // no marks: nothing to sweep
}

void Page::set_unlogged_range(bool set) const noexcept {
  if (reserved == 0) return;
  Segment* seg = Segment::of(this);
  const std::uintptr_t first = blocks_start & kSegmentMask;
  const std::uintptr_t last = std::min<std::uintptr_t>(block_at(reserved - 1) - seg->base(), kSegmentMask);
  std::memset(&seg->unlogged[first / kUnloggedWordBytes], set ? 0xFF : 0,
              (last / kUnloggedWordBytes - first / kUnloggedWordBytes + 1) * sizeof(std::uint64_t));
}

std::uint32_t Page::sweep_unmarked(std::uint32_t epoch, bool keep_marks) noexcept {
  collect_thread_free();  // blocks freed by other threads are free, not dead
  std::uint32_t freed = 0;
  for (std::uint32_t w = 0; w < bitmap_words; ++w) {
    std::uint64_t& mark = mark_word(w);
    std::uint64_t& free = free_word(w);
    const std::uint64_t dead = ~free & valid_mask(w) & ~mark;
    if (!keep_marks) mark = 0;
    if (dead == 0) continue;
    if (debug_fill || asan::kEnabled) {
      for (std::uint64_t d = dead; d; d &= d - 1) {
        const std::uintptr_t b = block_at(w * 64 + static_cast<std::uint32_t>(std::countr_zero(d)));
        if (debug_fill) {
          asan::unpoison(b, block_size);  // a collector may have poisoned it already
          std::memset(reinterpret_cast<void*>(b), kFillFreed, block_size);
        }
        asan::poison(b, block_size);
      }
    }
    free |= dead;
    freed += static_cast<std::uint32_t>(std::popcount(dead));
  }
  used -= freed;
  swept_epoch = epoch;
  // The next allocation takes a word afresh, so the blocks the sweep freed
  // are counted as taken (RuntimeCore::allocated_bytes) like any others.
  drop_cache();
  return freed;
}

bool Page::refill_cache_scan() noexcept {
  // Go on after the last cache word (from word 0 on a fresh page).
  std::uint32_t start = (cache_base >> 6) + 1;
  if (start >= bitmap_words) start = 0;
  for (std::uint32_t k = 0; k < bitmap_words; ++k) {
    std::uint32_t w = start + k;
    if (w >= bitmap_words) w -= bitmap_words;
    if (free_word(w) != 0) {
      alloc_word = &free_word(w);
      cache_base = w * 64;
      return true;
    }
  }
  fatal("tagheap: page %p lost blocks: used %u < %u blocks but no free bit", static_cast<void*>(this),
        used, reserved);
}

void Page::check_block_start(std::uintptr_t p) const noexcept {
  if (p < blocks_start || p - blocks_start >= std::uint64_t{reserved} * block_size) [[unlikely]]
    fatal("tagheap: free(%p): not a block of this page (tag %u, block size %zu)",
          reinterpret_cast<void*>(p), tag, block_size);
  const std::uint32_t i = block_index_containing(p);
  if (block_at(i) != p) [[unlikely]]
    fatal("tagheap: free(%p): interior pointer into the block at %p (block size %zu)",
          reinterpret_cast<void*>(p), reinterpret_cast<void*>(block_at(i)), block_size);
}

void Page::free_block_owned(std::uintptr_t p) noexcept {
  check_block_start(p);
  const std::uint32_t i = block_index(p);
  if (is_free_bit(i)) [[unlikely]]
    fatal("tagheap: double free of %p (tag %u, block size %zu)", reinterpret_cast<void*>(p), tag,
          block_size);
  if (debug_fill) std::memset(reinterpret_cast<void*>(p), kFillFreed, block_size);
  asan::poison(p, block_size);
  free_word(i >> 6) |= std::uint64_t{1} << (i & 63);
  if (slow_free & kSlowFreeSticky) clear_gc_bits(i);
  --used;
}

Page::RemoteFree Page::free_block_remote(std::uintptr_t p) noexcept {
  check_block_start(p);
  return push_thread_free(thread_free(), Segment::of(this)->geometry[page_index], p, block_index(p));
}

Page::RemoteFree Page::push_thread_free(std::atomic<std::uintptr_t>& count, const BlockGeometry& g,
                                        std::uintptr_t p, std::uint32_t i) noexcept {
  // Announce, unless closed: from here the page cannot be released until
  // our bit is collected (our block keeps `used` above zero until then).
  // One locked add, no compare-exchange loop; on a closed page, taken back
  // (the count is then only read under the pool's lock, which we take next).
  if (count.fetch_add(kThreadFreeOne, std::memory_order_relaxed) & kThreadFreeClosed) [[unlikely]] {
    count.fetch_sub(kThreadFreeOne, std::memory_order_relaxed);
    return RemoteFree::kClosed;
  }
  if (g.debug_fill) std::memset(reinterpret_cast<void*>(p), kFillFreed, g.block_size);
  asan::poison(p, g.block_size);
  const std::uint64_t bit = std::uint64_t{1} << (i & 63);
  // Publishes the fill and the block's last use to whoever collects it.
  // Nothing of the page is touched after this.
  if (std::atomic_ref<std::uint64_t>(g.thread_free_word(i >> 6)).fetch_or(bit, std::memory_order_release) & bit)
      [[unlikely]]
    fatal("tagheap: double free of %p (freed twice from other threads; tag %u, block size %zu)",
          reinterpret_cast<void*>(p), tag, block_size);
  return RemoteFree::kDone;
}

std::uint32_t Page::take_thread_free() noexcept {
  // Every bit set now was announced before: the count covers it. A free
  // that announced and has not set its bit yet stays counted, for the next
  // collection.
  std::uint32_t n = 0;
  for (std::uint32_t w = 0; w < bitmap_words; ++w) {
    std::atomic_ref<std::uint64_t> remote(thread_free_word(w));
    if (remote.load(std::memory_order_relaxed) == 0) continue;
    const std::uint64_t bits = remote.exchange(0, std::memory_order_acquire);
    std::uint64_t& free = free_word(w);
    if (bits & free) [[unlikely]] {
      const std::uintptr_t b = block_at(w * 64 + static_cast<std::uint32_t>(std::countr_zero(bits & free)));
      fatal("tagheap: double free of %p (freed from another thread; tag %u, block size %zu)",
            reinterpret_cast<void*>(b), tag, block_size);
    }
    free |= bits;
    if (slow_free & kSlowFreeSticky) {
      std::atomic_ref<std::uint64_t>(mark_word(w)).fetch_and(~bits, std::memory_order_relaxed);
      std::atomic_ref<std::uint64_t>(log_word(w)).fetch_and(~bits, std::memory_order_relaxed);
    }
    n += static_cast<std::uint32_t>(std::popcount(bits));
  }
  if (n == 0) return 0;
  if (n > used) fatal("tagheap: page %p: %u thread frees but only %u blocks used", static_cast<void*>(this), n, used);
  used -= n;
  thread_free().fetch_sub(n * kThreadFreeOne, std::memory_order_relaxed);
  return n;
}

std::uint32_t Page::close_thread_free() noexcept {
  // seq_cst both: a free that announced before the close is counted, and
  // one after it sees the bit (the announcing add reads the same word).
  thread_free().fetch_or(kThreadFreeClosed, std::memory_order_seq_cst);
  return take_thread_free();
}

std::uint32_t Page::open_thread_free() noexcept {
  const std::uint32_t n = take_thread_free();
  thread_free().fetch_and(~kThreadFreeClosed, std::memory_order_release);
  return n;
}

bool Page::is_valid() const noexcept {
  if (!in_use) fatal("page %p: not in use", static_cast<const void*>(this));
  if (block_size == 0 || reserved == 0) fatal("page %p: no blocks", static_cast<const void*>(this));
  if (kind != PageKind::kHuge && class_block_size(size_class) != block_size)
    fatal("page %p: class %u has block size %zu, page says %zu", static_cast<const void*>(this),
          size_class, class_block_size(size_class), block_size);
  if (blocks_start + std::uint64_t{reserved} * block_size > area + area_size)
    fatal("page %p: blocks overrun the page", static_cast<const void*>(this));
  if (kind != PageKind::kHuge && populated > area_size)
    fatal("page %p: populated %u bytes of %zu", static_cast<const void*>(this), populated, area_size);
  std::size_t free_count = 0;
  for (std::uint32_t w = 0; w < bitmap_words; ++w) {
    if (free_word(w) & ~valid_mask(w)) fatal("page %p: free bit beyond the last block", static_cast<const void*>(this));
    free_count += static_cast<std::size_t>(std::popcount(free_word(w)));
  }
  if (alloc_word != &g_no_word && ((cache_base >> 6) >= bitmap_words || alloc_word != &free_word(cache_base >> 6)))
    fatal("page %p: cache word out of range", static_cast<const void*>(this));
  if (used + free_count != reserved)
    fatal("page %p: used %u + free %zu != %u blocks", static_cast<const void*>(this), used, free_count, reserved);
  std::size_t remote = 0;
  for (std::uint32_t w = 0; w < bitmap_words; ++w) {
    const std::uint64_t bits = std::atomic_ref<std::uint64_t>(thread_free_word(w)).load(std::memory_order_acquire);
    if (bits & ~valid_mask(w)) fatal("page %p: thread-free bit beyond the last block", static_cast<const void*>(this));
    if (bits & free_word(w)) fatal("page %p: a block is free and thread-freed", static_cast<const void*>(this));
    remote += static_cast<std::size_t>(std::popcount(bits));
  }
  if (remote > thread_frees_pending() || thread_frees_pending() > used)
    fatal("page %p: %zu thread-free bits, %zu announced, %u blocks used", static_cast<const void*>(this), remote,
          static_cast<std::size_t>(thread_frees_pending()), used);
  return true;
}

}  // namespace tagheap::internal
