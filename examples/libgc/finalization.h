// finalization.h: finalizers and disappearing links (weak pointers).
//
// bdwgc's semantics, decided once per collection, world stopped:
//   - a finalizable object F is *ready* when it is unreachable from the roots;
//     with ordered finalization (GC_register_finalizer) also when no other
//     unreachable finalizable object reaches it (F's finalizer then runs
//     first, and F waits for a later collection). A ready F leaves the table
//     and joins the ready queue, which is a root: F and everything it reaches
//     survive this collection, so its finalizer sees intact objects.
//   - a disappearing link is cleared (and unregistered) when its target is
//     unreachable from the roots, before any resurrection by finalization
//     (bdwgc's "short" links); it is dropped unread when the object holding
//     the link itself died.
//
// How reachability is known, until gc::MarkSweep grows the hooks for it:
// when finalizers are registered, a pre-pass marks from the roots into the
// pages' mark bitmaps (finalization.cc) and the answers come from it; the
// real collection then finds those objects marked and traces only what
// the ready queue (an extra root) adds.
// Without finalizers no pre-pass runs: after the collection, a link whose
// target block was freed is cleared (find_block answers, world still
// stopped, before anything can reuse the block).
// What should replace this: a Model::process_weak(const Liveness&) hook
// answers the links exactly during the one real mark; a hook after marking
// that may mark more (ordered finalization: mark from the unreached
// finalizable objects, then queue them) removes the pre-pass and its
// reliance on MarkSweep keeping mark bits zero between collections.
//
// Invariants (registry lock held for every table access)
//   an object is in at most one of: the finalizer table, the ready queue.
//   every table key is the start of a block of this library when registered.
#pragma once

#include <cstddef>
#include <cstdint>
#include <type_traits>
#include <vector>

#include "examples/libgc/roots.h"

namespace tagheap::libgc {

using FinalizerFn = void (*)(void* obj, void* client_data);

// Returns the previous finalizer of obj (fn nullptr: unregisters).
void register_finalizer(void* obj, FinalizerFn fn, void* cd, bool ordered, FinalizerFn* old_fn, void** old_cd);

int register_link(void** link, const void* obj);  // GC_SUCCESS, GC_DUPLICATE, or GC_NO_MEMORY
int unregister_link(void** link);                 // 1 if it was registered
int move_link(void** link, void** new_link);      // GC_SUCCESS, GC_DUPLICATE, GC_NOT_FOUND
// GC_free of a finalizable object: its finalizer goes too.
void forget_freed_object(void* obj);

// Collection steps, registry lock held. Before the world stops: reserve what
// the stop will fill (no malloc while stopped). After it resumes: erase what
// the stop dropped.
void finalization_before_stop();
void finalization_after_resume();
// World stopped. Before marking: whether a pre-pass is needed, and the
// pre-pass itself.
bool finalization_needs_prepass() noexcept;
void finalization_prepass(const std::vector<Range>& statics, const char* collector_sp);
// Roots that finalization holds: the ready queue's objects, and the client
// data of every registered and every ready finalizer (bdwgc keeps its
// finalizer records in its own heap, where client data is traced: Guile's
// guardians keep their only reference to a weak vector there).
template <class Mark>
void for_each_finalization_root(Mark&& mark);
// After the sweep: clear and drop links; returns how many were cleared.
std::size_t finalization_after_sweep();

// What the last collection did here, for GC_PRINT_STATS.
struct FinalizationStats {
  std::size_t links_cleared = 0, finalizers_readied = 0, links = 0, finalizers = 0;
  bool prepass = false;
};
FinalizationStats last_finalization_stats() noexcept;

// Runs every ready finalizer (outside the lock); returns how many ran.
int invoke_finalizers();
bool finalizers_ready() noexcept;
std::size_t finalizers_registered() noexcept;
std::size_t links_registered() noexcept;

// The ready queue (exposed for for_each_finalization_root).
struct ReadyFinalizer {
  void* obj;
  FinalizerFn fn;
  void* cd;
};
std::vector<ReadyFinalizer>& ready_queue() noexcept;

// The client data of every registered finalizer (finalization.cc).
void for_each_registered_client_data(void (*mark)(void* context, std::uintptr_t word), void* context);

template <class Mark>
void for_each_finalization_root(Mark&& mark) {
  for (const ReadyFinalizer& r : ready_queue()) {
    mark(reinterpret_cast<std::uintptr_t>(r.obj));
    mark(reinterpret_cast<std::uintptr_t>(r.cd));
  }
  using M = std::remove_reference_t<Mark>;
  for_each_registered_client_data([](void* c, std::uintptr_t w) { (*static_cast<M*>(c))(w); }, &mark);
}

}  // namespace tagheap::libgc
