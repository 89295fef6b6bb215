// The segment pool: taking pages and giving them back, and how long free
// pages stay committed and empty segments stay mapped (segment_pool.h).
#include "alloc/internal/segment_pool.h"

#include <pthread.h>
#include <signal.h>

#include <algorithm>
#include <bit>
#include <chrono>
#include <limits>

#include "alloc/internal/runtime_core.h"
#include "alloc/internal/segment_map.h"
#include "alloc/runtime.h"
#include "alloc/os.h"

namespace tagheap::internal {

SegmentPool::~SegmentPool() {
  stop_populator();  // unmaps what it had queued too
  huge_cached_ = 0;  // all_ holds them too
  for (std::size_t k = 0; k < 3; ++k) {
    young_[k].clear();
    old_[k].clear();
    due_[k].clear();
    avail_[k].clear();
    empty_[k].clear();
  }
  while (!all_.empty()) unmap_segment(&all_.front());
}

Page* SegmentPool::take_page(PageKind kind) noexcept {
  const auto k = static_cast<std::size_t>(kind);
  std::unique_lock lock(mu_);
  Page* page;
  bool populate = false;
  if (PageList& list = !young_[k].empty() ? young_[k] : !old_[k].empty() ? old_[k] : due_[k]; !list.empty()) {
    // The most recently freed page: still committed, likely still cached.
    page = &list.front();
    unlist_dirty(*page);
  } else {
    Segment* seg = segment_with_free_page(k, lock);
    if (seg == nullptr) return nullptr;
    page = &seg->pages[std::countr_zero(seg->free_pages)];
    // Never committed, or released (MADV_FREE'd pages the kernel has not
    // taken yet are present: populating them costs a walk of the entries).
    populate = kind == PageKind::kSmall && !seg->huge_os_pages && !seg->faulted_in &&
               runtime_->options.populate_small_pages;
  }
  Segment* seg = Segment::of(reinterpret_cast<void*>(page->area));
  seg->free_pages &= ~(std::uint64_t{1} << page->page_index);
  if (seg->pages_in_use++ == 0) {
    empty_[k].erase(empty_[k].iterator_to(*seg));
    --empty_count_;
    segment_peak_ = std::max(segment_peak_, ++segments_in_use_);
    if (seg->free_pages != 0) avail_[k].push_front(*seg);
  } else if (seg->free_pages == 0) {
    avail_[k].erase(avail_[k].iterator_to(*seg));
  }
  if (seg->huge_advice_withdrawn) [[unlikely]] {
    seg->huge_advice_withdrawn = false;
    os::advise_huge_pages(reinterpret_cast<void*>(seg->base()), seg->size);
  }
  page->in_use = 1;
  page->dirty = 0;
  committed_in_use_ += page->area_size;
  in_use_peak_ = std::max(in_use_peak_, committed_in_use_);
  page->populated = populate ? 0 : static_cast<std::uint32_t>(page->area_size);  // the heap populates (Heap::populate_ahead)
  purge_aged_and_excess();  // a program that only allocates ages its free memory too
  return page;
}

// Where a page of kind k comes from once no free page of that kind is
// committed: a partly used segment, an empty one (the most recently
// emptied), an empty one of another kind laid out again, or a new mapping
// (the lock is dropped meanwhile). A segment with no page in use is in
// empty_[k] when this returns.
Segment* SegmentPool::segment_with_free_page(std::size_t k, std::unique_lock<std::mutex>& lock) noexcept {
  if (!avail_[k].empty()) return &avail_[k].front();
  if (!empty_[k].empty()) return &empty_[k].back();
  if (Segment* seg = reuse_empty_of_other_kind(k)) return seg;
  const bool huge_os_pages = wants_huge_os_pages(static_cast<PageKind>(k));
  const std::size_t ahead_above = runtime_->options.populate_ahead_above;
  // Once huge pages came dear the populator goes on, on small OS pages:
  // the allocating threads would otherwise fault in every 4 KiB themselves
  // (the class comment has the figures).
  const bool ahead = (huge_os_pages || huge_dear_) && k == static_cast<std::size_t>(PageKind::kSmall) &&
                     ahead_above != 0 && (segments_in_use_ + 1) * kSegmentSize >= ahead_above;  // this one counted
  // What the populator holds is taken also once huge pages came dear,
  // under populate_ahead_above too: it is faulted in already.
  const bool take_held = (ahead || (k == static_cast<std::size_t>(PageKind::kSmall) && huge_dear_)) &&
                         (reserve_ != nullptr || spare_ != nullptr);
  Segment* fresh;
  if (take_held) {
    // Faulted in by the populator (no mmap, no page fault here), or else
    // the spare: the heap grows faster than segments are faulted in ahead
    // (class comment; rewire at 1 GiB live, bench/README.md, "Populating
    // segments ahead").
    Segment*& ready = reserve_ != nullptr ? reserve_ : spare_;
    fresh = ready;
    ready = nullptr;
    if (ahead) request_populated();
  } else {
    if (ahead) request_populated();  // the next ones, while this thread maps its own
    std::int64_t touch_ns = -1;
    lock.unlock();
    fresh = map_segment(static_cast<PageKind>(k), kSegmentSize, huge_os_pages, &touch_ns);
    lock.lock();
    if (fresh == nullptr && release_held()) {  // out of memory: what is held ahead first
      lock.unlock();
      fresh = map_segment(static_cast<PageKind>(k), kSegmentSize, huge_os_pages, &touch_ns);
      lock.lock();
    }
    if (fresh == nullptr) return nullptr;
    ++mapped_total_;
    note_huge_touch(touch_ns);
  }
  all_.push_back(*fresh);
  fresh->emptied_at_ms = now_ms();
  empty_[k].push_back(*fresh);
  ++empty_count_;
  return fresh;
}

bool SegmentPool::wants_huge_os_pages(PageKind kind) const noexcept {
  if (kind != PageKind::kSmall) return false;
  const RuntimeOptions& o = runtime_->options;
  return o.huge_os_pages || (o.huge_os_pages_above != 0 && segments_in_use_ * kSegmentSize >= o.huge_os_pages_above &&
                             !huge_dear_);
}

void SegmentPool::note_huge_touch(std::int64_t ns) noexcept {
  const std::int64_t limit = runtime_->options.huge_os_page_fault_limit_ns;
  if (ns < 0 || limit <= 0) return;
  if (ns <= limit) {
    if (huge_dear_score_ > 0) --huge_dear_score_;
    return;
  }
  ++huge_declines_;
  if (++huge_dear_score_ >= kHugeDearVerdict) huge_dear_ = true;
}

std::int64_t SegmentPool::cpu_ns() const noexcept { return cpu_clock_ != nullptr ? cpu_clock_() : os::thread_cpu_ns(); }

// The huge-page advice follows the segment's kind when it is laid out anew:
// pages of other kinds are released one by one, which would split huge pages.
void SegmentPool::set_huge_os_pages(Segment* seg, bool on) noexcept {
  if (on != seg->huge_os_pages || (on && seg->huge_advice_withdrawn)) {
    if (on)
      os::advise_huge_pages(reinterpret_cast<void*>(seg->base()), seg->size);
    else
      os::advise_no_huge_pages(reinterpret_cast<void*>(seg->base()), seg->size);
  }
  seg->huge_os_pages = on;
  seg->huge_advice_withdrawn = false;
}

Segment* SegmentPool::reuse_empty_of_other_kind(std::size_t k) noexcept {
  for (std::size_t j = 0; j < 3; ++j) {
    if (j == k || empty_[j].empty()) continue;
    Segment* seg = &empty_[j].front();  // the oldest: its pages are likeliest released
    empty_[j].erase(empty_[j].iterator_to(*seg));
    // Its dirty pages are of the old layout; their memory stays committed
    // and serves the new pages as it is (uncounted in dirty_bytes_).
    forget_dirty_pages(seg);
    // As fresh, from the end of the shortest header (the old layout's page
    // areas may lie under the new one's header).
    asan::unpoison(seg->base() + header_size(PageKind::kMedium), seg->size - header_size(PageKind::kMedium));
    // Out of the map while its geometry changes: a lookup from another
    // runtime (find_block) meanwhile finds nothing, as it would after.
    SegmentMap::set(seg->base(), seg->size, false);
    set_huge_os_pages(seg, wants_huge_os_pages(static_cast<PageKind>(k)));
    lay_out(seg, static_cast<PageKind>(k));
    SegmentMap::set(seg->base(), seg->size, true, seg->page_shift);
    empty_[k].push_back(*seg);
    return seg;
  }
  return nullptr;
}

void SegmentPool::give_back(Page* page) noexcept {
  Segment* seg = Segment::of(reinterpret_cast<void*>(page->area));
  page->in_use = 0;
  page->owner_token().store(0, std::memory_order_relaxed);
  page->heap = nullptr;
  page->drop_cache();
  page->used = 0;
  page->reserved = 0;
  page->slow_free = page->in_walk = page->in_pool = page->pool_full = 0;
  if (page->kind == PageKind::kHuge) {
    cache_huge(seg);
    return;
  }
  asan::poison(page->area, page->area_size);
  const auto k = static_cast<std::size_t>(page->kind);
  std::lock_guard lock(mu_);
  committed_in_use_ -= page->area_size;
  const bool was_full = seg->free_pages == 0;
  seg->free_pages |= std::uint64_t{1} << page->page_index;
  if (!seg->huge_os_pages) {
    page->dirty = 1;  // committed: see kPurgeDelayMs
    young_[k].push_front(*page);
    dirty_bytes_ += page->area_size;
  }
  if (--seg->pages_in_use == 0) {
    if (!was_full) avail_[k].erase(avail_[k].iterator_to(*seg));
    mark_empty(seg);
  } else if (was_full) {
    avail_[k].push_front(*seg);
  }
  purge_aged_and_excess();
}

void SegmentPool::mark_empty(Segment* seg) noexcept {
  seg->emptied_at_ms = now_ms();
  empty_[static_cast<std::size_t>(seg->kind)].push_back(*seg);
  ++empty_count_;
  --segments_in_use_;
}

void SegmentPool::unmap_empty(Segment* seg, bool in_background) noexcept {
  SegmentList& list = empty_[static_cast<std::size_t>(seg->kind)];
  list.erase(list.iterator_to(*seg));
  --empty_count_;
  forget_dirty_pages(seg);
  if (in_background) queue_unmap(seg);
  else unmap_segment(seg);
}

void SegmentPool::queue_unmap(Segment* seg) noexcept {
  all_.erase(all_.iterator_to(*seg));
  SegmentMap::set(seg->base(), seg->size, false);  // gone for lookups now, as for an unmapped one
  unmap_queue_.push_back(*seg);
  populator_cv_.notify_all();  // all: a trim() may be waiting on the same condition
}

void SegmentPool::unmap_queued_now() noexcept {
  while (!unmap_queue_.empty()) {
    Segment* seg = &unmap_queue_.front();
    unmap_queue_.pop_front();
    unmap_unlisted(seg);
  }
}

// A munmap of a resident 4 MiB segment took 18-25 ms on a 2-core VM whenever
// it followed a while without one (rewire at 1 GiB: the first of each burst
// of evictions, about 2.7 GiB resident); from another thread than the one
// that faulted the memory in, 0.3-0.5 ms, and the allocating thread no
// longer waits for it either way.
void SegmentPool::unmap_queued_in_background(std::unique_lock<std::mutex>& lock) noexcept {
  unmapping_ = true;  // trim() waits for these to be gone
  while (!unmap_queue_.empty()) {
    Segment* seg = &unmap_queue_.front();
    unmap_queue_.pop_front();
    ++unmapped_total_;
    ++unmapped_in_background_;
    lock.unlock();
    release_segment_memory(seg);
    lock.lock();
  }
  unmapping_ = false;
  populator_cv_.notify_all();
}

// Empty segments beyond what the recent peak of segments in use wants.
std::size_t SegmentPool::empty_segments_allowed() const noexcept {
  const std::size_t peak = std::max(segment_peak_, segment_peak_prev_);
  return std::max(kSegmentCacheMax, peak > segments_in_use_ ? peak - segments_in_use_ : 0);
}

// Unmaps the segments empty the longest until at most `keep` are left, or
// `most` of them; in_background while the populator runs, it does the munmaps.
void SegmentPool::evict_empty_segments(std::size_t keep, std::size_t most, bool in_background) noexcept {
  for (std::size_t unmapped = 0; empty_count_ > keep && unmapped < most; ++unmapped) {
    Segment* oldest = nullptr;
    for (SegmentList& list : empty_)
      if (!list.empty() && (oldest == nullptr || list.front().emptied_at_ms < oldest->emptied_at_ms))
        oldest = &list.front();
    unmap_empty(oldest, in_background);
  }
}

void SegmentPool::forget_dirty_pages(Segment* seg) noexcept {
  for (std::size_t i = 0; i < seg->page_count; ++i) {
    Page& page = seg->pages[i];
    if (page.dirty) unlist_dirty(page);
  }
}

// Under the lock: a page leaves its list only once its memory is
// released, so take_page never hands out a page mid-purge. Aging releases
// lazily (MADV_FREE: measured on binary-trees depth 21, 40% fewer page
// faults than MADV_DONTNEED for the same peak RSS, since the kernel keeps
// the pages while it has memory to spare); trim() decommits at once.
PageList& SegmentPool::dirty_list(const Page& page) noexcept {
  PageList* lists = page.dirty == 1 ? young_ : page.dirty == 2 ? old_ : due_;
  return lists[static_cast<std::size_t>(page.kind)];
}

void SegmentPool::unlist_dirty(Page& page) noexcept {
  PageList& list = dirty_list(page);
  list.erase(list.iterator_to(page));
  dirty_bytes_ -= page.area_size;
  if (page.dirty == 3) due_bytes_ -= page.area_size;
  page.dirty = 0;
}

void SegmentPool::purge_dirty(Page& page, Purge how) noexcept {
  Segment::of(reinterpret_cast<void*>(page.area))->faulted_in = false;
  if (how == Purge::kLazily)
    os::release_lazily(reinterpret_cast<void*>(page.area), page.area_size);
  else
    os::decommit(reinterpret_cast<void*>(page.area), page.area_size);
  unlist_dirty(page);
}

std::int64_t SegmentPool::now_ms() const noexcept {
  if (clock_ != nullptr) [[unlikely]] return clock_();
  return std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now().time_since_epoch())
      .count();
}

