// weak_tables: a weak-keyed table whose keys die in waves, and objects with
// finalizers dying in bulk; tagheap against the Boehm collector.
//
//   weak_tables_<variant> [entries] [waves]
//
// ephemerons  A table of `entries` (default 200,000) entries, each mapping
//             a key object to a value object (64 bytes each). A holder
//             array keeps the keys alive. Each wave drops a quarter of the
//             holders, allocates that many new keys and values into free
//             table slots, and collects; dead keys' entries are pruned.
//             tagheap: entries are GC objects traced with
//             Tracer::mark_ephemeron(key, value); Model::process_weak prunes
//             entries whose key died. Boehm: an entry holds its key hidden
//             (GC_HIDE_POINTER) behind a disappearing link
//             (GC_general_register_disappearing_link) and its value
//             strongly; entries whose link was cleared are pruned after
//             GC_gcollect. (Boehm has no ephemerons: a value that pointed
//             back at its key would keep it alive; here values do not.)
// finalizers  Each wave also allocates entries/4 objects with an ordered
//             finalizer (register_finalizer / GC_register_finalizer),
//             drops them, collects and runs the queue
//             (run_finalizers / GC_invoke_finalizers).
//
// Both collect every wave (the same number of collections). Prints:
//   weak_tables <variant> <wall_ms> <peak_rss_kib> finalized=<n> pruned=<n>
// Exits 1 if a live key's entry was lost or a finalizer ran twice or never.
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <vector>

#include "bench/gcbench/variant.h"

namespace {

struct Obj {
  std::uint64_t id;
  std::uint64_t pad[7];
};
static_assert(sizeof(Obj) == 64);

#if defined(GCB_TAGHEAP)
struct Entry {
  Obj* key;
  Obj* value;
};
struct Tables {
  std::vector<Entry*> table;   // roots: entries (their keys and values weakly)
  std::vector<Obj*> holders;   // roots: the live keys
  std::size_t pruned = 0;
  void roots(tagheap::gc::Tracer& t) {
    for (Entry* e : table) t.mark(e);
    for (Obj* k : holders) t.mark(k);
  }
  void trace(void* obj, tagheap::gc::Tracer& t) {
    if (tagheap::usable_size(obj) != 16) return;  // an Obj: no pointers
    auto* e = static_cast<Entry*>(obj);
    t.mark_ephemeron(e->key, e->value);
  }
  void process_weak(const tagheap::gc::Liveness& l) {
    for (Entry* e : table)
      if (e != nullptr && e->key != nullptr && !l.is_live(e->key)) {
        e->key = e->value = nullptr;
        ++pruned;
      }
  }
};

struct Env {
  tagheap::Runtime rt{{.gc_tags = {1}}};
  tagheap::ThreadState ts{rt};
  Tables tables;
  tagheap::gc::MarkSweep<Tables> ms{rt, tables, gcb::bench_options()};
  tagheap::Heap* heap;
  std::size_t finalized = 0;
  Env() {
    ts.attach();
    heap = &ts.heap(1);
  }
  ~Env() { ts.detach(); }
  Obj* obj(std::uint64_t id) {
    auto* o = static_cast<Obj*>(heap->allocate(sizeof(Obj)));
    o->id = id;
    return o;
  }
  Entry* entry(Obj* key, Obj* value) {
    auto* e = static_cast<Entry*>(heap->allocate(sizeof(Entry)));
    e->key = key;
    e->value = value;
    return e;
  }
  bool entry_live(Entry* e) const { return e->key != nullptr; }
  Obj* entry_key(Entry* e) const { return e->key; }
  void add_finalizable(std::uint64_t id) {
    ms.register_finalizer(obj(id), +[](void*, void* data) { ++*static_cast<std::size_t*>(data); }, &finalized);
  }
  void collect_and_finalize() {
    ms.collect();
    ms.run_finalizers();
  }
  std::size_t pruned() const { return tables.pruned; }
  void make_tables(std::size_t n) {
    tables.table.assign(n, nullptr);
    tables.holders.assign(n, nullptr);
  }
  Entry** table() { return tables.table.data(); }
  Obj** holders() { return tables.holders.data(); }
};
#elif defined(GCB_BOEHM)
struct Entry {
  GC_hidden_pointer key;  // a disappearing link: cleared when the key dies
  Obj* value;
};
struct Env {
  Entry** table_ = nullptr;  // uncollectable GC memory: Boehm scans it as a root
  Obj** holders_ = nullptr;
  std::size_t entries_ = 0;
  std::size_t finalized = 0, pruned_ = 0;
  Env() { GC_INIT(); }
  void make_tables(std::size_t n) {
    entries_ = n;
    table_ = static_cast<Entry**>(GC_MALLOC_UNCOLLECTABLE(n * sizeof(Entry*)));
    holders_ = static_cast<Obj**>(GC_MALLOC_UNCOLLECTABLE(n * sizeof(Obj*)));
  }
  Obj* obj(std::uint64_t id) {
    auto* o = static_cast<Obj*>(GC_MALLOC(sizeof(Obj) - 1));  // Boehm adds a byte
    o->id = id;
    return o;
  }
  Entry* entry(Obj* key, Obj* value) {
    auto* e = static_cast<Entry*>(GC_MALLOC(sizeof(Entry)));
    e->key = GC_HIDE_POINTER(key);
    e->value = value;
    GC_general_register_disappearing_link(reinterpret_cast<void**>(&e->key), key);
    return e;
  }
  bool entry_live(Entry* e) const { return e->key != 0; }
  Obj* entry_key(Entry* e) const { return static_cast<Obj*>(GC_REVEAL_POINTER(e->key)); }
  void add_finalizable(std::uint64_t id) {
    GC_register_finalizer(obj(id), +[](void*, void* data) { ++*static_cast<std::size_t*>(data); }, &finalized,
                          nullptr, nullptr);
  }
  void collect_and_finalize() {
    GC_gcollect();
    GC_invoke_finalizers();
    for (std::size_t i = 0; i < entries_; ++i) {
      Entry* e = table_[i];
      if (e != nullptr && e->key == 0 && e->value != nullptr) {
        e->value = nullptr;
        ++pruned_;
      }
    }
  }
  std::size_t pruned() const { return pruned_; }
  Entry** table() { return table_; }
  Obj** holders() { return holders_; }
};
#else
#error "weak_tables: GCB_TAGHEAP or GCB_BOEHM"
#endif

}  // namespace

