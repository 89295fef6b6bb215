// walk: the cost of visiting every live block, per live block.
//
// Layouts (--layout=; N blocks, default 4M, allocated in order on one heap,
// then some freed):
//   half    32-byte blocks, every second one freed: N/2 live blocks in
//           half-empty pages (the default; reported as "walk")
//   all     32-byte blocks, none freed ("walk_all")
//   sparse  32-byte blocks, all but every 64th freed: one live block per
//           bitmap word, pages 1/64 full ("walk_sparse")
//   mixed   sizes drawn from 16..1024 (the common small classes), every
//           second one freed: pages of many classes ("walk_mixed")
// Each mode runs in its own process (so peak RSS belongs to one mode):
//
//   walk tagheap     tagheap::visit_blocks with a template visitor (GC tag 1)
//   walk tagheap_c   tagheap_visit_gc_blocks with a C callback
//   walk mimalloc    mi_heap_visit_blocks(heap, true, ...) on an mi_heap_new heap
//   walk isolation   tagheap GC walk of the half layout, alone and with
//                    ~1 GiB of live blocks of another tag in the same runtime:
//                    allocated after the GC blocks ("after") or interleaved
//                    with them so both tags share segments ("mixed"); prints
//                    the walk times and the ratios to "alone"
//
// Every block's first byte is written when it is allocated (objects are
// initialised). The visitor sums sizes and xors addresses, so it cannot be
// optimised away; it does not read the blocks. Each walk is repeated --reps times; the median
// is reported. Options: --layout=half --blocks=4000000 --reps=15 --other_mib=1024
//
// Prints: <workload> <allocator> <ns per live block> <peak RSS KiB>, and for
// isolation: walk_gc_alone, walk_gc_other_after, walk_gc_other_mixed (ns per
// live block) and isolation_ratio_after, isolation_ratio_mixed.
#include <algorithm>
#include <cstdint>
#include <cstring>
#include <vector>

#include <mimalloc.h>

#include "alloc/tagheap.h"
#include "alloc/tagheap_c.h"
#include "bench/common.h"
#include "gc/visit.h"

namespace {

constexpr tagheap::Tag kGcTag = 1;
constexpr tagheap::Tag kOtherTag = 0;
constexpr std::size_t kBlockSize = 32;

// What to allocate and what to keep: the same sequence for every allocator.
struct Layout {
  const char* workload;  // the name reported
  bool mixed_sizes;
  std::size_t keep_every;  // block i stays live when i % keep_every == keep_every - 1

