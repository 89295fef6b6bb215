// Out of memory for real: in a forked child, RLIMIT_AS is set a little above
// the process's current size, so the kernel refuses mmap (and malloc) as it
// would on a full machine, not just tagheap's os::refuse_after hook. Then:
//   - allocation of every size kind returns nullptr: no crash, no abort;
//   - every block allocated before still holds its fill pattern;
//   - gc::MarkSweep still runs and frees the garbage, after which allocation
//     succeeds again within the same limit;
//   - Runtime::verify() passes.
// The child reports on stderr and exits 0 when all held; the parent checks
// that and the report's figures. Sanitizers reserve terabytes of address
// space (shadow memory), so the test is tagged no_asan and no_tsan.
#include <doctest/doctest.h>

#include <sys/resource.h>
#include <unistd.h>

#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <exception>
#include <new>
#include <string>
#include <vector>

#include "alloc/internal/config.h"
#include "alloc/tagheap.h"
#include "gc/mark_sweep.h"
#include "gc/visit.h"
#include "tests/test_util.h"

using namespace tagheap;
using tagheap::test::AttachedState;
using tagheap::test::ChildChecks;
using tagheap::test::ChildResult;
using tagheap::test::run_in_child;

namespace {

constexpr Tag kGc = 1;
constexpr Tag kData = 0;

// A size of each kind (internal/config.h): small pages, large pages, huge.
constexpr std::size_t kSmall = 64;
constexpr std::size_t kMedium = 6000;
constexpr std::size_t kLarge = 100 * 1024;
constexpr std::size_t kHuge = 3 * 1024 * 1024 / 2;
static_assert(kMedium <= internal::kSmallBlockMax && kLarge > internal::kSmallBlockMax);
static_assert(kLarge <= internal::kLargeBlockMax && kHuge > internal::kLargeBlockMax);

// A GC object: up to four children, then a payload filled with a pattern.
struct Node {
  std::uint32_t id;
  std::uint32_t n;
  Node* child[4];
  std::size_t size;
  std::uint8_t byte;
  unsigned char* payload() { return reinterpret_cast<unsigned char*>(this + 1); }
  std::size_t payload_size() const { return size - sizeof(Node); }
};

struct Model {
  std::vector<Node*>* root_set;
  void roots(gc::Tracer& t) {
    for (Node* r : *root_set) t.mark(r);
  }
  void trace(void* obj, gc::Tracer& t) {
    auto* node = static_cast<Node*>(obj);
    for (std::uint32_t i = 0; i < node->n; ++i) t.mark(node->child[i]);
  }
};

Node* make_node(Heap& heap, std::size_t size, std::uint32_t id) {
  auto* node = static_cast<Node*>(heap.allocate(size));
  if (node == nullptr) return nullptr;
  node->id = id;
  node->n = 0;
  node->size = size;
  node->byte = test::pattern_of(node, id);
  test::fill(node->payload(), node->payload_size(), node->byte);
  return node;
}

bool intact(Node* node) { return test::filled(node->payload(), node->payload_size(), node->byte); }

// The process's virtual size.
std::size_t vm_size() { return test::statm_bytes(0); }

// Allocates `size` blocks of the GC tag (garbage: nothing refers to them)
// until the heap returns nullptr; returns how many it got. The cap only
// guards against a limit that never bites (the child then fails).
std::size_t fill_until_null(Heap& heap, std::size_t size, std::size_t cap) {
  std::size_t got = 0;
  while (got < cap) {
    void* p = heap.allocate(size);
    if (p == nullptr) return got;
    static_cast<Node*>(p)->n = 0;  // garbage, but traceable if a bug kept it
    ++got;
  }
  return cap + 1;
}

struct Graph {
  std::vector<Node*> live;      // every reachable node
  std::vector<Node*> roots;     // a few of them
  std::vector<void*> data;      // live tag-0 blocks (size in data_size)
  std::vector<std::size_t> data_size;
  std::vector<std::uint8_t> data_byte;
  std::size_t garbage = 0;      // unreachable GC nodes made before the limit
};

// A tree of nodes of every size kind (wide, so the mark stack grows), plus
// as many unreachable nodes, plus live plain-data blocks on tag 0.
void build(AttachedState& ts, Graph& g, ChildChecks& c) {
  const std::size_t sizes[] = {kSmall, kMedium, kLarge, kHuge};
  const std::size_t counts[] = {6000, 600, 60, 4};
  std::uint32_t id = 1;
  Node* root = make_node(ts.heap(kGc), kSmall, id++);
  g.live.push_back(root);
  g.roots.push_back(root);
  std::size_t parent = 0;
  for (std::size_t k = 0; k < 4; ++k) {
    for (std::size_t i = 0; i < counts[k]; ++i) {
      Node* node = make_node(ts.heap(kGc), sizes[k], id++);
      c.expect(node != nullptr, "allocation before the limit");
      if (node == nullptr) return;
      while (g.live[parent]->n == 4) ++parent;
      Node* p = g.live[parent];
      p->child[p->n++] = node;
      g.live.push_back(node);
      // The same amount of garbage, some of it pointing at live nodes.
      Node* junk = make_node(ts.heap(kGc), sizes[k], id++);
      c.expect(junk != nullptr, "allocation before the limit");
      if (junk == nullptr) return;
      junk->child[junk->n++] = node;
      ++g.garbage;
    }
  }
  for (std::size_t i = 0; i < 500; ++i) {
    const std::size_t size = sizes[i % 3] + i;
    void* p = ts.heap(kData).allocate(size);
    c.expect(p != nullptr, "tag-0 allocation before the limit");
    if (p == nullptr) return;
    const std::uint8_t byte = test::pattern_of(p, 7777 + i);
    test::fill(p, size, byte);
    g.data.push_back(p);
    g.data_size.push_back(size);
    g.data_byte.push_back(byte);
  }
}

bool everything_intact(const Graph& g) {
  for (Node* n : g.live)
    if (!intact(n)) return false;
  for (std::size_t i = 0; i < g.data.size(); ++i)
    if (!test::filled(g.data[i], g.data_size[i], g.data_byte[i])) return false;
  return true;
}

void set_limit(std::size_t headroom, ChildChecks& c) {
  const std::size_t now = vm_size();
  c.expect(now > 0, "read /proc/self/statm");
  struct rlimit lim{};
  lim.rlim_cur = lim.rlim_max = now + headroom;
  c.expect(setrlimit(RLIMIT_AS, &lim) == 0, "setrlimit(RLIMIT_AS)");
  std::fprintf(stderr, "oom: VmSize %zu MiB, limit %zu MiB\n", now >> 20, (now + headroom) >> 20);
}

// Fills the headroom, coarsest size first so that each kind's path to
// nullptr runs with the finer kinds still able to fit.
void exhaust(AttachedState& ts, ChildChecks& c) {
  const struct {
    const char* name;
    std::size_t size, cap;
  } kinds[] = {{"huge", kHuge, 1000}, {"large", kLarge, 100000}, {"medium", kMedium, 1000000},
               {"small", kSmall, 10000000}};
  std::size_t total = 0;
  for (const auto& k : kinds) {
    const std::size_t got = fill_until_null(ts.heap(kGc), k.size, k.cap);
    c.expect(got <= k.cap, "allocation reaches nullptr under RLIMIT_AS");
    total += got * k.size;
    std::fprintf(stderr, "oom: %s blocks until nullptr: %zu\n", k.name, got);
  }
  c.expect(total > 0, "the headroom held some blocks");
  // Now every kind fails, zeroed or not, and on a tag never used before.
  for (const auto& k : kinds) {
    c.expect(ts.heap(kGc).allocate(k.size) == nullptr, "allocate after exhaustion gives nullptr");
    c.expect(ts.heap(kGc).allocate_zeroed(k.size) == nullptr, "allocate_zeroed after exhaustion gives nullptr");
  }
  c.expect(ts.heap(kGc).allocate(std::size_t{1} << 30) == nullptr, "a 1 GiB block gives nullptr");
}

// After the collection: every kind allocates again, within the same limit.
void allocate_again(AttachedState& ts, ChildChecks& c) {
  std::vector<void*> got;
  got.reserve(8);
  for (std::size_t size : {kSmall, kMedium, kLarge, kHuge}) {
    void* p = ts.heap(kGc).allocate(size);
    c.expect(p != nullptr, "allocation succeeds again after the collection");
    if (p != nullptr) {
      test::fill(p, size, 0x3C);
      c.expect(test::filled(p, size, 0x3C), "the new block is usable");
      got.push_back(p);
    }
  }
  for (void* p : got) tagheap::free(p);
}

// The scenario; `fresh_collector`: the collector is made only after memory
// ran out (its mark stack must grow then), rather than warmed by an earlier
// collection as a VM's would be.
void run_scenario(bool fresh_collector, bool exhaust_malloc) {
  ChildChecks c;
  Runtime rt({.gc_tags = {kGc}});
  AttachedState ts(rt);
  ts.heap(kData);
  Graph g;
  g.live.reserve(10000);
  build(ts, g, c);
  Model model{&g.roots};
  gc::MarkSweep<Model> warm(rt, model);
  if (!fresh_collector) {
    // Collect once with the full graph so the mark stack has its capacity,
    // then make the garbage again.
    const gc::CollectStats s = warm.collect();
    c.expect(s.live_blocks == g.live.size(), "the warm-up collection keeps the graph");
    const std::size_t garbage = g.garbage;
    g.garbage = 0;
    for (std::size_t i = 0; i < garbage; ++i) {
      if (make_node(ts.heap(kGc), i % 2 ? kSmall : kMedium, 900000 + static_cast<std::uint32_t>(i)) == nullptr) break;
      ++g.garbage;
    }
  }
  c.expect(everything_intact(g), "patterns intact before the limit");
  std::vector<void*> mallocs;
  mallocs.reserve(1 << 20);

  set_limit(std::size_t{48} << 20, c);
  exhaust(ts, c);
  if (exhaust_malloc) {
    // Take what glibc's arenas still have, so that nothing can grow.
    while (mallocs.size() < mallocs.capacity()) {
      void* p = std::malloc(4096);
      if (p == nullptr) break;
      mallocs.push_back(p);
    }
    while (mallocs.size() < mallocs.capacity()) {
      void* p = std::malloc(32);
      if (p == nullptr) break;
      mallocs.push_back(p);
    }
    std::fprintf(stderr, "oom: malloc blocks until nullptr: %zu\n", mallocs.size());
    // A heap for a tag not used before is made with operator new.
    try {
      c.expect(ts.ts.heap(5).allocate(kSmall) == nullptr, "a new tag's heap gives nullptr");
    } catch (const std::exception& e) {
      std::fprintf(stderr, "oom: ThreadState::heap(new tag) threw %s\n", e.what());
    }
  }
  c.expect(everything_intact(g), "patterns intact after allocation failed");

  gc::CollectStats s{};
  bool collected = false;
  gc::MarkSweep<Model> fresh(rt, model);  // its constructor allocates nothing
  try {
    s = (fresh_collector ? fresh : warm).collect();
    collected = true;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "oom: MarkSweep::collect threw %s\n", e.what());
  }
  c.expect(collected, "the collection runs out of memory without throwing");
  if (collected) {
    std::fprintf(stderr, "oom: collection: %zu live, %zu freed (%zu MiB)\n", s.live_blocks, s.freed_blocks,
                 s.freed_bytes >> 20);
    c.expect(s.live_blocks == g.live.size(), "the collection keeps exactly the live graph");
    c.expect(s.freed_blocks > g.garbage, "the collection frees the garbage and the filler");
    c.expect(everything_intact(g), "patterns intact after the collection");
    for (void* p : mallocs) std::free(p);
    mallocs.clear();
    allocate_again(ts, c);
    c.expect(rt.verify() > 0, "Runtime::verify passes");
    std::size_t gc_blocks = 0;
    visit_gc_blocks(rt, [&](const BlockRef&) { ++gc_blocks; });
    c.expect(gc_blocks == g.live.size(), "a walk finds exactly the live graph");
  }
  c.finish();
}

