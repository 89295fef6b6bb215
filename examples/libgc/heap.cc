// heap.cc: the runtime, the kind table and the allocation path (heap.h).
#include "examples/libgc/heap.h"

#include <pthread.h>

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <new>

#include "examples/libgc/boehm_hooks.h"
#include "examples/libgc/collector.h"
#include "examples/libgc/policy.h"

namespace tagheap::libgc {
namespace detail {
Kind g_kinds[kMaxKinds];
unsigned g_kind_count = kFirstCustomKind;
unsigned g_kind_of_tag[kTagCount];
std::atomic<bool> g_ready{false};
std::size_t g_extra_bytes = 1;
}  // namespace detail

using detail::g_kinds;
using detail::g_kind_count;
using detail::g_kind_of_tag;
using detail::g_ready;

namespace {

// Every tag but the uncollectable ones and 0 (unused).
constexpr TagSet kGcTags{kTagNormal, kTagAtomic, kTagTyped, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15};
static_assert(kFirstCustomTag == 6 && kTagCount == 16);

// Never destroyed: threads may still allocate while the process exits.
alignas(Runtime) unsigned char g_runtime_storage[sizeof(Runtime)];
Runtime* g_runtime = nullptr;
pthread_once_t g_once = PTHREAD_ONCE_INIT;

void init_once() {
  g_kinds[kKindPtrfree] = Kind{kTagAtomic, false, true, false};
  g_kinds[kKindNormal] = Kind{kTagNormal, true, true, true};
  g_kinds[kKindUncollectable] = Kind{kTagUncollectable, true, false, true};
  g_kinds[kKindAtomicUncollectable] = Kind{kTagAtomicUncollectable, false, false, false};
  g_kinds[kKindTyped] = Kind{kTagTyped, true, true, true, kNoMarkProc, 0, true};
  for (unsigned k = 0; k < kFirstCustomKind; ++k) g_kind_of_tag[g_kinds[k].tag] = k;
  // No transparent huge pages unless TAGHEAP_LIBGC_HUGE_PAGES_ABOVE asks
  // (tagheap's default gives them past 8 MiB of segments). A Boehm client
  // is mostly a short program that faults its heap in once, and on a VM
  // whose host backs fresh memory slowly the first touch of a huge page
  // costs from 0.2 to 20 ms, bimodally: two interleaved runs of bench/libgc_bench.py
  // (2026-12-05) gave w3m 0.56-0.60 s without them against 0.86-0.91 with,
  // lower peak RSS for every program (2-12%), the others mostly within 4%
  // either way (README.md, "Huge pages").
  // No segments populated ahead (RuntimeOptions::populate_ahead_above,
  // tagheap's default past 32 MiB): that thread keeps an incremental
  // collector's mutators from waiting for fresh huge pages, and this
  // library marks in one pause; on w3m it held 4-6 MiB more peak RSS for
  // no time gained (README.md, "Huge pages").
  g_runtime = new (g_runtime_storage) Runtime(RuntimeOptions{
      .gc_tags = kGcTags,
      .huge_os_pages_above = env_size("TAGHEAP_LIBGC_HUGE_PAGES_ABOVE", 0),
      .populate_ahead_above = env_size("TAGHEAP_LIBGC_POPULATE_AHEAD_ABOVE", 0),
      // tagheap's default, which this library keeps: its programs are the
      // ones that fault their heap in once (README.md, "Pages populated");
      // TAGHEAP_LIBGC_POPULATE_PAGES=0 turns it off.
      .populate_small_pages = env_size("TAGHEAP_LIBGC_POPULATE_PAGES", 1) != 0});
  init_threads();
  init_collector();
  g_ready.store(true, std::memory_order_release);
}

// Objects of up to 128 bytes come from 16-byte classes; above, classes are
// up to 12.5% larger than asked, so the whole block is cleared (stale words
// past the request would otherwise be scanned as pointers).
inline void clear_block(void* p, std::size_t asked) noexcept {
  std::memset(p, 0, asked <= 128 ? (asked + 15) & ~std::size_t{15} : usable_size(p));
}

}  // namespace

void init_slow() { pthread_once(&g_once, init_once); }
Runtime& runtime() noexcept { return *g_runtime; }
TagSet gc_tags() noexcept { return kGcTags; }
TagSet uncollectable_scanned_tags() noexcept { return TagSet{kTagUncollectable}; }


unsigned new_kind(bool scanned, unsigned mark_proc, std::uintptr_t env, bool clear) {
  init();
  RegistryLock lock;
  if (g_kind_count >= kMaxKinds) {
    std::fprintf(stderr, "tagheap libgc: out of object kinds (%u, one tag each)\n", kMaxKinds);
    std::abort();
  }
  const unsigned k = g_kind_count;
  const auto tag = static_cast<Tag>(kFirstCustomTag + (k - kFirstCustomKind));
  g_kinds[k] = Kind{tag, scanned, true, clear, mark_proc, env};
  g_kind_of_tag[tag] = k;
  g_kind_count = k + 1;
  return k;
}

void flush_allocation_count(ThreadRecord& t) noexcept {
  add_allocated(t.unflushed_bytes);
  t.unflushed_bytes = 0;
}

void* allocate_slow(std::size_t n, unsigned k) {
  init();
  if (k >= kind_count()) k = kKindNormal;
  const Kind& kd = kind(k);
  const std::size_t asked = n + extra_bytes();  // see heap.h
  if (asked < n) return nullptr;
  ThreadRecord& t = current_thread_or_register();
  if (t.heaps[k] == nullptr) t.heaps[k] = &t.state.heap(kd.tag);
  note_allocation(t, counted_bytes(asked));  // may collect: outside tagheap
  if (over_heap_limit(asked) && (!collect("heap limit") || over_heap_limit(asked))) return nullptr;
  for (int attempt = 0;; ++attempt) {
    void* p;
    {
      InAllocator in(t);
      p = t.heaps[k]->allocate(asked);
      if (p != nullptr && kd.clear) clear_block(p, asked);
    }
    if (p != nullptr || attempt == 1) return p;
    collect("out of memory");  // the OS refused: free what we can, once
  }
}

void* leave_then_allocate_slow(ThreadRecord& t, std::size_t n, unsigned k) {
  leave_allocator(t);
  return allocate_slow(n, k);
}

void* allocate_slow_or_oom(std::size_t n, unsigned k) {
  void* p = allocate_slow(n, k);
  return p != nullptr ? p : out_of_memory(n);
}

void* leave_then_allocate_slow_or_oom(ThreadRecord& t, std::size_t n, unsigned k) {
  leave_allocator(t);
  return allocate_slow_or_oom(n, k);
}

namespace {
template <bool kOrOom>
void* handshake_then_allocate_impl(ThreadRecord& t, std::size_t n, unsigned k) {
  enter_allocator_slow(t);  // in tagheap now, no lookup on
  // The fast path checked the rest: t registered, heaps[k] set, a small
  // size, room in the per-thread count.
  void* p = take_cached_block(t, t.heaps[k], n + extra_bytes(), k);
  if (p == nullptr) return kOrOom ? leave_then_allocate_slow_or_oom(t, n, k) : leave_then_allocate_slow(t, n, k);
  return leave_allocator_with(t, p);
}
}  // namespace

void* handshake_then_allocate(ThreadRecord& t, std::size_t n, unsigned k) {
  return handshake_then_allocate_impl<false>(t, n, k);
}
void* handshake_then_allocate_or_oom(ThreadRecord& t, std::size_t n, unsigned k) {
  return handshake_then_allocate_impl<true>(t, n, k);
}

void* allocate_many(std::size_t n, unsigned k) {
  void* head = nullptr;
  int count = 0;
  ThreadRecord* t = current_thread();
  const std::size_t asked = n + extra_bytes();
  if (t != nullptr && asked >= n && asked <= kInlineMax && k < ThreadRecord::kKinds && t->heaps[k] != nullptr) {
    Heap* h = t->heaps[k];
    enter_allocator(*t);
    for (; count < kManyBatch && t->unflushed_bytes + asked < kFlushBytes; ++count) {
      void* p = take_cached_block(*t, h, asked, k);
      if (p == nullptr) break;
      *static_cast<void**>(p) = head;
      head = p;
    }
    leave_allocator(*t);  // suspends here if a collection asked meanwhile
  }
  for (; count < kManyBatch; ++count) {  // refills, counts, collections: head stays a root meanwhile
    void* p = allocate(n, k);
    if (p == nullptr) break;
    *static_cast<void**>(p) = head;
    head = p;
  }
  return head;
}

void free_object(void* p) {
  ThreadRecord& t = current_thread_or_register();
  InAllocator in(t);
  tagheap::free(p);
}

}  // namespace tagheap::libgc
