// mark_sweep.h: a precise (optionally partly conservative) mark-sweep
// collector over a runtime's GC-tagged heaps.
//
// Design
//   Mark bits live in each page's side bitmap (PageView::mark_words), so the
//   VM's objects need no header bit. Outside a collection every mark bit is
//   zero: new pages start cleared and the sweep clears each word it reads,
//   so no separate clearing pass is needed.
//   Marking: model.roots(tracer) marks the roots; an explicit mark stack
//   (never the C stack) drains them, calling model.trace(obj, tracer).
//   Sweeping: one walk of the GC tags' pages; per 64-block word,
//   dead = live & ~marked; finalize(obj) for each where the model has it,
//   then the whole word is freed at once (not block by block through free()).
//   Pages of other thread states and abandoned pages are swept in place:
//   the bits are the owner's own lists, so the owner resumes on a correct
//   page. Emptied pages go back to their segments.
//   Nothing of a non-GC tag is read or written.
//
// The world must be stopped by the caller (see world.h). The model must not
// allocate in the runtime during roots/trace/finalize, and finalize must not
// make the object reachable again.
#pragma once

#include <algorithm>
#include <chrono>
#include <concepts>
#include <cstddef>
#include <cstdint>
#include <vector>

#include "alloc/heap_walk.h"
#include "alloc/runtime.h"
#include "alloc/tagheap.h"

namespace tagheap::gc {

struct CollectStats {
  std::size_t live_blocks = 0, live_bytes = 0, freed_blocks = 0, freed_bytes = 0;
  std::uint64_t mark_ns = 0, sweep_ns = 0;
  std::size_t pages_swept = 0;
  std::size_t roots_conservative = 0;  // words that hit a GC block
};

template <class M>
class MarkSweep;

class Tracer {
 public:
  // obj: the start of a GC block of this runtime, or nullptr. A block of a
  // non-GC tag is ignored (it is not the collector's to free).
  [[gnu::always_inline]] void mark(void* obj) {
    if (obj == nullptr) return;
    PageView page = PageView::of(obj);
    if constexpr (internal::kChecked) check_block(obj, page);
    if (!gc_tags_.contains(page.tag())) [[unlikely]] return;
    const std::uint32_t i = page.index_of(obj);
    std::uint64_t& word = page.mark_word(i >> 6);
    const std::uint64_t bit = std::uint64_t{1} << (i & 63);
    if (word & bit) return;
    word |= bit;
    if (stack_.size() < stack_.capacity()) [[likely]] {
      stack_.push_back(obj);  // never allocates
    } else {
      push_growing(obj);
    }
  }
  // Any word (a stack slot, a register): marks the GC block of this runtime
  // that contains it, if any, as the Boehm collector does for its roots.
  // Returns whether it hit one.
  bool mark_conservative(std::uintptr_t word) {
    void* block = find_block(reinterpret_cast<const void*>(word));
    if (block == nullptr) return false;
    PageView page = PageView::of(block);
    if (page.runtime() != runtime_ || !gc_tags_.contains(page.tag())) return false;
    ++conservative_hits_;
    mark(block);
    return true;
  }
  // Scans [begin, end) word by word with mark_conservative.
  void mark_range_conservative(const void* begin, const void* end) {
    auto p = reinterpret_cast<std::uintptr_t>(begin) & ~std::uintptr_t{7};
    for (; p + sizeof(std::uintptr_t) <= reinterpret_cast<std::uintptr_t>(end); p += sizeof(std::uintptr_t))
      mark_conservative(*reinterpret_cast<const std::uintptr_t*>(p));
  }
  bool is_marked(const void* obj) const {
    PageView page = PageView::of(obj);
    const std::uint32_t i = page.index_of(obj);
    return (page.mark_word(i >> 6) >> (i & 63)) & 1;
  }

 private:
  template <class M>
  friend class MarkSweep;
  Tracer(internal::RuntimeCore* runtime, TagSet gc_tags, std::vector<void*>& stack, std::size_t stack_limit)
      : runtime_(runtime), gc_tags_(gc_tags), stack_(stack), stack_limit_(stack_limit) {}
  void check_block(void* obj, PageView page) const;
  // Grows the mark stack; when memory is short the object stays marked but
  // unpushed and `overflowed_` asks the collector to rescan (see collect()).
  void push_growing(void* obj) noexcept;

