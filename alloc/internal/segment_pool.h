// internal/segment_pool.h: a runtime's segments, and the free pages in them.
// Internal: users must not rely on anything under alloc/internal/.
//
// The pool maps segments, carves pages out of them, takes pages back, and
// decides how long free memory stays with the process. Memory follows the
// program's recent peak, at two grains:
//
//   pages     A freed page stays committed ("dirty") for 1-2 s
//             (kPurgeDelayMs, config.h), while
//             dirty bytes stay under max(kDirtyBytesMin, the peak of bytes
//             in pages in use over the last 0-1 s); then it is
//             released to the OS, oldest first, lazily (os::release_lazily,
//             MADV_FREE: the kernel takes the memory back when it runs
//             short, and until then a reuse costs no page fault). A page
//             emptied by a sweep is usually taken again soon, and faulting
//             64 KiB back in costs more than its whole reuse. Releases
//             come kReleaseStepBytes (config.h) at a time, one step per
//             page taken or given back: a collection that freed hundreds of MiB is
//             released over the allocations that follow, never inside one
//             (measured: 305 MiB released at once stalled an allocation for
//             290 ms on a 2-core VM, 1 ms per MiB of madvise).
//   segments  An empty segment (no page in use) stays mapped while the
//             segments in use plus the empty ones stay within
//             max(in use + kSegmentCacheMax, the most segments in use over
//             the last 5-10 s: kSegmentWindowMs); beyond that the ones empty the longest are
//             unmapped, kSegmentUnmapStep (config.h) per page taken or
//             given back. A program whose heap breathes (a collector sweeping
//             most of it each cycle) keeps its segments and refills them
//             without mmap, munmap or (while pages stay dirty) page faults;
//             one that shrinks for good gives them back within 10 s of
//             its next allocation or free (munmap returns their memory at
//             once). While the populator runs (below), an allocation
//             or free that evicts segments only queues them (out of every
//             list and of SegmentMap) and the populator unmaps them: a
//             munmap of a resident segment took 18-25 ms on a 2-core VM,
//             in the allocating thread's time. Runtime::trim() decommits
//             every free page (MADV_DONTNEED) and unmaps every empty
//             segment at once, queued ones included, and waits for any the
//             populator is unmapping.
//
// With RuntimeOptions::huge_os_pages, segments of small pages are backed by
// transparent huge pages (Segment::huge_os_pages): their free pages stay
// committed while the segment is in use (releasing 64 KiB of a 2 MiB page
// would split it), so their memory follows the peak at segment grain only.
//
// With RuntimeOptions::populate_small_pages, a page of small blocks taken
// from a segment's free pages (memory the process does not hold: never
// committed, or released) leaves with Page::populated at 0, and its heap
// faults it in ahead of allocation (Heap::populate_ahead); a page from the
// committed lists, or of a segment on huge OS pages, leaves at area_size.
//
// With RuntimeOptions::populate_ahead_above, the next segment of small
// pages on huge OS pages is mapped and faulted in ahead by a thread of the
// pool (the populator), started when the first such segment is mapped with
// that many bytes of segments in use: whenever the
// pool maps one (or takes the one held ready), it asks for the next. The
// segment held ready (reserve_) is in no list and in all_ only once taken,
// so walks never see it; the populator touches nothing but that segment
// and, under mu_, the fields below. trim() unmaps it (and one in the
// making is dropped when done). A fork() child has no populator.
// When the heap grows faster than the populator faults segments in, an
// allocation that finds none ready neither waits for it nor faults a huge
// OS page in itself (milliseconds each on a VM): it takes the spare
// (spare_), a segment the populator mapped on small OS pages and did not
// fault in, whose pages fault in 4 KiB at a time as they are used, and
// which needs no mmap on the allocating thread (an mmap waits for the
// populator's faulting in, which holds the address space's lock). The
// spare lives as the reserve does: in no list until taken, unmapped by
// trim().
//
// Huge pages that come dear (RuntimeOptions::huge_os_page_fault_limit_ns):
// the pool times, in the CPU time of the thread doing it, the huge-page
// faults it makes itself: map_segment's first write to a segment advised
// huge (the header, which faults in its first 2 MiB) and the populator's
// faulting in of the rest. A touch over the limit counts one up, one under
// it one down (never below zero), and at kHugeDearVerdict they are dear
// (huge_dear_): huge_os_pages_above's segments are mapped on small OS
// pages for the rest of the runtime's life. Segments already on huge pages
// stay as they are, and what the populator holds is still taken first.
// The populator goes on past populate_ahead_above, faulting its reserves
// in on small OS pages (untimed): one madvise for a segment's 1,024 faults
// on its own thread, where the allocating thread would take each of them
// (rewire at 100 MiB: the mutator's faults 36-47k -> 40-70, its process's
// system time 0.7 -> 0.3 s; at 1 GiB, 333k -> 0.2-1.2k, longest
// operation 19-23 -> 2.9-3.1 ms). No
// probe later: a fault that dear, on the populator's thread, holds the
// address space's lock for as long, and an allocating thread's mmap waited
// for it (rewire at 1 GiB, a probe every 256 MiB mapped: stalls of 8-15 ms
// against at most 2-4 ms without).
//
// Life cycle of a (non-huge) segment, as lists:
//   partly used  avail_[kind]   some pages free, some in use
//   full         (no list)      every page in use
//   empty        empty_[kind]   no page in use, oldest first; its free pages
//                               may still be dirty (in young_/old_/due_)
// An empty segment of one kind serves a page of another kind when that kind
// has no free page anywhere: it is laid out again (lay_out), its dirty pages
// forgotten (their memory stays committed and is reused as it is).
//
// Everything here is under mu_ (lock order: TagShard::mu before it). The
// clock is a steady millisecond clock, replaceable in tests.
//
// Invariants (checked by Runtime::verify through Segment::is_valid and the
// counts below):
//   empty_count_ == sum of |empty_[k]|; a segment is in empty_ iff pages_in_use == 0
//   segments_in_use_ == non-huge segments with pages_in_use > 0
//   dirty_bytes_ == sum of area_size over young_, old_ and due_
#pragma once

