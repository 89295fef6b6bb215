#include "alloc/internal/segment_map.h"

namespace tagheap::internal {

std::atomic<std::uint8_t> SegmentMap::units_[SegmentMap::kUnits];

bool SegmentMap::set(std::uintptr_t base, std::size_t size, bool mapped) noexcept {
  const std::uintptr_t first = base >> kSegmentShift;
  const std::uintptr_t last = (base + size - 1) >> kSegmentShift;
  if (last >= kUnits) return false;
  for (std::uintptr_t u = first; u <= last; ++u) {
    const std::uintptr_t back = u - first;
    const std::uint8_t v = !mapped ? 0 : static_cast<std::uint8_t>(kStart + (back < 254 ? back : 254));
    units_[u].store(v, std::memory_order_release);
  }
  return true;
}

}  // namespace tagheap::internal
