// Tests of gc::World's per-thread roles: nested blocking(), stop() from
// inside blocking(), blocking() and safepoint() by the thread holding the
// stop, misuse reported as errors (never absorbed into the running count),
// and attach()'s strong exception guarantee.
//
// Scenarios that deadlocked before the roles existed run in a forked child
// with an alarm, so a regression fails the test instead of hanging it.
#include <doctest/doctest.h>

#include <unistd.h>

#include <atomic>
#include <chrono>
#include <functional>
#include <stdexcept>
#include <thread>

#include "alloc/tagheap.h"
#include "gc/world.h"
#include "tests/test_util.h"

using namespace tagheap;
using namespace std::chrono_literals;

namespace {

constexpr unsigned kChildAlarmSeconds = 30;

// A mutator that, once attached, runs without polling a safepoint until
// released (a long stretch of mutator work), then polls until told to quit.
// A stop() that returns before `reached` is set returned while it ran.
class Spinner {
 public:
  explicit Spinner(Runtime& rt, gc::World& world) : ts_(rt), world_(world), thread_([this] { run(); }) {
    while (!attached_.load()) std::this_thread::yield();
  }
  ~Spinner() {
    release();
    quit_ = true;
    thread_.join();
  }
  void release() { release_ = true; }
  bool reached() const { return reached_.load(); }

 private:
  void run() {
    world_.attach(ts_);
    attached_ = true;
    while (!release_.load()) {
    }
    reached_ = true;
    while (!quit_.load()) world_.safepoint();
    world_.detach(ts_);
  }
  ThreadState ts_;
  gc::World& world_;
  std::atomic<bool> attached_{false}, release_{false}, reached_{false}, quit_{false};
  std::thread thread_;
};

// Releases the spinner after a while from another thread, so a stop() that
// wrongly returns at once is seen returning before the spinner's safepoint.
// (The delay only gives a wrong stop() the chance to show; a correct one
// passes whatever it is.)
std::thread release_later(Spinner& s) {
  return std::thread([&s] {
    std::this_thread::sleep_for(100ms);
    s.release();
  });
}

// Runs `take` on a thread of its own, which holds what it took until this
// object goes out of scope, and then runs `give_back` there.
class HeldElsewhere {
 public:
  HeldElsewhere(std::function<void()> take, std::function<void()> give_back)
      : thread_([this, take = std::move(take), give_back = std::move(give_back)] {
          take();
          held_ = true;
          while (!done_.load()) std::this_thread::yield();
          give_back();
        }) {
    while (!held_.load()) std::this_thread::yield();
  }
  ~HeldElsewhere() {
    done_ = true;
    thread_.join();
  }

 private:
  std::atomic<bool> held_{false}, done_{false};
  std::thread thread_;
};

// Runs fn in a forked child (single-threaded) that an alarm ends if it hangs.
void in_child(const std::function<void(test::ChildChecks&)>& fn) {
  const test::ChildResult r = test::run_in_child([&] {
    alarm(kChildAlarmSeconds);
    test::ChildChecks c;
    fn(c);
    c.finish();
  });
  CHECK_MESSAGE((r.exited && r.exit_code == 0), r.describe());
}

// The same, with fn run by a mutator of a fresh World, detached after it.
void in_child_as_mutator(const std::function<void(gc::World&, test::ChildChecks&)>& fn) {
  in_child([&](test::ChildChecks& c) {
    Runtime rt;
    gc::World world;
    ThreadState ts(rt);
    world.attach(ts);
    fn(world, c);
    world.detach(ts);
    c.expect(world.running() == 0 && world.attached() == 0, "detached at the end");
  });
}

}  // namespace

