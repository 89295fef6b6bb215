// finalization.cc: the finalizer table, the ready queue, disappearing links
// and the reachability pre-pass (finalization.h).
#include "examples/libgc/finalization.h"

#include <gc/gc.h>  // GC_SUCCESS, GC_DUPLICATE, GC_NO_MEMORY, GC_NOT_FOUND

#include <sys/mman.h>

#include <cstdio>
#include <cstdlib>
#include <unordered_map>

#include "examples/libgc/heap.h"
#include "examples/libgc/object_scan.h"
#include "examples/libgc/threads.h"
#include "gc/visit.h"  // PageView

namespace tagheap::libgc {
namespace {

struct Finalizer {
  FinalizerFn fn;
  void* cd;
  bool ordered;
};
struct Link {
  void* target;      // a block start when collectable
  void* holder;      // the block holding the link, or nullptr (static or malloc memory)
  bool collectable;  // the target is a GC object of ours (others never disappear)
  bool dropped = false;  // cleared or dead during a stop; erased after the resume
};

// All in glibc's heap: never scanned, so a registration keeps nothing alive.
std::unordered_map<void*, Finalizer>* g_finalizers;
std::unordered_map<void**, Link>* g_links;
std::vector<ReadyFinalizer>* g_ready;
// Nothing may call malloc or free while the world is stopped: a stopped
// thread may hold a glibc arena lock. So what a stop adds to is reserved
// before it (finalization_before_stop), and the entries it drops are only
// noted there and erased after the resume (finalization_after_resume).
std::vector<void**>* g_links_to_drop;
std::vector<void*>* g_finalizers_to_drop;
std::size_t g_ready_head = 0;  // entries before it have been taken
bool g_prepass_ran = false;
FinalizationStats g_stats;

void ensure_tables() {
  if (g_finalizers == nullptr) {
    g_finalizers = new std::unordered_map<void*, Finalizer>();
    g_links = new std::unordered_map<void**, Link>();
    g_ready = new std::vector<ReadyFinalizer>();
    g_links_to_drop = new std::vector<void**>();
    g_finalizers_to_drop = new std::vector<void*>();
  }
}

// Conservative marking from the roots, before the collection proper, into
// the pages' side mark bitmaps (PageView::mark_word, "owned by collectors"):
// gc::MarkSweep keeps every bit zero between collections, and leaves what
// this pass set in place: collect() then finds those objects marked, does
// not trace them again, and only traces what the ready queue adds, so the
// heap is marked once. (Were collect() to clear bits at its start, it would
// mark everything again: slower, still correct. A hash set instead of the
// bitmaps cost ten times the real mark.) Relies on bits being zero when
// this pass starts: should MarkSweep leave bits set between collections
// (lazy sweeping), this must move onto the hook that replaces it
// (finalization.h).
// The pre-pass's mark stack grows by mmap and mremap, never malloc (see
// above: the world is stopped).
class OsStack {
 public:
  OsStack() = default;
  OsStack(const OsStack&) = delete;
  OsStack& operator=(const OsStack&) = delete;
  ~OsStack() {
    if (base_ != nullptr) munmap(base_, capacity_ * sizeof(void*));
  }
  void push(void* p) {
    if (size_ == capacity_) grow();
    base_[size_++] = p;
  }
  bool empty() const { return size_ == 0; }
  void* pop() { return base_[--size_]; }

