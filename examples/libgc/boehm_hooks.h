// boehm_hooks.h: the callbacks and switches a Boehm client sets (warning
// and out-of-memory functions, finalize-on-demand and its notifier, the
// collection start callback, the push-other-roots procedure), kept in one
// place for every other file.
#pragma once

#include <cstddef>

namespace tagheap::libgc {

using WarnProc = void (*)(char* msg, unsigned long arg);
using OomFn = void* (*)(std::size_t bytes);
using Notifier = void (*)();
using StartCallback = void (*)();

void set_warn_proc(WarnProc p) noexcept;
WarnProc warn_proc() noexcept;
void warn(const char* msg, unsigned long arg) noexcept;  // msg has one %lu, as bdwgc's

void set_oom_fn(OomFn f) noexcept;
OomFn oom_fn() noexcept;
// What an allocation returns when memory ran out: the oom function's answer.
void* out_of_memory(std::size_t bytes);

void set_finalize_on_demand(bool on) noexcept;
bool finalize_on_demand() noexcept;
void set_finalizer_notifier(Notifier n) noexcept;
Notifier finalizer_notifier() noexcept;
// After a collection that readied finalizers: call the notifier when
// finalization is on demand, else run them here (never nested).
void notify_or_invoke_finalizers();

void set_start_callback(StartCallback cb) noexcept;
StartCallback start_callback() noexcept;
void run_start_callback() noexcept;

// The client's push-other-roots procedure (bdwgc's GC_push_other_roots, a
// variable clients such as ECL assign directly, chaining to the value they
// found): called while the roots are marked, on the collecting thread,
// where it pushes ranges (GC_push_all) and objects (GC_set_mark_bit). The
// default does nothing: bdwgc's pushes the thread stacks, which this
// library scans itself whatever the client installs.
using PushOtherRoots = void (*)();
void default_push_other_roots();
void run_push_other_roots();

}  // namespace tagheap::libgc

extern "C" tagheap::libgc::PushOtherRoots GC_push_other_roots;
