// mark_sweep: a synthetic object graph on a GC heap, strings on a non-GC
// heap, built by threads that exit; gc::MarkSweep frees exactly the nodes a
// separate graph search finds unreachable.
#include <cstdio>
#include <cstring>
#include <mutex>
#include <random>
#include <thread>
#include <unordered_set>
#include <vector>

#include "alloc/tagheap.h"
#include "gc/mark_sweep.h"
#include "gc/visit.h"

using namespace tagheap;

namespace {

constexpr Tag kStrings = 0, kObjects = 1;  // only kObjects is a GC tag

struct Node {
  Node* child[3];
  char* name;  // a block on the non-GC string heap, owned by the node
};

struct Model {
  std::vector<Node*>* roots_;
  std::vector<char*> dead_names;  // freed after the sweep, not during it
  void roots(gc::Tracer& t) {
    for (Node* n : *roots_) t.mark(n);
  }
  void trace(void* obj, gc::Tracer& t) {
    for (Node* c : static_cast<Node*>(obj)->child) t.mark(c);
  }
  void finalize(void* obj) noexcept { dead_names.push_back(static_cast<Node*>(obj)->name); }
};

std::size_t count_reachable(const std::vector<Node*>& roots) {
  std::unordered_set<Node*> seen;
  std::vector<Node*> todo;
  for (Node* r : roots)
    if (seen.insert(r).second) todo.push_back(r);
  while (!todo.empty()) {
    Node* n = todo.back();
    todo.pop_back();
    for (Node* c : n->child)
      if (c && seen.insert(c).second) todo.push_back(c);
  }
  return seen.size();
}

void print_tags(Runtime& rt, const char* when) {
  RuntimeStats s = rt.stats();
  std::printf("%-22s objects: %7zu blocks %9zu bytes %4zu pages (%zu abandoned) | strings: %7zu blocks %9zu bytes\n",
              when, s.tags[kObjects].blocks, s.tags[kObjects].bytes_in_use, s.tags[kObjects].pages,
              s.tags[kObjects].abandoned_pages, s.tags[kStrings].blocks, s.tags[kStrings].bytes_in_use);
}

}  // namespace

int main() {
  Runtime rt({.gc_tags = {kObjects}});
  std::vector<Node*> roots;
  std::mutex mu;
  std::size_t made = 0;

  // Four threads each build a random graph, hand a few entry points to the
  // shared root set, and exit: their pages are abandoned, still walkable.
  std::vector<std::thread> builders;
  for (int t = 0; t < 4; ++t)
    builders.emplace_back([&, t] {
      ThreadState ts(rt);
      ts.attach();
      std::mt19937 rng(t + 1);
      std::vector<Node*> mine;
      for (int i = 0; i < 50000; ++i) {
        auto* n = static_cast<Node*>(ts.heap(kObjects).allocate(sizeof(Node)));
        char buf[32];
        const int len = std::snprintf(buf, sizeof buf, "node-%d-%d", t, i);
        n->name = static_cast<char*>(ts.heap(kStrings).allocate(static_cast<std::size_t>(len) + 1));
        std::memcpy(n->name, buf, static_cast<std::size_t>(len) + 1);
        for (Node*& c : n->child) c = (!mine.empty() && rng() % 2) ? mine[rng() % mine.size()] : nullptr;
        mine.push_back(n);
      }
      std::lock_guard lock(mu);
      for (int k = 0; k < 20; ++k) roots.push_back(mine[rng() % mine.size()]);
      made += mine.size();
      ts.detach();
    });
  for (auto& b : builders) b.join();

  ThreadState main_ts(rt);  // the collecting thread's own state
  main_ts.attach();
  print_tags(rt, "before collection:");
  const std::size_t expect_live = count_reachable(roots);

  Model model{&roots, {}};
  gc::MarkSweep collector(rt, model);
  const gc::CollectStats s = collector.collect();
  for (char* name : model.dead_names) tagheap::free(name);  // strings of the dead
  print_tags(rt, "after collection:");

  std::printf("nodes made %zu, reachable by an independent search %zu, unreachable %zu\n", made, expect_live,
              made - expect_live);
  std::printf("collector: live %zu (%zu bytes), freed %zu (%zu bytes), %zu pages swept, mark %.2f ms, sweep %.2f ms\n",
              s.live_blocks, s.live_bytes, s.freed_blocks, s.freed_bytes, s.pages_swept, s.mark_ns / 1e6,
              s.sweep_ns / 1e6);
  std::printf("strings freed with their nodes: %zu\n", model.dead_names.size());
  const bool ok = s.live_blocks == expect_live && s.freed_blocks == made - expect_live &&
                  model.dead_names.size() == s.freed_blocks;
  std::printf("verify: %zu pages checked; %s\n", rt.verify(), ok ? "OK: exactly the unreachable nodes were freed" : "MISMATCH");
  main_ts.detach();
  return ok ? 0 : 1;
}
