// remote_free_buffer.cc: landing the frees a thread gathered
// (internal/remote_free_buffer.h).
#include "alloc/internal/remote_free_buffer.h"

#include <bit>

#include "alloc/internal/runtime_core.h"
#include "alloc/internal/segment.h"

namespace tagheap::internal {

constinit thread_local RemoteFreeBuffer* t_remote_frees __attribute__((tls_model("initial-exec"))) = nullptr;

void RemoteFreeBuffer::noted_twice(const Page* page, std::uint32_t i) noexcept {
  const Segment* seg = Segment::of(page);
  const BlockGeometry& g = seg->geometry[page - seg->pages];
  fatal("tagheap: double free of %p (freed twice from another thread; block size %zu)",
        reinterpret_cast<void*>(g.blocks_start + std::uintptr_t{i} * g.block_size), g.block_size);
}

void RemoteFreeBuffer::became_holding() noexcept {
  core_->remote_free_buffers_holding.fetch_add(1, std::memory_order_relaxed);
}

void RemoteFreeBuffer::flush() noexcept {
  if (blocks_ == 0) return;
  for (std::uint32_t n = 0; n < slots_used_; ++n) {
    Slot& s = slots_[used_[n]];
    const std::uintptr_t key = s.key.load(std::memory_order_relaxed);
    if (key == 0) continue;  // half-written by a thread gone at fork()
    Page* page = page_of_key(key);
    const std::uint32_t word = word_of_key(key);
    const std::uint64_t mask = s.mask.load(std::memory_order_relaxed);
    Segment* seg = Segment::of(page);
    const std::size_t index = static_cast<std::size_t>(page - seg->pages);
    const BlockGeometry& g = seg->geometry[index];
    std::atomic<std::uintptr_t>& count = seg->thread_free_counts[index];
    const std::uintptr_t announced = static_cast<std::uintptr_t>(std::popcount(mask)) * Page::kThreadFreeOne;
    // As Page::push_thread_free, for the word's blocks at once: announce
    // unless closed, then set the bits (release: the fills and the blocks'
    // last uses before them). The slot empties only then: until the bits
    // are set, find_block still learns here that the blocks are freed.
    if (count.fetch_add(announced, std::memory_order_relaxed) & Page::kThreadFreeClosed) [[unlikely]] {
      count.fetch_sub(announced, std::memory_order_relaxed);
      s.key.store(0, std::memory_order_relaxed);
      // Abandoned since it was noted: block by block under the pool's lock.
      for (std::uint64_t m = mask; m != 0; m &= m - 1) {
        const std::uint32_t i = word * 64 + static_cast<std::uint32_t>(std::countr_zero(m));
        core_->free_in_abandoned(page, g.blocks_start + std::uintptr_t{i} * g.block_size);
      }
      continue;
    }
    const std::uint64_t before =
        std::atomic_ref<std::uint64_t>(g.thread_free_word(word)).fetch_or(mask, std::memory_order_release);
    s.key.store(0, std::memory_order_relaxed);
    if (before & mask) [[unlikely]] {
      const std::uint32_t i = word * 64 + static_cast<std::uint32_t>(std::countr_zero(before & mask));
      fatal("tagheap: double free of %p (freed twice from other threads; block size %zu)",
            reinterpret_cast<void*>(g.blocks_start + std::uintptr_t{i} * g.block_size), g.block_size);
    }
  }
  blocks_ = 0;
  slots_used_ = 0;
  bytes_ = 0;
  core_->remote_free_buffers_holding.fetch_sub(1, std::memory_order_relaxed);
}

}  // namespace tagheap::internal
