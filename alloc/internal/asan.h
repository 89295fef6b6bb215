// internal/asan.h: telling AddressSanitizer which tagheap bytes are blocks.
//
// In an ASan build (__SANITIZE_ADDRESS__), a free block is poisoned and an
// allocated one is not, so a use-after-free of a tagheap block is reported
// like one of malloc's. Rules:
//   Page::init        the page's blocks and its slack are poisoned
//   allocation        the block (its usable size) is unpoisoned
//   owner free, sweep the block is poisoned
//   remote free       all but the first word (the thread-free link) is
//                     poisoned; the owner poisons the rest when it collects
//   page given back   its area is poisoned; a segment is unpoisoned before
//                     it is unmapped (the OS may hand the range to others)
// Elsewhere these are no-ops.
#pragma once

#include <cstddef>
#include <cstdint>

#if defined(__SANITIZE_ADDRESS__)
#include <sanitizer/asan_interface.h>
#endif

namespace tagheap::internal::asan {

#if defined(__SANITIZE_ADDRESS__)
inline constexpr bool kEnabled = true;
inline void poison(std::uintptr_t p, std::size_t n) noexcept { __asan_poison_memory_region(reinterpret_cast<void*>(p), n); }
inline void unpoison(std::uintptr_t p, std::size_t n) noexcept { __asan_unpoison_memory_region(reinterpret_cast<void*>(p), n); }
#else
inline constexpr bool kEnabled = false;
inline void poison(std::uintptr_t, std::size_t) noexcept {}
inline void unpoison(std::uintptr_t, std::size_t) noexcept {}
#endif

}  // namespace tagheap::internal::asan
