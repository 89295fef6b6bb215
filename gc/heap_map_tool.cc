// heap_map_tool OUT.svg OUT.json: builds a sample heap (several tags, an
// exited thread's abandoned pages, a huge block) and writes its map and
// statistics. The rendering test feeds them to xmllint, a JSON Schema
// validator and rsvg-convert.
#include <cstdio>
#include <thread>
#include <vector>

#include "alloc/tagheap.h"
#include "gc/heap_map.h"

using namespace tagheap;

int main(int argc, char** argv) {
  if (argc != 3) {
    std::fprintf(stderr, "usage: %s OUT.svg OUT.json\n", argv[0]);
    return 2;
  }
  Runtime rt({.gc_tags = {1, 3}});
  std::vector<void*> keep;
  std::thread([&] {
    ThreadState ts(rt);
    ts.attach();
    for (int i = 0; i < 30000; ++i) {
      void* p = ts.heap(1).allocate(32 + i % 200);
      if (i % 3 == 0) keep.push_back(p); else tagheap::free(p);
    }
    ts.detach();
  }).join();
  ThreadState ts(rt);
  ts.attach();
  for (int i = 0; i < 5000; ++i) keep.push_back(ts.heap(0).allocate(i % 2 ? 100 : 9000));
  for (int i = 0; i < 200; ++i) keep.push_back(ts.heap(3).allocate(40000));
  keep.push_back(ts.heap(2).allocate(6 << 20));
  gc::HeapSnapshot snap = gc::take_heap_snapshot(rt);
  gc::HeapMapOptions opt{.title = "sample heap", .tag_names = {"data", "objects", "buffers", "big objects"}};
  const bool ok = gc::write_file(argv[1], gc::heap_map_svg(snap, opt)) && gc::write_file(argv[2], gc::heap_stats_json(snap, opt));
  for (void* p : keep) tagheap::free(p);
  ts.detach();
  return ok ? 0 : 1;
}
