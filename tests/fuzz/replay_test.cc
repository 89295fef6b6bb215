// Replays every input of the checked-in fuzz corpus (tests/fuzz/corpus/)
// through the same interpreter the fuzzer runs, so `bazel test //...` keeps
// each input the fuzzer found interesting passing, with gcc and in the
// checked flavour. A mismatch aborts the test with the model's message.
#include <doctest/doctest.h>

#include <algorithm>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <string>
#include <vector>

#include "tests/fuzz/ops.h"

namespace fs = std::filesystem;

namespace {
fs::path corpus_dir() {
  const char* srcdir = std::getenv("TEST_SRCDIR");
  const char* ws = std::getenv("TEST_WORKSPACE");
  if (srcdir != nullptr)
    return fs::path(srcdir) / (ws != nullptr ? ws : "tagheap") / "tests/fuzz/corpus";
  return "tests/fuzz/corpus";
}
}  // namespace

TEST_SUITE("fuzz.replay") {
  TEST_CASE("every corpus input agrees with the model") {
    const fs::path dir = corpus_dir();
    REQUIRE_MESSAGE(fs::is_directory(dir), "no corpus at " << dir.string());
    std::vector<fs::path> files;
    for (const auto& e : fs::directory_iterator(dir))
      if (e.is_regular_file()) files.push_back(e.path());
    std::sort(files.begin(), files.end());
    REQUIRE(files.size() >= 24);
    tagheap::fuzz::OpStats stats;
    for (const fs::path& f : files) {
      CAPTURE(f.filename().string());
      std::ifstream in(f, std::ios::binary);
      const std::vector<char> bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
      tagheap::fuzz::run_ops(reinterpret_cast<const std::uint8_t*>(bytes.data()), bytes.size(), &stats);
    }
    MESSAGE("replayed " << files.size() << " inputs: " << stats.ops << " ops, " << stats.allocations
                        << " allocations, " << stats.frees << " frees (" << stats.remote_frees
                        << " cross-thread), " << stats.walks << " walks, " << stats.collections
                        << " collections freeing " << stats.freed_by_gc);
    CHECK(stats.collections > 0);
    CHECK(stats.remote_frees > 0);
    CHECK(stats.freed_by_gc > 0);
  }
}
