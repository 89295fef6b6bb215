// internal/segment_map.h: which 4 MiB units of the address space are ours.
//
// A process-wide two-level table: unit u = address >> 22 (26 bits of a 48-bit
// address space) maps to the Segment covering it, or nullptr. Huge segments
// cover several units; each unit maps to the segment's start, so an interior
// pointer into a huge block still finds its segment. Used by free() to reject
// foreign pointers, and by find_block for conservative scanning.
//
// Writers (segment creation and release) are serialised per segment; readers
// never lock. A second-level table, once made, lives as long as the process.
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
  static constexpr unsigned kLeafBits = 13;
  static constexpr std::size_t kLeafSize = std::size_t{1} << kLeafBits;
  static constexpr std::size_t kRootSize = std::size_t{1} << (kUnitBits - kLeafBits);
  using Leaf = std::atomic<Segment*>[kLeafSize];

  // The segment covering address a, or nullptr when no segment of ours does.
  static Segment* lookup(std::uintptr_t a) noexcept {
    const std::uintptr_t u = a >> kSegmentShift;
    if (u >> kUnitBits) [[unlikely]] return nullptr;
    Leaf* leaf = root_[u >> kLeafBits].load(std::memory_order_acquire);
    if (leaf == nullptr) [[unlikely]] return nullptr;
    return (*leaf)[u & (kLeafSize - 1)].load(std::memory_order_acquire);
  }

  // Map [base, base + size) to seg (or to nullptr when seg is nullptr).
  // Returns false when a leaf table could not be allocated.
  static bool set(std::uintptr_t base, std::size_t size, Segment* seg) noexcept;

 private:
  static std::atomic<Leaf*> root_[kRootSize];
};

}  // namespace tagheap::internal
