#include "alloc/internal/segment_map.h"

namespace tagheap::internal {

std::atomic<std::uint8_t> SegmentMap::units_[SegmentMap::kUnits];

bool SegmentMap::set(std::uintptr_t base, std::size_t size, bool mapped, unsigned page_shift) noexcept {
  const std::uintptr_t first = base >> kSegmentShift;
  const std::uintptr_t last = (base + size - 1) >> kSegmentShift;
  if (last >= kUnits || (mapped && (page_shift == 0 || page_shift >= kStep))) return false;
  constexpr std::uintptr_t kMaxBack = 256 - kStep;
  for (std::uintptr_t u = first; u <= last; ++u) {
    const std::uintptr_t back = u - first;
    std::uint8_t v = 0;
    if (mapped)
      v = static_cast<std::uint8_t>(back == 0 ? page_shift : kStep + (back < kMaxBack ? back : kMaxBack) - 1);
    units_[u].store(v, std::memory_order_release);
  }
  return true;
}

}  // namespace tagheap::internal