// Memory the pool holds ahead of need, under a limit that leaves no room
// for a new segment: the populator's reserve (faulted in) and spare, and an
// empty segment, are given back when a map fails, and the allocation that
// asked succeeds.
void held_memory_is_given_back() {
  ChildChecks c;
  {
    RuntimeOptions o;
    o.gc_tags = {kGc};
    o.huge_os_pages = true;
    o.populate_ahead_above = 1;  // the populator starts with the first segment
    Runtime rt(o);
    AttachedState ts(rt);
    void* first = ts.heap(kData).allocate(kSmall);
    c.expect(first != nullptr, "a first block");
    bool held = false;
    for (int i = 0; i < 20'000 && !held; ++i) {
      held = rt.core().segments.populated_reserve_for_testing() != nullptr &&
             rt.core().segments.spare_for_testing() != nullptr;
      if (!held) usleep(1000);
    }
    c.expect(held, "the populator holds a reserve and a spare");
    set_limit(/*headroom=*/256 << 10, c);
    void* huge = ts.heap(kData).allocate(kHuge);  // a segment of its own, 1.5 MiB: only with what was held
    c.expect(huge != nullptr, "a huge block once the held segments are given back");
    c.expect(rt.core().segments.populated_reserve_for_testing() == nullptr, "the reserve was given back");
    void* large = ts.heap(kData).allocate(kLarge);  // a segment of large pages, in what is left
    c.expect(large != nullptr, "a large block too");
    tagheap::free(huge);
    tagheap::free(large);
    tagheap::free(first);
    rt.verify();
  }
  std::fprintf(stderr, "oom: held memory given back\n");
  c.finish();
}

