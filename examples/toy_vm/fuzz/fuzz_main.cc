// libFuzzer entry point for the toy VM's reader (read_input.h).
// Built by build_fuzzer.sh with clang++ -fsanitize=fuzzer,address,undefined.
#include <cstddef>
#include <cstdint>

#include "examples/toy_vm/fuzz/read_input.h"

// The input's length modulo 3 picks the collector's mode: stop-the-world,
// generational or incremental (write barriers checked in the last two).
extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  tvm::fuzz::read_input(data, size, nullptr, static_cast<tvm::fuzz::GcMode>(size % 3));
  return 0;
}
