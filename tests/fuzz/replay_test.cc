// Replays every input of the checked-in fuzz corpus (tests/fuzz/corpus/)
// through the same interpreter the fuzzer runs, so `bazel test //...` keeps
// each input the fuzzer found interesting passing, with gcc and in the
// checked flavour. A mismatch aborts the test with the model's message.
#include <doctest/doctest.h>

#include "tests/fuzz/corpus.h"
#include "tests/fuzz/ops.h"

TEST_SUITE("fuzz.replay") {
  TEST_CASE("every corpus input agrees with the model") {
    const auto files = tagheap::fuzz::read_corpus("tests/fuzz/corpus");
    REQUIRE(files.size() >= 24);
    tagheap::fuzz::OpStats stats;
    for (const auto& f : files) {
      CAPTURE(f.name);
      tagheap::fuzz::run_ops(f.bytes.data(), f.bytes.size(), &stats);
    }
    MESSAGE("replayed " << files.size() << " inputs: " << stats.ops << " ops, " << stats.allocations
                        << " allocations, " << stats.frees << " frees (" << stats.remote_frees
                        << " cross-thread), " << stats.walks << " walks, " << stats.collections
                        << " collections freeing " << stats.freed_by_gc);
    CHECK(stats.collections > 0);
    CHECK(stats.remote_frees > 0);
    CHECK(stats.freed_by_gc > 0);
  }
}
