// events.h: what a collection reports while it runs, for tracing and tools.
//
// A VM installs a GcListener with MarkSweep::set_listener. The collecting
// thread calls on_gc_event for each phase of each collection, in this order:
//   kCollectionStart   the world is stopped, the collection begins
//   kSweepCompleted    the previous collection's lazy sweep is finished
//   kRootsDone         Model::roots has returned (marker 0's roots)
//   kMarkerDone        once per marker that ran: its start and end and the
//                      bytes it marked (reported after marking, by the
//                      collecting thread: listeners need not be thread-safe)
//   kMarkDone          the transitive closure is complete (weak slots and
//                      ephemerons settled, process_weak and finalizers run)
//   kCollectionEnd     the pause ends; `stats` holds the collection's figures
// Times are steady_clock nanoseconds. A listener must not throw, allocate in
// the collected runtime or start a collection.
#pragma once

#include <cstddef>
#include <cstdint>

namespace tagheap::gc {

struct CollectStats;

enum class GcPhase : std::uint8_t {
  kCollectionStart,
  kSweepCompleted,
  kRootsDone,
  kMarkerDone,
  kMarkDone,
  kCollectionEnd,
};

struct GcEvent {
  GcPhase phase;
  std::uint64_t collection;      // 1 for the first collection of this collector
  std::uint64_t time_ns;         // when it happened (kMarkerDone: when the marker finished)
  unsigned marker = 0;           // kMarkerDone: which one (0 is the collecting thread)
  std::uint64_t start_ns = 0;    // kMarkerDone: when the marker started
  std::size_t bytes = 0;         // kMarkerDone: bytes it marked; kCollectionStart: GC bytes allocated since the last
  const CollectStats* stats = nullptr;  // kCollectionEnd
};

class GcListener {
 public:
  virtual ~GcListener() = default;
  virtual void on_gc_event(const GcEvent& event) noexcept = 0;
};

}  // namespace tagheap::gc
