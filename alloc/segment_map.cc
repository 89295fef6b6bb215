#include "alloc/internal/segment_map.h"

#include "alloc/os.h"

namespace tagheap::internal {

std::atomic<SegmentMap::Leaf*> SegmentMap::root_[SegmentMap::kRootSize];

bool SegmentMap::set(std::uintptr_t base, std::size_t size, Segment* seg) noexcept {
  const std::uintptr_t first = base >> kSegmentShift;
  const std::uintptr_t last = (base + size - 1) >> kSegmentShift;
  if (last >> kUnitBits) return false;
  for (std::uintptr_t u = first; u <= last; ++u) {
    auto& slot = root_[u >> kLeafBits];
    Leaf* leaf = slot.load(std::memory_order_acquire);
    if (leaf == nullptr) {
      if (seg == nullptr) continue;
      auto* fresh = static_cast<Leaf*>(os::map_aligned(sizeof(Leaf), os::page_size()));
      if (fresh == nullptr) return false;
      if (slot.compare_exchange_strong(leaf, fresh, std::memory_order_acq_rel)) {
        leaf = fresh;
      } else {
        os::unmap(fresh, sizeof(Leaf));
      }
    }
    (*leaf)[u & (kLeafSize - 1)].store(seg, std::memory_order_release);
  }
  return true;
}

}  // namespace tagheap::internal