void SegmentPool::set_cpu_clock_for_testing(CpuClock clock) noexcept {
  std::lock_guard lock(mu_);
  cpu_clock_ = clock;
}

std::size_t SegmentPool::huge_os_page_declines() noexcept {
  std::lock_guard lock(mu_);
  return huge_declines_;
}

bool SegmentPool::huge_os_pages_declined() noexcept {
  std::lock_guard lock(mu_);
  return huge_dear_;
}

void SegmentPool::set_clock_for_testing(Clock clock) noexcept {
  std::lock_guard lock(mu_);
  clock_ = clock;
  last_rotation_ms_ = segment_window_ms_ = now_ms();
}

// Every kPurgeDelayMs: the page peaks start again from what is in use now,
// the pages still in old_ become due (released a step at a time by
// purge_aged_and_excess) and young_ becomes old_. Every kSegmentWindowMs the
// segment peak moves on to a new window.
void SegmentPool::rotate_if_due(std::int64_t now) noexcept {
  if (now - segment_window_ms_ >= kSegmentWindowMs) {
    // Two windows or more since the last rotation: nothing happened in the
    // last one (any take or give would have rotated), so its peak is the
    // count now.
    segment_peak_prev_ = now - segment_window_ms_ >= 2 * kSegmentWindowMs ? segments_in_use_ : segment_peak_;
    segment_peak_ = segments_in_use_;
    segment_window_ms_ = now;
  }
  if (now - last_rotation_ms_ < kPurgeDelayMs) return;
  last_rotation_ms_ = now;
  in_use_peak_ = committed_in_use_;
  huge_in_use_peak_ = huge_in_use_;
  for (std::size_t k = 0; k < 3; ++k) {
    for (Page& page : old_[k]) {
      page.dirty = 3;
      due_bytes_ += page.area_size;
    }
    due_[k].splice(due_[k].end(), old_[k]);
    for (Page& page : young_[k]) page.dirty = 2;
    old_[k].splice(old_[k].end(), young_[k]);
  }
}

