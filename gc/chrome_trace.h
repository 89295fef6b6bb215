// chrome_trace.h: collection events as a Chrome trace-event JSON file.
//
// A GcListener that keeps every event of every collection in memory and
// writes them in the Trace Event Format that Perfetto (ui.perfetto.dev) and
// chrome://tracing open: one complete ("X") event per collection on track 0,
// nested in it "finish sweep", "roots" and "mark", and one "marker i" event
// per marker on track i, with the bytes it marked. A VM installs it with
// MarkSweep::set_listener and calls write() when it likes (at exit).
//
// Invariants
//   Events on one track nest: a child starts and ends within its parent.
//   on_gc_event never throws and never allocates in a tagheap runtime (it
//   uses the C++ heap); out of memory, it drops the event and says so in
//   the file's metadata.
#pragma once

#include <cstdint>
#include <mutex>
#include <string>
#include <vector>

#include "gc/events.h"

namespace tagheap::gc {

class ChromeTraceRecorder : public GcListener {
 public:
  void on_gc_event(const GcEvent& event) noexcept override;
  // The trace as JSON text.
  std::string json() const;
  // Writes json() to `path`; false (errno set) when the file cannot be written.
  bool write(const std::string& path) const;
  std::size_t collections() const;

 private:
  struct Span {
    std::string name;
    unsigned track;
    std::uint64_t start_ns, end_ns;
    std::uint64_t collection;
    std::size_t bytes;
    bool has_bytes;
  };
  void add(Span span) noexcept;

  mutable std::mutex mu_;
  std::vector<Span> spans_;
  std::uint64_t start_ns_ = 0, sweep_done_ns_ = 0, roots_done_ns_ = 0;
  std::uint64_t first_ns_ = 0;  // time zero of the trace
  std::size_t dropped_ = 0;
  std::size_t collections_ = 0;
};

}  // namespace tagheap::gc
