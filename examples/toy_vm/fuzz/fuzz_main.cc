// libFuzzer entry point for the toy VM's reader (read_input.h).
// Built by build_fuzzer.sh with clang++ -fsanitize=fuzzer,address,undefined.
#include <cstddef>
#include <cstdint>

#include "examples/toy_vm/fuzz/read_input.h"

// Inputs of odd length run the Vm generationally (write barriers checked).
extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  tvm::fuzz::read_input(data, size, nullptr, size % 2 == 1);
  return 0;
}
