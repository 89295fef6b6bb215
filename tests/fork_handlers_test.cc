// Runtime::before_fork / after_fork_parent (alloc/runtime.h): around fork()
// the runtime's locks are held, so that the child is made with no thread
// (the segment pool's populator included) halfway through the pool, the
// abandoned pages or the thread list; the parent carries on after
// after_fork_parent, and the child after after_fork_child.
#include <doctest/doctest.h>

#include <atomic>
#include <chrono>
#include <mutex>
#include <stdexcept>
#include <thread>
#include <vector>

#include "alloc/internal/runtime_core.h"
#include "alloc/tagheap.h"
#include "gc/visit.h"
#include "tests/test_util.h"

using namespace tagheap;
using tagheap::test::AttachedState;

namespace {

// `hold` takes a lock of rt on another thread and keeps it a while; this
// thread's before_fork() must return only once that thread has let go
// (a correctness order, not a measurement: without the lock taken,
// before_fork returns at once, 20 ms before the release).
bool before_fork_waits_for(Runtime& rt, void (*hold)(Runtime&), void (*release)(Runtime&)) {
  std::atomic<bool> holding{false}, released{false};
  std::thread holder([&] {
    hold(rt);
    holding.store(true);
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
    released.store(true);
    release(rt);
  });
  while (!holding.load()) std::this_thread::yield();
  rt.before_fork();
  const bool waited = released.load();
  rt.after_fork_parent();
  holder.join();
  return waited;
}

}  // namespace

