// roots_inl.h: for_each_root_range (roots.h), a template so each scan inlines
// its marker.
#pragma once

#include "examples/libgc/heap.h"
#include "examples/libgc/threads.h"
#include "gc/visit.h"

namespace tagheap::libgc {

template <class Scan>
void for_each_root_range(const std::vector<Range>& statics, const char* collector_sp, Scan&& scan) {
  for (const Range& r : statics) scan(r.lo, r.hi, false);
  for (const Range& r : added_roots()) scan(r.lo, r.hi, false);
  ThreadRecord* self = current_thread();
  for_each_thread([&](ThreadRecord& t) {
    const char* sp = &t == self ? collector_sp : t.stop_sp;
    const char* end = stack_end_of(t);
    if (sp != nullptr && sp < end) scan(sp, end, true);
    if (&t != self)
      scan(reinterpret_cast<const char*>(t.saved_regs), reinterpret_cast<const char*>(t.saved_regs + t.saved_reg_count),
           true);
  });
  visit_blocks(runtime(), uncollectable_scanned_tags(), [&](const BlockRef& b) {
    scan(static_cast<const char*>(b.block), static_cast<const char*>(b.block) + b.size, false);
  });
}

}  // namespace tagheap::libgc