void SegmentPool::purge_aged_and_excess() noexcept {
  const std::int64_t now = now_ms();
  evict_huge(now);
  rotate_if_due(now);
  evict_empty_segments(empty_segments_allowed(), kSegmentUnmapStep, populator_running());
  // Due pages, then whatever passes the recent peak: one step per call.
  const std::size_t keep = std::min(dirty_bytes_ - std::min(due_bytes_, kReleaseStepBytes),
                                    std::max(kDirtyBytesMin, in_use_peak_));
  purge_oldest_until(keep, Purge::kLazily, kReleaseStepBytes);
}

void SegmentPool::purge_oldest_until(std::size_t keep, Purge how, std::size_t most) noexcept {
  std::size_t released = 0;
  while (dirty_bytes_ > keep && released < most) {
    // The oldest generation first; within it, the kind holding the most.
    PageList* lists = young_;
    for (PageList* older : {old_, due_})
      if (!older[0].empty() || !older[1].empty() || !older[2].empty()) lists = older;
    std::size_t k = 0;
    for (std::size_t j = 1; j < 3; ++j)
      if (lists[j].size() > lists[k].size()) k = j;
    released += lists[k].back().area_size;
    purge_dirty(lists[k].back(), how);
  }
}

void SegmentPool::purge_all() noexcept {
  std::unique_lock lock(mu_);
  ++purge_epoch_;  // a segment the populator is making now is dropped when done: wait for that
  reserve_wanted_ = false;
  populator_cv_.wait(lock, [&] { return !populating_ && !unmapping_; });
  unmap_held();
  unmap_queued_now();
  evict_empty_segments(0);  // first: their dirty pages go with them, no madvise
  purge_oldest_until(0, Purge::kNow);
  evict_huge(std::numeric_limits<std::int64_t>::max());
  for (std::size_t k = 0; k < 3; ++k)
    for (Segment& seg : avail_[k])
      if (seg.huge_os_pages) decommit_free_pages(seg);
}

