#include "gc/mark_sweep.h"

namespace tagheap::gc {

void Tracer::check_block(void* obj, PageView page) const {
  if (find_block(obj) != obj)
    internal::fatal("tagheap: Tracer::mark(%p): not the start of a live block", obj);
  if (page.runtime() != runtime_)
    internal::fatal("tagheap: Tracer::mark(%p): a block of another runtime", obj);
}

}  // namespace tagheap::gc
