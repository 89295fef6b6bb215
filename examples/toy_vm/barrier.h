// barrier.h: the toy VM's write barrier, the one call every store of a GC
// pointer into a GC object makes.
//
// Design
//   With --generational the collector keeps survivors' mark bits (marked =
//   old) and a minor collection traces only the roots, young objects and
//   the old objects written since the last collection (gc/mark_sweep.h).
//   So after storing a Value into a GC object, and before the next
//   allocation or safepoint, the VM calls write_barrier(m, obj): the
//   collector logs obj if it is old. The stores that call it:
//     set-car!, set-cdr!, vector-set!, vector-fill!   (primitives_data.cc)
//     set! into a frame or a global's Symbol, define into a frame (its slots
//     or its list of internal defines) or a Symbol, a closure named by
//     define or letrec, frames filled by calls and let forms  (eval.cc, vm.cc)
//     lists built in place: append, map, the reader's lists
//     a spawned thread's result (its Thread object: threads.cc)
//     constructors filling a fresh object (heap.cc; cheap, since a fresh
//     object is young and fails the barrier's first test)
//   Outside generational mode the collector returns after one flag test.
//
//   Tests only: VmOptions::omit_barrier names one site whose barrier is
//   left out (BarrierSite::kSetCdr: set-cdr!'s), so a test can show that
//   --verify (gc::Options::verify_minor) catches the missing barrier.
#pragma once

#include "examples/toy_vm/heap.h"
#include "examples/toy_vm/value.h"
#include "gc/mark_sweep.h"

namespace tvm {

// After storing a GC pointer into GC object obj (a Value that is_ptr(), or
// the object's address).
inline void write_barrier(Mutator& m, void* obj, BarrierSite site = BarrierSite::kAny) {
  if (site == m.omitted_barrier()) [[unlikely]] return;  // tests only
  m.collector().write_barrier(obj);
}
inline void write_barrier(Mutator& m, Value obj, BarrierSite site = BarrierSite::kAny) {
  write_barrier(m, static_cast<void*>(obj.header()), site);
}

}  // namespace tvm
