#include "gc/chrome_trace.h"

#include <cinttypes>
#include <cstdio>
#include <new>

#include "gc/mark_sweep.h"

namespace tagheap::gc {

void ChromeTraceRecorder::add(Span span) noexcept {
  try {
    spans_.push_back(std::move(span));
  } catch (...) {
    ++dropped_;
  }
}

void ChromeTraceRecorder::on_gc_event(const GcEvent& e) noexcept {
  std::lock_guard lock(mu_);
  if (first_ns_ == 0) first_ns_ = e.time_ns;
  try {
    switch (e.phase) {
      case GcPhase::kCollectionStart:
        start_ns_ = sweep_done_ns_ = roots_done_ns_ = e.time_ns;
        break;
      case GcPhase::kSweepCompleted:
        sweep_done_ns_ = e.time_ns;
        add({"finish sweep", 0, start_ns_, e.time_ns, e.collection, 0, false});
        break;
      case GcPhase::kRootsDone:
        roots_done_ns_ = e.time_ns;
        add({"roots", 0, sweep_done_ns_, e.time_ns, e.collection, 0, false});
        break;
      case GcPhase::kMarkerDone:
        add({"marker " + std::to_string(e.marker), e.marker + 1, e.start_ns, e.time_ns, e.collection, e.bytes, true});
        break;
      case GcPhase::kMarkDone:
        add({"mark", 0, sweep_done_ns_, e.time_ns, e.collection, 0, false});
        break;
      case GcPhase::kCollectionEnd:
        ++collections_;
        add({"collection", 0, start_ns_, e.time_ns, e.collection, e.stats != nullptr ? e.stats->live_bytes : 0,
             e.stats != nullptr});
        break;
    }
  } catch (...) {
    ++dropped_;  // std::to_string or the name's copy ran out of memory
  }
}

std::size_t ChromeTraceRecorder::collections() const {
  std::lock_guard lock(mu_);
  return collections_;
}

std::string ChromeTraceRecorder::json() const {
  std::lock_guard lock(mu_);
  std::string out = "{\"displayTimeUnit\":\"ms\",\"otherData\":{\"dropped_events\":" + std::to_string(dropped_) +
                    "},\"traceEvents\":[\n";
  char buf[512];
  // Track names first, then the spans (parents before children: a viewer
  // nests by time, the order only helps a reader).
  std::snprintf(buf, sizeof buf,
                "{\"name\":\"thread_name\",\"ph\":\"M\",\"pid\":1,\"tid\":0,\"args\":{\"name\":\"collector\"}}");
  out += buf;
  unsigned max_track = 0;
  for (const Span& s : spans_) max_track = std::max(max_track, s.track);
  for (unsigned t = 1; t <= max_track; ++t) {
    std::snprintf(buf, sizeof buf,
                  ",\n{\"name\":\"thread_name\",\"ph\":\"M\",\"pid\":1,\"tid\":%u,\"args\":{\"name\":\"marker %u\"}}", t,
                  t - 1);
    out += buf;
  }
  for (const Span& s : spans_) {
    const double ts = static_cast<double>(s.start_ns - first_ns_) / 1000.0;
    const double dur = static_cast<double>(s.end_ns - s.start_ns) / 1000.0;
    const char* key = s.track == 0 ? "live_bytes" : "marked_bytes";
    if (s.has_bytes) {
      std::snprintf(buf, sizeof buf,
                    ",\n{\"name\":\"%s\",\"cat\":\"gc\",\"ph\":\"X\",\"pid\":1,\"tid\":%u,\"ts\":%.3f,\"dur\":%.3f,"
                    "\"args\":{\"collection\":%" PRIu64 ",\"%s\":%zu}}",
                    s.name.c_str(), s.track, ts, dur, s.collection, key, s.bytes);
    } else {
      std::snprintf(buf, sizeof buf,
                    ",\n{\"name\":\"%s\",\"cat\":\"gc\",\"ph\":\"X\",\"pid\":1,\"tid\":%u,\"ts\":%.3f,\"dur\":%.3f,"
                    "\"args\":{\"collection\":%" PRIu64 "}}",
                    s.name.c_str(), s.track, ts, dur, s.collection);
    }
    out += buf;
  }
  out += "\n]}\n";
  return out;
}

bool ChromeTraceRecorder::write(const std::string& path) const {
  const std::string text = json();
  std::FILE* f = std::fopen(path.c_str(), "w");
  if (f == nullptr) return false;
  const bool ok = std::fwrite(text.data(), 1, text.size(), f) == text.size();
  return std::fclose(f) == 0 && ok;
}

}  // namespace tagheap::gc
