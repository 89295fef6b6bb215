// programs_test.cc: every program in programs/ under --verify with a small
// --gc-budget (so collections really happen), against its .expected output;
// and the command line's options and exit codes.
#include <doctest/doctest.h>

#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>

#include "examples/toy_vm/test_util.h"

namespace fs = std::filesystem;
using tvm::test::run_tvm;

namespace {
const std::string kDir = "examples/toy_vm/programs";

std::string slurp(const fs::path& p) {
  std::ifstream f(p);
  std::stringstream s;
  s << f.rdbuf();
  return s.str();
}

// Lines of (heap-stats) vary with the budget and the scheduling: dropped.
std::string without_heap_stats(const std::string& text) {
  std::istringstream in(text);
  std::string line, out;
  while (std::getline(in, line))
    if (line.rfind("heap-stats:", 0) != 0 && line.rfind("  ", 0) != 0) out += line + "\n";
  return out;
}

// "; test-args: a b" in a program gives its command-line arguments.
std::vector<std::string> test_args(const std::string& src) {
  std::vector<std::string> args;
  const auto at = src.find("; test-args:");
  if (at == std::string::npos) return args;
  std::istringstream in(src.substr(at + 12, src.find('\n', at) - at - 12));
  for (std::string a; in >> a;) args.push_back(a);
  return args;
}
}  // namespace

TEST_SUITE("toy_vm.programs") {
  TEST_CASE("every program runs under --verify with a 64 KiB budget and prints what it should") {
    int programs = 0;
    for (const auto& entry : fs::directory_iterator(kDir)) {
      if (entry.path().extension() != ".lisp") continue;
      ++programs;
      const fs::path expected = fs::path(entry.path()).replace_extension(".expected");
      CAPTURE(entry.path().string());
      REQUIRE(fs::exists(expected));
      std::vector<std::string> args{"--verify", "--gc-budget=64K", "--stats", entry.path().string()};
      for (const std::string& a : test_args(slurp(entry.path()))) args.push_back(a);
      const auto r = run_tvm(args);
      CHECK(r.rc == 0);
      CHECK(without_heap_stats(r.out) == slurp(expected));
      // Collections really happened.
      CHECK(r.err.find("collections: 0 ") == std::string::npos);
      CHECK(r.err.find("collections: ") != std::string::npos);
    }
    CHECK(programs >= 4);
  }

  TEST_CASE("the demo leaves abandoned pages behind a thread and the stats say so") {
    const auto r = run_tvm({"--stats", kDir + "/demo.lisp"});
    CHECK(r.rc == 0);
    CHECK(r.out.find("thread left 1000 vectors") != std::string::npos);
    CHECK(r.err.find("pages abandoned: 0,") == std::string::npos);
    CHECK(r.err.find("pause ms: min") != std::string::npos);
    CHECK(r.err.find("peak RSS: ") != std::string::npos);
    CHECK(r.err.find("tag 1 (gc): ") != std::string::npos);
  }
}

TEST_SUITE("toy_vm.cli") {
  TEST_CASE("bad options are an error with exit code 2") {
    auto r = run_tvm({"--bogus"});
    CHECK(r.rc == 2);
    CHECK(r.err == "tvm: error: unknown option '--bogus' (try --help)\n");
    CHECK(run_tvm({"--gc-budget=lots"}).rc == 2);
    CHECK(run_tvm({"--gc-budget=0"}).rc == 2);
    // Sizes that do not fit: refused, not wrapped (17179869185G was 1 GiB).
    for (const char* big : {"--gc-budget=17179869185G", "--gc-budget=18446744073709551616",
                            "--gc-budget=18014398509481984K"}) {
      CAPTURE(big);
      const auto r = run_tvm({big});
      CHECK(r.rc == 2);
      CHECK(r.err.find("too large") != std::string::npos);
    }
    CHECK(run_tvm({"--max-depth=18446744073709551617"}).rc == 2);
    CHECK(run_tvm({"--malloc=jemalloc"}).rc == 2);
  }

  TEST_CASE("--help and --version exit 0") {
    auto h = run_tvm({"--help"});
    CHECK(h.rc == 0);
    CHECK(h.out.find("usage: tvm") == 0);
    auto v = run_tvm({"--version"});
    CHECK(v.rc == 0);
    CHECK(v.out.find("tagheap 0.1.0") != std::string::npos);
    CHECK(v.out.find("gc tag 1") != std::string::npos);
  }

  TEST_CASE("a missing file is an error with exit code 1") {
    auto r = run_tvm({"no/such/file.lisp"});
    CHECK(r.rc == 1);
    CHECK(r.err.find("cannot open") != std::string::npos);
  }

  TEST_CASE("options after the file are options; other arguments are the program's") {
    auto r = tvm::test::lisp("(display (command-line-args))", {});
    CHECK(r.out == "()");
    {
      std::ofstream f(tvm::test::tmpdir() + "/args.lisp");
      f << "(display (command-line-args))";
    }
    auto a = run_tvm({tvm::test::tmpdir() + "/args.lisp", "10", "--gc-budget=1M", "x", "--", "--stats"});
    CHECK(a.rc == 0);
    CHECK(a.out == "(10 x --stats)");
  }

  TEST_CASE("a relative path is resolved against BUILD_WORKING_DIRECTORY") {
    {
      std::ofstream f(tvm::test::tmpdir() + "/rel.lisp");
      f << "(display 'found)";
    }
    setenv("BUILD_WORKING_DIRECTORY", tvm::test::tmpdir().c_str(), 1);
    auto r = run_tvm({"rel.lisp"});
    unsetenv("BUILD_WORKING_DIRECTORY");
    CHECK(r.out == "found");
  }
}

TEST_SUITE("tvm.heap_map") {
  TEST_CASE("--heapmap, --stats-json and (heap-map) write the heap's picture and figures") {
    using tvm::test::lisp;
    using tvm::test::tmpdir;
    const std::string svg = tmpdir() + "/exit.svg", json = tmpdir() + "/exit.json", prog_svg = tmpdir() + "/prog.svg";
    const std::string src = "(define keep (make-vector 1000 (cons 1 2)))\n(display (heap-map \"" + prog_svg + "\"))\n";
    tvm::test::Run r = lisp(src, {"--heapmap=" + svg, "--stats-json=" + json});
    REQUIRE_MESSAGE(r.rc == 0, r.err);
    CHECK(r.out == "#t");
    for (const std::string& path : {svg, prog_svg}) {
      std::ifstream f(path);
      std::stringstream text;
      text << f.rdbuf();
      CHECK(text.str().rfind("<?xml", 0) == 0);
      CHECK(text.str().find("GC objects (pairs, vectors, closures) (GC)") != std::string::npos);
      CHECK(text.str().find("</svg>") != std::string::npos);
    }
    std::ifstream f(json);
    std::stringstream text;
    text << f.rdbuf();
    CHECK(text.str().find("\"schema\": \"tagheap-heap-stats/1\"") != std::string::npos);
    CHECK(text.str().find("\"gc\": true") != std::string::npos);

    tvm::test::Run bad = lisp("(heap-map 42)");
    CHECK(bad.rc == 1);
    CHECK(bad.err.find("heap-map: expected a file name string") != std::string::npos);
    tvm::test::Run unwritable = lisp("1", {"--heapmap=/nonexistent-dir/x.svg"});
    CHECK(unwritable.rc == 1);
    CHECK(unwritable.err.find("cannot write /nonexistent-dir/x.svg") != std::string::npos);
  }
}
