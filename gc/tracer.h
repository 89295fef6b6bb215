// tracer.h: what a model's roots() and trace() are handed (Tracer), and
// what process_weak() is handed (Liveness). Included by gc/mark_sweep.h,
// the header a VM includes.
//
// Tracer: mark() sets a block's bit in its page's side mark bitmap (while
// several markers run, with one atomic OR per batch of bits in a word) and
// pushes it on the marker's own stack; a block of a non-GC tag is ignored.
// A block of a leaf tag (Options::leaf_tags) gets its bit and is not
// pushed. mark_conservative() accepts any word, mark_conservative_if() any
// word at an offset its predicate accepts; both mark the block with the
// page and index their one lookup found. mark_weak() and mark_ephemeron()
// record what the collector settles after marking. Each marker has its own
// Tracer: never share one.
#pragma once

#include <atomic>
#include <bit>
#include <cstddef>
#include <cstdint>
#include <unordered_map>
#include <unordered_set>
#include <utility>
#include <vector>

#include "alloc/heap_walk.h"
#include "alloc/internal/find_block.h"
#include "alloc/runtime.h"
#include "alloc/tagheap.h"
#include "gc/internal/mark_stack.h"

namespace tagheap::gc {

template <class M>
class MarkSweep;

class Tracer {
 public:
  // obj: the start of a GC block of this runtime, or nullptr. A block of a
  // non-GC tag is ignored (it is not the collector's to free).
  [[gnu::always_inline]] void mark(void* obj) {
    if (obj == nullptr) return;
    if constexpr (tagheap::internal::kChecked) check_block(obj);  // before PageView::of trusts it
    PageView page = PageView::of(obj);
    if (plain_tags_.contains(page.tag())) [[likely]] {
      mark_traced(obj, page, page.index_of(obj));
      return;
    }
    if (obj == ignore_) return;
    if (!gc_tags_.contains(page.tag())) [[unlikely]] {
      if (verifier_ != nullptr) verify_reach(obj, page);
      return;
    }
    mark_gc_block(obj, page, page.index_of(obj));
  }
  // Any word (a stack slot, a register): marks the GC block of this runtime
  // that contains it, if any, as the Boehm collector does for its roots.
  // Returns whether it hit one.
  // Never reads memory that may be unmapped, nor another runtime's pages
  // (alloc/internal/lookup_guard.h).
  [[gnu::always_inline]] bool mark_conservative(std::uintptr_t word) {
    return mark_conservative_if(word, [](std::size_t) { return true; });
  }
  // As above, but only when accept_offset(word - the block's start) is true:
  // a collector that recognises only some interior pointers (the Boehm
  // collector's registered displacements) says which.
  template <class AcceptOffset>
  [[gnu::always_inline]] bool mark_conservative_if(std::uintptr_t word, AcceptOffset&& accept_offset) {
    const BlockLookupScope scope;  // a thread-local increment inside mark_range_conservative's
    return mark_conservative_if(scope, word, accept_offset);
  }
  // Both as above, for a scan of many words that holds one BlockLookupScope
  // (alloc/tagheap.h) around them all: `held`, the proof that the caller
  // does, saves a thread-local increment and decrement per word.
  [[gnu::always_inline]] bool mark_conservative(const BlockLookupScope& held, std::uintptr_t word) {
    return mark_conservative_if(held, word, [](std::size_t) { return true; });
  }
  template <class AcceptOffset>
  [[gnu::always_inline]] bool mark_conservative_if(const BlockLookupScope& held, std::uintptr_t word,
                                                   AcceptOffset&& accept_offset) {
    (void)held;
    std::uint32_t i;
    // The page's geometry first (the last GC page hit, else a lookup), then
    // the cheap verdicts (offset, tag, a mark already set), and the free and
    // thread-free bitmaps only for a block that may be marked now: each is
    // a cache line of its own.
    tagheap::internal::Page* found;
    const bool last_page = word - last_page_.start < last_page_.span;
    if (last_page) {
      found = last_page_.page;
      i = found->block_index_containing(word);
    } else {
      found = tagheap::internal::find_block_slot(word, runtime_, &i);
      if (found == nullptr) return false;
    }
    const PageView page(found);
    void* block = page.block(i);
    if (!accept_offset(word - reinterpret_cast<std::uintptr_t>(block))) return false;
    if (!last_page) {
      if (verifier_ != nullptr) [[unlikely]] {
        if (!tagheap::internal::block_is_allocated(*found, i)) return false;
        verify_reach(block, page);
        return true;
      }
      if (!gc_tags_.contains(page.tag())) return false;
      last_page_ = LastPage{found->blocks_start, std::uintptr_t{found->reserved} * found->block_size, found};
    }
    // Marked in this collection (or old, with sticky marks): allocated
    // when marked, and marking it again would do nothing.
    if (!is_marked_bit(page, i) && !tagheap::internal::block_is_allocated(*found, i)) return false;
    ++conservative_hits_;
    // As mark(block), with the page and index found above.
    if (plain_tags_.contains(page.tag())) [[likely]] {
      mark_traced(block, page, i);
    } else if (block != ignore_) {
      mark_gc_block(block, page, i);
    }
    return true;
  }
  // The lookup scope the collector holds on this marker's thread while it
  // runs the model's roots(), mark_root_piece() and trace() with this
  // tracer: a trace that looks words up passes it to mark_conservative(scope,
  // word) instead of opening a scope per object (a thread-local increment
  // and decrement: 5% of libgc's marking instructions on GCBench). Valid
  // only inside those calls, on the thread the collector made them on;
  // anywhere else (a tracer kept past its call) it is a fatal error.
  const BlockLookupScope& lookup_scope() const noexcept {
    if (lent_scope_ == nullptr) [[unlikely]] no_lookup_scope();
    return *lent_scope_;
  }
  // Scans [begin, end) word by word with mark_conservative.
  void mark_range_conservative(const void* begin, const void* end) {
    const BlockLookupScope scope;  // once for the range, not per word
    auto p = reinterpret_cast<std::uintptr_t>(begin) & ~std::uintptr_t{7};
    for (; p + sizeof(std::uintptr_t) <= reinterpret_cast<std::uintptr_t>(end); p += sizeof(std::uintptr_t))
      mark_conservative(scope, *reinterpret_cast<const std::uintptr_t*>(p));
  }
  // A weak reference: *slot does not keep its object alive. After marking,
  // *slot is set to nullptr unless its object was marked. The slot must stay
  // where it is until the collection ends (a field of a live object, or a
  // root). A null slot, or *slot not a GC block of this runtime, is ignored.
  void mark_weak(void** slot);
  // An ephemeron: value is marked (and traced) iff key is marked, by any
  // path, to a fixpoint. A null key or value is ignored.
  void mark_ephemeron(void* key, void* value);
  // obj: a GC block of this runtime. True once any marker marked it (this
  // tracer's own marks count at once, batched or not).
  bool is_marked(const void* obj) const {
    PageView page = PageView::of(obj);
    const std::uint32_t i = page.index_of(obj);
    std::uint64_t* word = &page.mark_word(i >> 6);
    const std::uint64_t bits = std::atomic_ref<std::uint64_t>(*word).load(std::memory_order_relaxed) |
                               (word == batch_[0].word ? batch_[0].mask : 0) |
                               (word == batch_[1].word ? batch_[1].mask : 0);
    return (bits >> (i & 63)) & 1;
  }

