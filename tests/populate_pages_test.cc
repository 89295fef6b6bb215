// A page of small blocks taken from memory the process does not hold is
// faulted in (RuntimeOptions::populate_small_pages, MADV_POPULATE_WRITE) a
// step (kPopulateStepBytes) at a time, ahead of the blocks allocation hands
// out, so their first writes take no page fault and a partly used page
// holds at most a step unwritten; a page reused while still committed,
// pages of bigger blocks, and a runtime with the option off ask for nothing.
// Residency is read with mincore(2), which counts no sanitizer shadow.
#include <doctest/doctest.h>
#include <sys/mman.h>
#include <unistd.h>

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <vector>

#include "alloc/internal/config.h"
#include "alloc/internal/segment.h"
#include "alloc/os.h"
#include "alloc/tagheap.h"
#include "tests/test_util.h"

using namespace tagheap;
using tagheap::test::AttachedState;

namespace {

// The kernel can populate (Linux 5.14+); without it the option does nothing.
bool kernel_populates() {
  const std::size_t size = os::page_size();
  void* p = mmap(nullptr, size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  REQUIRE(p != MAP_FAILED);
  const bool ok = os::populate(p, size);
  munmap(p, size);
  return ok;
}

// OS pages of the page holding block p that are resident, and how many it has.
std::pair<std::size_t, std::size_t> resident_of_page(const void* p) {
  const internal::Page* page = internal::Segment::of(p)->page_of(p);
  const std::size_t os_pages = page->area_size / os::page_size();
  std::vector<unsigned char> in_core(os_pages);
  REQUIRE(mincore(reinterpret_cast<void*>(page->area), page->area_size, in_core.data()) == 0);
  std::size_t resident = 0;
  for (unsigned char c : in_core) resident += c & 1;
  return {resident, os_pages};
}

RuntimeOptions fresh_small_pages(bool populate) {
  RuntimeOptions o = test::without_populator();
  o.huge_os_pages_above = 0;  // 4 KiB OS pages: residency counts them one by one
  o.populate_small_pages = populate;
  return o;
}

}  // namespace

TEST_CASE("a fresh page of small blocks is faulted in a step ahead of its allocation") {
  if (!kernel_populates()) return;  // nothing to pin on this kernel
  Runtime rt(fresh_small_pages(true));
  AttachedState ts(rt);
  Heap& heap = ts.heap(0);
  // A whole page of 64-byte blocks (the segment's first page starts after
  // its header, so take the blocks of the next one).
  std::vector<void*> blocks;
  void* first = heap.allocate(64);
  REQUIRE(first != nullptr);
  const internal::Page* first_page = internal::Segment::of(first)->page_of(first);
  void* p = nullptr;
  do {
    p = heap.allocate(64);
    REQUIRE(p != nullptr);
    blocks.push_back(p);
  } while (internal::Segment::of(p)->page_of(p) == first_page);
  const internal::Page* page = internal::Segment::of(p)->page_of(p);
  REQUIRE(page->area_size == 64 * 1024);
  // One step is resident before anything past the first block is written.
  CHECK(page->populated == internal::kPopulateStepBytes);
  CHECK(resident_of_page(p).first * os::page_size() == internal::kPopulateStepBytes);
  // The rest follows, step by step, as allocation moves through the page.
  const std::size_t before = os::call_counts().populates;
  const std::size_t blocks_per_step = internal::kPopulateStepBytes / 64;
  for (std::size_t i = 1; i < 4 * blocks_per_step; ++i) blocks.push_back(heap.allocate(64));
  CHECK(os::call_counts().populates - before == 3);
  const auto [resident, os_pages] = resident_of_page(p);
  CHECK(resident == os_pages);
  CHECK(page->populated == page->area_size);
  tagheap::free(first);
  for (void* b : blocks) tagheap::free(b);
}

TEST_CASE("a page is populated to its end and no further when its last word runs past it") {
  if (!kernel_populates()) return;
  Runtime rt(fresh_small_pages(true));
  AttachedState ts(rt);
  // 48-byte blocks: a page's last bitmap word stands for blocks past its end.
  void* first = ts.heap(0).allocate(48);
  REQUIRE(first != nullptr);
  const internal::Page* page = internal::Segment::of(first)->page_of(first);
  REQUIRE(page->block_size == 48);
  std::vector<void*> blocks{first};
  for (std::uint32_t i = 1; i < page->reserved; ++i) blocks.push_back(ts.heap(0).allocate(48));
  CHECK(page->used == page->reserved);
  CHECK(page->populated == page->area_size);
  CHECK(page->is_valid());
  for (void* b : blocks) tagheap::free(b);
}

TEST_CASE("a page of big small blocks is faulted in no further than its first block's step") {
  if (!kernel_populates()) return;
  Runtime rt(fresh_small_pages(true));
  AttachedState ts(rt);
  void* p = ts.heap(0).allocate(4096);  // 16 to a page: one cache word spans it all
  REQUIRE(p != nullptr);
  const internal::Page* page = internal::Segment::of(p)->page_of(p);
  const std::size_t first_step = (reinterpret_cast<std::uintptr_t>(p) + 4096 - page->area +
                                  internal::kPopulateStepBytes - 1) / internal::kPopulateStepBytes *
                                 internal::kPopulateStepBytes;
  CHECK(page->populated == std::min(first_step, page->area_size));
  CHECK(resident_of_page(p).first * os::page_size() == page->populated);
  tagheap::free(p);
}

TEST_CASE("with populate_small_pages off a fresh page faults in as its blocks are written") {
  Runtime rt(fresh_small_pages(false));
  AttachedState ts(rt);
  const std::size_t before = os::call_counts().populates;
  void* p = ts.heap(0).allocate(64);
  REQUIRE(p != nullptr);
  CHECK(os::call_counts().populates == before);
  CHECK(resident_of_page(p).first == 0);  // nothing written yet, not even the block
  tagheap::free(p);
}

TEST_CASE("a page taken again while still committed is not populated again") {
  if (!kernel_populates()) return;
  Runtime rt(fresh_small_pages(true));
  // A thread state fills three pages of 64-byte blocks, frees them and
  // goes: its empty pages go back to the pool committed (dirty), and the
  // next thread state's allocations take them from there.
  constexpr int kBlocks = 3 * 1024;
  {
    AttachedState ts(rt);
    std::vector<void*> blocks;
    for (int i = 0; i < kBlocks; ++i) blocks.push_back(ts.heap(0).allocate(64));
    for (void* p : blocks) REQUIRE(p != nullptr);
    for (void* p : blocks) tagheap::free(p);
  }
  const std::size_t populated = os::call_counts().populates;
  AttachedState ts(rt);
  std::vector<void*> blocks;
  for (int i = 0; i < 2 * 1024; ++i) blocks.push_back(ts.heap(0).allocate(64));
  for (void* p : blocks) REQUIRE(p != nullptr);
  CHECK(os::call_counts().populates == populated);
  for (void* p : blocks) tagheap::free(p);
}

TEST_CASE("pages of bigger blocks are not populated") {
  if (!kernel_populates()) return;
  Runtime rt(fresh_small_pages(true));
  AttachedState ts(rt);
  const std::size_t before = os::call_counts().populates;
  void* medium = ts.heap(0).allocate(16 * 1024);  // a 512 KiB page
  void* large = ts.heap(0).allocate(256 * 1024);  // a page of its own
  REQUIRE(medium != nullptr);
  REQUIRE(large != nullptr);
  CHECK(os::call_counts().populates == before);
  tagheap::free(medium);
  tagheap::free(large);
}
