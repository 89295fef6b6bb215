#include "gc/mark_sweep.h"

#include "gc/internal/usable_cpus.h"

#include <algorithm>
#include <new>

namespace tagheap::gc {

void Tracer::check_block(void* obj) const {
  if (find_block(obj) != obj)
    tagheap::internal::fatal("tagheap: Tracer::mark(%p): not the start of a live block", obj);
  if (PageView::of(obj).runtime() != runtime_)
    tagheap::internal::fatal("tagheap: Tracer::mark(%p): a block of another runtime", obj);
}

void Tracer::no_lookup_scope() noexcept {
  tagheap::internal::fatal("tagheap: Tracer::lookup_scope() outside the collector's roots, mark_root_piece or trace call");
}

void Tracer::push_growing(void* obj) noexcept {
  if (stack_.capacity() >= stack_limit_) {
    overflowed_ = true;
    return;
  }
  try {
    stack_.reserve(std::min(stack_limit_, std::max<std::size_t>(4096, 2 * stack_.capacity())));
    stack_.push_unchecked(obj);
  } catch (const std::bad_alloc&) {
    overflowed_ = true;
  }
}

bool Tracer::is_gc_block(const void* obj) const noexcept {
  if (find_block(obj) != obj) return false;
  const PageView page = PageView::of(obj);
  return page.runtime() == runtime_ && gc_tags_.contains(page.tag());
}

void Tracer::verify_reach(void* obj, PageView page) {
  Verifier& v = *verifier_;
  if (page.runtime() != runtime_ || !v.gc_tags.contains(page.tag())) return;
  if (!v.seen.insert(obj).second) return;
  if (!is_marked(obj)) {
    if (v.current == nullptr)
      tagheap::internal::fatal("tagheap: verification: root %p is not marked at the end of the %s", obj, v.what);
    tagheap::internal::fatal(
        "tagheap: verification: %p is reachable through %p, which the %s did not trace again: a store into %p "
        "was not followed by write_barrier(%p)",
        obj, v.current, v.what, v.current, v.current);
  }
  if (leaf_tags_.contains(page.tag())) return;  // Options::leaf_tags: never traced
  push_for_trace(obj);
}

void Tracer::mark_weak(void** slot) {
  if (verifier_ != nullptr) return;  // a weak reference keeps nothing alive
  if (slot == nullptr || *slot == nullptr) return;
  try {
    weak_slots_.push_back(slot);
  } catch (const std::bad_alloc&) {
    mark(*slot);  // no room to remember it: strong for this collection
  }
}

void Tracer::mark_ephemeron(void* key, void* value) {
  if (key == nullptr || value == nullptr) return;
  if (verifier_ != nullptr) {  // the collector's verdict on the key decides
    // (the verifier's own tag set is empty, so that every mark() verifies)
    const bool collectable = find_block(key) == key && PageView::of(key).runtime() == runtime_ &&
                             verifier_->gc_tags.contains(PageView::of(key).tag());
    if (!collectable || is_marked(key)) mark(value);
    return;
  }
  if (is_gc_block(key) ? is_marked(key) : true) {
    mark(value);  // the key is alive already (or not the collector's to free)
    return;
  }
  try {
    ephemerons_.emplace_back(key, value);
  } catch (const std::bad_alloc&) {
    mark(value);
  }
}

bool Liveness::is_live(const void* obj) const {
  PageView page = PageView::of(obj);
  if (!gc_tags_.contains(page.tag())) return true;
  const std::uint32_t i = page.index_of(obj);
  return (page.mark_word(i >> 6) >> (i & 63)) & 1;
}

namespace internal {

unsigned default_markers() noexcept { return usable_cpus(); }

void clear_marks(Runtime& runtime, TagSet tags, bool logs_too) noexcept {
  for_each_page_by_segment(runtime, tags, [&](PageView page) {
    for (std::uint32_t w = 0; w < page.bitmap_words(); ++w) {
      page.mark_word(w) = 0;
      if (logs_too) page.log_word(w) = 0;
    }
    return true;
  });
}

void clear_logs(Runtime& runtime, TagSet tags) noexcept {
  for_each_page_by_segment(runtime, tags, [&](PageView page) {
    for (std::uint32_t w = 0; w < page.bitmap_words(); ++w) page.log_word(w) = 0;
    return true;
  });
}

void poison_dead(Runtime& runtime, TagSet tags) noexcept {
  for_each_page(runtime, tags, [](PageView page) {
    for (std::uint32_t w = 0; w < page.bitmap_words(); ++w)
      for (std::uint64_t d = page.live_word(w) & ~page.mark_word(w); d; d &= d - 1)
        tagheap::internal::asan::poison(
            reinterpret_cast<std::uintptr_t>(page.block(w * 64 + static_cast<std::uint32_t>(std::countr_zero(d)))),
            page.block_size());
    return true;
  });
}

std::uint64_t now_ns() noexcept {
  return static_cast<std::uint64_t>(std::chrono::duration_cast<std::chrono::nanoseconds>(
                                        std::chrono::steady_clock::now().time_since_epoch())
                                        .count());
}

}  // namespace internal
}  // namespace tagheap::gc
