// Tests of the incremental cycle's pacer (gc/internal/incremental_pacer.h):
// where a cycle starts and how it spreads its steps when the marker is
// slower than planned. The pacer is arithmetic on allocation counts and
// measured rates, so these tests feed it numbers, not a heap.
#include <doctest/doctest.h>

#include <cstdint>

#include "gc/internal/incremental_pacer.h"

using tagheap::gc::internal::IncrementalPacer;

namespace {

constexpr std::uint64_t kMiB = std::uint64_t{1} << 20;
constexpr std::uint64_t kStepNs = 400'000;

}  // namespace

TEST_SUITE("gc.incremental_pacer") {
  TEST_CASE("a cycle starts half-way through the budget, and a step is due every step_bytes after it") {
    IncrementalPacer p;
    p.idle(10 * kMiB, 40 * kMiB);
    CHECK(!p.due(29 * kMiB));
    CHECK(p.due(30 * kMiB));
    p.start(30 * kMiB, 4 * kMiB, kStepNs);
    CHECK(p.limit() == 50 * kMiB);  // the budget's end: room enough for the steps
    CHECK(p.step_ns() == kStepNs);
    CHECK(!p.due(30 * kMiB + p.step_bytes() - 1));
    CHECK(p.due(30 * kMiB + p.step_bytes()));
  }

  TEST_CASE("a marker slower than planned widens the window to half the live estimate before its steps get longer") {
    // The first cycle of a freshly built 100 MiB heap under the minimum
    // budget, whose first steps mark at a hundredth of the guessed rate (as
    // measured on rewire, on a VM): the window widens first, then the steps
    // stretch up to kMaxStretch times, then the window widens to the whole
    // live estimate, and only then do the steps get longer still.
    const std::uint64_t live = 100 * kMiB;
    IncrementalPacer p;
    p.idle(0, 8 * kMiB);
    std::uint64_t allocated = 4 * kMiB;
    REQUIRE(p.due(allocated));
    p.start(allocated, live, kStepNs);
    const std::uint64_t start = allocated;
    CHECK(p.step_ns() == kStepNs);
    std::uint64_t last_limit = p.limit();
    bool stretched = false, stretched_past = false;
    for (int i = 0; i < 40; ++i) {
      allocated += p.step_bytes();
      p.step_done(allocated, 4096, 1'000'000);  // 0.004 bytes per ns
      CAPTURE(i);
      CHECK(p.limit() >= last_limit);  // the window never shrinks
      last_limit = p.limit();
      CHECK(p.limit() - start <= live);
      if (p.step_ns() > kStepNs) {
        stretched = true;
        CHECK(p.limit() - start >= live / 2);  // widened as far as it may first
      }
      if (p.step_ns() > IncrementalPacer::kMaxStretch * kStepNs) {
        stretched_past = true;
        CHECK(p.limit() - start == live);
      }
    }
    CHECK(stretched);
    CHECK(stretched_past);
  }

  TEST_CASE("a marker as fast as planned keeps its steps and the budget's window") {
    IncrementalPacer p;
    p.idle(0, 150 * kMiB);
    std::uint64_t allocated = 75 * kMiB;
    p.start(allocated, 100 * kMiB, kStepNs);
    const std::uint64_t limit = p.limit();
    CHECK(limit == 150 * kMiB);
    for (int i = 0; i < 50; ++i) {
      allocated += p.step_bytes();
      p.step_done(allocated, 400 * 1024, kStepNs);  // about 1 byte per ns, the guess
      CHECK(p.step_ns() == kStepNs);
      CHECK(p.limit() == limit);
    }
  }
}
