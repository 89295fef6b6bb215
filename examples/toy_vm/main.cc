// main.cc: the tvm binary (everything is in cli.cc, so tests can run it
// in-process).
#include <unistd.h>

#include <iostream>

#include "examples/toy_vm/cli.h"

int main(int argc, char** argv) {
  std::ios::sync_with_stdio(false);
  return tvm::tvm_main(argc, argv, std::cin, std::cout, std::cerr, isatty(STDIN_FILENO) != 0);
}
