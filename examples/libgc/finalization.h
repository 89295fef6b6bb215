// finalization.h: finalizers and disappearing links (weak pointers), on
// gc::MarkSweep's ordered finalization and weak processing.
//
// bdwgc's semantics:
//   - finalizers: MarkSweep::register_finalizer does the work (ordered for
//     GC_register_finalizer, unordered for _no_order: see
//     gc/internal/finalizer_table.h). An unreachable finalizable object and
//     everything it reaches stay alive in the ready queue until its
//     finalizer ran (GC_invoke_finalizers). What this file adds: the client
//     data of every registration is a root, as in bdwgc (which keeps its
//     finalizer records in its own heap, where they are traced: Guile's
//     guardians keep their only reference to a weak vector there). Each
//     registration is a small record (fn, client data) handed to MarkSweep as
//     the finalizer's data; a trampoline unpacks it.
//   - disappearing links: cleared and unregistered when their target dies.
//     A link whose slot holds exactly its target is passed to
//     Tracer::mark_weak from roots(), so it is cleared before finalization
//     keeps the target alive (bdwgc's "short" links). Any other link (Guile's
//     tagged pointers: the slot holds target + 1) is cleared in
//     Model::process_weak once its target is dead, after finalization (a
//     "long" link: later, for a finalizable target only). A link whose slot
//     died with its holding object is dropped unread.
//   - table growth: a registration that would double bdwgc's link or
//     finalizer table past 4096 buckets collects first (finalization.cc),
//     so weak tables that fill with dying entries are collected as often.
//
// Invariants (registry lock held for every table access)
//   a record is in the registration list exactly while MarkSweep holds it
//   as a finalizer's data (registered or queued).
//   nothing between stop and resume calls malloc or free (a stopped thread
//   may hold a glibc arena lock): the stop only notes links to drop, in a
//   vector reserved before it, and they are erased after the resume.
#pragma once

#include <cstddef>
#include <cstdint>
#include <type_traits>

namespace tagheap::gc {
class Tracer;
class Liveness;
}  // namespace tagheap::gc

namespace tagheap::libgc {

using FinalizerFn = void (*)(void* obj, void* client_data);

// Returns the previous finalizer of obj (fn nullptr: unregisters).
void register_finalizer(void* obj, FinalizerFn fn, void* cd, bool ordered, FinalizerFn* old_fn, void** old_cd);
// GC_free of a finalizable object: its finalizer goes too.
void forget_freed_object(void* obj);

int register_link(void** link, const void* obj);  // GC_SUCCESS, GC_DUPLICATE, or GC_NO_MEMORY
int unregister_link(void** link);                 // 1 if it was registered
int move_link(void** link, void** new_link);      // GC_SUCCESS, GC_DUPLICATE, GC_NOT_FOUND

// Collection steps, registry lock held.
void finalization_before_stop();  // reserve what the stop fills
// World stopped, from Model::roots: client data as roots, short links weak.
void finalization_roots(gc::Tracer& t);
// World stopped, from Model::process_weak: long links, dead holders.
void finalization_process_weak(const gc::Liveness& liveness);
void finalization_after_resume();  // erase what the stop dropped

// Runs every ready finalizer on the calling thread; returns how many ran.
int invoke_finalizers();
bool finalizers_ready() noexcept;
bool finalizers_registered() noexcept;
std::size_t links_registered() noexcept;

// What the last collection did here, for GC_PRINT_STATS.
struct FinalizationStats {
  std::size_t links_cleared = 0, links = 0, finalizers = 0, finalizers_queued = 0;
};
FinalizationStats last_finalization_stats() noexcept;

}  // namespace tagheap::libgc
