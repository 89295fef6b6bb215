// internal/find_block.h: the block that contains an address, with its page
// and index, for find_block and for a collector's conservative marking
// (gc::Tracer::mark_conservative), which goes on with the page and index it
// found instead of looking both up again. Internal: users call find_block.
//
// Invariants
//   Reads no segment header before the segment map says the segment is
//   there (the caller holds a BlockLookupScope, so it stays mapped), and no
//   page of another runtime than `runtime` (when not nullptr).
//   Found: an allocated block, not freed by its owner nor by another thread,
//   not found dead by the last collection and unswept.
#pragma once

#include <cstdint>

#include "alloc/internal/page.h"
#include "alloc/internal/runtime_core.h"
#include "alloc/internal/segment.h"
#include "alloc/internal/segment_map.h"

namespace tagheap::internal {

// The page of the block containing p, its index in *index; nullptr when p
// is in no live block (of `runtime`, when not nullptr).
[[gnu::always_inline]] inline Page* find_block_page(std::uintptr_t p, const RuntimeCore* runtime,
                                                    std::uint32_t* index) noexcept {
  Segment* seg = SegmentMap::lookup(p);  // mapped until the caller's scope closes (lookup_guard.h)
  if (seg == nullptr) return nullptr;
  // `runtime` is written before the segment enters the map and never again:
  // reading it is safe, and another runtime's pages are not ours to read.
  if (runtime != nullptr && seg->runtime != runtime) return nullptr;
  Page* page = seg->page_of(reinterpret_cast<const void*>(p));
  if (seg->kind == PageKind::kHuge) page = &seg->pages[0];
  if (!page->in_use || p < page->blocks_start) return nullptr;
  if (p - page->blocks_start >= std::uint64_t{page->reserved} * page->block_size) return nullptr;
  const std::uint32_t i = page->block_index_containing(p);
  if (page->is_free_bit(i)) return nullptr;
  // Found dead by the last collection, not swept yet.
  if (seg->runtime->sweep_pending(*page) && !page->is_marked_bit(i)) return nullptr;
  if (page->is_thread_freed(i)) return nullptr;  // freed by another thread, not collected yet
  *index = i;
  return page;
}

}  // namespace tagheap::internal
