// Frees that an attached thread state gathers before they reach the pages
// of other threads (alloc/internal/remote_free_buffer.h): walks and
// find_block never show such a block, they land once the buffer fills or
// the thread state detaches, a page abandoned meanwhile loses nothing, and a
// collection's lazy sweep never frees one of them a second time.
#include <doctest/doctest.h>

#include <condition_variable>
#include <cstdint>
#include <cstring>
#include <functional>
#include <memory>
#include <mutex>
#include <set>
#include <thread>
#include <vector>

#include "alloc/internal/remote_free_buffer.h"
#include "alloc/internal/segment.h"
#include "alloc/os.h"
#include "alloc/tagheap.h"
#include "gc/mark_sweep.h"
#include "gc/visit.h"
#include "tests/test_util.h"

using namespace tagheap;
using tagheap::test::AttachedState;

namespace {

// A thread with its own attached thread state that runs `frees`, then
// waits, still attached, until release(): meanwhile its gathered frees have
// not landed unless something flushed them.
class IdleFreer {
 public:
  IdleFreer(Runtime& rt, std::function<void()> frees) : thread_([this, &rt, frees = std::move(frees)] {
      ThreadState ts(rt);
      ts.attach();
      frees();
      std::unique_lock lock(mu_);
      done_ = true;
      cv_.notify_all();
      cv_.wait(lock, [&] { return released_; });
      if (before_detach_) before_detach_();
      ts.detach();
    }) {
    std::unique_lock lock(mu_);
    cv_.wait(lock, [&] { return done_; });
  }
  // Lets the thread detach (its frees land) and end; `before` runs on it first.
  void release(std::function<void()> before = {}) {
    {
      std::lock_guard lock(mu_);
      before_detach_ = std::move(before);
      released_ = true;
      cv_.notify_all();
    }
    thread_.join();
  }
  ~IdleFreer() {
    if (thread_.joinable()) release();
  }

 private:
  std::mutex mu_;
  std::condition_variable cv_;
  bool done_ = false, released_ = false;
  std::function<void()> before_detach_;
  std::thread thread_;
};

std::size_t blocks_of_tag(Runtime& rt, Tag tag) {
  std::size_t n = 0;
  tagheap::visit_blocks(rt, TagSet{tag}, [&](const BlockRef&) { ++n; });
  return n;
}

// Buffers the runtime has made, and how many of them thread states hold.
struct BufferCount {
  std::size_t made = 0, taken = 0;
};
BufferCount buffers_of(Runtime& rt) {
  BufferCount c;
  for (internal::RemoteFreeBuffer* b = rt.core().remote_free_buffers.load(); b != nullptr; b = b->next) {
    ++c.made;
    c.taken += b->taken.load() ? 1 : 0;
  }
  return c;
}

internal::Page* page_of(void* p) {
  internal::Segment* seg = internal::Segment::of(p);
  return seg->page_of(p);
}

}  // namespace