  std::size_t size(bench::Rng& rng) const {
    static constexpr std::size_t kSizes[] = {16, 24, 32, 48, 64, 96, 128, 192, 256, 384, 512, 768, 1024};
    return mixed_sizes ? kSizes[rng.below(sizeof kSizes / sizeof kSizes[0])] : kBlockSize;
  }
  bool keep(std::size_t i) const { return i % keep_every == keep_every - 1; }
  std::size_t live(std::size_t n) const { return n / keep_every; }
};

const Layout* layout_named(const char* name) {
  static const Layout kHalf{"walk", false, 2}, kAll{"walk_all", false, 1}, kSparse{"walk_sparse", false, 64},
      kMixed{"walk_mixed", true, 2};
  if (std::strcmp(name, "half") == 0) return &kHalf;
  if (std::strcmp(name, "all") == 0) return &kAll;
  if (std::strcmp(name, "sparse") == 0) return &kSparse;
  if (std::strcmp(name, "mixed") == 0) return &kMixed;
  return nullptr;
}

// Allocates the layout's n blocks with alloc(size), then frees those it does
// not keep with release(p). Returns the live blocks.
template <class Alloc, class Release>
std::size_t fill(const Layout& layout, std::size_t n, Alloc&& alloc, Release&& release) {
  std::vector<void*> blocks(n);
  bench::Rng rng(5);
  for (std::size_t i = 0; i < n; ++i) {
    blocks[i] = alloc(layout.size(rng));
    static_cast<char*>(blocks[i])[0] = 1;  // an object is initialised, as a VM's would be
  }
  for (std::size_t i = 0; i < n; ++i)
    if (!layout.keep(i)) release(blocks[i]);
  return layout.live(n);
}

struct Acc {
  std::size_t count = 0;
  std::size_t bytes = 0;
  std::uintptr_t x = 0;
};

struct Visitor {
  Acc* acc;
  void operator()(const tagheap::BlockRef& b) const {
    ++acc->count;
    acc->bytes += b.size;
    acc->x ^= reinterpret_cast<std::uintptr_t>(b.block);
  }
};

int c_visit(const tagheap_block_ref* b, void* arg) {
  Acc* acc = static_cast<Acc*>(arg);
  ++acc->count;
  acc->bytes += b->size;
  acc->x ^= reinterpret_cast<std::uintptr_t>(b->block);
  return 1;
}

bool mi_visit(const mi_heap_t*, const mi_heap_area_t*, void* block, std::size_t block_size, void* arg) {
  if (block == nullptr) return true;  // called once per area first
  Acc* acc = static_cast<Acc*>(arg);
  ++acc->count;
  acc->bytes += block_size;
  acc->x ^= reinterpret_cast<std::uintptr_t>(block);
  return true;
}

// Runs walk() reps times; returns the median ns per live block. Aborts if a
// walk does not see exactly `live` blocks.
template <class Walk>
double time_walks(int reps, std::size_t live, Walk&& walk) {
  std::vector<double> ns;
  std::uintptr_t keep = 0;
  for (int r = 0; r < reps; ++r) {
    Acc acc;
    const std::uint64_t t0 = bench::now_ns();
    walk(acc);
    const std::uint64_t t1 = bench::now_ns();
    if (acc.count != live) {
      std::fprintf(stderr, "walk: saw %zu blocks, expected %zu\n", acc.count, live);
      std::abort();
    }
    keep ^= acc.x + acc.bytes;
    ns.push_back(static_cast<double>(t1 - t0) / static_cast<double>(live));
  }
  bench::do_not_optimize(keep);
  std::sort(ns.begin(), ns.end());
  return ns[ns.size() / 2];
}

// N GC blocks, every second freed; with other_bytes > 0, live blocks of
// another tag (random sizes 16..1024) are allocated between them so that the
// two tags' pages share segments. Returns the blocks kept.
std::size_t fill_tagheap(tagheap::ThreadState& ts, std::size_t n, std::size_t other_bytes) {
  std::vector<void*> gc(n);
  bench::Rng rng(3);
  tagheap::Heap& gc_heap = ts.heap(kGcTag);
  tagheap::Heap& other = ts.heap(kOtherTag);
  std::size_t other_done = 0;
  for (std::size_t i = 0; i < n; ++i) {
    gc[i] = gc_heap.allocate(kBlockSize);
    static_cast<char*>(gc[i])[0] = 1;  // an object is initialised, as a VM's would be
    const std::size_t target = static_cast<std::size_t>((static_cast<unsigned __int128>(other_bytes) * (i + 1)) / n);
    while (other_done < target) {
      const std::size_t sz = 16 + rng.below(1009);
      char* p = static_cast<char*>(other.allocate(sz));
      p[0] = 1;  // resident, as a live heap would be
      other_done += sz;
    }
  }
  for (std::size_t i = 0; i < n; i += 2) tagheap::free(gc[i]);
  return n - (n + 1) / 2;
}

// Live blocks of the other tag, random sizes 16..1024, all at once.
void fill_other(tagheap::ThreadState& ts, std::size_t other_bytes) {
  bench::Rng rng(4);
  tagheap::Heap& other = ts.heap(kOtherTag);
  for (std::size_t done = 0; done < other_bytes;) {
    const std::size_t sz = 16 + rng.below(1009);
    char* p = static_cast<char*>(other.allocate(sz));
    p[0] = 1;
    done += sz;
  }
}

int run_tagheap(const Layout& layout, std::size_t n, int reps) {
  tagheap::Runtime rt({.gc_tags = {kGcTag}});
  tagheap::ThreadState ts(rt);
  ts.attach();
  tagheap::Heap& heap = ts.heap(kGcTag);
  const std::size_t live =
      fill(layout, n, [&](std::size_t size) { return heap.allocate(size); }, [](void* p) { tagheap::free(p); });
  const double ns = time_walks(reps, live, [&](Acc& acc) { tagheap::visit_gc_blocks(rt, Visitor{&acc}); });
  bench::report(layout.workload, "tagheap", ns);
  // The floor under any walk with this visitor: the same visitor over an
  // array of the live blocks, read in address order (no bitmap, no pages).
  std::vector<tagheap::BlockRef> refs;
  refs.reserve(live);
  tagheap::visit_gc_blocks(rt, [&](const tagheap::BlockRef& b) { refs.push_back(b); });
  const double floor_ns = time_walks(reps, live, [&](Acc& acc) {
    const Visitor v{&acc};
    for (const tagheap::BlockRef& b : refs) v(b);
  });
  std::printf("# %s: visitor floor %.3f ns/block (the visitor over an array of the live blocks); walk %.2fx it\n",
              layout.workload, floor_ns, ns / floor_ns);
  ts.detach();
  return 0;
}

int run_tagheap_c(const Layout& layout, std::size_t n, int reps) {
  tagheap_runtime_options o{};
  o.gc_tags = 1u << kGcTag;
  tagheap_runtime* rt = tagheap_runtime_new(&o);
  tagheap_thread_state* ts = tagheap_thread_state_new(rt);
  if (tagheap_thread_state_attach(ts) != 0) std::abort();
  const std::size_t live = fill(
      layout, n, [&](std::size_t size) { return tagheap_heap_allocate(ts, kGcTag, size); },
      [](void* p) { tagheap_free(p); });
  const double ns = time_walks(reps, live, [&](Acc& acc) { tagheap_visit_gc_blocks(rt, c_visit, &acc); });
  bench::report(layout.workload, "tagheap_c", ns);
  tagheap_thread_state_detach(ts);
  tagheap_thread_state_delete(ts);
  tagheap_runtime_delete(rt);
  return 0;
}

int run_mimalloc(const Layout& layout, std::size_t n, int reps) {
  mi_heap_t* heap = mi_heap_new();
  const std::size_t live =
      fill(layout, n, [&](std::size_t size) { return mi_heap_malloc(heap, size); }, [](void* p) { mi_free(p); });
  const double ns = time_walks(reps, live, [&](Acc& acc) { mi_heap_visit_blocks(heap, true, mi_visit, &acc); });
  bench::report(layout.workload, "mimalloc", ns);
  mi_heap_destroy(heap);
  return 0;
}

int run_isolation(std::size_t n, int reps, std::size_t other_mib) {
  double alone, with_after, with_mixed;
  {
    tagheap::Runtime rt({.gc_tags = {kGcTag}});
    tagheap::ThreadState ts(rt);
    ts.attach();
    const std::size_t live = fill_tagheap(ts, n, 0);
    alone = time_walks(reps, live, [&](Acc& acc) { tagheap::visit_gc_blocks(rt, Visitor{&acc}); });
    ts.detach();
  }
  {
    // Other-tag blocks allocated after the GC blocks: GC pages stay dense.
    tagheap::Runtime rt({.gc_tags = {kGcTag}});
    tagheap::ThreadState ts(rt);
    ts.attach();
    const std::size_t live = fill_tagheap(ts, n, 0);
    fill_other(ts, other_mib << 20);
    with_after = time_walks(reps, live, [&](Acc& acc) { tagheap::visit_gc_blocks(rt, Visitor{&acc}); });
    ts.detach();
  }
  {
    // Interleaved: GC pages are spread among ~8x as many other-tag pages.
    tagheap::Runtime rt({.gc_tags = {kGcTag}});
    tagheap::ThreadState ts(rt);
    ts.attach();
    const std::size_t live = fill_tagheap(ts, n, other_mib << 20);
    with_mixed = time_walks(reps, live, [&](Acc& acc) { tagheap::visit_gc_blocks(rt, Visitor{&acc}); });
    ts.detach();
  }
  std::printf("# other tag: %zu MiB live, allocated after the GC blocks or interleaved with them\n", other_mib);
  bench::report("walk_gc_alone", "tagheap", alone);
  bench::report("walk_gc_other_after", "tagheap", with_after);
  bench::report("walk_gc_other_mixed", "tagheap", with_mixed);
  bench::report("isolation_ratio_after", "tagheap", with_after / alone);
  bench::report("isolation_ratio_mixed", "tagheap", with_mixed / alone);
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  const char* mode = argc > 1 && argv[1][0] != '-' ? argv[1] : "tagheap";
  const std::size_t n = static_cast<std::size_t>(bench::arg_long(argc, argv, "--blocks", 4000000));
  const int reps = static_cast<int>(bench::arg_long(argc, argv, "--reps", 15));
  const std::size_t other_mib = static_cast<std::size_t>(bench::arg_long(argc, argv, "--other_mib", 1024));
  const char* layout_name = "half";
  for (int i = 1; i < argc; ++i)
    if (std::strncmp(argv[i], "--layout=", 9) == 0) layout_name = argv[i] + 9;
  const Layout* layout = layout_named(layout_name);
  if (layout != nullptr) {
    if (std::strcmp(mode, "tagheap") == 0) return run_tagheap(*layout, n, reps);
    if (std::strcmp(mode, "tagheap_c") == 0) return run_tagheap_c(*layout, n, reps);
    if (std::strcmp(mode, "mimalloc") == 0) return run_mimalloc(*layout, n, reps);
    if (std::strcmp(mode, "isolation") == 0) return run_isolation(n, reps, other_mib);
  }
  std::fprintf(stderr,
               "usage: walk tagheap|tagheap_c|mimalloc|isolation [--layout=half|all|sparse|mixed] [--blocks=N] "
               "[--reps=R] [--other_mib=M]\n");
  return 2;
}