 private:
  void grow() {
    const std::size_t n = capacity_ != 0 ? capacity_ * 2 : 64 * 1024;
    void* m = capacity_ != 0 ? mremap(base_, capacity_ * sizeof(void*), n * sizeof(void*), MREMAP_MAYMOVE)
                             : mmap(nullptr, n * sizeof(void*), PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (m == MAP_FAILED) {
      std::fprintf(stderr, "tagheap libgc: out of memory for the finalization mark stack\n");
      std::abort();
    }
    base_ = static_cast<void**>(m);
    capacity_ = n;
  }
  void** base_ = nullptr;
  std::size_t size_ = 0, capacity_ = 0;
};

class PrepassMarker {
 public:
  // A word from a stack or registers: any interior pointer counts.
  void mark(std::uintptr_t word) { mark_block(find_block(reinterpret_cast<const void*>(word))); }
  // A word from the heap or static data (object_scan.h's rule).
  void mark_heap(std::uintptr_t word) { mark_block(heap_word_target(word)); }
  void mark_block(void* b) {
    if (b == nullptr) return;
    const PageView page = PageView::of(b);
    if (!gc_tags().contains(page.tag())) return;
    const std::uint32_t i = page.index_of(b);
    std::uint64_t& w = page.mark_word(i >> 6);
    const std::uint64_t bit = std::uint64_t{1} << (i & 63);
    if (w & bit) return;
    w |= bit;
    stack_.push(b);
  }
  void drain() {
    while (!stack_.empty()) {
      void* b = stack_.pop();
      scan_object(b, [this](std::uintptr_t w) { mark_heap(w); });
    }
  }
  static bool reached(const void* b) {
    const PageView page = PageView::of(b);
    const std::uint32_t i = page.index_of(b);
    return (page.mark_word(i >> 6) >> (i & 63)) & 1;
  }

