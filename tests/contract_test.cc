// The public contract of DESIGN.md, compiled and exercised as outside code
// would use it: names, signatures and meanings that must not change.
#include <doctest/doctest.h>

#include <cstdint>
#include <stdexcept>
#include <type_traits>
#include <vector>

#include "alloc/tagheap.h"
#include "gc/mark_sweep.h"
#include "gc/visit.h"

namespace th = tagheap;

static_assert(std::is_same_v<th::Tag, std::uint8_t>);
static_assert(th::kTagCount == 16);
static_assert(th::TagSet{1, 3}.contains(3) && !th::TagSet{1, 3}.contains(2));
static_assert(th::TagSet{0, 15}.bits() == 0x8001);
static_assert(std::is_same_v<decltype(th::RuntimeOptions{}.gc_tags), th::TagSet>);
static_assert(std::is_same_v<decltype(th::RuntimeOptions{}.debug_fill), bool>);
static_assert(!std::is_copy_constructible_v<th::Runtime> && !std::is_move_constructible_v<th::Runtime>);
static_assert(!std::is_convertible_v<th::RuntimeOptions, th::Runtime>, "explicit");
static_assert(!std::is_copy_constructible_v<th::ThreadState> && !std::is_move_constructible_v<th::ThreadState>);
static_assert(!std::is_convertible_v<th::Runtime&, th::ThreadState>, "explicit");
static_assert(!std::is_constructible_v<th::Heap>, "heaps are made by thread states only");
static_assert(std::is_nothrow_invocable_r_v<void*, decltype(&th::Heap::allocate), th::Heap&, std::size_t>);
static_assert(std::is_nothrow_invocable_r_v<void*, decltype(&th::Heap::allocate_zeroed), th::Heap&, std::size_t>);
static_assert(std::is_same_v<decltype(th::free(nullptr)), void> && noexcept(th::free(nullptr)));
static_assert(std::is_same_v<decltype(th::usable_size(nullptr)), std::size_t>);
static_assert(std::is_same_v<decltype(th::tag_of(nullptr)), th::Tag>);
static_assert(std::is_same_v<decltype(th::BlockRef{}.block), void*> && std::is_same_v<decltype(th::BlockRef{}.size), std::size_t> &&
              std::is_same_v<decltype(th::BlockRef{}.tag), th::Tag>);

// "Collector, second part": the names outside code is written against.
static_assert(th::TagSet::all().contains(0) && th::TagSet::all().contains(15));
static_assert(std::is_nothrow_invocable_r_v<th::ThreadState*, decltype(&th::ThreadState::current)>);
static_assert(std::is_nothrow_invocable_r_v<void*, decltype(&th::Heap::allocate_aligned), th::Heap&, std::size_t,
                                            std::size_t>);
static_assert(std::is_nothrow_invocable_r_v<void*, decltype(&th::Heap::reallocate), th::Heap&, void*, std::size_t>);
static_assert(std::is_same_v<decltype(th::gc::Options{}.heap_growth), double>);
static_assert(std::is_same_v<decltype(th::gc::Options{}.min_budget_bytes), std::size_t>);
static_assert(std::is_same_v<decltype(th::gc::Options{}.markers), unsigned>);
static_assert(std::is_same_v<decltype(th::gc::Options{}.parallel_mark_bytes), std::size_t>);
static_assert(std::is_same_v<decltype(th::gc::Options{}.generational), bool>);
static_assert(std::is_same_v<decltype(th::gc::Options{}.nursery_growth), double>);
static_assert(std::is_same_v<decltype(th::gc::Options{}.leaf_tags), th::TagSet>);
static_assert(th::gc::Options{}.leaf_tags.empty(), "every GC block is traced unless the VM says otherwise");
static_assert(th::gc::Options{}.markers == 0 && !th::gc::Options{}.generational);
static_assert(th::gc::Options{}.min_budget_bytes > 0 && th::gc::Options{}.heap_growth > 0, "never a zero budget");
static_assert(std::is_invocable_v<decltype(&th::gc::Tracer::mark), th::gc::Tracer&, void*>);
static_assert(std::is_same_v<decltype(std::declval<th::gc::Tracer&>().mark_conservative(std::uintptr_t{})), bool>);
static_assert(std::is_same_v<decltype(std::declval<th::gc::Tracer&>().mark_conservative_if(
                                 std::uintptr_t{}, [](std::size_t) { return true; })),
                             bool>);
