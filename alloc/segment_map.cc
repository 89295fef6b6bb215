#include "alloc/internal/segment_map.h"

namespace tagheap::internal {

std::atomic<std::uint8_t> SegmentMap::units_[SegmentMap::kUnits];
std::atomic<std::uintptr_t> SegmentMap::lowest_unit_{SegmentMap::kUnits};
std::atomic<std::uintptr_t> SegmentMap::highest_unit_{0};

bool SegmentMap::set(std::uintptr_t base, std::size_t size, bool mapped, unsigned page_shift) noexcept {
  const std::uintptr_t first = base >> kSegmentShift;
  const std::uintptr_t last = (base + size - 1) >> kSegmentShift;
  if (last >= kUnits || (mapped && (page_shift == 0 || page_shift >= kStep))) return false;
  constexpr std::uintptr_t kMaxBack = 256 - kStep;
  if (mapped) {  // widened before the units are stored: lookup() tests the bounds first
    std::uintptr_t lo = lowest_unit_.load(std::memory_order_relaxed);
    while (first < lo && !lowest_unit_.compare_exchange_weak(lo, first, std::memory_order_relaxed)) {
    }
    std::uintptr_t hi = highest_unit_.load(std::memory_order_relaxed);
    while (last > hi && !highest_unit_.compare_exchange_weak(hi, last, std::memory_order_relaxed)) {
    }
  }
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