TEST_SUITE("alloc.fork_handlers") {
  TEST_CASE("before_fork waits for a thread inside the segment pool, a tag's shard or the thread list") {
    Runtime rt({.gc_tags = {1}});
    CHECK(before_fork_waits_for(
        rt, [](Runtime& r) { r.core().segments.lock_for_fork(); },
        [](Runtime& r) { r.core().segments.unlock_after_fork_parent(); }));
    CHECK(before_fork_waits_for(
        rt, [](Runtime& r) { r.core().shards[1].mu.lock(); }, [](Runtime& r) { r.core().shards[1].mu.unlock(); }));
    CHECK(before_fork_waits_for(
        rt, [](Runtime& r) { r.core().threads_mu.lock(); }, [](Runtime& r) { r.core().threads_mu.unlock(); }));
  }

  TEST_CASE("after_fork_parent gives every lock back: the parent allocates, abandons, trims and verifies") {
    Runtime rt({.gc_tags = {1}});
    rt.before_fork();
    rt.after_fork_parent();
    std::vector<void*> blocks;
    {
      AttachedState ts(rt);
      for (int i = 0; i < 20'000; ++i) blocks.push_back(ts.heap(1).allocate(16 + i % 2000));
      for (std::size_t i = 0; i < blocks.size(); i += 2) tagheap::free(blocks[i]);
    }  // its pages go to the shard
    {
      AttachedState other(rt);
      for (std::size_t i = 1; i < blocks.size(); i += 2) tagheap::free(blocks[i]);
      (void)other.heap(1).allocate(64);  // reclaims one
    }
    rt.trim();
    CHECK(rt.stats().total.blocks == 1);
    rt.verify();
  }

  TEST_CASE("a second before_fork on the same thread, or after_fork_parent elsewhere, is refused and changes nothing") {
    Runtime rt({.gc_tags = {1}});
    CHECK_THROWS_AS(rt.after_fork_parent(), std::logic_error);  // no before_fork yet
    rt.before_fork();
    CHECK_THROWS_AS(rt.before_fork(), std::logic_error);  // it would wait for itself
    bool refused_elsewhere = false;
    std::thread([&] {
      try {
        rt.after_fork_parent();
      } catch (const std::logic_error&) {
        refused_elsewhere = true;
      }
    }).join();
    CHECK(refused_elsewhere);
    rt.after_fork_parent();  // the locks are still held, once, by this thread
    AttachedState ts(rt);
    void* p = ts.heap(1).allocate(64);
    CHECK(p != nullptr);
    tagheap::free(p);
    rt.trim();
    rt.verify();
  }

  TEST_CASE("before_fork is refused inside a walk, with the walk's locks untouched") {
    Runtime rt({.gc_tags = {1}});
    AttachedState ts(rt);
    void* p = ts.heap(1).allocate(64);
    bool refused = false;
    visit_gc_blocks(rt, [&](const BlockRef&) {
      try {
        rt.before_fork();
      } catch (const std::logic_error&) {
        refused = true;
      }
      return true;
    });
    CHECK(refused);
    tagheap::free(p);
    rt.verify();
  }

  TEST_CASE("a child forked by a thread with no thread state abandons them all, and a new one reclaims their pages") {
    Runtime rt({.gc_tags = {1}});
    AttachedState ts(rt);
    std::vector<void*> blocks;
    for (int i = 0; i < 5000; ++i) blocks.push_back(ts.heap(1).allocate(48));
    rt.before_fork();
    test::ChildResult r;
    std::thread forker([&] {  // a thread this runtime does not know
      r = test::run_in_child([&] {
        test::ChildChecks c;
        rt.after_fork_child();
        c.expect(rt.stats().thread_states == 0, "no thread state is left");
        c.expect(rt.stats().total.blocks == 5000, "their blocks are all there");
        ThreadState mine(rt);
        mine.attach();
        for (std::size_t i = 0; i < blocks.size(); i += 2) tagheap::free(blocks[i]);
        std::vector<void*> more;
        for (int i = 0; i < 2500; ++i) more.push_back(mine.heap(1).allocate(48));
        const RuntimeStats s = rt.stats();
        c.expect(s.total.blocks == 5000, "the counts add up");
        c.expect(s.total.reclaimed_total > 0, "the new thread state reclaimed the orphans' pages");
        rt.verify();
        mine.detach();
        c.finish();
      });
    });
    forker.join();
    rt.after_fork_parent();
    CHECK_MESSAGE((r.exited && r.exit_code == 0), r.describe());
    for (void* p : blocks) tagheap::free(p);
    CHECK(rt.stats().total.blocks == 0);
  }

  TEST_CASE("forks while another thread churns and the populator maps ahead: each child verifies and allocates") {
    RuntimeOptions o;
    o.gc_tags = {1};
    o.huge_os_pages = true;
    o.populate_ahead_above = 1;  // the populator runs from the first segment
    Runtime rt(o);
    // The churning thread stays out of its heap while the main thread forks
    // (as a VM's safepoint would keep it): a heap's queues take no lock.
    std::atomic<bool> stop{false}, pause{false};
    std::atomic<int> pauses{0}, resumes{0};  // times the churner stepped out of its heap, and back
    std::thread churner([&] {
      ThreadState ts(rt);
      ts.attach();
      std::vector<void*> live;
      std::uint64_t x = 88172645463325252ull;
      while (!stop.load()) {
        if (pause.load()) {
          pauses.fetch_add(1);
          while (pause.load()) std::this_thread::yield();
          resumes.fetch_add(1);
        }
        for (int i = 0; i < 256; ++i) {
          x ^= x << 13, x ^= x >> 7, x ^= x << 17;
          if (live.size() < 40'000 && (x & 3) != 0) {
            live.push_back(ts.heap(1).allocate(16 + x % 4000));
          } else if (!live.empty()) {
            const std::size_t k = (x >> 8) % live.size();
            tagheap::free(live[k]);
            live[k] = live.back();
            live.pop_back();
          }
        }
      }
      for (void* p : live) tagheap::free(p);
      ts.detach();
    });
    ThreadState survivor(rt);
    survivor.attach();
    int children_ok = 0;
    constexpr int kForks = 12;
    for (int round = 0; round < kForks; ++round) {
      pause.store(true);
      while (pauses.load() == round) std::this_thread::yield();
      rt.before_fork();
      const test::ChildResult r = test::run_in_child([&] {
        test::ChildChecks c;
        rt.after_fork_child(survivor);
        rt.verify();
        std::vector<void*> mine;
        for (int i = 0; i < 30'000; ++i) mine.push_back(survivor.heap(1).allocate(1024));  // past its segments
        for (void* p : mine) tagheap::free(p);
        rt.verify();
        c.expect(rt.stats().thread_states == 1, "only the survivor remains");
        c.finish();
      });
      rt.after_fork_parent();
      pause.store(false);
      while (resumes.load() == round) std::this_thread::yield();
      children_ok += r.exited && r.exit_code == 0;
      CHECK_MESSAGE((r.exited && r.exit_code == 0), r.describe());
    }
    CHECK(children_ok == kForks);
    stop.store(true);
    churner.join();
    survivor.detach();
    CHECK(rt.stats().total.blocks == 0);
    rt.verify();
  }
}