 private:
  template <class M>
  friend class MarkSweep;
  // What a marker keeps from one collection to the next (MarkSweep's
  // MarkerState), emptied at the end of each: a pause does not grow these
  // again once they have held a collection's worth. (Weak slots in a vector
  // made per collection: Guile's 20k-odd weak links regrew it in every
  // pause, a fresh mapping and page faults each time under libgc's pause
  // allocator.)
  struct Buffers {
    internal::MarkStack stack;
    std::vector<void**> weak_slots;
    std::vector<std::pair<void*, void*>> ephemerons;
    // Empty, capacity kept: what every collection (and cycle) starts from,
    // and what an abandoned one leaves (a weak slot left over would be
    // written through by the next collection, into whatever block has
    // taken its place since).
    void clear() noexcept {
      stack.clear();
      weak_slots.clear();
      ephemerons.clear();
    }
  };
  Tracer(tagheap::internal::RuntimeCore* runtime, TagSet gc_tags, TagSet leaf_tags, Buffers& buffers,
         std::size_t stack_limit)
      : runtime_(runtime),
        gc_tags_(gc_tags),
        leaf_tags_(leaf_tags),
        stack_(buffers.stack),
        stack_limit_(stack_limit),
        weak_slots_(buffers.weak_slots),
        ephemerons_(buffers.ephemerons) {
    update_plain_tags();
  }
  static bool is_marked_bit(PageView page, std::uint32_t i) noexcept {
    return (std::atomic_ref<std::uint64_t>(page.mark_word(i >> 6)).load(std::memory_order_relaxed) >> (i & 63)) & 1;
  }
  // obj: block i of `page`, a page of a GC tag: sets its mark bit and
  // pushes it unless it was marked.
  [[gnu::always_inline]] void mark_gc_block(void* obj, PageView page, std::uint32_t i) {
    std::uint64_t* word = &page.mark_word(i >> 6);
    const std::uint64_t old = std::atomic_ref<std::uint64_t>(*word).load(std::memory_order_relaxed);
    if ((old >> (i & 63)) & 1) return;
    // A leaf is not pushed, unless ephemerons wait for their keys to be
    // traced (settle: drain releases the values of what it pops; it does
    // not trace a leaf).
    if (leaf_tags_.contains(page.tag()) && waiting_ == nullptr) {
      mark_leaf(obj, word, i & 63, old, page.block_size());
      return;
    }
    if (batching_) {
      batch_mark(word, i, page);
      return;
    }
    std::atomic_ref<std::uint64_t>(*word).store(old | std::uint64_t{1} << (i & 63), std::memory_order_relaxed);
    claim(obj, page.block_size());
  }
  // A mark with nothing to do but the bit and the push (plain_tags_): a
  // traced GC tag, no barrier bits to set, no finalization under way. The
  // common case, tested once for all of those rather than field by field
  // (pause benchmark, 100 MiB of tree: 128 instructions an object down to
  // 100 with a push that tests for room once and SegmentMap::
  // block_page_shift; one marker 47-50 -> 42-43 ms, two 21.0-22.9 ->
  // 19.0-21.1, 2026-12-06; inlining the tree's trace too took 11% more
  // instructions off and no time).
  [[gnu::always_inline]] void mark_traced(void* obj, PageView page, std::uint32_t i) {
    std::uint64_t* word = &page.mark_word(i >> 6);
    const std::uint64_t old = std::atomic_ref<std::uint64_t>(*word).load(std::memory_order_relaxed);
    const std::uint64_t bit = std::uint64_t{1} << (i & 63);
    if (old & bit) return;
    if (batching_) {
      batch_mark(word, i, page);
      return;
    }
    std::atomic_ref<std::uint64_t>(*word).store(old | bit, std::memory_order_relaxed);
    ++marked_blocks_;
    marked_bytes_ += page.block_size();
    push(obj);
  }
  // Sets a leaf's mark bit (Options::leaf_tags) and counts it, if no other
  // marker set it first; nothing to push.
  void mark_leaf(void* obj, std::uint64_t* word, std::uint32_t bit, std::uint64_t old, std::size_t block_size) {
    const std::uint64_t mask = std::uint64_t{1} << bit;
    if (parallel_) {
      if (std::atomic_ref<std::uint64_t>(*word).fetch_or(mask, std::memory_order_relaxed) & mask) return;
    } else {
      std::atomic_ref<std::uint64_t>(*word).store(old | mask, std::memory_order_relaxed);
    }
    ++marked_blocks_;
    marked_bytes_ += block_size;
    if (set_unlogged_) set_unlogged(obj);  // old now, as any marked object
  }
  void check_block(void* obj) const;
  // Forgets the last page a conservative word hit (mark_conservative_if):
  // the collector calls it as each marker starts a pause, since pages are
  // made and released only while mutators run.
  void forget_last_page() noexcept { last_page_ = LastPage{}; }
  [[noreturn]] static void no_lookup_scope() noexcept;  // lookup_scope() outside the collector's calls
  // Opens a lookup scope on this thread and lends it to the tracer for its
  // lifetime (lookup_scope()); nests.
  class LentScope {
   public:
    explicit LentScope(Tracer& t) noexcept : t_(t), before_(t.lent_scope_) { t.lent_scope_ = &scope_; }
    ~LentScope() { t_.lent_scope_ = before_; }
    LentScope(const LentScope&) = delete;
    LentScope& operator=(const LentScope&) = delete;

