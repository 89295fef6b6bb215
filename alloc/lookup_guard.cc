// Deferred unmapping of segments while lookups are in progress
// (internal/lookup_guard.h has the protocol).
#include "alloc/internal/lookup_guard.h"

#include <atomic>
#include <mutex>
#include <new>

#include "alloc/internal/segment.h"
#include "alloc/internal/segment_map.h"
#include "alloc/os.h"

namespace tagheap::internal {

constinit thread_local unsigned t_lookup_depth __attribute__((tls_model("initial-exec"))) = 0;

namespace {
std::atomic<long> g_lookups{0};             // outermost lookup scopes open, all threads
std::atomic<Segment*> g_deferred{nullptr};  // segments waiting to be unmapped (Segment::unmap_next)
std::mutex g_deferred_mu;                   // pushes and drains of g_deferred

void unmap_now(Segment* seg) noexcept {
  const std::size_t size = seg->size;
  os::unmap(seg, size);
}

// Unmaps the deferred segments if no lookup is in progress. Under the lock,
// so that a drain never takes a list another drain (or push) is changing.
void drain_if_quiet() noexcept {
  Segment* list = nullptr;
  {
    std::lock_guard lock(g_deferred_mu);
    if (g_lookups.load(std::memory_order_seq_cst) != 0) return;
    list = g_deferred.exchange(nullptr, std::memory_order_acq_rel);
  }
  while (list != nullptr) {
    Segment* next = list->unmap_next;
    unmap_now(list);
    list = next;
  }
}
}  // namespace

void enter_lookups() noexcept {
  // A read-modify-write, as the unmapper's below: the two are ordered in
  // the counter's history, so either the unmapper sees this increment or
  // this thread's map reads see the unmapper's clear (no fence needed,
  // which TSan could not follow).
  g_lookups.fetch_add(1, std::memory_order_seq_cst);
}

void leave_lookups() noexcept {
  if (g_lookups.fetch_sub(1, std::memory_order_seq_cst) == 1 &&
      g_deferred.load(std::memory_order_seq_cst) != nullptr)
    drain_if_quiet();
}

void unmap_segment_memory(Segment* seg) noexcept {
  SegmentMap::set(seg->base(), seg->size, false);
  if (g_lookups.fetch_add(0, std::memory_order_seq_cst) == 0) {  // an RMW: see enter_lookups
    unmap_now(seg);
    return;
  }
  {
    std::lock_guard lock(g_deferred_mu);
    seg->unmap_next = g_deferred.load(std::memory_order_relaxed);
    g_deferred.store(seg, std::memory_order_seq_cst);
  }
  // The last lookup may have left between our count read and the push,
  // seeing no deferred segment: then nobody else will drain.
  drain_if_quiet();
}

void lookups_after_fork_child() noexcept {
  new (&g_deferred_mu) std::mutex();
  g_lookups.store(t_lookup_depth > 0 ? 1 : 0, std::memory_order_seq_cst);
  if (g_deferred.load(std::memory_order_seq_cst) != nullptr) drain_if_quiet();
}

}  // namespace tagheap::internal
