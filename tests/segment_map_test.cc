// The segment map (alloc/internal/segment_map.h) under conservative lookups:
// a word that no segment of ours could cover is rejected without touching
// the map's table, so scanning integers and text keeps the process small.
// Its own binary: the resident size it measures is the process's.
#include <doctest/doctest.h>

#include <cstddef>
#include <cstdint>

#include "alloc/tagheap.h"
#include "tests/test_util.h"

using namespace tagheap;

TEST_CASE("looking up words all over the address space leaves the segment map's table untouched") {
  Runtime runtime;
  test::AttachedState ts(runtime);
  void* block = ts.heap(0).allocate(32);
  REQUIRE(block != nullptr);
  // One word per 16 GiB of a 48-bit address space: each falls in a
  // different 4 KiB page of the map's table (a byte per 4 MiB unit), 64 MiB
  // of it were the table read for each.
  const std::size_t before = test::statm_bytes(1);
  REQUIRE(before > 0);
  std::size_t found = 0;
  for (std::uintptr_t k = 0; k < (std::uintptr_t{1} << 14); ++k) {
    const std::uintptr_t word = (k << 34) | 0x1238;
    if (find_block(reinterpret_cast<const void*>(word)) != nullptr) ++found;
  }
  const std::size_t grown = test::statm_bytes(1) - before;
  CHECK(grown < (std::size_t{8} << 20));
  // The bounds reject nothing of ours: the block and an interior word are found.
  CHECK(find_block(block) == block);
  CHECK(find_block(static_cast<char*>(block) + 8) == block);
  CHECK(found <= 1);  // at most a word that happens to fall in our segment
  tagheap::free(block);
}
