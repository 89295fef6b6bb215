// ops.h: an interpreter that reads a byte string as a sequence of allocator
// operations and checks every result against a model.
//
// Shared by the libFuzzer target (fuzz_main.cc, built by build_fuzzer.sh
// with clang) and the corpus replay test (replay_test.cc, built by Bazel), so
// `bazel test //...` replays every checked-in input with the same checks.
//
// Operations (one opcode byte, then argument bytes; a missing byte reads 0):
//   create / destroy a thread state in one of kSlots slots
//   attach a slot to the calling OS thread / detach
//   allocate in a tag (sizes from 0 up to huge), aligned or zeroed
//   free from the owner, from another thread state, with none attached
//   abandon a thread state; then allocating reclaims its pages
//   walk (visit_blocks over all tags) and compare per tag with the model
//   link GC objects, add and drop roots, collect with gc::MarkSweep and
//   compare the freed set and the finalized set with the model's
//   Runtime::verify, Runtime::trim
// Everything runs on the calling OS thread: a free "from another thread
// state" detaches, attaches the other one, frees and restores, which takes
// tagheap's cross-thread path deterministically.
//
// On a mismatch run_ops prints what differs and calls abort(), which is what
// libFuzzer and the replay test both treat as a failure.
#pragma once

#include <cstddef>
#include <cstdint>

namespace tagheap::fuzz {

struct OpStats {
  std::uint64_t ops = 0, allocations = 0, frees = 0, remote_frees = 0, walks = 0, collections = 0,
                freed_by_gc = 0, abandons = 0, thread_states = 0;
};

// Runs the operations of data[0, size); aborts on any disagreement with the
// model. Adds to *stats when given.
void run_ops(const std::uint8_t* data, std::size_t size, OpStats* stats = nullptr);

}  // namespace tagheap::fuzz
