// finalization.cc: finalizer records and the link table (finalization.h).
#include "examples/libgc/finalization.h"

#include <gc/gc.h>  // GC_SUCCESS, GC_DUPLICATE, GC_NO_MEMORY, GC_NOT_FOUND

#include <cstdint>
#include <new>
#include <vector>

#include "examples/libgc/collector.h"
#include "examples/libgc/heap.h"
#include "examples/libgc/slot_index.h"
#include "examples/libgc/threads.h"
#include "gc/mark_sweep.h"

namespace tagheap::libgc {
namespace {

// One registration: what MarkSweep hands back to the trampoline. In glibc's
// heap, on a list that roots() reads for the client data.
struct Registration {
  FinalizerFn fn;
  void* cd;
  Registration* prev;
  Registration* next;
};
Registration* g_registrations = nullptr;
std::size_t g_registration_count = 0;

// A registered link. The table keeps them side by side, so that a
// collection's passes read the entries in order and prefetch the slots and
// holders they are about to read (an unordered_map of them cost a cache
// miss per node besides: 0.7 ms a collection for Guile's 3,700 links), and
// an index by slot for the client's calls (slot_index.h). An entry leaves
// by taking the last one's place.
struct Link {
  void** slot;
  void* target;      // a block start when collectable
  void* holder;      // the block holding the slot, or nullptr (static or malloc memory)
  bool collectable;  // the target is a GC object of ours (others never disappear)
  bool weak = false;     // handed to Tracer::mark_weak this collection
  bool dropped = false;  // cleared or dead during a stop; removed after the resume
};
struct LinkTable {
  std::vector<Link> entries;
  SlotIndex index;  // slot -> its entry

