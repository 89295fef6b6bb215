// os.h: the only place tagheap talks to the operating system about memory.
//
// Everything above asks for aligned, zeroed, read-write regions, gives back
// the physical memory of a range it keeps (decommit: it reads back as zero),
// and unmaps. Tests make the OS refuse memory through refuse_after().
#pragma once

#include <cstddef>
#include <cstdint>

namespace tagheap::os {

// A zeroed read-write region of `size` bytes aligned to `alignment` (a power
// of two >= the OS page size), or nullptr when the OS refuses.
void* map_aligned(std::size_t size, std::size_t alignment) noexcept;
void unmap(void* p, std::size_t size) noexcept;
// Gives the physical pages back; the range stays mapped and reads as zero.
void decommit(void* p, std::size_t size) noexcept;
// Lets the OS take the physical pages back when it needs memory
// (MADV_FREE): until then they stay with the process, and a write keeps
// them without a page fault. The contents are undefined afterwards (old
// bytes or zeros). Falls back to decommit where the kernel lacks MADV_FREE.
void release_lazily(void* p, std::size_t size) noexcept;
// Asks for transparent huge pages over the range (MADV_HUGEPAGE): the
// kernel backs its aligned 2 MiB parts with huge pages where it can.
void advise_huge_pages(void* p, std::size_t size) noexcept;
// Withdraws that advice (MADV_NOHUGEPAGE): huge pages already there stay,
// but khugepaged no longer collapses the range, so decommitted parts of it
// are not faulted back in behind the program's back.
void advise_no_huge_pages(void* p, std::size_t size) noexcept;
// Faults the range in now, writable (MADV_POPULATE_WRITE, Linux 5.14+), so
// that its first writes cost no page fault; with huge-page advice, as huge
// pages. Pages already present are left as they are. False where the
// kernel cannot (nothing is done then, and once it said so no later call
// asks it again) or memory ran short (the range's first writes fault as
// they would have).
bool populate(void* p, std::size_t size) noexcept;
std::size_t page_size() noexcept;
// CPU time the calling thread has used, user and system, in nanoseconds:
// what a page fault costs it, whatever else runs on the machine meanwhile.
std::int64_t thread_cpu_ns() noexcept;

// Testing: after n more successful maps, every map fails (n < 0: never).
void refuse_after(long n) noexcept;
// Whether refuse_after is armed: background work that maps (the segment
// populator) then stands aside, so a test's count of maps stays its own.
bool refusal_armed() noexcept;
// Number of regions currently mapped and their bytes, for leak tests.
std::size_t mapped_regions() noexcept;
std::size_t mapped_bytes() noexcept;

// System calls made so far, process-wide: mmap, munmap and madvise calls
// (decommits counts decommit and release_lazily)
// (map_aligned may need two mmap and two munmap calls for one region).
struct CallCounts {
  std::size_t maps = 0;
  std::size_t unmaps = 0;
  std::size_t decommits = 0;
  std::size_t huge_page_advices = 0;     // MADV_HUGEPAGE
  std::size_t no_huge_page_advices = 0;  // MADV_NOHUGEPAGE
  std::size_t populates = 0;             // MADV_POPULATE_WRITE
};
CallCounts call_counts() noexcept;

}  // namespace tagheap::os
