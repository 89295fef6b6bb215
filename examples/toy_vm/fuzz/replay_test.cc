// Replays every input of the reader fuzzer's checked-in corpus
// (examples/toy_vm/fuzz/corpus/) through the same entry point the fuzzer
// runs, with gcc and in the checked flavour. A violation aborts the test with
// read_input's message.
#include <doctest/doctest.h>

#include "examples/toy_vm/fuzz/read_input.h"
#include "tests/fuzz/corpus.h"

TEST_SUITE("toy_vm.fuzz.replay") {
  TEST_CASE("every corpus input reads, or fails with a located error, and round-trips through the printer") {
    const auto files = tagheap::fuzz::read_corpus("examples/toy_vm/fuzz/corpus");
    REQUIRE(files.size() >= 20);
    using tvm::fuzz::GcMode;
    GcMode mode = GcMode::kStopTheWorld;
    SUBCASE("stop-the-world") {}
    SUBCASE("generational, each minor collection verified") { mode = GcMode::kGenerational; }
    SUBCASE("incremental, each cycle verified") { mode = GcMode::kIncremental; }
    CAPTURE(static_cast<int>(mode));
    tvm::fuzz::ReadStats stats;
    for (const auto& f : files) {
      CAPTURE(f.name);
      tvm::fuzz::read_input(f.bytes.data(), f.bytes.size(), &stats, mode);
    }
    MESSAGE("replayed " << stats.inputs << " inputs: " << stats.forms << " forms, " << stats.round_trips
                        << " round trips, " << stats.errors << " syntax errors, " << stats.incomplete
                        << " incomplete");
    CHECK(stats.round_trips > 0);
    CHECK(stats.errors > 0);
    CHECK(stats.incomplete > 0);
  }
}