// A segment on huge OS pages keeps its free pages out of the dirty lists
// (committed, never aged); trim() decommits them here, in runs, after
// withdrawing the huge-page advice so that khugepaged leaves them out.
void SegmentPool::decommit_free_pages(Segment& seg) noexcept {
  std::uint64_t free = seg.free_pages;
  if (free == 0) return;
  if (!seg.huge_advice_withdrawn) {
    seg.huge_advice_withdrawn = true;
    os::advise_no_huge_pages(reinterpret_cast<void*>(seg.base()), seg.size);
  }
  while (free != 0) {
    const unsigned first = static_cast<unsigned>(std::countr_zero(free));
    const unsigned run = static_cast<unsigned>(std::countr_one(free >> first));
    const Page& a = seg.pages[first];
    const Page& b = seg.pages[first + run - 1];
    os::decommit(reinterpret_cast<void*>(a.area), b.area + b.area_size - a.area);
    free &= run == 64 ? 0 : ~(((std::uint64_t{1} << run) - 1) << first);
  }
}

void SegmentPool::request_populated() noexcept {
  if (populator_refused_ || os::refusal_armed()) return;
  reserve_wanted_ = true;
  if (!populator_.joinable()) {
    try {
      populator_ = std::thread([this] { populate_loop(); });
    } catch (...) {  // no thread to be had: allocation maps as before
      populator_refused_ = true;
      reserve_wanted_ = false;
      return;
    }
  }
  populator_cv_.notify_one();
}

