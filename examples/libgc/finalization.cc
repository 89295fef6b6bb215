// finalization.cc: the finalizer table, the ready queue, disappearing links
// and the reachability pre-pass (finalization.h).
#include "examples/libgc/finalization.h"

#include <gc/gc.h>  // GC_SUCCESS, GC_DUPLICATE, GC_NO_MEMORY, GC_NOT_FOUND

#include <unordered_map>

#include "examples/libgc/heap.h"
#include "examples/libgc/object_scan.h"
#include "examples/libgc/threads.h"
#include "gc/visit.h"  // PageView, for_each_page

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
};

// All in glibc's heap: never scanned, so a registration keeps nothing alive.
std::unordered_map<void*, Finalizer>* g_finalizers;
std::unordered_map<void**, Link>* g_links;
std::vector<ReadyFinalizer>* g_ready;
std::size_t g_ready_head = 0;  // entries before it have been taken
bool g_prepass_ran = false;
FinalizationStats g_stats;

void ensure_tables() {
  if (g_finalizers == nullptr) {
    g_finalizers = new std::unordered_map<void*, Finalizer>();
    g_links = new std::unordered_map<void**, Link>();
    g_ready = new std::vector<ReadyFinalizer>();
  }
}

// Conservative marking from the roots, before the collection proper. It
// borrows the pages' side mark bitmaps (PageView::mark_word, "owned by
// collectors"): gc::MarkSweep keeps every bit zero outside collect(), and
// clear() zeroes them again before collect() runs, so the two never see
// each other's bits. (A hash set instead cost ten times the real mark.)
// Relies on that invariant of mark_sweep.h: should MarkSweep ever leave
// bits set between collections (lazy sweeping), this must move onto the
// hook that replaces it (see finalization.h).
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
    stack_.push_back(b);
  }
  void drain() {
    while (!stack_.empty()) {
      void* b = stack_.back();
      stack_.pop_back();
      scan_object(b, [this](std::uintptr_t w) { mark_heap(w); });
    }
  }
  static bool reached(const void* b) {
    const PageView page = PageView::of(b);
    const std::uint32_t i = page.index_of(b);
    return (page.mark_word(i >> 6) >> (i & 63)) & 1;
  }
  static void clear() {
    for_each_page(runtime(), gc_tags(), [](PageView page) {
      for (std::uint32_t w = 0; w < page.bitmap_words(); ++w) page.mark_word(w) = 0;
      return true;
    });
  }

 private:
  std::vector<void*> stack_;
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
  for_each_ready_object(mark);
  marker.drain();
  // Short links: cleared when the target is unreachable from the roots.
  for (auto it = g_links->begin(); it != g_links->end();) {
    const Link& l = it->second;
    if (l.collectable && !marker.reached(l.target)) {
      *it->first = nullptr;
      ++g_stats.links_cleared;
      it = g_links->erase(it);
    } else {
      ++it;
    }
  }
  // Ordered finalization: what an unreached finalizable object reaches
  // waits for it (its own block is not marked here, so only a cycle back
  // to it keeps it: bdwgc leaves such cycles unfinalized too).
  for (const auto& [obj, f] : *g_finalizers)
    if (f.ordered && !marker.reached(obj)) {
      scan_object(obj, mark_heap);
      marker.drain();
    }
  for (auto it = g_finalizers->begin(); it != g_finalizers->end();) {
    if (!marker.reached(it->first)) {
      g_ready->push_back(ReadyFinalizer{it->first, it->second.fn, it->second.cd});
      ++g_stats.finalizers_readied;
      it = g_finalizers->erase(it);
    } else {
      ++it;
    }
  }
  set_mark_sink(MarkSink{});
  PrepassMarker::clear();
  g_prepass_ran = true;
}

std::size_t finalization_after_sweep() {
  const bool prepass_ran = g_prepass_ran;
  g_prepass_ran = false;
  if (!prepass_ran) g_stats = FinalizationStats{};
  if (g_links == nullptr || g_links->empty()) return 0;
  std::size_t cleared = 0;
  for (auto it = g_links->begin(); it != g_links->end();) {
    const Link& l = it->second;
    if (l.holder != nullptr && !block_alive(l.holder)) {  // the link died with its object
      it = g_links->erase(it);
      continue;
    }
    // Without a pre-pass the sweep is the answer: a freed target was unreachable.
    if (!prepass_ran && l.collectable && !block_alive(l.target)) {
      *it->first = nullptr;
      ++cleared;
      ++g_stats.links_cleared;
      it = g_links->erase(it);
      continue;
    }
    ++it;
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
