// free(), usable_size(), tag_of(), find_block(): everything that starts from
// a pointer. A pointer finds its segment by masking and its page by an index;
// the segment map tells whether the segment is ours at all.
#include <cstring>

#include "alloc/internal/find_block.h"
#include "alloc/internal/lookup_guard.h"
#include "alloc/internal/runtime_core.h"
#include "alloc/internal/segment.h"
#include "alloc/internal/segment_map.h"
#include "alloc/tagheap.h"

namespace tagheap {

using internal::Page;
using internal::Segment;
using internal::SegmentMap;

namespace internal {
constinit thread_local std::uintptr_t t_current_owner __attribute__((tls_model("initial-exec"))) = 1;
constinit thread_local int t_walks_on_this_thread __attribute__((tls_model("initial-exec"))) = 0;

void RuntimeCore::free_during_walk(std::uintptr_t p) noexcept {
  fatal("tagheap: free(%p) from a thread that is not walking, while a walk or collection of the block's runtime "
        "is in progress (the world must be stopped; only the visitor may free)",
        reinterpret_cast<void*>(p));
}

namespace {
[[noreturn, gnu::noinline, gnu::cold]] void foreign_pointer(const void* p, const char* what) noexcept {
  fatal("tagheap: %s(%p): not a pointer tagheap gave out", what, p);
}

// The page of a pointer tagheap gave out; fatal otherwise.
inline Page* page_of_block(const void* p, const char* what) noexcept {
  const unsigned shift = SegmentMap::start_page_shift(reinterpret_cast<std::uintptr_t>(p));
  if (shift == 0) [[unlikely]] foreign_pointer(p, what);
  Segment* seg = Segment::of(p);
  return &seg->pages[(reinterpret_cast<std::uintptr_t>(p) - seg->base()) >> shift];
}

// Error paths free() reaches by a tail jump (noipa: the compiler must not
// see they never return, or it would set up a frame to call them).
[[gnu::noipa, gnu::cold]] void foreign_free(const void* p) noexcept { foreign_pointer(p, "free"); }

[[gnu::noipa, gnu::cold]] void bad_local_free(Page* page, std::uintptr_t p) noexcept {
  page->check_block_start(p);
  fatal("tagheap: double free of %p (tag %u, block size %zu)", reinterpret_cast<void*>(p), page->tag,
        page->block_size);
}

// A free from a thread that does not own the page. Reads only the segment's
// copies of owner and geometry, the page's thread-free count and its
// thread-free bitmap, not the line the owner keeps writing nor the block;
// from an attached thread state, usually only the copies, the free then
// gathered in its RemoteFreeBuffer.
[[gnu::noinline]] void free_not_local(Segment* seg, std::size_t index, std::uintptr_t p) noexcept {
  if constexpr (kChecked) seg->runtime->check_free_outside_walk(p);
  Page* page = &seg->pages[index];
  if (seg->page_owner[index].load(std::memory_order_acquire) != 0) {
    const BlockGeometry& g = seg->geometry[index];
    if (!g.is_block_start(p)) [[unlikely]] page->check_block_start(p);  // fatal, with the why
    if (g.block_size <= kSmallBlockMax && !((seg->runtime->sweep_tags >> g.tag) & 1u) &&
        t_walks_on_this_thread == 0) [[likely]] {
      RemoteFreeBuffer* buffer = t_remote_frees;
      if (buffer == nullptr && t_current_owner != 1)
        buffer = take_remote_free_buffer_for_current(seg->runtime);  // its first since it attached
      if (buffer != nullptr && buffer->runtime() == seg->runtime) [[likely]] {
        // Gathered, to land with the word's other frees (remote_free_buffer.h).
        if (g.debug_fill) std::memset(reinterpret_cast<void*>(p), kFillFreed, g.block_size);
        asan::poison(p, g.block_size);
        buffer->note(page, g.block_index(p), g.block_size);
        return;
      }
    }
    if (page->push_thread_free(seg->thread_free_counts[index], g, p, g.block_index(p)) == Page::RemoteFree::kDone)
        [[likely]]
      return;
    // Closed: abandoned since we read the owner. Free under the pool's lock.
  }
  seg->runtime->free_in_abandoned(page, p);
}
}  // namespace
}  // namespace internal

void free(void* ptr) noexcept {
  if (ptr == nullptr) return;
  const auto p = reinterpret_cast<std::uintptr_t>(ptr);
  const unsigned shift = SegmentMap::start_page_shift(p);
  if (shift == 0) [[unlikely]] return internal::foreign_free(ptr);
  Segment* seg = Segment::of(ptr);
  const std::size_t index = (p - seg->base()) >> shift;
  if (seg->page_owner[index].load(std::memory_order_relaxed) != internal::t_current_owner) [[unlikely]]
    return internal::free_not_local(seg, index, p);
  if constexpr (internal::kChecked) seg->runtime->check_free_outside_walk(p);
  Page* page = &seg->pages[index];
  // Owner thread: set the block's free bit. Checks that p is a block start
  // (i < reserved and block i starts at p, whatever p was) and not free yet.
  const std::uint32_t i = page->block_index(p);
  const std::uint64_t bit = std::uint64_t{1} << (i & 63);
  if (i >= page->reserved || page->block_at(i) != p) [[unlikely]] return internal::bad_local_free(page, p);
  std::uint64_t* word = &page->free_word(i >> 6);  // the cache word too: allocation pops from the bitmap
  if ((*word & bit) != 0) [[unlikely]] return internal::bad_local_free(page, p);
  *word |= bit;
  if constexpr (internal::asan::kEnabled) internal::asan::poison(p, page->block_size);
  if ((--page->used == 0) | page->slow_free) [[unlikely]] page->heap->on_free_slow(page, p);
}

std::size_t usable_size(const void* p) noexcept {
  if (p == nullptr) return 0;
  const Page* page = internal::page_of_block(p, "usable_size");
  if (page->is_huge()) return page->block_size - (reinterpret_cast<std::uintptr_t>(p) - page->blocks_start);
  return page->block_size;
}

Tag tag_of(const void* p) noexcept {
  return internal::page_of_block(p, "tag_of")->tag;
}

void* internal::find_block_in(const void* ptr, const RuntimeCore* runtime) noexcept {
  TAGHEAP_DASSERT(t_lookup_depth != 0);
  std::uint32_t i;
  const Page* page = internal::find_block_page(reinterpret_cast<std::uintptr_t>(ptr), runtime, &i);
  return page != nullptr ? reinterpret_cast<void*>(page->block_at(i)) : nullptr;
}

void* find_block(const void* p) noexcept {
  BlockLookupScope scope;
  return internal::find_block_in(p, nullptr);
}

void* find_block(const void* p, const Runtime& runtime) noexcept {
  BlockLookupScope scope;
  return internal::find_block_in(p, &runtime.core());
}

bool in_runtime_memory(const void* p, const Runtime& runtime) noexcept {
  BlockLookupScope scope;  // the segment stays mapped while its fields are read
  const auto a = reinterpret_cast<std::uintptr_t>(p);
  const Segment* seg = SegmentMap::lookup(a);
  // Both fields are written before the segment enters the map and never
  // while it is there (find_block.h).
  return seg != nullptr && seg->runtime == &runtime.core() && a - seg->base() < seg->size;
}

}  // namespace tagheap