  internal::RuntimeCore* runtime_;
  TagSet gc_tags_;
  std::vector<void*>& stack_;  // the collector's, kept across collections
  std::size_t stack_limit_;    // entries the stack may grow to
  std::size_t conservative_hits_ = 0;
  bool overflowed_ = false;
};

template <class M>
concept CollectorModel = requires(M& m, void* obj, Tracer& t) {
  m.roots(t);
  m.trace(obj, t);
};
template <class M>
concept HasFinalize = requires(M& m, void* obj) { m.finalize(obj); };

template <class Model>
class MarkSweep {
 public:
  MarkSweep(Runtime& runtime, Model& model) : runtime_(runtime), model_(model) {}

  // Bounds the mark stack (entries). Past it, and whenever memory for it
  // runs out, marked objects wait for a rescan instead: slower, never wrong.
  void limit_mark_stack(std::size_t entries) { stack_limit_ = std::max<std::size_t>(entries, 1); }

  // The world is stopped by the caller.
  CollectStats collect() {
    // Checked here, not on the class: a model may own its MarkSweep.
    static_assert(CollectorModel<Model>, "Model needs roots(Tracer&) and trace(void*, Tracer&)");
    using Clock = std::chrono::steady_clock;
    CollectStats stats;
    const TagSet gc_tags = runtime_.options().gc_tags;
    const auto t0 = Clock::now();
    Tracer tracer(&runtime_.core(), gc_tags, stack_, stack_limit_);
    model_.roots(tracer);
    drain(tracer);
    // Out of memory for the mark stack, some marked objects were never
    // traced: trace every marked object again until a pass needs no more
    // room (each pass marks at least the children the last one dropped).
    while (tracer.overflowed_) {
      tracer.overflowed_ = false;
      for_each_page(runtime_, gc_tags, [&](PageView page) {
        for (std::uint32_t w = 0; w < page.bitmap_words(); ++w)
          for (std::uint64_t m = page.mark_word(w) & page.live_word(w); m; m &= m - 1) {
            model_.trace(page.block(w * 64 + static_cast<std::uint32_t>(std::countr_zero(m))), tracer);
            drain(tracer);
          }
        return true;
      });
    }
    stats.roots_conservative = tracer.conservative_hits_;
    const auto t1 = Clock::now();
    for_each_page(runtime_, gc_tags, [&](PageView page) {
      ++stats.pages_swept;
      sweep_page(page, stats);
      return true;
    });
    const auto t2 = Clock::now();
    stats.mark_ns = static_cast<std::uint64_t>(std::chrono::duration_cast<std::chrono::nanoseconds>(t1 - t0).count());
    stats.sweep_ns = static_cast<std::uint64_t>(std::chrono::duration_cast<std::chrono::nanoseconds>(t2 - t1).count());
    return stats;
  }

 private:
  // Traces until the mark stack is empty. Objects pass through a FIFO
  // between the stack and model.trace, prefetched as they enter it, so the
  // memory of the next few objects is on its way while one is traced (the
  // mark loop is otherwise bound by one cache miss per object).
  void drain(Tracer& tracer) {
    constexpr std::size_t kAhead = 64;  // a power of two
    void* ring[kAhead];
    std::size_t head = 0, count = 0;
    for (;;) {
      while (count < kAhead && !stack_.empty()) {
        void* obj = stack_.back();
        stack_.pop_back();
        __builtin_prefetch(obj);
        ring[(head + count++) & (kAhead - 1)] = obj;
      }
      if (count == 0) return;
      void* obj = ring[head];
      head = (head + 1) & (kAhead - 1);
      --count;
      model_.trace(obj, tracer);
    }
  }

  void sweep_page(PageView page, CollectStats& stats) {
    const std::size_t bs = page.block_size();
    for (std::uint32_t w = 0; w < page.bitmap_words(); ++w) {
      std::uint64_t& mark = page.mark_word(w);
      const std::uint64_t live = page.live_word(w);
      const std::uint64_t marked = mark & live;
      mark = 0;
      const std::uint64_t dead = live & ~marked;
      const auto n_live = static_cast<std::size_t>(std::popcount(marked));
      stats.live_blocks += n_live;
      stats.live_bytes += n_live * bs;
      if (dead == 0) continue;
      const std::uint32_t n = page.free_blocks(w, dead, [&](void* obj) {
        if constexpr (HasFinalize<Model>) model_.finalize(obj);
      });
      stats.freed_blocks += n;
      stats.freed_bytes += n * bs;
    }
  }

  Runtime& runtime_;
  Model& model_;
  std::vector<void*> stack_;
  std::size_t stack_limit_ = SIZE_MAX;
};

}  // namespace tagheap::gc