#include <condition_variable>
#include <cstddef>
#include <cstdint>
#include <mutex>
#include <new>
#include <thread>

#include "alloc/internal/intrusive.h"
#include "alloc/internal/page.h"
#include "alloc/internal/segment.h"

namespace tagheap::internal {

class RuntimeCore;

using PageList = IntrusiveList<Page, &Page::queue_hook>;
using SegmentList = IntrusiveList<Segment, &Segment::avail_hook>;
using AllSegmentList = IntrusiveList<Segment, &Segment::all_hook>;

class SegmentPool {
 public:
  using Clock = std::int64_t (*)() noexcept;  // milliseconds, monotonic
  using CpuClock = std::int64_t (*)() noexcept;  // nanoseconds of the calling thread's CPU time

  explicit SegmentPool(RuntimeCore* runtime) : runtime_(runtime) {}
  ~SegmentPool();
  SegmentPool(const SegmentPool&) = delete;
  SegmentPool& operator=(const SegmentPool&) = delete;

  // An unused page of the kind, with area and area_size set; nullptr when the
  // OS refuses memory.
  Page* take_page(PageKind kind) noexcept;
  // A huge segment for one block of `size` bytes aligned to `align` (both
  // checked by the caller: size <= kMaxAllocation, align < kSegmentSize).
  Page* take_huge_page(std::size_t size, std::size_t align) noexcept;
  // The page must be unlinked from every list. Its memory stays committed
  // for a while, its segment mapped while the recent peak wants it (above).
  void give_back(Page* page) noexcept;
  // Decommits every free page still committed and unmaps every empty and
  // cached huge segment (Runtime::trim).
  void purge_all() noexcept;

  template <class F>
  void for_each_segment(F&& f) {
    for (Segment& s : all_) f(s);
  }
  // f(Segment&) -> bool, from the front of the list; false stops. f may
  // move the segment it is shown to the back (move_to_back).
  template <class F>
  void for_each_segment_until(F&& f) {
    for (auto it = all_.begin(); it != all_.end();) {
      Segment& s = *it++;
      if (!f(s)) return;
    }
  }
  // World stopped (the list is not under mu_ for readers): the order of the
  // list is the pool's to keep only in this: a pass may move the segments
  // it is done with to the back and stop at the first one it did before.
  void move_to_back(Segment& s) noexcept {
    all_.erase(all_.iterator_to(s));
    all_.push_back(s);
  }
  std::size_t segment_count() const noexcept { return all_.size(); }
  // Non-huge segments with no page in use, kept mapped for reuse.
  std::size_t empty_segment_count() noexcept;
  // Segments mapped and unmapped over the pool's life (huge ones included).
  std::size_t segments_mapped_total() noexcept;
  std::size_t segments_unmapped_total() noexcept;
  // Around fork() (Runtime::before_fork): the lock is held from the
  // prepare handler until the parent's handler, so that the populator (or
  // any thread) is not halfway through the lists when the child is made.
  void lock_for_fork() noexcept { mu_.lock(); }
  void unlock_after_fork_parent() noexcept { mu_.unlock(); }
  // In a fork() child: the lock starts afresh, and the populator is gone
  // with its thread (a segment it was making is lost to the child; the one
  // held ready stays, and is used); the child starts none.
  void after_fork_child() noexcept;
  // Tests: the segment held ready by the populator, or nullptr.
  const Segment* populated_reserve_for_testing() noexcept;
  // Tests: the spare (mapped on small OS pages, not faulted in), or nullptr.
  const Segment* spare_for_testing() noexcept;
  // Tests: while held, the populator maps spares but populates no reserve
  // (the heap outgrowing it, made deterministic).
  void hold_populating_for_testing(bool hold) noexcept;
  bool populator_started_for_testing() noexcept;
  // Tests: segments the populator unmapped for the allocating threads.
  std::size_t segments_unmapped_in_background_for_testing() noexcept;
  // Tests: the clock that ages pages and segments (nullptr: the steady clock).
  void set_clock_for_testing(Clock clock) noexcept;
  // Tests: the clock huge-page faults are timed with (nullptr:
  // os::thread_cpu_ns). Set it before the runtime maps a segment.
  void set_cpu_clock_for_testing(CpuClock clock) noexcept;
  // Times a huge-page fault went over huge_os_page_fault_limit_ns, and
  // whether segments mapped now would ask for huge pages under
  // huge_os_pages_above were enough bytes in use (the verdict stands).
  std::size_t huge_os_page_declines() noexcept;
  bool huge_os_pages_declined() noexcept;

