// internal/segment_map.h: which 4 MiB units of the address space are ours.
//
// A process-wide byte per 4 MiB unit of a 48-bit address space (unit u =
// address >> 22): 0 when no segment of ours covers it, else how to step back
// to the unit where the covering segment starts. Huge segments cover several
// units, so an interior pointer into a huge block still finds its segment.
// free() rejects foreign pointers with one load; find_block uses lookup().
//
// Writers (segment creation and release) are serialised per segment; readers
// never lock.
#pragma once

#include <atomic>
#include <cstdint>

#include "alloc/internal/config.h"

namespace tagheap::internal {

struct Segment;

class SegmentMap {
 public:
  static constexpr unsigned kAddressBits = 48;
  static constexpr unsigned kUnitBits = kAddressBits - kSegmentShift;  // 26
  static constexpr std::size_t kUnits = std::size_t{1} << kUnitBits;   // 64 MiB of
  // reserved, zero BSS; only the pages that cover our segments get touched.

  // Whether a is inside the first 4 MiB of one of our segments: for free(),
  // whose pointers always are. One load.
  static bool is_segment_start_unit(std::uintptr_t a) noexcept {
    const std::uintptr_t u = a >> kSegmentShift;
    return u < kUnits && units_[u].load(std::memory_order_acquire) == kStart;
  }

  // The segment covering address a, or nullptr when no segment of ours does.
  static Segment* lookup(std::uintptr_t a) noexcept {
    std::uintptr_t u = a >> kSegmentShift;
    if (u >= kUnits) [[unlikely]] return nullptr;
    std::uint8_t v = units_[u].load(std::memory_order_acquire);
    if (v == 0) return nullptr;
    while (v != kStart) {  // inside a huge segment: step back towards its start
      u -= v - kStart;
      v = units_[u].load(std::memory_order_acquire);
    }
    return reinterpret_cast<Segment*>(u << kSegmentShift);
  }

  // Map [base, base + size) to a segment starting at base (or unmap it).
  static bool set(std::uintptr_t base, std::size_t size, bool mapped) noexcept;

 private:
  // 0: not ours; kStart: a segment starts here; kStart + k: k units after
  // the unit holding kStart + ... (chained for segments over 254 units).
  static constexpr std::uint8_t kStart = 1;
  static std::atomic<std::uint8_t> units_[kUnits];
};

}  // namespace tagheap::internal
