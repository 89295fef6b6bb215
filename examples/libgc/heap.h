// heap.h: the library's runtime, Boehm's object kinds, and allocation.
//
// One tagheap Runtime holds every object. A Boehm kind decides how the
// collector treats an object; each kind has a tag of its own, so the
// collector reads the kind from the page (tag_of) and objects need no header:
//
//   kind                      tag   GC tag   scanned
//   PTRFREE (GC_malloc_atomic)  2    yes      no
//   NORMAL (GC_malloc)          1    yes      conservatively, every word
//   UNCOLLECTABLE               3    no       yes, as a root
//   ATOMIC_UNCOLLECTABLE        4    no       no
//   explicitly typed            5    yes      the words its layout bitmap names
//   GC_new_kind(...)         6..15   yes      its mark procedure, or every word
//
// While interior pointers count (object_scan.h), every object is asked one
// byte larger than requested (bdwgc's EXTRA_BYTES, which is
// GC_all_interior_pointers), so a pointer just past the end of an object
// still keeps it alive; a client that turns them off (Guile) gets objects of
// the size it asked for (a 16-byte pair would take 32 bytes otherwise). Kinds
// that clear (all but the atomic ones) hand out zeroed memory.
#pragma once

#include <cstddef>
#include <atomic>
#include <cstdint>

#include "alloc/tagheap.h"
#include "examples/libgc/threads.h"

