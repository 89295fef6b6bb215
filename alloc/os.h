// os.h: the only place tagheap talks to the operating system about memory.
//
// Everything above asks for aligned, zeroed, read-write regions, gives back
// the physical memory of a range it keeps (decommit: it reads back as zero),
// and unmaps. Tests make the OS refuse memory through refuse_after().
#pragma once

#include <cstddef>

namespace tagheap::os {

// A zeroed read-write region of `size` bytes aligned to `alignment` (a power
// of two >= the OS page size), or nullptr when the OS refuses.
void* map_aligned(std::size_t size, std::size_t alignment) noexcept;
void unmap(void* p, std::size_t size) noexcept;
// Gives the physical pages back; the range stays mapped and reads as zero.
void decommit(void* p, std::size_t size) noexcept;
std::size_t page_size() noexcept;

// Testing: after n more successful maps, every map fails (n < 0: never).
void refuse_after(long n) noexcept;
// Number of regions currently mapped and their bytes, for leak tests.
std::size_t mapped_regions() noexcept;
std::size_t mapped_bytes() noexcept;

}  // namespace tagheap::os
