// internal/size_class.h: the size-class table.
//
// Classes 1..8 are 16..128 bytes in steps of 16. Above 128 every power of two
// is split into eight classes, so a block is at most 12.5% larger than the
// request: class(c) for c > 8 is 2^(7+k) + (j+1) * 2^(4+k), k = (c-9)/8,
// j = (c-9)%8. Class 0 is unused (it keeps "no class" distinct); sizes above
// kLargeBlockMax are huge and have no class.
#pragma once

#include <array>
#include <bit>
#include <cstddef>
#include <cstdint>

#include "alloc/internal/config.h"

namespace tagheap::internal {

constexpr std::size_t class_block_size(std::size_t c) {
  if (c <= 8) return c * 16;
  const std::size_t k = (c - 9) / 8, j = (c - 9) % 8;
  return (std::size_t{128} << k) + ((j + 1) << (4 + k));
}

// Class of a non-huge size (size <= kLargeBlockMax).
constexpr std::size_t size_class_of(std::size_t size) {
  if (size <= 128) return size <= 16 ? 1 : (size + 15) >> 4;
  const std::size_t s = size - 1;
  const std::size_t b = std::bit_width(s) - 1;  // floor(log2(s)) >= 7
  return 8 + (b - 7) * 8 + ((s >> (b - 3)) & 7) + 1;
}

inline constexpr std::size_t kClassCount = size_class_of(kLargeBlockMax) + 1;

// Sizes up to kFastSizeMax map to their class through a table indexed by
// (size + 15) / 16: the allocation fast path does one load.
inline constexpr std::size_t kFastSizeMax = 1024;
inline constexpr auto kFastClassTable = [] {
  std::array<std::uint8_t, kFastSizeMax / 16 + 1> t{};
  for (std::size_t i = 0; i < t.size(); ++i) t[i] = static_cast<std::uint8_t>(size_class_of(i * 16));
  return t;
}();

enum class PageKind : std::uint8_t { kSmall, kMedium, kLarge, kHuge };

constexpr PageKind page_kind_of_class(std::size_t c) {
  const std::size_t bs = class_block_size(c);
  return bs <= kSmallBlockMax ? PageKind::kSmall
       : bs <= kMediumBlockMax ? PageKind::kMedium
                               : PageKind::kLarge;
}

// Size classes are pinned: every class covers the sizes mapping to it, and the
// waste above the smallest classes stays under 12.5%.
static_assert(kClassCount == 105);
static_assert(class_block_size(kClassCount - 1) == kLargeBlockMax);
static_assert(size_class_of(0) == 1 && size_class_of(16) == 1 && size_class_of(17) == 2);
static_assert(size_class_of(129) == 9 && class_block_size(9) == 144);
static_assert([] {
  for (std::size_t size = 1; size <= kLargeBlockMax; size += (size < 4096 ? 1 : 97)) {
    const std::size_t c = size_class_of(size), bs = class_block_size(c);
    if (bs < size || (c > 1 && class_block_size(c - 1) >= size)) return false;
    if (size > 128 && (bs - size) * 8 > size) return false;
    if (bs % 16 != 0) return false;
  }
  return true;
}());

}  // namespace tagheap::internal