int main(int argc, char** argv) {
  const std::size_t entries = argc > 1 ? std::strtoul(argv[1], nullptr, 10) : 200000;
  const int waves = argc > 2 ? std::atoi(argv[2]) : 20;
  static Env env;
  const auto t0 = std::chrono::steady_clock::now();
  std::uint64_t next_id = 1;
  env.make_tables(entries);
  Entry** table = env.table();
  Obj** holders = env.holders();
  for (std::size_t i = 0; i < entries; ++i) {
    Obj* key = env.obj(next_id++);
    holders[i] = key;
    table[i] = env.entry(key, env.obj(next_id++));
  }
  std::size_t expected_finalized = 0;
  for (int wave = 0; wave < waves; ++wave) {
    // A quarter of the keys die; their slots take new entries.
    const std::size_t drop = entries / 4, start = (static_cast<std::size_t>(wave) * drop) % entries;
    for (std::size_t k = 0; k < drop; ++k) holders[(start + k) % entries] = nullptr;
    for (std::size_t f = 0; f < entries / 4; ++f) env.add_finalizable(next_id++);
    expected_finalized += entries / 4;
    env.collect_and_finalize();
    for (std::size_t k = 0; k < drop; ++k) {
      const std::size_t i = (start + k) % entries;
      if (env.entry_live(table[i])) {
        std::printf("# failed: entry %zu of a dead key survived\n", i);
        return 1;
      }
      Obj* key = env.obj(next_id++);
      holders[i] = key;
      table[i] = env.entry(key, env.obj(next_id++));
    }
  }
  env.collect_and_finalize();
  env.collect_and_finalize();
  for (std::size_t i = 0; i < entries; ++i)
    if (!env.entry_live(table[i]) || env.entry_key(table[i]) != holders[i]) {
      std::printf("# failed: a live key's entry %zu was lost\n", i);
      return 1;
    }
  const double ms = gcb::ms_since(t0);
  if (env.finalized != expected_finalized) {
    std::printf("# failed: %zu finalizers ran, %zu expected\n", env.finalized, expected_finalized);
    return 1;
  }
  std::printf("weak_tables %s %.1f %ld finalized=%zu pruned=%zu\n", gcb::kVariant, ms, gcb::peak_rss_kib(),
              env.finalized, env.pruned());
  return 0;
}
