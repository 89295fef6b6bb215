// What Tracer::mark does with a pointer that is not the start of a block of
// its runtime. The contract asks for a block's start (or nullptr); the
// checked build holds a model to it with a fatal error naming the pointer,
// found before the mark trusts the pointer to lead to a page (the release
// build finds the page from the pointer's segment unit without a test).
// Blocks of a non-GC tag of the same runtime are part of the contract:
// ignored, in both builds.
#include <doctest/doctest.h>
#include <unistd.h>

#include <cstdint>
#include <cstdlib>
#include <string>

#include "alloc/tagheap.h"
#include "gc/mark_sweep.h"
#include "gc/visit.h"
#include "tests/test_util.h"

using namespace tagheap;
using test::ChildResult;
using test::run_in_child;

namespace {

constexpr Tag kGc = 1, kData = 2;

// Marks `root` (whatever it is) from roots(); traces nothing.
struct OneRootModel {
  void* root = nullptr;
  void roots(gc::Tracer& t) { t.mark(root); }
  void trace(void*, gc::Tracer&) {}
  void finalize(void*) noexcept {}
};

void* g_other_runtime_block;  // a block of a runtime the child does not collect

}  // namespace

TEST_SUITE("gc.tracer_checks") {
  TEST_CASE("checked builds: marking a pointer that is not a block of the runtime is fatal, naming it") {
    if (!internal::kChecked) return;  // the release build trusts the model (gc/README.md)
    struct Bad {
      const char* what;
      void* (*make)(Heap&);
      const char* message;
    };
    const Bad cases[] = {
        {"an interior pointer",
         [](Heap& h) -> void* { return static_cast<char*>(h.allocate(64)) + 8; },
         "not the start of a live block"},
        {"a block freed by hand",
         [](Heap& h) -> void* {
           void* p = h.allocate(64);
           tagheap::free(p);
           return p;
         },
         "not the start of a live block"},
        {"malloc's memory", [](Heap&) -> void* { return std::malloc(64); }, "not the start of a live block"},
        {"an address above user space",
         [](Heap&) -> void* { return reinterpret_cast<void*>(std::uintptr_t{0xffff800000001000}); },
         "not the start of a live block"},
        {"a block of another runtime", [](Heap&) { return g_other_runtime_block; }, "a block of another runtime"},
    };
    // Made before the children: a second thread state cannot be attached
    // on a thread that has one.
    Runtime other({.gc_tags = {kGc}});
    void* other_block;
    {
      test::AttachedState other_ts(other);
      other_block = other_ts.heap(kGc).allocate(64);
    }
    g_other_runtime_block = other_block;
    for (const Bad& bad : cases) {
      CAPTURE(bad.what);
      // The child prints the pointer it made before collecting, so the
      // parent can look for it in the fatal message.
      const ChildResult r = run_in_child([&bad] {
        Runtime rt({.gc_tags = {kGc}});
        test::AttachedState ts(rt);
        OneRootModel model;
        model.root = bad.make(ts.heap(kGc));
        std::fprintf(stderr, "root=%p\n", model.root);
        gc::MarkSweep ms(rt, model, gc::Options{.markers = 1});
        ms.collect();
        _exit(0);
      });
      INFO(r.describe());
      REQUIRE(r.aborted());
      const std::size_t at = r.err.find("root=");
      REQUIRE(at != std::string::npos);
      const std::string ptr = r.err.substr(at + 5, r.err.find('\n', at) - at - 5);
      CHECK(r.err.find("Tracer::mark(" + ptr + ")") != std::string::npos);
      CHECK(r.err.find(bad.message) != std::string::npos);
    }
    tagheap::free(other_block);
  }

  TEST_CASE("a block of a non-GC tag of the same runtime is ignored, in every build") {
    Runtime rt({.gc_tags = {kGc}});
    test::AttachedState ts(rt);
    OneRootModel model;
    void* data = ts.heap(kData).allocate(64);
    model.root = data;
    gc::MarkSweep ms(rt, model, gc::Options{.markers = 1});
    const gc::CollectStats s = ms.collect();
    CHECK(s.live_blocks == 0);
    CHECK(tag_of(data) == kData);  // not freed: not the collector's
    tagheap::free(data);
  }
}
