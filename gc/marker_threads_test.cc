// Tests of the marking hand-off between the collecting thread and its
// helpers (internal/marker_threads.h, internal/mark_worklist.h): marking
// ends when the markers that joined are idle, never waiting for a helper the
// OS has not scheduled, and a helper that started is always waited for.
#include <doctest/doctest.h>
#include <pthread.h>
#include <sched.h>

#include <atomic>
#include <chrono>
#include <thread>
#include <vector>

#include "gc/counting_new.h"
#include "gc/internal/mark_worklist.h"
#include "gc/internal/marker_threads.h"

using tagheap::gc::internal::MarkerThreads;
using tagheap::gc::internal::MarkStack;
using tagheap::gc::internal::MarkWorklist;

namespace {
// A stack of n entries: 1, 2, ... n as pointers, oldest first.
MarkStack numbered_stack(std::size_t n) {
  MarkStack s;
  s.reserve(n);
  for (std::size_t i = 1; i <= n; ++i) s.push_unchecked(reinterpret_cast<void*>(i));
  return s;
}
}  // namespace

// This binary's operator new counts its calls (counting_new.h): a
// collector may allocate in its pause only at a cost (libgc maps every
// block then).

TEST_SUITE("gc.marker_threads") {
  TEST_CASE("marking ends when marker 0 runs dry and no helper has joined; a helper coming later takes no part") {
    MarkWorklist w;
    w.reset();
    MarkStack stack;
    CHECK_FALSE(w.take(stack));  // returns at once: nobody else took part (it used to wait for every marker)
    CHECK_FALSE(w.join());       // too late: marking is over
    CHECK(w.joined() == 1);
    w.reset();
    CHECK(w.join());  // in time: it takes part, and marking now waits for it
    CHECK(w.joined() == 2);
  }

  TEST_CASE("a joined helper is waited for and gets the work marker 0 shares") {
    MarkWorklist w;
    w.reset();
    REQUIRE(w.join());
    std::atomic<bool> helper_got_work{false};
    std::thread helper([&] {
      MarkStack mine;
      while (w.take(mine)) {
        helper_got_work = true;
        mine.clear();  // "traced"
      }
    });
    // Marker 0 waits for the helper to be idle, then gives it half its stack.
    MarkStack stack = numbered_stack(4 * MarkWorklist::kMinShare);
    while (!w.wants_work()) std::this_thread::yield();
    w.share(stack);
    CHECK(stack.size() == 2 * MarkWorklist::kMinShare);
    stack.clear();
    while (!helper_got_work) std::this_thread::yield();  // the idle helper took the chunk
    MarkStack more;
    CHECK_FALSE(w.take(more));  // over only once the helper is idle again
    helper.join();
  }

  TEST_CASE("sharing reuses the buffer a take emptied: no allocation once the markers have traded a chunk") {
    MarkWorklist w;
    w.reset();
    MarkStack giver = numbered_stack(4 * MarkWorklist::kMinShare);
    MarkStack taker;
    taker.reserve(4 * MarkWorklist::kMinShare);  // a drained stack keeps its capacity
    w.share(giver);                              // the first chunk is allocated
    REQUIRE(w.take(taker));                      // the taker's empty buffer becomes a spare
    REQUIRE(giver.size() == 2 * MarkWorklist::kMinShare);
    const long before = tagheap::test::new_calls();
    w.share(giver);  // refills the spare (it used to allocate a chunk per share)
    CHECK(tagheap::test::new_calls() == before);
    CHECK(giver.size() == MarkWorklist::kMinShare);
    MarkStack next;
    REQUIRE(w.take(next));
    CHECK(next.size() == MarkWorklist::kMinShare);
  }

  TEST_CASE("a share hands over the oldest half of a stack, in order, and the stack keeps the newest") {
    MarkWorklist w;
    w.reset();
    const std::size_t n = 4 * MarkWorklist::kMinShare + 3;
    MarkStack giver = numbered_stack(n);
    w.share(giver);
    const std::size_t half = n / 2;
    REQUIRE(giver.size() == n - half);
    for (std::size_t i = 0; i < giver.size(); ++i)
      CHECK(giver.begin()[i] == reinterpret_cast<void*>(half + 1 + i));
    MarkStack taker;
    REQUIRE(w.take(taker));
    REQUIRE(taker.size() == half);
    for (std::size_t i = 0; i < half; ++i) CHECK(taker.begin()[i] == reinterpret_cast<void*>(i + 1));
    // The stacks keep working as stacks: the newest entry on top.
    CHECK(giver.back() == reinterpret_cast<void*>(n));
    giver.pop_back();
    CHECK(giver.back() == reinterpret_cast<void*>(n - 1));
  }

  TEST_CASE("run() returns when job 0 does, after every helper job that started, and never during one") {
    MarkerThreads threads;
    const unsigned n = threads.start(4);
    REQUIRE(n >= 1);
    struct Context {
      std::atomic<int> started{0}, finished{0};
    };
    for (int round = 0; round < 200; ++round) {
      Context c;
      threads.run(
          n,
          [](void* context, unsigned marker) noexcept {
            auto& ctx = *static_cast<Context*>(context);
            if (marker == 0) return;  // marker 0 finishes at once: late helpers skip the round
            ctx.started.fetch_add(1);
            std::this_thread::sleep_for(std::chrono::microseconds(200));
            ctx.finished.fetch_add(1);
          },
          &c);
      // Every helper job that began has ended; none begins after run().
      CHECK(c.started.load() == c.finished.load());
      CHECK(c.started.load() <= static_cast<int>(n) - 1);
      std::this_thread::sleep_for(std::chrono::microseconds(300));
      CHECK(c.started.load() == c.finished.load());
    }
  }

  // What each helper saw of its own CPUs while it ran a job.
  struct HelperCpus {
    std::atomic<int> started{0};
    unsigned helpers = 0;
    cpu_set_t mask[8];
    int cpu[8];
  };
  // Job 0 waits (a bounded while) for every helper to have started, so each
  // one reports; a helper reports its affinity mask and the CPU it ran on.
  void report_cpus(void* context, unsigned marker) noexcept {
    auto& c = *static_cast<HelperCpus*>(context);
    if (marker == 0) {
      const auto give_up = std::chrono::steady_clock::now() + std::chrono::seconds(30);
      while (c.started.load() < static_cast<int>(c.helpers) && std::chrono::steady_clock::now() < give_up)
        std::this_thread::yield();
      return;
    }
    CPU_ZERO(&c.mask[marker]);
    sched_getaffinity(0, sizeof c.mask[marker], &c.mask[marker]);
    c.cpu[marker] = sched_getcpu();
    c.started.fetch_add(1);
  }
  // The first CPU of `set`.
  int first_cpu(const cpu_set_t& set) {
    for (int i = 0; i < CPU_SETSIZE; ++i)
      if (CPU_ISSET(i, &set)) return i;
    return -1;
  }
  // Runs fn on a thread pinned to `cpu`.
  template <class F>
  void on_thread_pinned_to(int cpu, F fn) {
    std::thread t([&] {
      cpu_set_t one;
      CPU_ZERO(&one);
      CPU_SET(cpu, &one);
      REQUIRE(pthread_setaffinity_np(pthread_self(), sizeof one, &one) == 0);
      fn();
    });
    t.join();
  }

  TEST_CASE("helpers started by a collector pinned to one CPU run on another CPU, not time-sliced with it") {
    cpu_set_t mine;
    CPU_ZERO(&mine);
    REQUIRE(sched_getaffinity(0, sizeof mine, &mine) == 0);
    if (CPU_COUNT(&mine) < 2) {
      MESSAGE("skipped: this thread may use one CPU");
      return;
    }
    MarkerThreads threads;  // made on this thread: the helpers may use its CPUs
    const int pinned = first_cpu(mine);
    HelperCpus c;
    on_thread_pinned_to(pinned, [&] {
      REQUIRE(threads.start(2) == 2);  // created by the pinned thread: they inherit its one CPU
      c.helpers = 1;
      threads.run(2, &report_cpus, &c);
    });
    REQUIRE(c.started.load() == 1);
    CHECK(c.cpu[1] != pinned);  // it ran beside marker 0, not after it on the same CPU
    CHECK_FALSE(CPU_ISSET(pinned, &c.mask[1]));
    CHECK(CPU_COUNT(&c.mask[1]) == CPU_COUNT(&mine) - 1);
  }

  TEST_CASE("with more markers than CPUs, helpers started by a pinned collector may use every CPU of the collector's owner") {
    cpu_set_t mine;
    CPU_ZERO(&mine);
    REQUIRE(sched_getaffinity(0, sizeof mine, &mine) == 0);
    const unsigned n = static_cast<unsigned>(CPU_COUNT(&mine)) + 1;  // no CPU to spare for each helper
    if (n - 1 > 7 || n < 3) {
      MESSAGE("skipped: needs 2 to 7 CPUs");
      return;
    }
    MarkerThreads threads;
    HelperCpus c;
    on_thread_pinned_to(first_cpu(mine), [&] {
      REQUIRE(threads.start(n) == n);
      c.helpers = n - 1;
      threads.run(n, &report_cpus, &c);
    });
    REQUIRE(c.started.load() == static_cast<int>(n) - 1);
    for (unsigned i = 1; i < n; ++i) CHECK(CPU_EQUAL(&c.mask[i], &mine));  // not the pinned thread's one CPU
  }
}
