// read_input.h: what the toy VM's reader fuzzer checks for one input.
//
// Shared by the libFuzzer target (fuzz_main.cc, built by build_fuzzer.sh with
// clang) and the corpus replay test (replay_test.cc, built by Bazel with gcc).
//
// For each input, in a fresh Vm (small GC budget, so reading collects):
//   - the Reader reads every form, or stops at a VmError that must carry a
//     line and column inside the input and a short message;
//   - every form read prints (write) to text that reads back to a form that
//     prints the same (the printer's output is the reader's input);
//   - the heap verifies (Runtime::verify) after every collection and a final one;
//     with GcMode::kGenerational, the Vm runs with --generational and each
//     minor collection is checked too; with kIncremental, --incremental and
//     each cycle is checked (a missing write barrier in the reader's list
//     building would be fatal).
// Forms are not evaluated: the VM has no step or allocation limit, so a
// fuzzed program could loop or allocate without bound.
// A violation prints what differs and calls abort().
#pragma once

#include <cstddef>
#include <cstdint>

namespace tvm::fuzz {

struct ReadStats {
  std::uint64_t inputs = 0, forms = 0, errors = 0, incomplete = 0, round_trips = 0;
};

enum class GcMode { kStopTheWorld, kGenerational, kIncremental };

void read_input(const std::uint8_t* data, std::size_t size, ReadStats* stats = nullptr,
                GcMode mode = GcMode::kStopTheWorld);

}  // namespace tvm::fuzz