   private:
    Tracer& t_;
    const BlockLookupScope* before_;
    BlockLookupScope scope_;
  };
  // Grows the mark stack; when memory is short the object stays marked but
  // unpushed and `overflowed_` asks the collector to rescan.
  void push_growing(void* obj) noexcept;
  bool is_gc_block(const void* obj) const noexcept;
  // obj is old after this minor collection (marked by it, or remembered and
  // traced again): the write barrier must see it (MarkSweep's unlogged-bit
  // invariant). Atomic while other markers run.
  void set_unlogged(void* obj) noexcept {
    std::atomic_ref<std::uint64_t> word(PageView::unlogged_word(obj));
    const std::uint64_t bit = PageView::unlogged_bit(obj);
    if (parallel_) word.fetch_or(bit, std::memory_order_relaxed);
    else word.store(word.load(std::memory_order_relaxed) | bit, std::memory_order_relaxed);
  }
  // This marker set obj's bit: count it and push it for tracing.
  [[gnu::always_inline]] void claim(void* obj, std::size_t block_size) {
    ++marked_blocks_;
    marked_bytes_ += block_size;
    push_marked(obj);
  }
  [[gnu::always_inline]] void push_marked(void* obj) {
    if (set_unlogged_) set_unlogged(obj);
    push(obj);
  }
  [[gnu::always_inline]] void push(void* obj) {
    if (stack_.has_room()) [[likely]] {
      stack_.push_unchecked(obj);
    } else {
      push_growing(obj);
    }
  }
  // While markers run (one or several): unmarked objects whose bits share
  // one bitmap word wait in a batch, and one OR sets all their bits
  // (flush_slot), atomic when other markers run. A traced object's children
  // were mostly allocated together, and siblings are traced one after the
  // other, so a batch holds about 7 objects on the pause benchmark's tree:
  // 7 times fewer locked instructions, and fewer cache lines bounced between
  // markers (2 markers' pause on 100 MiB: 35 ms with an OR per object, 26
  // with batches). One marker batches too, with a plain OR: a flush pushes
  // the siblings of a word together, in address order, and the marker then
  // reads the heap in longer runs of nearby memory (one marker on that tree,
  // four interleaved rounds on a slow host: 57-75 ms with batches against
  // 89-99 with a store and a push per object; GCBench's marking, whose
  // trees lie in allocation order already, the same within the host's
  // noise; bench/README.md, "One marker batches too"). A
  // batch is the word, the mask of its waiting bits and the address of the
  // word's first block: batching an object is an OR into the mask, and the
  // flush finds the objects it won from their bits (one marker through this
  // path: 45 ms on that tree when the batch listed each object, a branch
  // and three stores more per mark). Two batches are open, the newest
  // first: a mark in neither word flushes the older and opens one for its
  // word, so marks that alternate between two words (an object's children
  // here, its siblings' there) do not flush at every turn (2 markers:
  // 22.0-23.2 ms against 23.1-24.4 with one batch). A batched object is not
  // marked yet: it counts as marked once flush_batch() has pushed it, which
  // drain() does before its marker can run dry and end_marking() at the
  // latest. Meanwhile another marker may find it unmarked and win it, as it
  // could a moment before any atomic OR.
  struct Batch {
    std::uint64_t* word = nullptr;  // the bitmap word of every batched object; nullptr: none
    std::uint64_t mask = 0;         // their bits, never 0 while word is set
    std::uintptr_t first = 0;       // the block bit 0 of the word stands for
    std::size_t block_size = 0;
  };
  [[gnu::always_inline]] void batch_mark(std::uint64_t* word, std::uint32_t i, PageView page) {
    const std::uint64_t bit = std::uint64_t{1} << (i & 63);
    if (word == batch_[0].word) [[likely]] {
      batch_[0].mask |= bit;
    } else if (word == batch_[1].word) {
      batch_[1].mask |= bit;
    } else {
      flush_slot(batch_[1]);
      batch_[1] = batch_[0];
      batch_[0] = Batch{word, bit, reinterpret_cast<std::uintptr_t>(page.block(i & ~std::uint32_t{63})),
                        page.block_size()};
    }
  }
  // Flushes both batches, the older first. Returns whether it pushed any:
  // not when it won no object, nor when the stack had no room for those it
  // won (push_growing: they stay marked for the rescan), for drain() pops
  // its stack when this says so (a collector made with malloc exhausted
  // popped an empty stack: tests/oom_test.cc). The test that nothing is
  // batched is inline: drain() asks each time its stack runs dry, for a
  // conservative heap of small objects (w3m through libgc) about once an
  // object, and two calls of flush_slot to find two empty batches cost 14
  // instructions an object there.
  [[gnu::always_inline]] bool flush_batch() noexcept {
    if ((batch_[0].mask | batch_[1].mask) == 0) return false;
    const std::size_t before = stack_.size();
    flush_slot(batch_[1]);
    flush_slot(batch_[0]);
    return stack_.size() != before;
  }
  // Sets b's bits with one OR (atomic while other markers run) and claims
  // the objects whose bit no other marker had set, in address order; b is
  // then empty.
  void flush_slot(Batch& b) noexcept {
    if (b.mask == 0) return;
    std::atomic_ref<std::uint64_t> word(*b.word);
    std::uint64_t before;
    if (parallel_) {
      before = word.fetch_or(b.mask, std::memory_order_relaxed);
    } else {
      before = word.load(std::memory_order_relaxed);
      word.store(before | b.mask, std::memory_order_relaxed);
    }
    const std::uint64_t won = b.mask & ~before;
    // Counted once for the batch: += per object in the loop compiled to a
    // 16-byte store that the next object's load of the same counters could
    // not forward from (a stall per object, measured: +30% mark time).
    const auto count = static_cast<std::size_t>(std::popcount(won));
    for (std::uint64_t bits = won; bits != 0; bits &= bits - 1)
      push_marked(reinterpret_cast<void*>(b.first + static_cast<std::size_t>(std::countr_zero(bits)) * b.block_size));
    marked_blocks_ += count;
    marked_bytes_ += count * b.block_size;
    b = Batch{};
  }
  // The markers start: marks wait in batches, set atomically when
  // `parallel` (other markers run too).
  void begin_marking(bool parallel) noexcept {
    parallel_ = parallel;
    batching_ = true;
  }
  // The markers stop: the batches are flushed and marks are plain stores
  // with a push each again (settling, finalization: serial and rare).
  void end_marking() noexcept {
    flush_batch();
    parallel_ = false;
    batching_ = false;
  }
  // The modes a mark depends on. plain_tags_ does not depend on parallel_
  // or batching_ (mark_traced tests them itself); the other two keep
  // plain_tags_ up to date.
  void set_unlogged_marks(bool set) noexcept {
    set_unlogged_ = set;
    update_plain_tags();
  }
  void set_ignore(void* obj) noexcept {
    ignore_ = obj;
    update_plain_tags();
  }
  void update_plain_tags() noexcept {
    // (Ephemerons' waiting_ changes only how leaves are marked, and plain
    // tags hold none.)
    const bool plain = !set_unlogged_ && ignore_ == nullptr;
    plain_tags_ = TagSet::from_bits(plain ? static_cast<std::uint16_t>(gc_tags_.bits() & ~leaf_tags_.bits()) : 0);
  }
  // Empties the batches (flushed, or an aborted collection's: every mark goes).
  void drop_batch() noexcept {
    batch_[0] = Batch{};
    batch_[1] = Batch{};
  }
  // Traces obj again though it is marked (a remembered old object).
  void push_for_trace(void* obj) { push(obj); }
  // Verification (MarkSweep::verify_reachable_marked): every object reached must be marked.
  struct Verifier {
    TagSet gc_tags;
    std::unordered_set<void*> seen;
    void* current = nullptr;   // the object being traced
    const char* what = "";     // the collection checked, for the message
  };
  void verify_reach(void* obj, PageView page);

