// libFuzzer entry point: every input is a sequence of operations (ops.h).
// Built by build_fuzzer.sh with clang++ -fsanitize=fuzzer,address,undefined.
#include <cstddef>
#include <cstdint>

#include "tests/fuzz/ops.h"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  tagheap::fuzz::run_ops(data, size);
  return 0;
}
