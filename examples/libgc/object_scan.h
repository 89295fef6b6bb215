// object_scan.h: how an object is scanned, by its kind (heap.h).
//
//   not scanned (atomic kinds)   nothing
//   a mark procedure (custom)    the procedure, which calls GC_mark_and_push
//                                for each pointer it finds: that lands in the
//                                MarkSink of the marker thread running it
//   otherwise                    every word of the block, conservatively
//
//   explicitly typed             the words its descriptor's bitmap names
//                                (typed.h)
#pragma once

#include <bit>
#include <cstdint>

#include "examples/libgc/heap.h"
#include "examples/libgc/roots.h"
#include "examples/libgc/typed.h"
#include "gc/visit.h"  // PageView

namespace tagheap::libgc {

// Which words keep an object alive (bdwgc's GC_all_interior_pointers): by
// default any address inside it. A client that turns that off (Guile does,
// then registers displacements 0 and 1 for its tagged pointers) has, in the
// heap and in static data, only the object's start plus a registered
// displacement recognised; stacks and registers still recognise interior
// pointers (compilers keep derived pointers there), as bdwgc does.
inline constexpr std::size_t kMaxDisplacement = 4096;
namespace detail {
extern bool g_all_interior_pointers;
extern std::uint64_t g_displacements[kMaxDisplacement / 64];
}  // namespace detail
void set_all_interior_pointers(bool on) noexcept;
bool all_interior_pointers() noexcept;
void register_displacement(std::size_t offset) noexcept;

// Whether a word `offset` bytes into an object keeps it alive, interior
// pointers off: a registered displacement (collector.cc hands it to
// gc::Tracer::mark_conservative_if).
inline bool is_displacement(std::size_t offset) noexcept {
  return offset < kMaxDisplacement && ((detail::g_displacements[offset / 64] >> (offset % 64)) & 1) != 0;
}

// Where GC_mark_and_push sends a word while a marker runs.
struct MarkSink {
  void* context = nullptr;
  void (*mark)(void* context, std::uintptr_t word) = nullptr;
};
// Per marker thread (initial-exec: a plain store per traced object).
extern thread_local MarkSink t_mark_sink __attribute__((tls_model("initial-exec")));
inline void set_mark_sink(MarkSink sink) noexcept { t_mark_sink = sink; }
void mark_from_procedure(std::uintptr_t word) noexcept;  // for GC_mark_and_push
// GC_push_all: every word of [lo, hi) as a heap word, while a marker runs
// on this thread (else nothing: bdwgc's push outside marking is lost too).
void mark_range_from_procedure(const void* lo, const void* hi) noexcept;

using MarkProc = void* (*)(std::uintptr_t* addr, void* msp, void* msp_limit, std::uintptr_t env);
unsigned new_mark_proc(MarkProc proc);  // GC_new_proc
void run_mark_proc(const Kind& k, void* obj) noexcept;

template <class Mark>
[[gnu::no_sanitize_address]] inline void scan_bitmap(const std::uintptr_t* words, std::uintptr_t bitmap, Mark&& mark) {
  for (; bitmap != 0; bitmap &= bitmap - 1) {
    const std::uintptr_t w = words[std::countr_zero(bitmap)];
    if (w >= 4096) mark(w);
  }
}

// obj: a live block of a GC tag (what the collector hands Model::trace).
// Returns the block's size if its kind is scanned, else 0 (for the policy).
// `sink` becomes this thread's MarkSink before a mark procedure runs (only
// then: a store to thread-local storage per traced object was 2% of
// GCBench's marking instructions).
template <class Mark>
[[gnu::always_inline]] inline std::size_t scan_object(void* obj, Mark&& mark, MarkSink sink) {
  const PageView page = PageView::of(obj);
  const Kind& k = kind_of_tag(page.tag());
  if (!k.scanned) return 0;
  const std::size_t size = page.is_huge() ? usable_size(obj) : page.block_size();
  if (k.mark_proc != kNoMarkProc) [[unlikely]] {
    set_mark_sink(sink);
    run_mark_proc(k, obj);
    return size;
  }
  const char* end = static_cast<char*>(obj) + size;
  if (k.typed) [[unlikely]] {
    const TypedDescriptor d = descriptor_of(obj, size);
    if (d != kScanAllWords) {
      scan_bitmap(static_cast<const std::uintptr_t*>(obj), d >> 1, mark);
      return size;
    }
    end -= sizeof(TypedDescriptor);
  }
  scan_words(obj, end, mark);  // one copy of the inlined mark for both
  return size;
}

}  // namespace tagheap::libgc
