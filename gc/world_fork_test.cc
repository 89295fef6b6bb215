// gc::World across fork(): several mutator threads allocate and link GC
// nodes; the world is stopped around fork(); the child, where only the
// forking thread exists, calls Runtime::after_fork_child(ts) and
// World::after_fork_child(), collects exactly, resumes, allocates through the
// World again and stops it again (which hung when the World still counted
// the vanished mutators), collects once more and exits with a status the
// parent checks. An alarm turns a hang in the child into a failure.
//
// The child creates no thread (TSan does not support starting threads in
// the child of a multi-threaded fork; hence one marker, the collecting
// thread), so it runs under every sanitizer.
#include <doctest/doctest.h>

#include <unistd.h>

#include <atomic>
#include <cstdint>
#include <memory>
#include <mutex>
#include <random>
#include <thread>
#include <unordered_set>
#include <vector>

#include "alloc/tagheap.h"
#include "gc/mark_sweep.h"
#include "gc/visit.h"
#include "gc/world.h"
#include "tests/test_util.h"

using namespace tagheap;

namespace {

constexpr Tag kGc = 1;
constexpr int kMutators = 3;

struct Node {
  Node* child[2];
};

// Precise roots: each mutator's vector, changed only while it runs, read
// only while the world is stopped.
struct Model {
  std::vector<std::vector<Node*>*> root_sets;
  void roots(gc::Tracer& t) {
    for (auto* v : root_sets)
      for (Node* n : *v) t.mark(n);
  }
  void trace(void* obj, gc::Tracer& t) {
    auto* n = static_cast<Node*>(obj);
    t.mark(n->child[0]);
    t.mark(n->child[1]);
  }
};

std::size_t reachable_count(const Model& m) {
  std::unordered_set<Node*> seen;
  std::vector<Node*> todo;
  for (auto* v : m.root_sets)
    for (Node* n : *v)
      if (seen.insert(n).second) todo.push_back(n);
  while (!todo.empty()) {
    Node* n = todo.back();
    todo.pop_back();
    for (Node* c : n->child)
      if (c != nullptr && seen.insert(c).second) todo.push_back(c);
  }
  return seen.size();
}

std::size_t gc_blocks(Runtime& rt) {
  std::size_t n = 0;
  visit_gc_blocks(rt, [&](const BlockRef&) { ++n; });
  return n;
}

Node* new_node(ThreadState& ts, std::vector<Node*>& mine, std::mt19937& rng) {
  auto* n = static_cast<Node*>(ts.heap(kGc).allocate(sizeof(Node)));
  n->child[0] = mine.empty() ? nullptr : mine[rng() % mine.size()];
  n->child[1] = nullptr;
  return n;
}

// The child's program. `forker_is_mutator`: the forking thread was attached
// through the World (and holds the stop); otherwise it attaches now.
void child_program(Runtime& rt, gc::World& world, Model& model, ThreadState& survivor, bool forker_is_mutator,
                   test::ChildChecks& c) {
  alarm(30);
  rt.after_fork_child(survivor);
  world.after_fork_child();
  c.expect(world.stop_requested(), "the stop taken before fork() is still held");
  c.expect(world.attached() == (forker_is_mutator ? 1 : 0), "only the forking thread is attached");
  c.expect(world.running() == 0, "nothing runs while the stop is held");

  // A collection in the child, the vanished threads' nodes still rooted.
  const std::size_t all = gc_blocks(rt);
  const std::size_t live = reachable_count(model);
  gc::MarkSweep<Model> ms(rt, model, gc::Options{.markers = 1});  // no marker threads: see the top
  gc::CollectStats s = ms.collect();
  c.expect(s.live_blocks == live, "the child's collection keeps exactly the reachable nodes");
  c.expect(s.freed_blocks == all - live, "and frees the rest");
  world.resume();
  c.expect(world.running() == (forker_is_mutator ? 1 : 0), "resume() lets only the forking thread go");

  // The child goes on as a mutator, then stops the world again.
  if (!forker_is_mutator) world.attach(survivor);
  std::vector<Node*> mine;
  std::mt19937 rng(99);
  for (int i = 0; i < 5000; ++i) {
    Node* n = new_node(survivor, mine, rng);
    if (i % 2 == 0) mine.push_back(n);
    if (i % 16 == 0) world.safepoint();
  }
  model.root_sets.push_back(&mine);
  {
    gc::World::StopScope stop(world);  // hung here without after_fork_child
    const std::size_t all2 = gc_blocks(rt);
    const std::size_t live2 = reachable_count(model);
    s = ms.collect();
    c.expect(s.live_blocks == live2 && s.freed_blocks == all2 - live2, "a second collection is exact too");
    rt.verify();
  }
  world.detach(survivor);
  c.expect(world.attached() == 0 && world.running() == 0, "the child's World is empty at the end");
  c.finish();
}

void fork_and_collect(bool forker_is_mutator) {
  Runtime rt({.gc_tags = {kGc}});
  gc::World world;
  Model model;
  std::vector<Node*> root_sets[kMutators];
  for (auto& v : root_sets) model.root_sets.push_back(&v);
  std::atomic<int> warmed{0};
  std::atomic<bool> quit{false};
  std::vector<std::thread> threads;
  for (int k = 0; k < kMutators; ++k)
    threads.emplace_back([&, k] {
      ThreadState ts(rt);
      world.attach(ts);
      std::mt19937 rng(static_cast<unsigned>(k));
      std::vector<Node*>& mine = root_sets[k];
      long i = 0;
      // Allocating when the stop comes: parked mid-work, pages owned.
      while (!quit.load(std::memory_order_relaxed)) {
        Node* n = new_node(ts, mine, rng);
        if (rng() % 3 != 0) mine.push_back(n);  // else garbage at once
        if (mine.size() > 3000) mine.erase(mine.begin() + static_cast<long>(rng() % mine.size()));
        if (++i == 10000) warmed.fetch_add(1);
        if (i % 8 == 0) world.safepoint();
      }
      world.detach(ts);
    });
  while (warmed.load() < kMutators) std::this_thread::yield();

  ThreadState survivor(rt);
  if (forker_is_mutator) world.attach(survivor);
  world.stop();
  const std::size_t parent_blocks = gc_blocks(rt);
  const test::ChildResult r = test::run_in_child([&] {
    test::ChildChecks c;
    child_program(rt, world, model, survivor, forker_is_mutator, c);
  });
  CHECK_MESSAGE((r.exited && r.exit_code == 0), r.describe());
  CHECK(gc_blocks(rt) == parent_blocks);  // the child's work stayed there
  quit = true;
  world.resume();
  for (auto& t : threads) t.join();
  if (forker_is_mutator) world.detach(survivor);
  CHECK(world.attached() == 0);
  gc::World::StopScope stop(world);
  rt.verify();
}

}  // namespace

TEST_SUITE("gc.world") {
  TEST_CASE("a fork() child collects, resumes and stops the world again after World::after_fork_child") {
    SUBCASE("the forking thread is a mutator holding the stop") { fork_and_collect(true); }
    SUBCASE("the forking thread stopped the world from outside") { fork_and_collect(false); }
  }
}
