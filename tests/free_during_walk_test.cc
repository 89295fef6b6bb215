// A free from a thread other than the walking one, while a walk or a
// collection's sweep runs, breaks the walking rules (the world must be
// stopped). Checked builds report it, naming the pointer; release builds
// must not let it corrupt the page: the sweep used to count a block that was
// freed meanwhile a second time, wrapping the page's `used` to 4294967295
// and stranding the page for good.
//
// Each scenario runs in a forked child (threads are made there): a thread
// owns (or abandoned) a page of GC blocks that are all garbage; the main
// thread collects, and the first finalizer asks the other thread to free a
// block that the sweep is about to free too.
#include <doctest/doctest.h>

#include <condition_variable>
#include <cstdio>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "alloc/internal/config.h"
#include "alloc/tagheap.h"
#include "gc/mark_sweep.h"
#include "gc/visit.h"
#include "tests/test_util.h"

using namespace tagheap;
using tagheap::test::ChildChecks;
using tagheap::test::ChildResult;
using tagheap::test::run_in_child;

namespace {

constexpr Tag kGc = 1;

// A one-shot signal between two threads.
class Signal {
 public:
  void raise() {
    std::lock_guard lock(mu_);
    raised_ = true;
    cv_.notify_all();
  }
  void wait() {
    std::unique_lock lock(mu_);
    cv_.wait(lock, [&] { return raised_; });
  }

 private:
  std::mutex mu_;
  std::condition_variable cv_;
  bool raised_ = false;
};

// No roots: every block is garbage. The first finalizer makes the other
// thread free `victim` (a later block of the same bitmap word) and waits.
struct Model {
  void* victim = nullptr;
  Signal* free_it = nullptr;
  Signal* freed = nullptr;
  bool asked = false;
  void roots(gc::Tracer&) {}
  void trace(void*, gc::Tracer&) {}
  void finalize(void*) noexcept {
    if (asked) return;
    asked = true;
    free_it->raise();
    freed->wait();
  }
};

enum class Owner { kOtherThread, kAbandoned };

// In the child: the scenario, then checks (release builds get this far).
void free_from_other_thread_during_sweep(Owner owner) {
  ChildChecks checks;
  Runtime rt({.gc_tags = {kGc}});
  std::vector<void*> blocks;
  Signal allocated, free_it, freed, done;
  std::thread other([&] {
    auto ts = std::make_unique<ThreadState>(rt);
    ts->attach();
    for (int i = 0; i < 40; ++i) blocks.push_back(ts->heap(kGc).allocate(64));
    if (owner == Owner::kAbandoned) {
      ts->detach();
      ts.reset();  // its page waits in the pool
    }
    allocated.raise();
    free_it.wait();
    std::fprintf(stderr, "victim %p\n", blocks[30]);
    tagheap::free(blocks[30]);  // the owner's local free, or one into the abandoned page
    freed.raise();
    done.wait();
    if (ts) ts->detach();
  });
  allocated.wait();
  Model model{blocks[30], &free_it, &freed};
  gc::MarkSweep<Model> collector(rt, model);
  collector.collect();
  done.raise();
  other.join();
  // The page's count stays right: nothing live, nothing wrapped.
  const RuntimeStats s = rt.stats();
  checks.expect(s.tags[kGc].blocks == 0, "no live block is left");
  visit_gc_blocks(rt, [&](const BlockRef&) { checks.expect(false, "a walk finds no block"); });
  rt.verify();
  rt.trim();
  checks.expect(rt.stats().tags[kGc].pages <= 1, "the emptied page goes back (or stays its heap's last)");
  checks.finish();
}

std::string victim_of(const ChildResult& r) {
  const auto at = r.err.find("victim ");
  if (at == std::string::npos) return "?";
  return r.err.substr(at + 7, r.err.find('\n', at) - at - 7);
}

}  // namespace

TEST_SUITE("gc.walk_rules") {
  TEST_CASE("a free from another thread during a sweep is reported in checked builds and never wraps used") {
    for (Owner owner : {Owner::kOtherThread, Owner::kAbandoned}) {
      CAPTURE(static_cast<int>(owner));
      const ChildResult r = run_in_child([&] { free_from_other_thread_during_sweep(owner); });
      INFO(r.describe());
      if (internal::kChecked) {
        CHECK(r.aborted());
        CHECK(r.err.find("free(" + victim_of(r) + ") from a thread that is not walking") != std::string::npos);
      } else {
        CHECK(r.exited);
        CHECK(r.exit_code == 0);
      }
    }
  }
}
