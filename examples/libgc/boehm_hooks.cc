// boehm_hooks.cc: the client's callbacks and switches (boehm_hooks.h).
#include "examples/libgc/boehm_hooks.h"

#include <atomic>
#include <cstdio>

#include "examples/libgc/finalization.h"

namespace tagheap::libgc {
namespace {

// bdwgc's default: print to stderr.
void default_warn(char* msg, unsigned long arg) { std::fprintf(stderr, msg, arg); }
void* default_oom(std::size_t) { return nullptr; }

std::atomic<WarnProc> g_warn{default_warn};
std::atomic<OomFn> g_oom{default_oom};
std::atomic<bool> g_on_demand{false};
std::atomic<Notifier> g_notifier{nullptr};
std::atomic<StartCallback> g_start{nullptr};
thread_local bool t_in_finalizers = false;

}  // namespace

void set_warn_proc(WarnProc p) noexcept { g_warn.store(p != nullptr ? p : default_warn); }
WarnProc warn_proc() noexcept { return g_warn.load(); }
void warn(const char* msg, unsigned long arg) noexcept { g_warn.load()(const_cast<char*>(msg), arg); }

void set_oom_fn(OomFn f) noexcept { g_oom.store(f != nullptr ? f : default_oom); }
OomFn oom_fn() noexcept { return g_oom.load(); }
void* out_of_memory(std::size_t bytes) { return g_oom.load()(bytes); }

void set_finalize_on_demand(bool on) noexcept { g_on_demand.store(on); }
bool finalize_on_demand() noexcept { return g_on_demand.load(); }
void set_finalizer_notifier(Notifier n) noexcept { g_notifier.store(n); }
Notifier finalizer_notifier() noexcept { return g_notifier.load(); }

void notify_or_invoke_finalizers() {
  if (g_on_demand.load()) {
    if (Notifier n = g_notifier.load(); n != nullptr) n();
    return;
  }
  if (t_in_finalizers) return;  // a finalizer allocated: its caller goes on running them
  t_in_finalizers = true;
  invoke_finalizers();
  t_in_finalizers = false;
}

void set_start_callback(StartCallback cb) noexcept { g_start.store(cb); }
StartCallback start_callback() noexcept { return g_start.load(); }
void run_start_callback() noexcept {
  if (StartCallback cb = g_start.load(); cb != nullptr) cb();
}

void default_push_other_roots() {}
void run_push_other_roots() {
  if (PushOtherRoots push = GC_push_other_roots; push != nullptr) push();
}

}  // namespace tagheap::libgc

// A plain variable, as in bdwgc: clients assign it without the setter.
extern "C" {
tagheap::libgc::PushOtherRoots GC_push_other_roots = tagheap::libgc::default_push_other_roots;
}