 private:
  OsStack stack_;
};

bool block_alive(const void* b) { return find_block(b) == b; }

}  // namespace

std::vector<ReadyFinalizer>& ready_queue() noexcept {
  ensure_tables();
  return *g_ready;
}

void register_finalizer(void* obj, FinalizerFn fn, void* cd, bool ordered, FinalizerFn* old_fn, void** old_cd) {
  RegistryLock lock;
  ensure_tables();
  if (old_fn != nullptr) *old_fn = nullptr;
  if (old_cd != nullptr) *old_cd = nullptr;
  if (obj == nullptr || find_block(obj) != obj) return;  // not an object of ours: ignored, as bdwgc does
  auto it = g_finalizers->find(obj);
  if (it != g_finalizers->end()) {
    if (old_fn != nullptr) *old_fn = it->second.fn;
    if (old_cd != nullptr) *old_cd = it->second.cd;
    if (fn == nullptr) {
      g_finalizers->erase(it);
    } else {
      it->second = Finalizer{fn, cd, ordered};
    }
    return;
  }
  if (fn != nullptr) g_finalizers->emplace(obj, Finalizer{fn, cd, ordered});
}

int register_link(void** link, const void* obj) {
  RegistryLock lock;
  ensure_tables();
  void* target = find_block(obj);
  const bool collectable = target != nullptr && gc_tags().contains(tag_of(target));
  auto [it, fresh] = g_links->try_emplace(link, Link{target, find_block(link), collectable});
  return fresh ? GC_SUCCESS : GC_DUPLICATE;
}

int unregister_link(void** link) {
  RegistryLock lock;
  ensure_tables();
  return g_links->erase(link) != 0 ? 1 : 0;
}

int move_link(void** link, void** new_link) {
  RegistryLock lock;
  ensure_tables();
  auto it = g_links->find(link);
  if (it == g_links->end()) return GC_NOT_FOUND;
  if (link == new_link) return GC_SUCCESS;
  if (g_links->count(new_link) != 0) return GC_DUPLICATE;
  Link l = it->second;
  g_links->erase(it);
  l.holder = find_block(new_link);
  g_links->emplace(new_link, l);
  return GC_SUCCESS;
}

void forget_freed_object(void* obj) {
  RegistryLock lock;
  if (g_finalizers != nullptr) g_finalizers->erase(obj);
}

void finalization_before_stop() {
  ensure_tables();
  g_links_to_drop->clear();
  g_links_to_drop->reserve(g_links->size());
  g_finalizers_to_drop->clear();
  g_finalizers_to_drop->reserve(g_finalizers->size());
  g_ready->reserve(g_ready->size() + g_finalizers->size());
}

void finalization_after_resume() {
  for (void** link : *g_links_to_drop) g_links->erase(link);
  for (void* obj : *g_finalizers_to_drop) g_finalizers->erase(obj);
  g_links_to_drop->clear();
  g_finalizers_to_drop->clear();
}

void for_each_registered_client_data(void (*mark)(void* context, std::uintptr_t word), void* context) {
  if (g_finalizers == nullptr) return;
  for (const auto& [obj, f] : *g_finalizers) mark(context, reinterpret_cast<std::uintptr_t>(f.cd));
}

bool finalization_needs_prepass() noexcept { return g_finalizers != nullptr && !g_finalizers->empty(); }

void finalization_prepass(const std::vector<Range>& statics, const char* collector_sp) {
  g_stats = FinalizationStats{};
  g_stats.prepass = true;
  PrepassMarker marker;
  set_mark_sink(MarkSink{&marker, [](void* c, std::uintptr_t w) { static_cast<PrepassMarker*>(c)->mark_heap(w); }});
  auto mark = [&marker](std::uintptr_t w) { marker.mark(w); };
  auto mark_heap = [&marker](std::uintptr_t w) { marker.mark_heap(w); };
  for_each_root_range(statics, collector_sp, [&](const char* lo, const char* hi, bool is_stack) {
    if (is_stack) {
      scan_words(lo, hi, mark);
    } else {
      scan_words(lo, hi, mark_heap);
    }
  });
  for_each_finalization_root(mark);
  marker.drain();
  // Short links: cleared when the target is unreachable from the roots.
  for (auto& [link, l] : *g_links)
    if (l.collectable && !marker.reached(l.target)) {
      *link = nullptr;
      ++g_stats.links_cleared;
      l.dropped = true;
      g_links_to_drop->push_back(link);
    }
  // Ordered finalization: what an unreached finalizable object reaches
  // waits for it (its own block is not marked here, so only a cycle back
  // to it keeps it: bdwgc leaves such cycles unfinalized too).
  for (const auto& [obj, f] : *g_finalizers)
    if (f.ordered && !marker.reached(obj)) {
      scan_object(obj, mark_heap);
      marker.drain();
    }
  for (const auto& [obj, f] : *g_finalizers)
    if (!marker.reached(obj)) {
      g_ready->push_back(ReadyFinalizer{obj, f.fn, f.cd});  // reserved: no malloc
      ++g_stats.finalizers_readied;
      g_finalizers_to_drop->push_back(obj);
    }
  set_mark_sink(MarkSink{});
  g_prepass_ran = true;
}

std::size_t finalization_after_sweep() {
  const bool prepass_ran = g_prepass_ran;
  g_prepass_ran = false;
  if (!prepass_ran) g_stats = FinalizationStats{};
  if (g_links == nullptr || g_links->empty()) return 0;
  std::size_t cleared = 0;
  for (auto& [link, l] : *g_links) {
    if (l.dropped) continue;
    if (l.holder != nullptr && !block_alive(l.holder)) {  // the link died with its object
      l.dropped = true;
      g_links_to_drop->push_back(link);
      continue;
    }
    // Without a pre-pass the sweep is the answer: a freed target was unreachable.
    if (!prepass_ran && l.collectable && !block_alive(l.target)) {
      *link = nullptr;
      ++cleared;
      ++g_stats.links_cleared;
      l.dropped = true;
      g_links_to_drop->push_back(link);
    }
  }
  return cleared;
}

int invoke_finalizers() {
  int count = 0;
  for (;;) {
    ReadyFinalizer r;
    {
      RegistryLock lock;
      ensure_tables();
      if (g_ready_head >= g_ready->size()) {
        g_ready->clear();
        g_ready_head = 0;
        return count;
      }
      r = (*g_ready)[g_ready_head];
      (*g_ready)[g_ready_head++].obj = nullptr;  // no longer a root once taken
    }
    r.fn(r.obj, r.cd);  // r.obj is on this stack now: it lives while the finalizer runs
    ++count;
  }
}

FinalizationStats last_finalization_stats() noexcept {
  FinalizationStats s = g_stats;
  s.links = links_registered();
  s.finalizers = finalizers_registered();
  return s;
}

bool finalizers_ready() noexcept { return g_ready != nullptr && g_ready_head < g_ready->size(); }
std::size_t finalizers_registered() noexcept { return g_finalizers != nullptr ? g_finalizers->size() : 0; }
std::size_t links_registered() noexcept { return g_links != nullptr ? g_links->size() : 0; }

}  // namespace tagheap::libgc