TEST_SUITE("alloc.remote_free_buffer") {
  TEST_CASE("a walk never shows a block another thread freed and still holds in its buffer") {
    Runtime rt;
    AttachedState owner(rt);
    std::vector<void*> blocks;
    for (int i = 0; i < 100; ++i) blocks.push_back(owner.heap(0).allocate(48));
    IdleFreer freer(rt, [&] {
      for (int i = 0; i < 100; i += 2) tagheap::free(blocks[i]);
    });
    // Gathered, not landed: the owner's page has no thread free announced.
    CHECK(page_of(blocks[0])->thread_frees_pending() == 0);
    owner.ts.detach();  // the world is stopped: the owner is out of the allocator
    CHECK(blocks_of_tag(rt, 0) == 50);
    std::set<void*> shown;
    tagheap::visit_blocks(rt, TagSet{0}, [&](const BlockRef& b) { shown.insert(b.block); });
    for (int i = 0; i < 100; ++i) CHECK(shown.count(blocks[i]) == (i % 2 == 1 ? 1u : 0u));
    owner.ts.attach();
    freer.release();
    for (int i = 1; i < 100; i += 2) tagheap::free(blocks[i]);
  }

  TEST_CASE("find_block finds no block another thread freed and still holds in its buffer") {
    Runtime rt;
    AttachedState owner(rt);
    std::vector<void*> blocks;
    for (int i = 0; i < 64; ++i) blocks.push_back(owner.heap(0).allocate(32));
    IdleFreer freer(rt, [&] {
      for (int i = 0; i < 64; i += 3) tagheap::free(blocks[i]);
    });
    CHECK(page_of(blocks[0])->thread_frees_pending() == 0);
    for (int i = 0; i < 64; ++i) {
      INFO("block " << i);
      void* interior = static_cast<char*>(blocks[i]) + 5;
      CHECK(tagheap::find_block(interior, rt) == (i % 3 == 0 ? nullptr : blocks[i]));
    }
    freer.release();
    for (int i = 0; i < 64; ++i)
      if (i % 3 != 0) tagheap::free(blocks[i]);
  }

  TEST_CASE("gathered frees land when the thread state detaches, announced one add per page") {
    Runtime rt;
    AttachedState owner(rt);
    std::vector<void*> blocks;
    for (int i = 0; i < 40; ++i) blocks.push_back(owner.heap(0).allocate(64));
    internal::Page* page = page_of(blocks[0]);
    IdleFreer freer(rt, [&] {
      for (int i = 0; i < 40; ++i) tagheap::free(blocks[i]);
    });
    CHECK(page->thread_frees_pending() == 0);
    freer.release([&] { CHECK(page->thread_frees_pending() == 0); });  // detach flushes
    CHECK(page->thread_frees_pending() == 40);
    CHECK(page->collect_thread_free() == 40);
    CHECK(page->used == 0);
  }

  TEST_CASE("a full buffer lands by itself, so the owner gets its blocks back without a walk") {
    Runtime rt;
    AttachedState owner(rt);
    const std::size_t n = 3 * internal::RemoteFreeBuffer::kMaxBlocks + 100;
    std::vector<void*> blocks;
    for (std::size_t i = 0; i < n; ++i) blocks.push_back(owner.heap(0).allocate(16));
    IdleFreer freer(rt, [&] {
      for (void* p : blocks) tagheap::free(p);
    });
    std::size_t pending = 0;
    std::set<internal::Page*> pages;
    for (void* p : blocks) pages.insert(page_of(p));
    for (internal::Page* page : pages) pending += page->thread_frees_pending();
    // All but what the last buffer holds (at most kMaxBlocks) have landed.
    CHECK(pending + internal::RemoteFreeBuffer::kMaxBlocks >= n);
    CHECK(pending < n);
    // The owner reuses them: allocating as many again takes no new page.
    std::vector<void*> again;
    for (std::size_t i = 0; i < pending; ++i) again.push_back(owner.heap(0).allocate(16));
    for (void* p : again) CHECK(pages.count(page_of(p)) == 1);
    freer.release();
    for (void* p : again) tagheap::free(p);
  }

  TEST_CASE("frees gathered into a page abandoned meanwhile land under the pool's lock, losing nothing") {
    Runtime rt;
    std::vector<void*> blocks;
    auto owner = std::make_unique<ThreadState>(rt);
    std::thread([&] {
      owner->attach();
      for (int i = 0; i < 200; ++i) blocks.push_back(owner->heap(0).allocate(96));
      owner->detach();
    }).join();
    IdleFreer freer(rt, [&] {
      for (void* p : blocks) tagheap::free(p);
    });
    owner.reset();  // abandons the pages: closed to thread frees
    freer.release();  // the flush finds them closed
    const RuntimeStats s = rt.stats();
    CHECK(s.tags[0].blocks == 0);
    CHECK(s.tags[0].pages == 0);
    CHECK(rt.verify() >= 0u);
  }

  TEST_CASE("a block freed twice by one thread state is fatal at the second free") {
    Runtime rt;
    AttachedState owner(rt);
    void* keep = owner.heap(0).allocate(64);
    void* p = owner.heap(0).allocate(64);
    const test::ChildResult r = test::run_in_child([&] {
      std::thread([&] {
        AttachedState other(rt);
        tagheap::free(p);
        tagheap::free(p);
      }).join();
    });
    INFO(r.describe());
    CHECK(r.aborted_naming(p, "double free"));
    tagheap::free(p);
    tagheap::free(keep);
  }

  TEST_CASE("a thread state takes a buffer only at its first free into another thread's page") {
    Runtime rt;
    AttachedState owner(rt);
    std::vector<std::unique_ptr<ThreadState>> idle;
    for (int i = 0; i < 100; ++i) {
      idle.push_back(std::make_unique<ThreadState>(rt));
      std::thread([&] {
        idle.back()->attach();
        tagheap::free(idle.back()->heap(0).allocate(64));  // its own page: no buffer
        idle.back()->detach();
      }).join();
    }
    CHECK(buffers_of(rt).made == 0);
    void* p = owner.heap(0).allocate(64);
    void* keep = owner.heap(0).allocate(64);
    IdleFreer freer(rt, [&] { tagheap::free(p); });
    CHECK(buffers_of(rt).made == 1);
    CHECK(buffers_of(rt).taken == 1);
    CHECK(page_of(p)->thread_frees_pending() == 0);  // gathered, in the buffer just taken
    freer.release();
    CHECK(buffers_of(rt).taken == 0);  // given back at detach
    CHECK(page_of(p)->thread_frees_pending() == 1);
    tagheap::free(keep);
  }

  TEST_CASE("buffers follow the thread states attached: a thousand in turn share one") {
    Runtime rt;
    AttachedState owner(rt);
    std::vector<void*> blocks;
    for (int i = 0; i < 1000; ++i) blocks.push_back(owner.heap(0).allocate(32));
    std::vector<std::unique_ptr<ThreadState>> states;
    for (int i = 0; i < 1000; ++i) states.push_back(std::make_unique<ThreadState>(rt));
    std::thread([&] {
      for (int i = 0; i < 1000; ++i) {
        states[i]->attach();
        tagheap::free(blocks[i]);
        states[i]->detach();
      }
    }).join();
    CHECK(buffers_of(rt).made == 1);
    CHECK(buffers_of(rt).taken == 0);
    std::size_t pending = 0;
    std::set<internal::Page*> pages;
    for (void* b : blocks) pages.insert(page_of(b));
    for (internal::Page* page : pages) pending += page->thread_frees_pending();
    CHECK(pending == 1000);  // every free landed at its detach
  }

  TEST_CASE("frees no buffer would hold, of large blocks or from a walk's visitor, take no buffer") {
    Runtime rt;
    AttachedState owner(rt);
    void* large = owner.heap(0).allocate(internal::kSmallBlockMax + 1);
    void* small = owner.heap(0).allocate(64);
    void* keep = owner.heap(0).allocate(64);
    owner.ts.detach();
    std::thread([&] {
      AttachedState other(rt);
      tagheap::free(large);  // lands at once
      // A visitor's free lands at once, as the walk rules say.
      tagheap::visit_blocks(rt, TagSet{0}, [&](const BlockRef& b) {
        if (b.block == small) tagheap::free(small);
      });
    }).join();
    CHECK(blocks_of_tag(rt, 0) == 1);  // keep: the frees landed
    owner.ts.attach();
    CHECK(buffers_of(rt).made == 0);
    tagheap::free(keep);
  }

  TEST_CASE("with no memory for a buffer, frees from another thread land one by one and lose nothing") {
    Runtime rt;
    AttachedState owner(rt);
    std::vector<void*> blocks;
    for (int i = 0; i < 100; ++i) blocks.push_back(owner.heap(0).allocate(48));
    std::thread([&] {
      AttachedState other(rt);
      os::refuse_after(0);
      for (void* b : blocks) tagheap::free(b);
      os::refuse_after(-1);
      CHECK(page_of(blocks[0])->thread_frees_pending() == 100);  // landed at once
    }).join();
    CHECK(buffers_of(rt).made == 0);
    CHECK(blocks_of_tag(rt, 0) == 0);
  }

  TEST_CASE("a thread state of another runtime frees one by one and takes no buffer of this one") {
    Runtime rt, other_rt;
    AttachedState owner(rt);
    void* p = owner.heap(0).allocate(64);
    void* keep = owner.heap(0).allocate(64);
    std::thread([&] {
      AttachedState other(other_rt);
      tagheap::free(p);
      CHECK(page_of(p)->thread_frees_pending() == 1);  // landed at once
    }).join();
    CHECK(buffers_of(rt).made == 0);
    CHECK(buffers_of(other_rt).made == 0);
    tagheap::free(keep);
  }

  TEST_CASE("after fork() the child lands an orphaned thread state's gathered frees and takes its buffer back") {
    Runtime rt;
    AttachedState owner(rt);
    std::vector<void*> blocks;
    for (int i = 0; i < 64; ++i) blocks.push_back(owner.heap(0).allocate(48));
    IdleFreer freer(rt, [&] {
      for (int i = 0; i < 64; i += 2) tagheap::free(blocks[i]);
    });
    REQUIRE(buffers_of(rt).taken == 1);
    const test::ChildResult r = test::run_in_child([&] {
      rt.after_fork_child(owner.ts);  // the freer's thread is gone here
      if (page_of(blocks[0])->thread_frees_pending() != 32) std::_Exit(2);  // landed
      if (buffers_of(rt).taken != 0) std::_Exit(3);                         // given back
      owner.ts.detach();
      if (blocks_of_tag(rt, 0) != 32) std::_Exit(4);
      owner.ts.attach();
      for (int i = 1; i < 64; i += 2) tagheap::free(blocks[i]);
    });
    INFO(r.describe());
    CHECK(r.exited);
    CHECK(r.exit_code == 0);
    freer.release();
    for (int i = 1; i < 64; i += 2) tagheap::free(blocks[i]);
  }

  TEST_CASE("after fork() a slot left half-written by a thread that died in a free is skipped, the others land") {
    Runtime rt;
    AttachedState owner(rt);
    std::vector<void*> blocks;
    for (int i = 0; i < 200; ++i) blocks.push_back(owner.heap(0).allocate(48));
    internal::Page* page = page_of(blocks[0]);
    const auto index_of = [&](void* b) {
      return static_cast<std::uint32_t>((reinterpret_cast<std::uintptr_t>(b) - page->blocks_start) / page->block_size);
    };
    // blocks[199]'s bitmap word holds none of the blocks freed before it:
    // its free took a fresh slot.
    const std::uint32_t last = index_of(blocks[199]);
    REQUIRE(page_of(blocks[199]) == page);
    REQUIRE((last >> 6) != (index_of(blocks[60]) >> 6));
    IdleFreer freer(rt, [&] {
      for (int i = 0; i < 62; i += 2) tagheap::free(blocks[i]);
      internal::t_remote_frees->note_interrupted_for_testing(page, last);  // died here, in blocks[199]'s free
    });
    const auto free_the_rest = [&] {
      for (int i = 1; i < 62; i += 2) tagheap::free(blocks[i]);
      for (int i = 62; i < 200; ++i) tagheap::free(blocks[i]);  // blocks[199] too: still allocated
    };
    const test::ChildResult r = test::run_in_child([&] {
      rt.after_fork_child(owner.ts);  // must not follow the half-written slot's page
      if (page->thread_frees_pending() != 31) std::_Exit(2);  // every completed free landed
      owner.ts.detach();
      if (blocks_of_tag(rt, 0) != 169) std::_Exit(3);  // and the interrupted one never happened
      owner.ts.attach();
      free_the_rest();
      owner.ts.detach();
      if (blocks_of_tag(rt, 0) != 0) std::_Exit(4);
      owner.ts.attach();
    });
    INFO(r.describe());
    CHECK(r.exited);
    CHECK(r.exit_code == 0);
    freer.release();
    free_the_rest();
  }

  TEST_CASE("with debug_fill a gathered free fills the block with 0xDD at once") {
    RuntimeOptions o;
    o.debug_fill = true;
    Runtime rt(o);
    AttachedState owner(rt);
    void* keep = owner.heap(0).allocate(64);
    auto* p = static_cast<unsigned char*>(owner.heap(0).allocate(64));
    IdleFreer freer(rt, [&] { tagheap::free(p); });
    CHECK(test::all_bytes(p, 64, 0xDD));
    freer.release();
    tagheap::free(keep);
  }
}