// The forms for a scan that holds one lookup scope around many words.
static_assert(std::is_same_v<decltype(std::declval<th::gc::Tracer&>().mark_conservative(
                                 std::declval<const th::BlockLookupScope&>(), std::uintptr_t{})),
                             bool>);
static_assert(std::is_same_v<decltype(std::declval<th::gc::Tracer&>().mark_conservative_if(
                                 std::declval<const th::BlockLookupScope&>(), std::uintptr_t{},
                                 [](std::size_t) { return true; })),
                             bool>);
static_assert(std::is_invocable_v<decltype(&th::gc::Tracer::mark_weak), th::gc::Tracer&, void**>);
static_assert(std::is_invocable_v<decltype(&th::gc::Tracer::mark_ephemeron), th::gc::Tracer&, void*, void*>);
static_assert(std::is_invocable_r_v<bool, decltype(&th::gc::Liveness::is_live), const th::gc::Liveness&,
                                    const void*>);

namespace {
struct ListModel {
  std::vector<void*> roots_;
  std::vector<void*> finalized;
  void roots(th::gc::Tracer& t) {
    for (void* r : roots_) t.mark(r);
  }
  void trace(void* obj, th::gc::Tracer& t) { t.mark(*static_cast<void**>(obj)); }
  void finalize(void* obj) noexcept { finalized.push_back(obj); }
};
}  // namespace

TEST_SUITE("contract") {
  TEST_CASE("the contract's calls mean what DESIGN.md says") {
    CHECK_THROWS_AS((th::TagSet{16}), std::invalid_argument);
    th::Runtime rt({.gc_tags = {1}});
    CHECK(rt.options().gc_tags.contains(1));
    CHECK_FALSE(rt.options().debug_fill);
    th::ThreadState ts(rt);
    ts.attach();
    CHECK_THROWS_AS(ts.heap(16), std::invalid_argument);
    th::Heap& gc_heap = ts.heap(1);
    CHECK(gc_heap.tag() == 1);
    void* a = gc_heap.allocate(0);
    void* b = gc_heap.allocate(0);
    CHECK((a != nullptr && b != nullptr && a != b));  // size 0 gives a unique block
    auto* z = static_cast<unsigned char*>(gc_heap.allocate_zeroed(100));
    for (int i = 0; i < 100; ++i) CHECK(z[i] == 0);
    CHECK(th::usable_size(z) >= 100);
    CHECK(th::tag_of(z) == 1);
    void* plain = ts.heap(0).allocate(10);
    CHECK(gc_heap.allocate(std::size_t{1} << 62) == nullptr);  // nullptr on failure, never UB

    // A chain a -> z -> nullptr, with b unreachable.
    *static_cast<void**>(a) = z;
    *reinterpret_cast<void**>(z) = nullptr;
    std::size_t seen = 0;
    th::visit_gc_blocks(rt, [&](const th::BlockRef& r) {
      CHECK(r.tag == 1);
      ++seen;
    });
    CHECK(seen == 3);
    std::size_t first_only = 0;
    th::visit_blocks(rt, th::TagSet{0, 1}, [&](const th::BlockRef&) { return ++first_only < 1; });
    CHECK(first_only == 1);

    ListModel model;
    model.roots_ = {a};
    th::gc::MarkSweep<ListModel> collector(rt, model);
    static_assert(noexcept(collector.collection_due()) && noexcept(collector.write_barrier(nullptr)));
    static_assert(std::is_same_v<decltype(collector.collect()), th::gc::CollectStats> &&
                  std::is_same_v<decltype(collector.collect_full()), th::gc::CollectStats>);
    CHECK(th::ThreadState::current() == &ts);
    th::gc::CollectStats s = collector.collect();
    CHECK(s.live_blocks == 2);
    CHECK(s.freed_blocks == 1);
    CHECK(s.freed_bytes == th::usable_size(a));
    CHECK(s.live_bytes == th::usable_size(a) + th::usable_size(z));
    CHECK(model.finalized == std::vector<void*>{b});
    th::free(plain);  // the non-GC block was never touched
    th::free(a);
    th::free(z);
    ts.detach();
    ts.abandon();
  }
}
