// typed.h: explicitly typed objects (bdwgc's gc_typed.h).
//
// GC_make_descriptor(bitmap, len) names which of an object's first words
// may hold pointers; GC_malloc_explicitly_typed(n, d) makes an object whose
// other words the collector never reads as pointers. Guile relies on it for
// weak tables: an entry's key word is left out of the bitmap and held by a
// disappearing link instead, so scanning it would keep every key alive.
//
// Layout: a typed object lives on the typed kind's tag (heap.h) and is asked
// one word larger; the descriptor sits in the last word of its block, past
// anything the client may write (the block holds n + 8 bytes at least, plus
// heap.h's extra byte).
// Descriptor encoding (opaque to clients): bit 0 set: bits 1..63 are the
// bitmap of words 0..62, words past it hold no pointers (as in bdwgc's
// bitmap descriptors); bit 0 clear: no bitmap fits, every word is scanned.
#pragma once

#include <cstddef>
#include <cstdint>

namespace tagheap::libgc {

using TypedDescriptor = std::uintptr_t;
inline constexpr TypedDescriptor kScanAllWords = 0;

TypedDescriptor make_descriptor(const std::uintptr_t* bitmap, std::size_t len) noexcept;
// n bytes with descriptor d; nullptr when memory runs out.
void* allocate_typed(std::size_t n, TypedDescriptor d);

// The descriptor of a typed object whose block is `block_size` bytes.
inline TypedDescriptor descriptor_of(const void* obj, std::size_t block_size) noexcept {
  return *reinterpret_cast<const TypedDescriptor*>(static_cast<const char*>(obj) + block_size - sizeof(TypedDescriptor));
}

}  // namespace tagheap::libgc