 private:
  // touch_ns: for a segment advised huge, set to the CPU time the mapping
  // and the header's first write took (its first huge page's fault); else -1.
  Segment* map_segment(PageKind kind, std::size_t size, bool huge_os_pages = false,
                       std::int64_t* touch_ns = nullptr) noexcept;
  // mu_ held: a huge page's first touch took ns (< 0: not timed).
  void note_huge_touch(std::int64_t ns) noexcept;
  std::int64_t cpu_ns() const noexcept;
  // Whether a segment of kind k mapped or laid out now is advised huge
  // (RuntimeOptions::huge_os_pages, huge_os_pages_above). mu_ held.
  bool wants_huge_os_pages(PageKind kind) const noexcept;
  void lay_out(Segment* seg, PageKind kind) noexcept;
  void unmap_segment(Segment* seg) noexcept;
  void unmap_unlisted(Segment* seg) noexcept;  // one not in all_ (the reserve, the spare)
  static void release_segment_memory(Segment* seg) noexcept;  // unmap_unlisted's munmap, without mu_
  // mu_ held: hands an empty segment, out of every list, to the populator
  // to unmap (unmap_queue_).
  void queue_unmap(Segment* seg) noexcept;
  // mu_ held: unmaps the queued segments now, on this thread.
  void unmap_queued_now() noexcept;
  // Populator, mu_ held through `lock` and released around each munmap.
  void unmap_queued_in_background(std::unique_lock<std::mutex>& lock) noexcept;
  bool populator_running() const noexcept { return populator_.joinable() && !populator_stop_ && !populator_refused_; }
  // mu_ held: asks the populator for the next segment (starting it first).
  void request_populated() noexcept;
  void populate_loop() noexcept;
  // mu_ held: gives back what the pool holds ahead of need (the populator's
  // reserve and spare, empty segments, cached huge ones), for a map that
  // failed to try once more before it reports out of memory. Returns
  // whether anything went.
  bool release_held() noexcept;
  // Populator, mu_ held through `lock` and released meanwhile: maps the
  // spare (small OS pages, untouched) or the reserve (faulted_in: huge OS
  // pages, populated) into `slot`, unless trim() or the pool's end came.
  void make_held(std::unique_lock<std::mutex>& lock, Segment*& slot, bool faulted_in) noexcept;
  // mu_ held: unmaps the reserve and the spare; whether there was one.
  bool unmap_held() noexcept;
  void stop_populator() noexcept;
  Segment* segment_with_free_page(std::size_t k, std::unique_lock<std::mutex>& lock) noexcept;
  Segment* reuse_empty_of_other_kind(std::size_t k) noexcept;
  void mark_empty(Segment* seg) noexcept;
  // Unmaps it now, or (in_background) queues it for the populator.
  void unmap_empty(Segment* seg, bool in_background = false) noexcept;
  void evict_empty_segments(std::size_t keep, std::size_t most = SIZE_MAX, bool in_background = false) noexcept;
  std::size_t empty_segments_allowed() const noexcept;
  void forget_dirty_pages(Segment* seg) noexcept;
  void purge_aged_and_excess() noexcept;
  enum class Purge { kLazily, kNow };  // os::release_lazily or os::decommit
  // Releases dirty pages, oldest first (due_, old_, young_), until at most
  // `keep` dirty bytes are left or `most` bytes were released.
  void purge_oldest_until(std::size_t keep, Purge how, std::size_t most = SIZE_MAX) noexcept;
  PageList& dirty_list(const Page& page) noexcept;
  void unlist_dirty(Page& page) noexcept;  // off its list, no longer counted dirty
  void purge_dirty(Page& page, Purge how) noexcept;
  void decommit_free_pages(Segment& seg) noexcept;
  void set_huge_os_pages(Segment* seg, bool on) noexcept;

