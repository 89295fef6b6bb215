// Replays every input of the reader fuzzer's checked-in corpus
// (examples/toy_vm/fuzz/corpus/) through the same entry point the fuzzer
// runs, with gcc and in the checked flavour. A violation aborts the test with
// read_input's message.
#include <doctest/doctest.h>

#include <algorithm>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <string>
#include <vector>

#include "examples/toy_vm/fuzz/read_input.h"

namespace fs = std::filesystem;

namespace {
fs::path corpus_dir() {
  const char* srcdir = std::getenv("TEST_SRCDIR");
  const char* ws = std::getenv("TEST_WORKSPACE");
  if (srcdir != nullptr)
    return fs::path(srcdir) / (ws != nullptr ? ws : "tagheap") / "examples/toy_vm/fuzz/corpus";
  return "examples/toy_vm/fuzz/corpus";
}
}  // namespace

TEST_SUITE("toy_vm.fuzz.replay") {
  TEST_CASE("every corpus input reads, or fails with a located error, and round-trips through the printer") {
    const fs::path dir = corpus_dir();
    REQUIRE_MESSAGE(fs::is_directory(dir), "no corpus at " << dir.string());
    std::vector<fs::path> files;
    for (const auto& e : fs::directory_iterator(dir))
      if (e.is_regular_file()) files.push_back(e.path());
    std::sort(files.begin(), files.end());
    REQUIRE(files.size() >= 20);
    tvm::fuzz::ReadStats stats;
    for (const fs::path& f : files) {
      CAPTURE(f.filename().string());
      std::ifstream in(f, std::ios::binary);
      const std::vector<char> bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
      tvm::fuzz::read_input(reinterpret_cast<const std::uint8_t*>(bytes.data()), bytes.size(), &stats);
    }
    MESSAGE("replayed " << stats.inputs << " inputs: " << stats.forms << " forms, " << stats.round_trips
                        << " round trips, " << stats.errors << " syntax errors, " << stats.incomplete
                        << " incomplete");
    CHECK(stats.round_trips > 0);
    CHECK(stats.errors > 0);
    CHECK(stats.incomplete > 0);
  }
}