// A lazily swept collector and gathered frees: a block of a GC tag freed on
// another thread before the first collection, unreachable, must not be
// found dead and freed by the sweep, then freed again when the buffer lands.
namespace {
struct NoRoots {
  void roots(gc::Tracer&) {}
  void trace(void*, gc::Tracer&) {}
};
}  // namespace

TEST_SUITE("alloc.remote_free_buffer") {
  TEST_CASE("a lazy sweep never frees again a block whose free another thread gathered") {
    RuntimeOptions o;
    o.gc_tags = TagSet{1};
    Runtime rt(o);
    AttachedState owner(rt);
    std::vector<void*> blocks;
    for (int i = 0; i < 50; ++i) blocks.push_back(owner.heap(1).allocate(32));
    void* p = blocks[7];
    const test::ChildResult r = test::run_in_child([&] {
      IdleFreer freer(rt, [&] { tagheap::free(p); });
      NoRoots model;
      gc::MarkSweep<NoRoots> collector(rt, model, gc::Options{.markers = 1});
      collector.collect();  // every block unreachable: all dead, swept lazily
      for (int i = 0; i < 200; ++i) (void)owner.heap(1).allocate(32);  // sweeps the page
      freer.release();  // lands the free of p, after the sweep
      (void)rt.stats();  // collects the owner's thread frees
      rt.verify();
    });
    INFO(r.describe());
    CHECK(r.exited);
    CHECK(r.exit_code == 0);
    for (void* b : blocks) tagheap::free(b);
  }
}
