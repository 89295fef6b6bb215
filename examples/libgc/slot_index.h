// slot_index.h: the link table's index, slot -> entry number
// (finalization.cc's LinkTable), as one flat array.
//
// Open addressing with linear probing and backward-shift deletion (no
// tombstones), keys hashed by Fibonacci hashing, at most half full. A
// lookup reads one or two cache lines of the array where std::unordered_map
// chased a node besides: Guile's weak tables register a link per entry and
// look its slot up first, 3.5% of `weak.scm`'s time in that find.
//
// Invariants: the array's size is 0 or a power of two >= kMinCapacity;
// size_ <= half of it; every key is non-null and sits at its home bucket or after
// it with no empty bucket between (the probe sequence of a lookup never
// stops short of it). Grows by doubling when an insert would pass half;
// never shrinks (the table's entries do not either). Memory from
// std::vector: glibc's heap, never scanned.
#pragma once

#include <bit>
#include <cstddef>
#include <cstdint>
#include <vector>

namespace tagheap::libgc {

class SlotIndex {
 public:
  // The entry number of slot, or nullptr.
  std::uint32_t* find(void** slot) noexcept {
    if (buckets_.empty()) return nullptr;
    for (std::size_t i = home(slot);; i = next(i)) {
      Bucket& b = buckets_[i];
      if (b.key == slot) return &b.value;
      if (b.key == nullptr) return nullptr;
    }
  }
  // slot (non-null, not present) -> value. Throws std::bad_alloc and
  // changes nothing when memory runs out.
  void insert(void** slot, std::uint32_t value) {
    if (2 * (size_ + 1) > buckets_.size()) grow();
    place(slot, value);
    ++size_;
  }
  // Removes slot if present; returns whether it was.
  bool erase(void** slot) noexcept {
    if (buckets_.empty()) return false;
    std::size_t i = home(slot);
    for (;; i = next(i)) {
      if (buckets_[i].key == slot) break;
      if (buckets_[i].key == nullptr) return false;
    }
    // Backward shift: each later key of the run moves into the hole unless
    // the hole lies before its home (cyclically), which would hide it.
    for (std::size_t j = next(i);; j = next(j)) {
      Bucket& b = buckets_[j];
      if (b.key == nullptr) break;
      const std::size_t h = home(b.key);
      if (((j - h) & mask()) >= ((j - i) & mask())) {
        buckets_[i] = b;
        i = j;
      }
    }
    buckets_[i] = Bucket{};
    --size_;
    return true;
  }
  std::size_t size() const noexcept { return size_; }

 private:
  struct Bucket {
    void** key = nullptr;
    std::uint32_t value = 0;
  };
  static constexpr std::size_t kMinCapacity = 64;
  std::size_t mask() const noexcept { return buckets_.size() - 1; }
  std::size_t next(std::size_t i) const noexcept { return (i + 1) & mask(); }
  std::size_t home(void** slot) const noexcept {
    const std::uint64_t h = (reinterpret_cast<std::uintptr_t>(slot) >> 3) * 0x9E3779B97F4A7C15ull;
    return static_cast<std::size_t>(h >> (64 - std::countr_zero(buckets_.size())));
  }
  void place(void** slot, std::uint32_t value) noexcept {
    std::size_t i = home(slot);
    while (buckets_[i].key != nullptr) i = next(i);
    buckets_[i] = Bucket{slot, value};
  }
  void grow() {
    std::vector<Bucket> old(buckets_.empty() ? kMinCapacity : 2 * buckets_.size());  // may throw: nothing changed yet
    old.swap(buckets_);
    for (const Bucket& b : old)
      if (b.key != nullptr) place(b.key, b.value);
  }

  std::vector<Bucket> buckets_;  // its size: the capacity
  std::size_t size_ = 0;
};

}  // namespace tagheap::libgc
