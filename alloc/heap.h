// heap.h: a heap allocates blocks of one tag for one thread state.
//
// A Heap keeps, per size class, a queue of pages with free blocks (its front
// is the current page, also cached in current_ for the fast path) and one
// queue of full pages, so every page it owns stays findable by a walk. It is
// used only by the OS thread its ThreadState is attached to (checked builds
// check it on every allocation).
//
// Allocation fast path (inline, no lock, no atomic): one table load for the
// class, one load of the current page, pop the lowest bit of its cache word.
// A dry cache word moves on to the page's next word with free bits
// (allocate_next_word); everything else (collecting cross-thread frees,
// moving full pages aside, reclaiming abandoned pages of this tag, taking a
// fresh page, sizes above kFastSizeMax) is allocate_slow.
#pragma once

#include <bit>
#include <cstddef>
#include <cstdint>

#include "alloc/internal/page.h"
#include "alloc/internal/runtime_core.h"
#include "alloc/internal/size_class.h"
#include "alloc/tag.h"

namespace tagheap {

class ThreadState;

namespace internal {
// Owner token of the ThreadState attached to this OS thread (its address), or
// 1 when none is: never equal to a page's owner of 0 (abandoned, huge, free).
extern constinit thread_local std::uintptr_t t_current_owner __attribute__((tls_model("initial-exec")));
}  // namespace internal

class Heap {
 public:
  Heap(const Heap&) = delete;
  Heap& operator=(const Heap&) = delete;

  // nullptr when the size is absurd or the OS refuses memory; never UB.
  // Size 0 gives a unique block. Blocks are at least 16-byte aligned.
  void* allocate(std::size_t size) noexcept {
    if constexpr (internal::kChecked) check_attached_here();
    if (size <= internal::kFastSizeMax) [[likely]] {
      internal::Page* page = current_page(size);
      // Assumes: current_ never holds nullptr (g_empty_page's cache word
      // is g_no_word, always zero), and a debug_fill heap keeps it at
      // g_empty_page.
      if (!page->cache_empty()) [[likely]] return page->pop_cache();
      return allocate_next_word(page, size);
    }
    return allocate_slow(size);
  }
  // allocate()'s first step alone: a block from the current page's cache
  // word for this size's class, or nullptr when that word is empty or the
  // size is past the inline classes (allocate() would go on to the next
  // word, page or path). Calls nothing: for a caller whose own fast path
  // must stay a leaf (the Boehm API's GC_malloc), with allocate() behind.
  void* allocate_cached(std::size_t size) noexcept {
    if constexpr (internal::kChecked) check_attached_here();
    if (size > internal::kFastSizeMax) return nullptr;
    internal::Page* page = current_page(size);
    return page->cache_empty() ? nullptr : page->pop_cache();
  }
  void* allocate_zeroed(std::size_t size) noexcept;
  // alignment: a power of two; nullptr otherwise.
  void* allocate_aligned(std::size_t size, std::size_t alignment) noexcept;
  // realloc: p is nullptr (then allocate(size)) or a live block of this
  // runtime, any tag, any thread's. The result is a block of this heap's
  // tag holding p's first min(size, old usable size) bytes; p itself when
  // it has this tag and size fits it without wasting more than half of it,
  // otherwise a new block, and p is freed. nullptr (size absurd, memory
  // short) leaves p intact. A pointer that is not a block of this runtime
  // is a clear fatal error, as for free().
  void* reallocate(void* p, std::size_t size) noexcept;

  Tag tag() const noexcept { return tag_; }
  ThreadState& thread_state() const noexcept { return *thread_state_; }

 private:
  friend class ThreadState;

  Heap(ThreadState& ts, internal::RuntimeCore& runtime, Tag tag, bool debug_fill);
  ~Heap();

