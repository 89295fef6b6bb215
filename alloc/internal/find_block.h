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

// The page of the block containing p and its index in *index, by the
// page's geometry alone (no bitmap read): nullptr when p is in no block of
// a page in use (of `runtime`, when not nullptr). The block may be free:
// block_is_allocated says.
[[gnu::always_inline]] inline Page* find_block_slot(std::uintptr_t p, const RuntimeCore* runtime,
                                                    std::uint32_t* index) noexcept {
  unsigned page_shift;  // from the map: the segment header's kind and shift are not read
  Segment* seg = SegmentMap::lookup(p, &page_shift);  // mapped until the caller's scope closes (lookup_guard.h)
  if (seg == nullptr) return nullptr;
  // `runtime` is written before the segment enters the map and never again:
  // reading it is safe, and another runtime's pages are not ours to read.
  if (runtime != nullptr && seg->runtime != runtime) return nullptr;
  Page* page = &seg->pages[(p - seg->base()) >> page_shift];  // a huge segment's shift gives page 0
  if (!page->in_use || p < page->blocks_start) return nullptr;
  if (p - page->blocks_start >= std::uint64_t{page->reserved} * page->block_size) return nullptr;
  *index = page->block_index_containing(p);
  return page;
}

// Block i of `page` (found by find_block_slot) is allocated: not freed by
// its owner nor by another thread, not found dead by the last collection
// and unswept. Reads the free and thread-free bitmaps (and the mark bitmap
// of a page left to sweep).
[[gnu::always_inline]] inline bool block_is_allocated(const Page& page, std::uint32_t i) noexcept {
  if (page.is_free_bit(i)) return false;
  const RuntimeCore* core = Segment::of(&page)->runtime;
  // Found dead by the last collection, not swept yet.
  if (core->sweep_pending(page) && !page.is_marked_bit(i)) return false;
  // Freed by another thread, not collected yet. A thread-free bit is set only
  // while its free is counted (push_thread_free counts before it sets the
  // bit; take_thread_free clears bits before it uncounts them), so with none
  // counted the bitmap, a cache line of its own per 512 blocks, is not read
  // (the count's line serves eight pages): 10% of the conservative marking
  // on GCBench through libgc.
  if (page.thread_frees_pending() != 0 && page.is_thread_freed(i)) return false;
  // Freed by another thread, gathered in its buffer (remote_free_buffer.h):
  // never on a tag swept lazily.
  return ((core->sweep_tags >> page.tag) & 1u) || !core->remote_free_noted(page, i);
}

// The page of the block containing p, its index in *index; nullptr when p
// is in no live block (of `runtime`, when not nullptr).
[[gnu::always_inline]] inline Page* find_block_page(std::uintptr_t p, const RuntimeCore* runtime,
                                                    std::uint32_t* index) noexcept {
  std::uint32_t i;
  Page* page = find_block_slot(p, runtime, &i);
  if (page == nullptr || !block_is_allocated(*page, i)) return nullptr;
  *index = i;
  return page;
}

}  // namespace tagheap::internal
