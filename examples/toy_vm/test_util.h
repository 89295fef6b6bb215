// test_util.h: running tvm in-process from doctest suites.
//
// lisp(src) writes src to $TEST_TMPDIR/t.lisp and runs `tvm --gc-budget=64K
// --verify t.lisp` (resolved through BUILD_WORKING_DIRECTORY, so errors
// read "t.lisp:L:C: error: ..."): a small budget makes collections happen
// inside every test, and --verify checks the heap after each one.
//
// With TVM_TEST_INCREMENTAL=1 (the *_incremental targets), --incremental
// the same way.
// With TVM_TEST_GENERATIONAL=1 in the environment (the *_generational
// test targets), every run adds --generational: the same suites then check
// minor collections and write barriers (--verify checks each minor one).
#pragma once

#include <cstdlib>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include "examples/toy_vm/cli.h"

namespace tvm::test {

struct Run {
  int rc;
  std::string out, err;
};

inline bool env_flag(const char* name) {
  const char* v = std::getenv(name);
  return v != nullptr && std::string(v) == "1";
}
inline bool generational() { return env_flag("TVM_TEST_GENERATIONAL"); }
inline bool incremental() { return env_flag("TVM_TEST_INCREMENTAL"); }

inline Run run_tvm(const std::vector<std::string>& args, const std::string& stdin_text = "") {
  std::vector<const char*> argv{"tvm"};
  if (generational()) argv.push_back("--generational");
  if (incremental()) argv.push_back("--incremental");
  for (const std::string& a : args) argv.push_back(a.c_str());
  std::istringstream in(stdin_text);
  std::ostringstream out, err;
  const int rc = tvm_main(static_cast<int>(argv.size()), argv.data(), in, out, err, false);
  return {rc, out.str(), err.str()};
}

inline std::string tmpdir() {
  const char* d = std::getenv("TEST_TMPDIR");
  return d != nullptr ? d : "/tmp";
}

inline Run lisp(const std::string& src, std::vector<std::string> extra = {}) {
  {
    std::ofstream f(tmpdir() + "/t.lisp");
    f << src;
  }
  setenv("BUILD_WORKING_DIRECTORY", tmpdir().c_str(), 1);
  std::vector<std::string> args{"--gc-budget=64K", "--verify"};
  args.insert(args.end(), extra.begin(), extra.end());
  args.push_back("t.lisp");
  return run_tvm(args);
}

// The output of a program that must succeed.
inline std::string out_of(const std::string& src) {
  Run r = lisp(src);
  if (r.rc != 0) return "rc=" + std::to_string(r.rc) + " err=" + r.err + " out=" + r.out;
  return r.out;
}

}  // namespace tvm::test
