// corpus.h: the files of a checked-in fuzz corpus, for the replay tests.
//
// A corpus directory is named relative to the workspace; under `bazel test`
// it is found in the runfiles (TEST_SRCDIR/TEST_WORKSPACE), elsewhere
// relative to the working directory. Files come in name order.
#pragma once

#include <algorithm>
#include <cstdint>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <string>
#include <vector>

namespace tagheap::fuzz {

struct CorpusFile {
  std::string name;
  std::vector<std::uint8_t> bytes;
};

// Empty when the directory is missing.
inline std::vector<CorpusFile> read_corpus(const std::string& workspace_relative_dir) {
  namespace fs = std::filesystem;
  const char* srcdir = std::getenv("TEST_SRCDIR");
  const char* ws = std::getenv("TEST_WORKSPACE");
  const fs::path dir = srcdir != nullptr ? fs::path(srcdir) / (ws != nullptr ? ws : "tagheap") / workspace_relative_dir
                                         : fs::path(workspace_relative_dir);
  std::vector<fs::path> paths;
  if (fs::is_directory(dir))
    for (const auto& e : fs::directory_iterator(dir))
      if (e.is_regular_file()) paths.push_back(e.path());
  std::sort(paths.begin(), paths.end());
  std::vector<CorpusFile> files;
  for (const fs::path& p : paths) {
    std::ifstream in(p, std::ios::binary);
    files.push_back({p.filename().string(),
                     std::vector<std::uint8_t>((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>())});
  }
  return files;
}

}  // namespace tagheap::fuzz