// The populator: maps, lays out and faults in a segment of small pages on
// huge OS pages whenever one is wanted and none is ready. Signals go to the
// program's own threads.
void SegmentPool::populate_loop() noexcept {
  sigset_t all;
  sigfillset(&all);
  pthread_sigmask(SIG_BLOCK, &all, nullptr);
  std::unique_lock lock(mu_);
  for (;;) {
    populator_cv_.wait(lock, [&] {
      return populator_stop_ || !unmap_queue_.empty() ||
             (reserve_wanted_ && (spare_ == nullptr || (reserve_ == nullptr && !hold_populating_)));
    });
    if (populator_stop_) return;
    if (!unmap_queue_.empty()) {
      unmap_queued_in_background(lock);
      continue;
    }
    reserve_wanted_ = false;
    if (os::refusal_armed()) continue;  // a test counts maps: none of ours among them
    populating_ = true;  // trim() waits for what is made now, and drops it
    if (spare_ == nullptr) make_held(lock, spare_, /*faulted_in=*/false);  // first: an mmap, no faults
    if (reserve_ == nullptr && !hold_populating_) make_held(lock, reserve_, /*faulted_in=*/true);
    populating_ = false;
    populator_cv_.notify_all();  // a trim() may wait for the segments made to be dropped
  }
}