  Link* find(void** slot) noexcept {
    const std::uint32_t* i = index.find(slot);
    return i != nullptr ? &entries[*i] : nullptr;
  }
  // Throws std::bad_alloc and changes nothing when memory runs out.
  void add(const Link& l) {
    entries.push_back(l);
    try {
      index.insert(l.slot, static_cast<std::uint32_t>(entries.size() - 1));
    } catch (...) {
      entries.pop_back();
      throw;
    }
  }
  void remove(Link* l) noexcept {
    void** const slot = l->slot;
    Link& last = entries.back();
    if (l != &last) {
      *l = last;
      *index.find(last.slot) = static_cast<std::uint32_t>(l - entries.data());
    }
    entries.pop_back();
    index.erase(slot);
  }
  // Moves l to new_slot, which has no entry. Throws std::bad_alloc and
  // changes nothing when memory runs out.
  void rekey(Link* l, void** new_slot) {
    index.insert(new_slot, static_cast<std::uint32_t>(l - entries.data()));
    index.erase(l->slot);
    l->slot = new_slot;
  }
};
// In glibc's heap: never scanned, so a link keeps nothing alive.
LinkTable* g_links;
std::vector<void**>* g_links_to_drop;
FinalizationStats g_stats;

void ensure_tables() {
  if (g_links == nullptr) {
    g_links = new LinkTable();
    g_links_to_drop = new std::vector<void**>();
  }
}

// Passes over the links read each entry's slot, which lies anywhere: this
// far ahead it is asked for early.
constexpr std::size_t kLinkPrefetch = 8;

Registration* add_registration(FinalizerFn fn, void* cd) {
  auto* r = new Registration{fn, cd, nullptr, g_registrations};
  if (g_registrations != nullptr) g_registrations->prev = r;
  g_registrations = r;
  ++g_registration_count;
  return r;
}
void remove_registration(Registration* r) {
  if (r->prev != nullptr) r->prev->next = r->next;
  if (r->next != nullptr) r->next->prev = r->prev;
  if (g_registrations == r) g_registrations = r->next;
  --g_registration_count;
  delete r;
}

// MarkSweep's finalizer: unpacks the record and calls the client's.
void trampoline(void* obj, void* data) {
  auto* r = static_cast<Registration*>(data);
  const FinalizerFn fn = r->fn;
  void* cd = r->cd;  // on this stack now: alive while fn runs
  {
    RegistryLock lock;
    remove_registration(r);
  }
  fn(obj, cd);
}

void drop(Link& l) {
  l.dropped = true;
  g_links_to_drop->push_back(l.slot);  // reserved: no malloc while stopped
}

// bdwgc keeps links and finalizers in hash tables of 2^log_size buckets
// (finalize.c, GC_grow_table), and a registration that finds more entries
// than buckets grows its table first. From 4096 buckets on
// (GC_ON_GROW_LOG_SIZE_MIN: log2 of its 4 KiB block) it collects before
// growing, and grows only if that left more than three quarters of the
// buckets in use. So a client that keeps registering links to objects that
// die (Guile filling a weak table) gets a collection every few thousand
// registrations, whatever its allocation: on Guile's weak.scm, 20 of
// bdwgc's 24 collections, and half the peak RSS of running without them.
// The tables here are std::unordered_map and a list, which need no such
// step; only the sizes are kept, to collect when bdwgc would.
struct EmulatedTable {
  int log_size = -1;  // -1: no table yet
};
EmulatedTable g_link_table, g_finalizer_table;  // registry lock held
constexpr int kCollectBeforeGrowingLog = 12;

std::size_t link_entries() noexcept { return g_links != nullptr ? g_links->entries.size() : 0; }
std::size_t finalizer_entries() noexcept {
  const std::size_t queued = collector_finalizers_queued();
  return g_registration_count > queued ? g_registration_count - queued : 0;
}

// Before a registration into `table`, which holds entries() entries (no
// lock held: the collection takes it).
void before_registration(EmulatedTable& table, std::size_t (*entries)() noexcept) {
  {
    RegistryLock lock;
    const std::size_t n = entries();
    if (table.log_size >= 0 && n <= std::size_t{1} << table.log_size) return;
    // Not inside a collection (a mark procedure or a start callback
    // registering): collect() would refuse, with a warning.
    if (table.log_size < kCollectBeforeGrowingLog || collecting_on_this_thread()) {
      ++table.log_size;
      return;
    }
  }
  (void)collect("table growth");  // refused while disabled: the table grows
  RegistryLock lock;
  const std::size_t n = entries(), buckets = std::size_t{1} << table.log_size;
  if (n + n / 4 >= buckets) ++table.log_size;  // bdwgc's test, n >= buckets - n / 4, without the wrap
}

}  // namespace

void register_finalizer(void* obj, FinalizerFn fn, void* cd, bool ordered, FinalizerFn* old_fn, void** old_cd) {
  if (fn != nullptr) before_registration(g_finalizer_table, finalizer_entries);
  RegistryLock lock;
  if (old_fn != nullptr) *old_fn = nullptr;
  if (old_cd != nullptr) *old_cd = nullptr;
  // Not an object of ours, or not a collectable one: ignored, as bdwgc does.
  if (obj == nullptr || find_block_from_mutator(obj) != obj || !gc_tags().contains(tag_of(obj))) return;
  Registration* r = fn != nullptr ? add_registration(fn, cd) : nullptr;
  std::pair<gc::FinalizerFn, void*> old{nullptr, nullptr};
  try {
    old = collector_register_finalizer(obj, r != nullptr ? trampoline : nullptr, r, ordered);
  } catch (const std::bad_alloc&) {
    if (r != nullptr) remove_registration(r);
    return;
  }
  if (old.first != nullptr) {
    auto* o = static_cast<Registration*>(old.second);
    if (old_fn != nullptr) *old_fn = o->fn;
    if (old_cd != nullptr) *old_cd = o->cd;
    remove_registration(o);
  }
}

void forget_freed_object(void* obj) { register_finalizer(obj, nullptr, nullptr, true, nullptr, nullptr); }

int register_link(void** link, const void* obj) {
  before_registration(g_link_table, link_entries);
  RegistryLock lock;
  ensure_tables();
  void* target = find_block_from_mutator(obj);
  const bool collectable = target != nullptr && gc_tags().contains(tag_of(target));
  const Link fresh{link, target, find_block_from_mutator(link), collectable};
  if (Link* l = g_links->find(link); l != nullptr) {
    if (!l->dropped) return GC_DUPLICATE;
    *l = fresh;  // cleared, not yet removed: a new registration
    return GC_SUCCESS;
  }
  try {
    g_links->add(fresh);
  } catch (const std::bad_alloc&) {
    return GC_NO_MEMORY;
  }
  return GC_SUCCESS;
}

int unregister_link(void** link) {
  RegistryLock lock;
  ensure_tables();
  Link* l = g_links->find(link);
  if (l == nullptr || l->dropped) return 0;
  g_links->remove(l);
  return 1;
}

int move_link(void** link, void** new_link) {
  RegistryLock lock;
  ensure_tables();
  if (Link* l = g_links->find(link); l == nullptr || l->dropped) return GC_NOT_FOUND;
  if (link == new_link) return GC_SUCCESS;
  if (Link* n = g_links->find(new_link); n != nullptr) {
    if (!n->dropped) return GC_DUPLICATE;
    g_links->remove(n);  // cleared, not yet removed: gone now (entries may move)
  }
  Link* l = g_links->find(link);
  try {
    g_links->rekey(l, new_link);
  } catch (const std::bad_alloc&) {
    return GC_NO_MEMORY;
  }
  l->holder = find_block_from_mutator(new_link);
  return GC_SUCCESS;
}

void finalization_before_stop() {
  ensure_tables();
  g_links_to_drop->clear();
  g_links_to_drop->reserve(g_links->entries.size());
  g_stats = FinalizationStats{};
}

void finalization_roots(gc::Tracer& t) {
  for (Registration* r = g_registrations; r != nullptr; r = r->next)
    t.mark_conservative(reinterpret_cast<std::uintptr_t>(r->cd));
  std::vector<Link>& links = g_links->entries;
  for (std::size_t i = 0; i < links.size(); ++i) {
    if (i + kLinkPrefetch < links.size()) __builtin_prefetch(links[i + kLinkPrefetch].slot);
    Link& l = links[i];
    l.weak = !l.dropped && l.collectable && *l.slot == l.target;
    if (l.weak) t.mark_weak(l.slot);
  }
}

void finalization_process_weak(const gc::Liveness& liveness) {
  std::vector<Link>& links = g_links->entries;
  for (std::size_t i = 0; i < links.size(); ++i) {
    if (i + kLinkPrefetch < links.size()) __builtin_prefetch(links[i + kLinkPrefetch].slot);
    Link& l = links[i];
    if (l.dropped) continue;
    if (l.holder != nullptr && !liveness.is_live(l.holder)) {  // the link died with its object
      drop(l);
    } else if (l.collectable && !liveness.is_live(l.target)) {
      *l.slot = nullptr;
      ++g_stats.links_cleared;
      drop(l);
    } else if (l.weak && *l.slot == nullptr) {  // cleared by the collector: a short link
      ++g_stats.links_cleared;
      drop(l);
    }
  }
}

void finalization_after_resume() {
  for (void** slot : *g_links_to_drop)
    if (Link* l = g_links->find(slot); l != nullptr && l->dropped) g_links->remove(l);
  g_links_to_drop->clear();
}

int invoke_finalizers() { return static_cast<int>(collector_run_finalizers()); }
bool finalizers_ready() noexcept { return collector_finalizers_queued() != 0; }
bool finalizers_registered() noexcept { return g_registration_count != 0; }
std::size_t links_registered() noexcept { return g_links != nullptr ? g_links->entries.size() : 0; }

FinalizationStats last_finalization_stats() noexcept {
  FinalizationStats s = g_stats;
  s.links = links_registered();
  s.finalizers = g_registration_count;
  s.finalizers_queued = collector_finalizers_queued();
  return s;
}

}  // namespace tagheap::libgc
