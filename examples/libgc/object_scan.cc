// object_scan.cc: mark procedures and the sink they mark into (object_scan.h).
#include "examples/libgc/object_scan.h"

#include <cstdio>
#include <cstdlib>

namespace tagheap::libgc {
namespace {

constexpr unsigned kMaxMarkProcs = 64;  // bdwgc's GC_MAX_MARK_PROCS
MarkProc g_procs[kMaxMarkProcs];
unsigned g_proc_count = 0;

// A mark procedure may push onto bdwgc's mark stack only through
// GC_mark_and_push (the entry layout is private to bdwgc), so it is handed a
// stack it never writes: a few entries of room, returned unchanged.
struct FakeMarkStackEntry {
  void* start;
  std::uintptr_t descriptor;
};
thread_local FakeMarkStackEntry t_fake_stack[4];

}  // namespace


namespace detail {
bool g_all_interior_pointers = true;
std::uint64_t g_displacements[kMaxDisplacement / 64] = {1};  // offset 0
}  // namespace detail

void set_all_interior_pointers(bool on) noexcept {
  detail::g_all_interior_pointers = on;
  detail::g_extra_bytes = on ? 1 : 0;
}
bool all_interior_pointers() noexcept { return detail::g_all_interior_pointers; }
void register_displacement(std::size_t offset) noexcept {
  if (offset < kMaxDisplacement) detail::g_displacements[offset / 64] |= std::uint64_t{1} << (offset % 64);
}

// The collector runs mark procedures on every marker thread. External
// linkage, as t_self in threads.h: gold drops the offset of an initial-exec
// relocation against an internal-linkage variable.
thread_local MarkSink t_mark_sink __attribute__((tls_model("initial-exec")));

void mark_from_procedure(std::uintptr_t word) noexcept {
  const MarkSink sink = t_mark_sink;
  if (sink.mark != nullptr) sink.mark(sink.context, word);
}

void mark_range_from_procedure(const void* lo, const void* hi) noexcept {
  const MarkSink sink = t_mark_sink;
  if (sink.mark == nullptr || hi <= lo) return;
  scan_words(lo, hi, [&sink](std::uintptr_t w) { sink.mark(sink.context, w); });
}

unsigned new_mark_proc(MarkProc proc) {
  RegistryLock lock;
  if (g_proc_count >= kMaxMarkProcs) {
    std::fprintf(stderr, "tagheap libgc: too many mark procedures (%u)\n", kMaxMarkProcs);
    std::abort();
  }
  g_procs[g_proc_count] = proc;
  return g_proc_count++;
}

void run_mark_proc(const Kind& k, void* obj) noexcept {
  g_procs[k.mark_proc](static_cast<std::uintptr_t*>(obj), &t_fake_stack[0], &t_fake_stack[3], k.env);
}

}  // namespace tagheap::libgc