void SegmentPool::make_held(std::unique_lock<std::mutex>& lock, Segment*& slot, bool faulted_in) noexcept {
  const std::uint64_t epoch = purge_epoch_;
  // The reserve faulted in, on huge OS pages unless they came dear; the
  // spare on small ones, untouched.
  const bool huge = faulted_in && (runtime_->options.huge_os_pages || !huge_dear_);
  lock.unlock();
  std::int64_t header_ns = -1, rest_ns = -1;  // the first huge page's fault, the others' (timed: note_huge_touch)
  Segment* seg = map_segment(PageKind::kSmall, kSegmentSize, huge, &header_ns);
  if (seg != nullptr && faulted_in) {
    const std::int64_t t0 = huge ? cpu_ns() : 0;
    seg->faulted_in = os::populate(reinterpret_cast<void*>(seg->base()), seg->size);
    if (huge) rest_ns = (cpu_ns() - t0) / static_cast<std::int64_t>(kSegmentSize / kHugeOsPageSize - 1);
  }
  lock.lock();
  if (seg == nullptr) return;  // out of memory: allocations map their own, and ask again
  ++mapped_total_;
  note_huge_touch(std::max(header_ns, rest_ns));
  if (populator_stop_ || epoch != purge_epoch_ || slot != nullptr) unmap_unlisted(seg);
  else slot = seg;
}

bool SegmentPool::unmap_held() noexcept {
  bool unmapped = false;
  for (Segment** held : {&reserve_, &spare_}) {
    if (*held == nullptr) continue;
    unmap_unlisted(*held);
    *held = nullptr;
    unmapped = true;
  }
  return unmapped;
}

bool SegmentPool::release_held() noexcept {
  reserve_wanted_ = false;  // asked again by the next segment taken
  bool released = unmap_held();
  if (!unmap_queue_.empty()) {  // the populator may be busy: the memory is wanted now
    unmap_queued_now();
    released = true;
  }
  if (empty_count_ != 0) {
    evict_empty_segments(0);
    released = true;
  }
  if (huge_cached_ != 0) {
    evict_huge(std::numeric_limits<std::int64_t>::max());
    released = true;
  }
  return released;
}

void SegmentPool::stop_populator() noexcept {
  {
    std::lock_guard lock(mu_);
    populator_stop_ = true;
  }
  populator_cv_.notify_all();
  if (populator_.joinable()) populator_.join();
  std::lock_guard lock(mu_);
  unmap_held();
  unmap_queued_now();
}

void SegmentPool::after_fork_child() noexcept {
  new (&mu_) std::mutex();
  new (&populator_cv_) std::condition_variable();
  // The thread is gone; its handle is dropped unjoined (destroying a
  // joinable std::thread would terminate). The child starts no other: a
  // child of a threaded process should start threads only with care (POSIX
  // allows it only async-signal-safe calls until exec; TSan refuses), and
  // one that lives on maps its segments as it allocates (as with
  // populate_ahead_above at 0).
  new (&populator_) std::thread();
  reserve_wanted_ = populating_ = false;
  // A segment the populator was unmapping is lost to the child (still
  // mapped, in no list); the queued ones are unmapped by the next trim()
  // or the pool's end.
  unmapping_ = false;
  populator_refused_ = true;
}

const Segment* SegmentPool::populated_reserve_for_testing() noexcept {
  std::lock_guard lock(mu_);
  return reserve_;
}

const Segment* SegmentPool::spare_for_testing() noexcept {
  std::lock_guard lock(mu_);
  return spare_;
}

void SegmentPool::hold_populating_for_testing(bool hold) noexcept {
  {
    std::lock_guard lock(mu_);
    hold_populating_ = hold;
    reserve_wanted_ = true;
  }
  populator_cv_.notify_all();
}

bool SegmentPool::populator_started_for_testing() noexcept {
  std::lock_guard lock(mu_);
  return populator_.joinable();
}

std::size_t SegmentPool::segments_unmapped_in_background_for_testing() noexcept {
  std::lock_guard lock(mu_);
  return unmapped_in_background_;
}

std::size_t SegmentPool::empty_segment_count() noexcept {
  std::lock_guard lock(mu_);
  return empty_count_;
}

std::size_t SegmentPool::segments_mapped_total() noexcept {
  std::lock_guard lock(mu_);
  return mapped_total_;
}

std::size_t SegmentPool::segments_unmapped_total() noexcept {
  std::lock_guard lock(mu_);
  return unmapped_total_;
}

}  // namespace tagheap::internal
