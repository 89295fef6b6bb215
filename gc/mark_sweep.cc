#include "gc/mark_sweep.h"

#include <algorithm>
#include <new>

namespace tagheap::gc {

void Tracer::check_block(void* obj, PageView page) const {
  if (find_block(obj) != obj)
    internal::fatal("tagheap: Tracer::mark(%p): not the start of a live block", obj);
  if (page.runtime() != runtime_)
    internal::fatal("tagheap: Tracer::mark(%p): a block of another runtime", obj);
}

void Tracer::push_growing(void* obj) noexcept {
  if (stack_.capacity() >= stack_limit_) {
    overflowed_ = true;
    return;
  }
  try {
    stack_.reserve(std::min(stack_limit_, std::max<std::size_t>(4096, 2 * stack_.capacity())));
    stack_.push_back(obj);
  } catch (const std::bad_alloc&) {
    overflowed_ = true;
  }
}

}  // namespace tagheap::gc
