// libFuzzer entry point for the toy VM's reader (read_input.h).
// Built by build_fuzzer.sh with clang++ -fsanitize=fuzzer,address,undefined.
#include <cstddef>
#include <cstdint>

#include "examples/toy_vm/fuzz/read_input.h"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  tvm::fuzz::read_input(data, size);
  return 0;
}