  static constexpr std::size_t kDirtyBytesMin = std::size_t{8} << 20;
  // A freed huge segment of at most kHugeCacheBytes / 4 is kept whole
  // (mapped and committed) for up to kHugeCacheAgeMs, while the cache
  // holds at most max(kHugeCacheBytes (config.h), the most bytes of huge
  // segments in use since the last rotation) in at most kHugeCacheSlots
  // segments: like dirty pages, bounded by the recent peak of what is in
  // use. A huge block takes the smallest cached segment that fits it and is
  // at most 4 times its size (the rest stays mapped, and committed only
  // where an earlier block touched it). The cache is a small array,
  // not a list through the segments: a lookup reads one or two cache lines
  // instead of a header in each cached segment.
  static constexpr std::size_t kHugeCacheSlots = 64;
  struct CachedHuge {
    Segment* seg;
    std::size_t size;
    std::int64_t cached_at_ms;
  };

  Page* take_cached_huge(std::size_t total) noexcept;
  void cache_huge(Segment* seg) noexcept;
  void evict_huge(std::int64_t now) noexcept;
  void drop_cached_huge(std::size_t i) noexcept;
  void count_huge_in_use(std::size_t size) noexcept;
  void unmap_oldest_cached_huge() noexcept;
  void rotate_if_due(std::int64_t now) noexcept;
  std::int64_t now_ms() const noexcept;

  RuntimeCore* runtime_;
  Clock clock_ = nullptr;
  CpuClock cpu_clock_ = nullptr;
  std::mutex mu_;
  SegmentList avail_[3];  // partly used small, medium, large segments
  SegmentList empty_[3];  // empty ones, in the order they emptied
  AllSegmentList all_;
  std::size_t empty_count_ = 0;
  std::size_t segments_in_use_ = 0;
  std::size_t segment_peak_ = 0;       // of segments_in_use_ in the current window
  std::size_t segment_peak_prev_ = 0;  // in the window before
  std::int64_t segment_window_ms_ = 0;
  std::size_t mapped_total_ = 0, unmapped_total_ = 0;
  bool huge_dear_ = false;         // huge pages came dear: huge_os_pages_above asks for none
  std::size_t huge_declines_ = 0;  // faults timed over the limit
  int huge_dear_score_ = 0;        // of those, past the ones under it (note_huge_touch)
  PageList young_[3];  // free, committed pages per kind, most recent first (Page::dirty 1)
  PageList old_[3];    // likewise, freed before the last rotation (Page::dirty 2)
  PageList due_[3];    // older still: their release is due, a step at a time (Page::dirty 3)
  std::size_t dirty_bytes_ = 0;
  std::size_t due_bytes_ = 0;  // of dirty_bytes_, in due_
  std::size_t committed_in_use_ = 0;
  std::size_t in_use_peak_ = 0;  // of committed_in_use_ since the last rotation
  std::int64_t last_rotation_ms_ = 0;
  CachedHuge huge_cache_[kHugeCacheSlots];  // [0, huge_cached_): oldest first
  std::size_t huge_cached_ = 0;
  std::size_t huge_cache_bytes_ = 0;
  std::size_t huge_in_use_ = 0;       // bytes of huge segments holding a block
  std::size_t huge_in_use_peak_ = 0;  // of huge_in_use_ since the last rotation
  // The populator (populate_ahead_above), under mu_.
  Segment* reserve_ = nullptr;      // mapped, faulted in, laid out for small pages; in no list
  Segment* spare_ = nullptr;        // mapped on small OS pages, laid out, not faulted in; in no list
  bool reserve_wanted_ = false;     // the populator is asked for a reserve and a spare
  bool hold_populating_ = false;    // hold_populating_for_testing
  bool populating_ = false;         // the populator is making one, mu_ released
  bool populator_stop_ = false;     // the pool is going away
  bool populator_refused_ = false;  // no thread could be started, or a fork() child: no populator
  // Empty segments evicted while the populator runs: out of every list,
  // SegmentMap and all_, still mapped until the populator unmaps them
  // (through avail_hook, which an evicted segment no longer uses).
  SegmentList unmap_queue_;
  bool unmapping_ = false;  // the populator is unmapping queued ones, mu_ released
  std::size_t unmapped_in_background_ = 0;  // segments_unmapped_in_background_for_testing
  std::uint64_t purge_epoch_ = 0;   // purge_all() calls: a segment made across one is dropped
  std::condition_variable populator_cv_;
  std::thread populator_;
};

}  // namespace tagheap::internal
