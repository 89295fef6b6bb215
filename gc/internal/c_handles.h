// internal/c_handles.h: what the C API's opaque handles are (shared by
// gc/tagheap_c.cc and gc/collector_c.cc). Internal.
#pragma once

#include "alloc/runtime.h"
#include "alloc/thread_state.h"

struct tagheap_runtime {
  tagheap::Runtime rt;
  explicit tagheap_runtime(tagheap::RuntimeOptions o) : rt(o) {}
};
struct tagheap_thread_state {
  tagheap::ThreadState ts;
  explicit tagheap_thread_state(tagheap::Runtime& rt) : ts(rt) {}
};
