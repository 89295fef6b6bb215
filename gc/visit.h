// visit.h: visiting every live block of some tags.
//
// visit_blocks(runtime, tags, f) calls f(const BlockRef&) once for every
// allocated, not-yet-freed block whose page has a tag in `tags`: in partly
// used and full pages of every thread state, in abandoned pages still in the
// pool, in reclaimed pages and in huge pages (invariant 3). Blocks freed by
// any thread before the walk are not visited, including those still on a
// thread-free list. Cost follows the pages of the walked tags (invariant 4).
//
// f returns void, or bool where false stops the walk. The world must be
// stopped; f must not allocate in the runtime; it may free the block it was
// just handed, and no other (DESIGN.md, "Walking rules").
#pragma once

#include <cstddef>
#include <type_traits>
#include <utility>

#include "alloc/heap_walk.h"
#include "alloc/runtime.h"
#include "alloc/tag.h"

namespace tagheap {

struct BlockRef {
  void* block;
  std::size_t size;  // usable size
  Tag tag;
};

template <class F>
concept BlockVisitor = std::is_invocable_v<F&, const BlockRef&>;

template <BlockVisitor F>
void visit_blocks(Runtime& runtime, TagSet tags, F&& f) {
  for_each_page(runtime, tags, [&](PageView page) {
    BlockRef ref{nullptr, page.block_size(), page.tag()};
    return page.for_each_live_block([&](void* block, std::uint32_t) {
      ref.block = block;
      if constexpr (std::is_same_v<std::invoke_result_t<F&, const BlockRef&>, bool>) {
        return static_cast<bool>(f(std::as_const(ref)));
      } else {
        f(std::as_const(ref));
        return true;
      }
    });
  });
}

// Visits the runtime's GC tags (options().gc_tags).
template <BlockVisitor F>
void visit_gc_blocks(Runtime& runtime, F&& f) {
  visit_blocks(runtime, runtime.options().gc_tags, std::forward<F>(f));
}

}  // namespace tagheap
