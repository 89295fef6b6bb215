#include "alloc/internal/page.h"

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
  }
  Segment::of(this)->geometry[page_index] = BlockGeometry{blocks_start, block_size, block_inv, reserved};
  asan::poison(area, area_size);  // every block is free, slack never used
  alloc_word = &g_no_word;
  cache_base = ~0u & ~63u;  // no word: refill starts at word 0
  used = 0;
  thread_free.store(0, std::memory_order_relaxed);
  const RuntimeCore* core = Segment::of(this)->runtime;
  slow_free = static_cast<std::uint8_t>((fill ? kSlowFreeFill : 0) |
                                        (((core->sticky_tags >> t) & 1u) ? kSlowFreeSticky : 0));
  in_walk = in_pool = pool_full = 0;
  swept_epoch = core->sweep_epoch;  // no marks: nothing to sweep
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

bool Page::free_block_remote(std::uintptr_t p) noexcept {
  check_block_start(p);
  return push_thread_free(p, block_size);
}

bool Page::push_thread_free(std::uintptr_t p, std::size_t size) noexcept {
  std::uintptr_t head = thread_free.load(std::memory_order_relaxed);
  if (head & kThreadFreeClosed) [[unlikely]] return false;
  if (debug_fill) std::memset(reinterpret_cast<void*>(p), kFillFreed, size);
  asan::poison(p + sizeof(std::uintptr_t), size - sizeof(std::uintptr_t));  // the link stays readable
  do {
    if (head & kThreadFreeClosed) [[unlikely]] {  // abandoned meanwhile: the caller frees under the lock
      asan::unpoison(p + sizeof(std::uintptr_t), size - sizeof(std::uintptr_t));
      return false;
    }
    *reinterpret_cast<std::uintptr_t*>(p) = head;
  } while (!thread_free.compare_exchange_weak(head, p, std::memory_order_release,
                                              std::memory_order_relaxed));
  return true;
}

std::uint32_t Page::collect_thread_free() noexcept {
  const std::uintptr_t head = thread_free.load(std::memory_order_relaxed);
  if ((head & ~kThreadFreeClosed) == 0) return 0;
  // The closed bit changes only under the pool lock, never while a collector
  // (the owner, the lock holder, a walk) runs: keeping it is race-free.
  return take_thread_free(head & kThreadFreeClosed);
}

std::uint32_t Page::take_thread_free(std::uintptr_t state) noexcept {
  std::uintptr_t b = thread_free.exchange(state, std::memory_order_acquire) & ~kThreadFreeClosed;
  std::uint32_t n = 0;
  while (b != 0) {
    const std::uint32_t i = block_index(b);
    // Before reading the link: a block pushed twice is already free (and, in
    // ASan builds, poisoned) the second time round.
    if (is_free_bit(i)) [[unlikely]]
      fatal("tagheap: double free of %p (freed from another thread; tag %u, block size %zu)",
            reinterpret_cast<void*>(b), tag, block_size);
    const std::uintptr_t next = *reinterpret_cast<std::uintptr_t*>(b);
    if (debug_fill) std::memset(reinterpret_cast<void*>(b), kFillFreed, sizeof(std::uintptr_t));
    asan::poison(b, sizeof(std::uintptr_t));
    free_word(i >> 6) |= std::uint64_t{1} << (i & 63);
    if (slow_free & kSlowFreeSticky) clear_gc_bits(i);
    ++n;
    b = next;
  }
  if (n > used) fatal("tagheap: page %p: %u thread frees but only %u blocks used", static_cast<void*>(this), n, used);
  used -= n;
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
  for (std::uintptr_t b = thread_free.load(std::memory_order_acquire) & ~kThreadFreeClosed; b != 0;
       b = *reinterpret_cast<std::uintptr_t*>(b)) {
    if (b - blocks_start >= std::uint64_t{reserved} * block_size || block_at(block_index(b)) != b)
      fatal("page %p: thread-free list holds %p, not a block", static_cast<const void*>(this), reinterpret_cast<void*>(b));
    if (is_free_bit(block_index(b))) fatal("page %p: block %p is free and on thread-free", static_cast<const void*>(this), reinterpret_cast<void*>(b));
    if (++remote > used) fatal("page %p: thread-free list longer than used", static_cast<const void*>(this));
  }
  return true;
}

}  // namespace tagheap::internal
