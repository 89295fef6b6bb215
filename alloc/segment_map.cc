#include "alloc/internal/segment_map.h"

namespace tagheap::internal {

std::atomic<std::uint8_t> SegmentMap::units_[SegmentMap::kUnits];

bool SegmentMap::set(std::uintptr_t base, std::size_t size, bool mapped, unsigned page_shift) noexcept {
  const std::uintptr_t first = base >> kSegmentShift;
  const std::uintptr_t last = (base + size - 1) >> kSegmentShift;
  if (last >= kUnits || page_shift >= 256 - kStart) return false;
  for (std::uintptr_t u = first; u <= last; ++u) {
    const std::uintptr_t back = u - first;
    std::uint8_t v = 0;
    if (mapped) v = back == 0 ? static_cast<std::uint8_t>(kStart + page_shift) : static_cast<std::uint8_t>(back < kStart ? back : kStart - 1);
    units_[u].store(v, std::memory_order_release);
  }
  return true;
}

}  // namespace tagheap::internal
