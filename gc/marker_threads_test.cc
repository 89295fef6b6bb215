// Tests of the marking hand-off between the collecting thread and its
// helpers (internal/marker_threads.h, internal/mark_worklist.h): marking
// ends when the markers that joined are idle, never waiting for a helper the
// OS has not scheduled, and a helper that started is always waited for.
#include <doctest/doctest.h>

#include <atomic>
#include <chrono>
#include <thread>
#include <vector>

#include "gc/counting_new.h"
#include "gc/internal/mark_worklist.h"
#include "gc/internal/marker_threads.h"

using tagheap::gc::internal::MarkerThreads;
using tagheap::gc::internal::MarkWorklist;

// This binary's operator new counts its calls (counting_new.h): a
// collector may allocate in its pause only at a cost (libgc maps every
// block then).

TEST_SUITE("gc.marker_threads") {
  TEST_CASE("marking ends when marker 0 runs dry and no helper has joined; a helper coming later takes no part") {
    MarkWorklist w;
    w.reset();
    std::vector<void*> stack;
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
      std::vector<void*> mine;
      while (w.take(mine)) {
        helper_got_work = true;
        mine.clear();  // "traced"
      }
    });
    // Marker 0 waits for the helper to be idle, then gives it half its stack.
    std::vector<void*> stack(4 * MarkWorklist::kMinShare, nullptr);
    while (!w.wants_work()) std::this_thread::yield();
    w.share(stack);
    CHECK(stack.size() == 2 * MarkWorklist::kMinShare);
    stack.clear();
    while (!helper_got_work) std::this_thread::yield();  // the idle helper took the chunk
    std::vector<void*> more;
    CHECK_FALSE(w.take(more));  // over only once the helper is idle again
    helper.join();
  }

  TEST_CASE("sharing reuses the buffer a take emptied: no allocation once the markers have traded a chunk") {
    MarkWorklist w;
    w.reset();
    std::vector<void*> giver(4 * MarkWorklist::kMinShare, nullptr);
    std::vector<void*> taker;
    taker.reserve(4 * MarkWorklist::kMinShare);  // a drained stack keeps its capacity
    w.share(giver);                              // the first chunk is allocated
    REQUIRE(w.take(taker));                      // the taker's empty buffer becomes a spare
    REQUIRE(giver.size() == 2 * MarkWorklist::kMinShare);
    const long before = tagheap::test::new_calls();
    w.share(giver);  // refills the spare (it used to allocate a chunk per share)
    CHECK(tagheap::test::new_calls() == before);
    CHECK(giver.size() == MarkWorklist::kMinShare);
    std::vector<void*> next;
    REQUIRE(w.take(next));
    CHECK(next.size() == MarkWorklist::kMinShare);
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
}
