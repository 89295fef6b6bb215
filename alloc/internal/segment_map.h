// internal/segment_map.h: which 4 MiB units of the address space are ours.
//
// A process-wide byte per 4 MiB unit of a 48-bit address space (unit u =
// address >> 22): 0 when no segment of ours covers it, else how to step back
// to the unit where the covering segment starts. Huge segments cover several
// units, so an interior pointer into a huge block still finds its segment.
// free() rejects foreign pointers with one load; find_block uses lookup().
//
// lookup() first tests the units ever mapped, [lowest, highest] (they only
// widen): a conservative scan looks up every word of its roots and objects,
// and most are not pointers. Without the test each such word read the byte
// of its own unit, and every 4 KiB page of the table that a read touches
// becomes resident: w3m's integers and string bytes touched 20 MiB of it
// (bench/README.md, "libgc: the segment map's pages"). Boehm's collector
// bounds its heap the same way (least/greatest plausible heap address).
//
// Writers (segment creation and release) are serialised per segment; readers
// never lock. A reader that goes on to read the segment header (find_block)
// holds a lookup scope (lookup_guard.h), which keeps released segments
// mapped until it leaves.
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

  // For a inside the first 4 MiB of one of our segments, the segment's page
  // shift (page index = offset >> shift); 0 otherwise. free()'s pointers are
  // always there: one load tells both that the pointer is ours and how to
  // find its page, without reading the segment header.
  static unsigned start_page_shift(std::uintptr_t a) noexcept {
    const std::uintptr_t u = a >> kSegmentShift;
    if (u >= kUnits) [[unlikely]] return 0;
    const unsigned v = units_[u].load(std::memory_order_acquire);
    return v < kStep ? v : 0;
  }
  // The same for a block tagheap gave out and still holds (a known block:
  // no test of the unit's range or kind; a collector's mark of every child
  // goes through here).
  static unsigned block_page_shift(std::uintptr_t a) noexcept {
    TAGHEAP_DASSERT(start_page_shift(a) != 0);
    return units_[a >> kSegmentShift].load(std::memory_order_acquire);
  }

  // The segment covering address a, or nullptr when no segment of ours does.
  static Segment* lookup(std::uintptr_t a) noexcept {
    unsigned page_shift;
    return lookup(a, &page_shift);
  }
  // The same, and the segment's page shift in *page_shift (its start unit's
  // byte: the page of a is pages[(a - segment) >> shift], a huge segment's
  // 48 giving page 0), without a read of the segment header.
  static Segment* lookup(std::uintptr_t a, unsigned* page_shift) noexcept {
    std::uintptr_t u = a >> kSegmentShift;
    // A reader that holds a pointer into a segment learnt of it after the
    // segment was set(), so it sees bounds at least that wide.
    if (u < lowest_unit_.load(std::memory_order_relaxed) || u > highest_unit_.load(std::memory_order_relaxed))
      return nullptr;
    std::uint8_t v = units_[u].load(std::memory_order_acquire);
    if (v == 0) return nullptr;
    while (v >= kStep) {  // inside a huge segment: step back towards its start
      u -= v - kStep + 1;
      v = units_[u].load(std::memory_order_acquire);
    }
    // 0: the segment is being forgotten (its start unit cleared first).
    *page_shift = v;
    return v == 0 ? nullptr : reinterpret_cast<Segment*>(u << kSegmentShift);
  }

  // Map [base, base + size) to a segment starting at base whose pages are
  // 1 << page_shift bytes (or unmap it: mapped false).
  static bool set(std::uintptr_t base, std::size_t size, bool mapped, unsigned page_shift = 0) noexcept;

 private:
  // A unit's byte: 0, not ours; 1..kStep-1, a segment starts here and this
  // is its page shift (16, 19 or 48), so free() tests one range;
  // kStep + k - 1, k units after a unit nearer the segment's start (chained
  // for huge segments, k <= 256 - kStep).
  static constexpr unsigned kStep = 64;
  static std::atomic<std::uint8_t> units_[kUnits];
  // The units any segment ever covered (never narrowed): lookup()'s first
  // test, so that words outside them touch no page of units_.
  static std::atomic<std::uintptr_t> lowest_unit_;
  static std::atomic<std::uintptr_t> highest_unit_;
};

}  // namespace tagheap::internal