TEST_SUITE("gc.world") {
  TEST_CASE("nested blocking() counts the thread out once and back in once") {
    Runtime rt;
    gc::World world;
    ThreadState ts(rt);
    world.attach(ts);
    CHECK(world.running() == 1);
    const int v = world.blocking([&] {
      CHECK(world.running() == 0);
      world.blocking([&] { CHECK(world.running() == 0); });
      CHECK(world.running() == 0);  // still inside the outer level
      return 3;
    });
    CHECK(v == 3);
    CHECK(world.running() == 1);
    world.detach(ts);
    CHECK(world.running() == 0);
  }

  TEST_CASE("a stop() by another thread waits for a running mutator while one sits in nested blocking()") {
    Runtime rt;
    gc::World world;
    Spinner spinner(rt, world);
    ThreadState ts(rt);
    std::atomic<bool> inside{false}, leave{false};
    std::thread nested([&] {
      world.attach(ts);
      world.blocking([&] {
        world.blocking([&] {
          inside = true;
          while (!leave.load()) std::this_thread::yield();
        });
      });
      world.detach(ts);
    });
    while (!inside.load()) std::this_thread::yield();
    CHECK(world.running() == 1);  // the spinner only
    std::thread releaser = release_later(spinner);
    world.stop();
    CHECK(spinner.reached());  // the stop waited for its safepoint
    CHECK(world.running() == 0);
    world.resume();
    releaser.join();
    leave = true;
    nested.join();
  }

  TEST_CASE("stop() from inside blocking() waits for the running mutators, and resume() leaves the caller blocking") {
    Runtime rt;
    gc::World world;
    Spinner spinner(rt, world);
    ThreadState ts(rt);
    std::atomic<bool> reached_at_stop{false};
    std::atomic<int> running_in_stop{-1}, running_after_resume{-1}, running_after_leave{-1};
    std::thread releaser = release_later(spinner);
    std::thread m([&] {
      world.attach(ts);
      world.blocking([&] {
        world.stop();
        reached_at_stop = spinner.reached();
        running_in_stop = world.running();
        world.resume();
        running_after_resume = world.running();
      });
      world.safepoint();
      running_after_leave = world.running();
      world.detach(ts);
    });
    m.join();
    releaser.join();
    CHECK(reached_at_stop.load());
    CHECK(running_in_stop.load() == 0);
    // The spinner is let go by resume(); the caller is still in blocking().
    CHECK(running_after_resume.load() == 1);
    CHECK(running_after_leave.load() == 2);
  }

  TEST_CASE("the thread holding the stop may call safepoint() and blocking() without deadlocking on itself") {
    SUBCASE("a mutator holding the stop") {
      in_child_as_mutator([](gc::World& world, test::ChildChecks& c) {
        world.stop();
        world.safepoint();  // a no-op: the stop is ours
        const int v = world.blocking([&] {
          world.safepoint();
          return world.running() + 10;
        });
        c.expect(v == 10, "blocking() ran f with nothing counted");
        c.expect(world.running() == 0, "still stopped");
        world.resume();
        c.expect(world.running() == 1, "counted again after resume()");
      });
    }
    SUBCASE("a thread that is not a mutator, holding the stop") {
      in_child([](test::ChildChecks& c) {
        gc::World world;
        world.stop();
        world.safepoint();
        c.expect(world.blocking([] { return 5; }) == 5, "blocking() ran f");
        world.resume();
        c.expect(world.running() == 0, "nothing counted");
      });
    }
    SUBCASE("stop() inside blocking(), the stop kept after blocking() ends") {
      in_child_as_mutator([](gc::World& world, test::ChildChecks& c) {
        world.blocking([&] { world.stop(); });
        c.expect(world.running() == 0, "the stopper is not counted");
        world.safepoint();
        world.resume();
        c.expect(world.running() == 1, "counted once resume() ends the stop");
      });
    }
    SUBCASE("blocking() entered holding the stop, the stop ended inside it") {
      in_child_as_mutator([](gc::World& world, test::ChildChecks& c) {
        world.stop();
        world.blocking([&] {
          world.resume();
          c.expect(world.running() == 0, "inside blocking(): not counted");
        });
        c.expect(world.running() == 1, "counted once blocking() ends");
      });
    }
  }

  TEST_CASE("misuse of World is reported and leaves its counts as they were") {
    Runtime rt;
    gc::World world;
    ThreadState ts(rt), other(rt);

    // Not a mutator: blocking() is an error, not a silent count.
    CHECK_THROWS_AS(world.blocking([] {}), std::logic_error);
    CHECK(world.running() == 0);
    CHECK_THROWS_AS(world.detach(ts), std::logic_error);
    CHECK_THROWS_AS(world.resume(), std::logic_error);

    world.attach(ts);
    CHECK_THROWS_AS(world.attach(ts), std::logic_error);     // twice
    CHECK_THROWS_AS(world.attach(other), std::logic_error);  // already a mutator
    gc::World second;
    CHECK_THROWS_AS(second.attach(other), std::logic_error);  // of another World
    CHECK(second.attached() == 0);
    CHECK_THROWS_AS(world.detach(other), std::logic_error);  // not the one attached
    CHECK_THROWS_AS(world.blocking([&] { world.detach(ts); }), std::logic_error);  // inside blocking()
    CHECK(world.running() == 1);
    CHECK(world.attached() == 1);

    world.stop();
    CHECK_THROWS_AS(world.stop(), std::logic_error);  // already held
    bool thrown = false;
    std::thread([&] {
      try {
        world.resume();
      } catch (const std::logic_error&) {
        thrown = true;
      }
    }).join();
    CHECK(thrown);  // only the stopper may resume
    CHECK(world.stop_requested());
    world.resume();
    CHECK(world.running() == 1);
    world.detach(ts);
    CHECK(world.running() == 0);
    CHECK(world.attached() == 0);
  }

  TEST_CASE("safepoint() from a thread that is not a mutator is a fatal error once a stop is on") {
    gc::World world;
    HeldElsewhere stop([&] { world.stop(); }, [&] { world.resume(); });
    // This thread is no mutator and the stop is another thread's: fatal
    // (run in a child, which keeps the abort apart from the test).
    const test::ChildResult r = test::run_in_child([&] {
      alarm(kChildAlarmSeconds);
      world.safepoint();
    });
    CHECK(r.aborted());
    CHECK(r.err.find("safepoint from a thread that is not its mutator") != std::string::npos);
  }

  TEST_CASE("a World::attach that throws leaves counts and role as before, and the thread can attach again") {
    Runtime rt;
    gc::World world;
    ThreadState ts(rt), squatter(rt);
    squatter.attach();  // another ThreadState holds this OS thread
    CHECK_THROWS_AS(world.attach(ts), std::logic_error);
    CHECK(world.running() == 0);
    CHECK(world.attached() == 0);
    CHECK_FALSE(ts.attached());
    squatter.detach();

    {  // ts attached to another OS thread: the same, from the World's side
      HeldElsewhere held([&] { ts.attach(); }, [&] { ts.detach(); });
      CHECK_THROWS_AS(world.attach(ts), std::logic_error);
      CHECK(world.running() == 0);
      CHECK(world.attached() == 0);
    }

    world.attach(ts);  // the thread is no mutator yet: this works
    CHECK(world.running() == 1);
    CHECK(world.attached() == 1);
    world.stop();  // would hang on a leaked count
    world.resume();
    world.detach(ts);
    CHECK(world.attached() == 0);
  }
}
