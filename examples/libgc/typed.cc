// typed.cc: descriptors and typed allocation (typed.h).
#include "examples/libgc/typed.h"

#include <climits>
#include <cstring>

#include "examples/libgc/heap.h"

namespace tagheap::libgc {

TypedDescriptor make_descriptor(const std::uintptr_t* bitmap, std::size_t len) noexcept {
  constexpr std::size_t kWordBits = sizeof(std::uintptr_t) * CHAR_BIT;
  if (len > kWordBits - 1) return kScanAllWords;
  TypedDescriptor d = 1;
  for (std::size_t i = 0; i < len; ++i)
    if ((bitmap[i / kWordBits] >> (i % kWordBits)) & 1) d |= TypedDescriptor{1} << (i + 1);
  return d;
}

void* allocate_typed(std::size_t n, TypedDescriptor d) {
  if (n > SIZE_MAX - sizeof(TypedDescriptor) - 1) return nullptr;
  void* p = allocate(n + sizeof(TypedDescriptor), kKindTyped);
  if (p == nullptr) return nullptr;
  const std::size_t block = usable_size(p);
  std::memcpy(static_cast<char*>(p) + block - sizeof(TypedDescriptor), &d, sizeof d);
  return p;
}

}  // namespace tagheap::libgc