namespace tagheap::libgc {

inline constexpr unsigned kKindPtrfree = 0, kKindNormal = 1, kKindUncollectable = 2,
                          kKindAtomicUncollectable = 3, kKindTyped = 4, kFirstCustomKind = 5;
inline constexpr Tag kTagNormal = 1, kTagAtomic = 2, kTagUncollectable = 3, kTagAtomicUncollectable = 4,
                     kTagTyped = 5, kFirstCustomTag = 6;
inline constexpr unsigned kMaxKinds = kFirstCustomKind + (kTagCount - kFirstCustomTag);
inline constexpr unsigned kNoMarkProc = ~0u;

struct Kind {
  Tag tag = 0;
  bool scanned = false;
  bool collectable = true;
  bool clear = true;                 // zero new objects
  unsigned mark_proc = kNoMarkProc;  // index given by GC_new_proc
  std::uintptr_t env = 0;            // the mark procedure's last argument
  bool typed = false;                // layout descriptor in the block's last word (typed.h)
};

namespace detail {  // the tables behind the inline functions below
extern Kind g_kinds[kMaxKinds];
extern unsigned g_kind_count;
extern unsigned g_kind_of_tag[kTagCount];
extern std::atomic<bool> g_ready;
extern std::size_t g_extra_bytes;  // 1 while all interior pointers count, else 0
}  // namespace detail
inline std::size_t extra_bytes() noexcept { return detail::g_extra_bytes; }

// The runtime: made by the first call of init() (any thread, once).
void init_slow();
inline void init() {
  if (!detail::g_ready.load(std::memory_order_acquire)) [[unlikely]] init_slow();
}
inline bool initialized() noexcept { return detail::g_ready.load(std::memory_order_acquire); }
Runtime& runtime() noexcept;
TagSet gc_tags() noexcept;
TagSet uncollectable_scanned_tags() noexcept;

inline const Kind& kind(unsigned k) noexcept {
  return detail::g_kinds[k < detail::g_kind_count ? k : kKindNormal];
}
inline const Kind& kind_of_tag(Tag tag) noexcept { return detail::g_kinds[detail::g_kind_of_tag[tag]]; }
inline unsigned kind_number_of_tag(Tag tag) noexcept { return detail::g_kind_of_tag[tag]; }
inline unsigned kind_count() noexcept { return detail::g_kind_count; }
// A new kind on the next free tag; aborts past kMaxKinds (bdwgc's limit is
// similar: kinds are a fixed table there too).
unsigned new_kind(bool scanned, unsigned mark_proc, std::uintptr_t env, bool clear);

// Allocation is counted per thread and added to the global count (which
// decides collections) once this much has gathered.
inline constexpr std::size_t kFlushBytes = 64 * 1024;
// What an allocation of `asked` bytes (extra byte included) counts: the
// block it takes (tagheap::good_size: 16-byte classes up to 128 bytes,
// classes at most 12.5% apart above), as bdwgc counts in GC_bytes_allocd
// the size its GC_size_map rounded the request up to (classes about an
// eighth apart above small sizes, and up to what fills a 4 KiB block
// evenly), so the budget of policy.h buys the heap it buys there. (Counting
// the bytes asked let a program of small objects take more blocks than its
// budget between collections, a 24-byte object counting 25 bytes and taking
// 32: w3m peaked 12 MiB higher; counting 16-byte granules let one of larger
// objects, strings, do the same; README.md, "When to collect".)
constexpr std::size_t counted_bytes(std::size_t asked) noexcept {
  const std::size_t taken = good_size(asked);
  return taken != 0 ? taken : asked;  // no block for it: the allocation fails
}
static_assert(counted_bytes(1) == 16 && counted_bytes(25) == 32 && counted_bytes(129) == 144);
// Requests up to this size (extra byte included) take the inline path.
inline constexpr std::size_t kInlineMax = 128;
static_assert([] {
  for (std::size_t n = 0; n <= kInlineMax; ++n)
    if (counted_bytes(n) != ((n + 15) & ~std::size_t{15}) && n != 0) return false;
  return true;
}());  // the inline path counts 16-byte granules: the same

// The general path: registers the thread, counts, collects when due, and
// retries once after a collection when memory ran out.
void* allocate_slow(std::size_t n, unsigned k);
// leave_allocator(t) (suspending if a collection asked meanwhile), then
// allocate_slow: the fast path's way out, a tail call.
[[gnu::noinline]] void* leave_then_allocate_slow(ThreadRecord& t, std::size_t n, unsigned k);
// Both, answering a failure with the client's out-of-memory function
// (GC_set_oom_fn): the ways out of allocate_or_oom, tail calls too.
void* allocate_slow_or_oom(std::size_t n, unsigned k);
[[gnu::noinline]] void* leave_then_allocate_slow_or_oom(ThreadRecord& t, std::size_t n, unsigned k);
// The fast path's way out when g_lookup_state is raised (threads.h): the
// handshake is symmetric (lookups are frequent: Guile's GC_is_heap_ptr on
// every set-car!), or a lookup is on. Enters with the seq_cst handshake
// (waiting a lookup out), then takes a block of the cache word as the fast
// path does; the general path only when that is empty. (Through the general
// path, every allocation of a program that looks up often paid about 165
// instructions more: Guile's closures.scm, 3.85M of them, 12% of its
// instructions.) Tail calls, as above.
[[gnu::noinline]] void* handshake_then_allocate(ThreadRecord& t, std::size_t n, unsigned k);
[[gnu::noinline]] void* handshake_then_allocate_or_oom(ThreadRecord& t, std::size_t n, unsigned k);

// A block of up to kInlineMax bytes (a 16-byte class): zeroed in 16-byte
// steps, inline (a memset call costs more than the stores at these sizes).
[[gnu::always_inline]] inline void clear_small_block(void* p, std::size_t asked) noexcept {
  auto* w = static_cast<std::uint64_t*>(p);
  for (std::size_t i = 0; i < ((asked + 15) >> 4); ++i) w[2 * i] = w[2 * i + 1] = 0;
}
// Inside tagheap (the in-allocator mark set, no lookup on), a small size
// with room in t's count: a block of the cache word of h, the heap of kind
// k, cleared if the kind clears and counted; nullptr when the word is
// empty. The step the fast path, its handshake way out and allocate_many
// share.
[[gnu::always_inline]] inline void* take_cached_block(ThreadRecord& t, Heap* h, std::size_t asked,
                                                      unsigned k) noexcept {
  void* p = h->allocate_cached(asked);
  if (p == nullptr) [[unlikely]] return nullptr;
  if (detail::g_kinds[k].clear) clear_small_block(p, asked);
  t.unflushed_bytes += (asked + 15) & ~std::size_t{15};  // counted_bytes(asked): a 16-byte class
  return p;
}

// n bytes of kind k (zeroed if the kind clears); nullptr when memory runs
// out (the caller calls the oom function).
// Fast path (assumes: the thread is registered and has used this kind
// before, so heaps[k] is set; small size; the per-thread count has room;
// no lookup pending; the page's cache word not empty): a block of the
// cache word (Heap::allocate_cached) between the in-allocator marks, and
// clearing in 16-byte steps (sizes up to 128 come from 16-byte classes).
// It calls nothing but in tail position, so it saves no registers: 77
// instructions an allocation on GCBench where it took 104 (callgrind), 9%
// of the run's time. kOrOom: a failure returns out_of_memory(n) (the
// GC_malloc family), in the slow path, so the fast path stays a leaf (a
// caller testing for nullptr gave it a stack frame: 9 instructions an
// allocation).
template <bool kOrOom>
[[gnu::always_inline]] inline void* allocate_fast(std::size_t n, unsigned k) {
  constexpr auto slow = kOrOom ? &allocate_slow_or_oom : &allocate_slow;
  constexpr auto leave_then_slow = kOrOom ? &leave_then_allocate_slow_or_oom : &leave_then_allocate_slow;
  constexpr auto handshake_then = kOrOom ? &handshake_then_allocate_or_oom : &handshake_then_allocate;
  ThreadRecord* t = current_thread();
  const std::size_t asked = n + extra_bytes();  // see above
  if (t == nullptr || asked > kInlineMax || k >= ThreadRecord::kKinds) [[unlikely]] return slow(n, k);
  Heap* h = t->heaps[k];
  if (h == nullptr || t->unflushed_bytes + asked >= kFlushBytes) [[unlikely]] return slow(n, k);
  // A leaf: every way out that needs more is a tail call (no registers to
  // save). A lookup pending or the symmetric handshake: the handshake's
  // slow entry; the cache word empty: the general path.
  enter_allocator_mark(*t);
  if (!no_lookup_pending()) [[unlikely]] return handshake_then(*t, n, k);
  void* p = take_cached_block(*t, h, asked, k);
  if (p == nullptr) [[unlikely]] return leave_then_slow(*t, n, k);
  return leave_allocator_with(*t, p);
}
[[gnu::always_inline]] inline void* allocate(std::size_t n, unsigned k) { return allocate_fast<false>(n, k); }
[[gnu::always_inline]] inline void* allocate_or_oom(std::size_t n, unsigned k) { return allocate_fast<true>(n, k); }
// GC_generic_malloc_many: up to kManyBatch objects as allocate(n, k) gives
// them, linked through their first word; nullptr when memory runs out at
// the first. One entry into tagheap for the blocks of the cache word (a
// handshake each cost Guile, which takes its pairs this way, an atomic
// exchange per object when lookups are frequent), allocate() for the rest.
inline constexpr int kManyBatch = 16;
void* allocate_many(std::size_t n, unsigned k);

// find_block for a mutator: with the other threads out of tagheap, whose
// pages it reads (threads.h).
inline void* find_block_from_mutator(const void* p) {
  return lookup_with_owners_out([p] { return find_block(p); });
}

// The block p (the start of an object of this library), freed now.
void free_object(void* p);
// Adds the calling thread's uncounted allocation to the global count.
void flush_allocation_count(ThreadRecord& t) noexcept;

}  // namespace tagheap::libgc
