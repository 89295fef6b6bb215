// cli.h: the tvm command line, callable in-process (tests run it so).
//
//   tvm [options] [file.lisp [args...]] [-- args...]
//
// Options may come before or after the file (so `bazel run ... -- file
// --stats` works); other arguments, and all after `--`, are the program's.
// With a file: runs it (exit 0, or 1 after an error, which is printed as
// file:line:col: error: ...). Without: a REPL on `in`, with a prompt only
// when `interactive`. Bad options: a message and exit 2. The arguments
// after the file are (command-line-args). A relative file name is resolved
// against $BUILD_WORKING_DIRECTORY when set (under `bazel run`).
#pragma once

#include <iosfwd>

namespace tvm {

int tvm_main(int argc, const char* const* argv, std::istream& in, std::ostream& out, std::ostream& err,
             bool interactive);

}  // namespace tvm