void expect_child_ok(const ChildResult& r) {
  INFO(r.describe());
  CHECK(r.exited);
  CHECK(r.exit_code == 0);
  CHECK(r.err.find("FAILED") == std::string::npos);
  CHECK(r.err.find("huge blocks until nullptr") != std::string::npos);
  CHECK(r.err.find("small blocks until nullptr") != std::string::npos);
  CHECK(r.err.find("oom: collection:") != std::string::npos);
  MESSAGE(r.err);
}

}  // namespace

TEST_SUITE("alloc.oom") {
  TEST_CASE("under RLIMIT_AS, allocation gives nullptr, nothing is lost, and a collection makes room again") {
    expect_child_ok(run_in_child([] { run_scenario(/*fresh_collector=*/false, /*exhaust_malloc=*/false); }));
  }

  // With malloc exhausted as well, a collector made now has no mark stack
  // to grow: it marks through rescans instead, and heaps of tags first used
  // now come from the room each ThreadState reserved when it was made.
  TEST_CASE("a map that fails first gives back the segments held ahead of need, then succeeds") {
    const ChildResult r = run_in_child([] { held_memory_is_given_back(); });
    INFO(r.describe());
    CHECK(r.exited);
    CHECK(r.exit_code == 0);
    CHECK(r.err.find("oom: held memory given back") != std::string::npos);
  }

  TEST_CASE("with malloc exhausted too, a collector made after memory ran out still collects") {
    expect_child_ok(run_in_child([] { run_scenario(/*fresh_collector=*/true, /*exhaust_malloc=*/true); }));
  }
}