  // The last page of a GC tag that a conservative word was found in, and the
  // span of its blocks: a word inside that span needs neither the segment
  // map nor the segment's and page's checks (GCBench through libgc: a
  // quarter of its words, whose temporary trees fill holes in many pages;
  // more in scans of roots). Never set while
  // verifying (no tag is a GC tag then). Valid for one pause
  // (forget_last_page).
  struct LastPage {
    std::uintptr_t start = 0;
    std::uintptr_t span = 0;  // 0: none
    tagheap::internal::Page* page = nullptr;
  };
  LastPage last_page_;
  const BlockLookupScope* lent_scope_ = nullptr;  // LentScope's, while one is open
  tagheap::internal::RuntimeCore* runtime_;
  TagSet gc_tags_;
  TagSet leaf_tags_;           // Options::leaf_tags: marked, not traced
  // The GC tags whose marks take mark_traced: the traced ones while no
  // mark has more to do; empty otherwise (update_plain_tags).
  TagSet plain_tags_;
  internal::MarkStack& stack_;  // the collector's, kept across collections
  std::size_t stack_limit_;    // entries the stack may grow to
  bool parallel_ = false;      // other markers run: set mark bits atomically
  bool batching_ = false;      // markers run: marks wait in batch_ (batch_mark)
  Batch batch_[2];  // the open batches, the newest first
  bool set_unlogged_ = false;  // a minor collection's: marked objects get their unlogged bits
  void* ignore_ = nullptr;     // finalization: the object whose referents are being marked
  Verifier* verifier_ = nullptr;
  // MarkSweep::settle: ephemeron values waiting for their key to be traced.
  std::unordered_multimap<void*, void*>* waiting_ = nullptr;
  bool overflowed_ = false;
  unsigned clock_every_ = 16;  // MarkSweep::drain: objects traced between clock reads in a timed step
  std::size_t marked_blocks_ = 0, marked_bytes_ = 0;
  std::size_t conservative_hits_ = 0;
  std::vector<void**>& weak_slots_;                   // Buffers'
  std::vector<std::pair<void*, void*>>& ephemerons_;  // Buffers'
};

// After marking, before the lazy sweep: whether an object survives.
class Liveness {
 public:
  // Any allocated block: false for a GC block this collection found dead,
  // true for a marked one and for blocks of non-GC tags.
  bool is_live(const void* obj) const;

 private:
  template <class M>
  friend class MarkSweep;
  explicit Liveness(TagSet gc_tags) : gc_tags_(gc_tags) {}
  TagSet gc_tags_;
};


}  // namespace tagheap::gc
