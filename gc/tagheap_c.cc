// The C API (alloc/tagheap_c.h). It lives in gc/ because it offers the walk.
//
// No exception crosses extern "C": every function is noexcept, and those
// whose C++ side can throw (std::bad_alloc from a constructor, std::logic_error
// from attach, std::system_error from a lock) catch everything and return
// NULL or -1 (c_boundary below).
#include "alloc/tagheap_c.h"

#include <new>

#include "alloc/tagheap.h"
#include "gc/internal/c_handles.h"
#include "gc/visit.h"

using tagheap::Runtime;
using tagheap::ThreadState;


namespace {
// Runs f; whatever it throws becomes `failed`.
template <class R, class F>
R c_boundary(R failed, F&& f) noexcept {
  try {
    return f();
  } catch (...) {
    return failed;
  }
}
}  // namespace

extern "C" {

tagheap_runtime* tagheap_runtime_new(const tagheap_runtime_options* options) noexcept {
  tagheap::RuntimeOptions o;
  if (options != nullptr) {
    o.gc_tags = tagheap::TagSet::from_bits(options->gc_tags);
    o.debug_fill = options->debug_fill != 0;
  }
  return c_boundary<tagheap_runtime*>(nullptr, [&] { return new tagheap_runtime(o); });
}
void tagheap_runtime_delete(tagheap_runtime* runtime) noexcept { delete runtime; }

tagheap_thread_state* tagheap_thread_state_new(tagheap_runtime* runtime) noexcept {
  return c_boundary<tagheap_thread_state*>(nullptr, [&] { return new tagheap_thread_state(runtime->rt); });
}
void tagheap_thread_state_delete(tagheap_thread_state* ts) noexcept { delete ts; }
int tagheap_thread_state_attach(tagheap_thread_state* ts) noexcept {
  return c_boundary(-1, [&] {
    ts->ts.attach();
    return 0;
  });
}
void tagheap_thread_state_detach(tagheap_thread_state* ts) noexcept { ts->ts.detach(); }
void tagheap_thread_state_abandon(tagheap_thread_state* ts) noexcept { ts->ts.abandon(); }

void* tagheap_heap_allocate(tagheap_thread_state* ts, unsigned tag, size_t size) noexcept {
  if (tag >= tagheap::kTagCount) return nullptr;
  return c_boundary<void*>(nullptr, [&] { return ts->ts.heap(static_cast<tagheap::Tag>(tag)).allocate(size); });
}
void* tagheap_heap_allocate_zeroed(tagheap_thread_state* ts, unsigned tag, size_t size) noexcept {
  if (tag >= tagheap::kTagCount) return nullptr;
  return c_boundary<void*>(nullptr,
                           [&] { return ts->ts.heap(static_cast<tagheap::Tag>(tag)).allocate_zeroed(size); });
}
void tagheap_free(void* p) noexcept { tagheap::free(p); }
size_t tagheap_usable_size(const void* p) noexcept { return tagheap::usable_size(p); }
size_t tagheap_good_size(size_t size) noexcept { return tagheap::good_size(size); }
int tagheap_tag_of(const void* p) noexcept { return tagheap::tag_of(p); }
void* tagheap_find_block(const void* p) noexcept { return tagheap::find_block(p); }
int tagheap_in_runtime_memory(const tagheap_runtime* runtime, const void* p) noexcept {
  return tagheap::in_runtime_memory(p, runtime->rt) ? 1 : 0;
}

long tagheap_visit_blocks(tagheap_runtime* runtime, uint16_t tags, tagheap_visit_fn fn, void* arg) noexcept {
  return c_boundary(-1L, [&] {
    long n = 0;
    tagheap_block_ref ref{};
    tagheap::visit_blocks(runtime->rt, tagheap::TagSet::from_bits(tags), [&](const tagheap::BlockRef& b) {
      ref.block = b.block;
      ref.size = b.size;
      ref.tag = b.tag;
      ++n;
      return fn(&ref, arg) != 0;
    });
    return n;
  });
}
long tagheap_visit_gc_blocks(tagheap_runtime* runtime, tagheap_visit_fn fn, void* arg) noexcept {
  return tagheap_visit_blocks(runtime, runtime->rt.options().gc_tags.bits(), fn, arg);
}

}  // extern "C"
