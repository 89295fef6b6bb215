// A small tour of tagheap: tagged heaps, a thread that exits leaving live
// blocks behind, a walk of the GC tag that still finds them, and reclaim.
#include <cstdio>
#include <thread>
#include <vector>

#include "alloc/tagheap.h"
#include "gc/visit.h"

using namespace tagheap;

namespace {
constexpr Tag kGcTag = 1, kDataTag = 0;

void print_stats(Runtime& rt, const char* when) {
  RuntimeStats s = rt.stats();
  std::printf("%-34s", when);
  for (Tag t : TagSet{kDataTag, kGcTag})
    std::printf("  tag %u: %6zu blocks %8zu bytes %3zu pages (%zu abandoned)", t, s.tags[t].blocks,
                s.tags[t].bytes_in_use, s.tags[t].pages, s.tags[t].abandoned_pages);
  std::printf("\n");
}
}  // namespace

int main() {
  Runtime rt({.gc_tags = {kGcTag}});
  std::vector<void*> survivors;

  // A worker thread allocates GC objects and plain data, keeps every tenth
  // GC object reachable (hands it to main), frees the data, and exits.
  std::thread worker([&] {
    ThreadState ts(rt);
    ts.attach();
    for (int i = 0; i < 100000; ++i) {
      void* obj = ts.heap(kGcTag).allocate(48);
      void* data = ts.heap(kDataTag).allocate(200);
      if (i % 10 == 0) survivors.push_back(obj); else tagheap::free(obj);
      tagheap::free(data);
    }
    ts.detach();
  });  // ~ThreadState abandons its pages to the runtime's pool, by tag
  worker.join();
  print_stats(rt, "after the worker exited:");

  std::size_t gc_blocks = 0, gc_bytes = 0;
  visit_gc_blocks(rt, [&](const BlockRef& b) {
    ++gc_blocks;
    gc_bytes += b.size;
  });
  std::printf("visit_gc_blocks found %zu GC blocks (%zu bytes); %zu are held by main\n", gc_blocks, gc_bytes,
              survivors.size());

  // The main thread frees half of the survivors (into abandoned pages), then
  // allocates on the GC tag: its heap reclaims the abandoned GC pages, and
  // only those: data pages stay for a data heap.
  ThreadState main_ts(rt);
  main_ts.attach();
  for (std::size_t i = 0; i < survivors.size(); i += 2) tagheap::free(survivors[i]);
  for (int i = 0; i < 20000; ++i) survivors.push_back(main_ts.heap(kGcTag).allocate(48));
  main_ts.detach();
  print_stats(rt, "after main reclaimed and allocated:");
  RuntimeStats s = rt.stats();
  std::printf("pages abandoned: %zu, reclaimed: %zu; verify checked %zu pages\n", s.total.abandoned_total,
              s.total.reclaimed_total, rt.verify());
  main_ts.attach();
  const std::size_t first_batch = 10000;  // its even entries are freed already
  for (std::size_t i = 0; i < survivors.size(); ++i)
    if (i >= first_batch || i % 2 == 1) tagheap::free(survivors[i]);
  main_ts.detach();
  rt.trim();
  print_stats(rt, "after freeing everything:");
  return 0;
}