  void* allocate_slow(std::size_t size) noexcept;
  // The page allocation of `size` (at most kFastSizeMax) pops from.
  internal::Page* current_page(std::size_t size) const noexcept {
    return current_[internal::kFastClassTable[(size + 15) >> 4]];
  }
  // Checked builds: a heap is used only by the OS thread its thread state is
  // attached to; fatal, naming the thread state, otherwise.
  void check_attached_here() const noexcept {
    if (internal::t_current_owner != owner_) [[unlikely]] not_attached_here();
  }
  [[noreturn, gnu::cold, gnu::noinline]] void not_attached_here() const noexcept;
  // The current page's cache word ran dry: most often the next word has
  // free bits; otherwise allocate_slow.
  void* allocate_next_word(internal::Page* page, std::size_t size) noexcept;
  // A page of class c with a non-empty cache, or nullptr when out of memory.
  internal::Page* find_page(std::size_t c) noexcept;
  internal::Page* fresh_page(std::size_t c) noexcept;
  void scan_full_queue() noexcept;
  void make_current(std::size_t c) noexcept;
  void sweep_ahead(std::size_t allocating) noexcept;
  void retire(internal::Page* page) noexcept;
  // Counts the blocks of a cache word just taken (the runtime's allocation
  // volume, for collection policies): a popcount per 64 blocks at most.
  // Also faults in, a step ahead, the memory of a page the pool asked to
  // populate (Page::populated).
  void note_taken(internal::Page* page) noexcept {
    unflushed_bytes_ += static_cast<std::size_t>(std::popcount(*page->alloc_word)) * page->block_size;
    if (unflushed_bytes_ >= internal::RuntimeCore::kAllocatedFlushBytes) [[unlikely]] flush_allocated();
    if (page->cache_past_populated()) [[unlikely]] populate_ahead(page);
  }
  // Populates the page through the step (internal::kPopulateStepBytes)
  // holding its cache word's first block: a partly used page holds at most
  // a step more than it has written.
  void populate_ahead(internal::Page* page) noexcept;

 public:  // used by free() and walks; not part of the user API
  // Owner thread, after a free that emptied the page, hit a full page, or
  // needs filling.
  void on_free_slow(internal::Page* page, std::uintptr_t p) noexcept;
  // Every page goes to the runtime's pool (or back, when empty).
  void abandon_all() noexcept;
  template <class F>
  bool for_each_page(F&& f) {
    for (auto& q : queues_)
      for (auto it = q.begin(); it != q.end();) {
        internal::Page& p = *it++;
        if (!f(p)) return false;
      }
    for (auto it = full_.begin(); it != full_.end();) {
      internal::Page& p = *it++;
      if (!f(p)) return false;
    }
    return true;
  }
  bool is_valid() const noexcept;
  std::size_t page_count() const noexcept;
  std::size_t full_page_count() const noexcept { return full_.size(); }
  // Tests: full pages looked at for cross-thread frees, over the heap's life.
  std::size_t full_pages_scanned_for_testing() const noexcept { return full_pages_scanned_; }
  // World stopped, after a walk freed blocks of one of its pages.
  void after_walk(internal::Page* page) noexcept;
  // World stopped, as a collection leaves its marks to be swept lazily:
  // full pages go back to their class queues (where allocation sweeps them
  // before use) and no page stays current, so the fast path cannot pop a
  // block from a page that still holds marks.
  void prepare_lazy_sweep() noexcept;
  // Adds the bytes counted since the last flush to the runtime's total.
  void flush_allocated() noexcept;

 private:
  internal::Page* current_[internal::kClassCount];
  internal::PageList queues_[internal::kClassCount];
  internal::PageList full_;
  ThreadState* thread_state_;
  internal::RuntimeCore* runtime_;
  std::uintptr_t owner_;  // thread_state_'s token
  Tag tag_;
  bool debug_fill_;
  std::size_t fresh_since_full_scan_ = 0;
  std::size_t full_scan_left_ = 0;      // pages the round over full_ has yet to see (scan_full_queue)
  std::size_t full_pages_scanned_ = 0;  // full_pages_scanned_for_testing
  std::size_t unflushed_bytes_ = 0;  // see note_taken
  // Sweeping ahead (sweep_ahead): the class whose queue it works on, and
  // the runtime's sweep epoch in which a round over every class found
  // nothing left (kNoEpoch: not yet).
  static constexpr std::uint64_t kNoEpoch = ~std::uint64_t{0};
  std::size_t sweep_ahead_class_ = 0;
  std::uint64_t swept_ahead_epoch_ = kNoEpoch;
};

}  // namespace tagheap
