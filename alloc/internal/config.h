// internal/config.h: geometry of segments and pages, and assertion levels.
// Internal: users must not rely on anything under alloc/internal/.
//
// Geometry (all powers of two):
//   segment   4 MiB, aligned to 4 MiB: a pointer's segment is p & ~(4 MiB-1)
//   small     64 pages of 64 KiB, blocks of 16 B .. 8 KiB
//   medium    8 pages of 512 KiB, blocks of 8 KiB .. 64 KiB
//   large     1 page filling the segment, blocks of 64 KiB .. 512 KiB
//   huge      1 page, one block, a segment sized to fit (> 512 KiB)
//
// Assertion levels:
//   TAGHEAP_CHECK   always on: bad input that is cheap to catch
//   TAGHEAP_DASSERT debug and checked builds (!NDEBUG or TAGHEAP_CHECKED)
//   TAGHEAP_XASSERT checked builds only (--config=checked, *_checked tests):
//                   the expensive ones, such as Page::is_valid after slow paths
#pragma once

#include <cstddef>
#include <cstdint>

namespace tagheap::internal {

inline constexpr std::size_t kSegmentShift = 22;
inline constexpr std::size_t kSegmentSize = std::size_t{1} << kSegmentShift;
inline constexpr std::uintptr_t kSegmentMask = kSegmentSize - 1;

// The transparent huge pages of x86-64 (and of arm64 with 4 KiB pages).
inline constexpr std::size_t kHugeOsPageSize = std::size_t{2} << 20;
static_assert(kSegmentSize % kHugeOsPageSize == 0 && kSegmentSize > kHugeOsPageSize);

inline constexpr std::size_t kSmallPageShift = 16;   // 64 KiB
inline constexpr std::size_t kMediumPageShift = 19;  // 512 KiB
inline constexpr std::size_t kMaxPagesPerSegment = kSegmentSize >> kSmallPageShift;

inline constexpr std::size_t kMinBlockSize = 16;
// Bitmap words per page: enough for a small page of the smallest blocks (and
// every bigger kind holds at most 64 blocks per page).
inline constexpr std::size_t kBitmapWords = (std::size_t{1} << kSmallPageShift) / kMinBlockSize / 64;
// Bitmaps are interleaved by cache line (segment.h): a page's words 8k..8k+7
// share one line, and line k of every page of a segment sit side by side.
inline constexpr std::size_t kBitmapLineWords = 8;
inline constexpr std::size_t kBitmapRowWords = kMaxPagesPerSegment * kBitmapLineWords;
// Bytes of a segment that one word of gc/'s unlogged bits covers (a bit per
// kMinBlockSize granule: Segment::unlogged).
inline constexpr std::size_t kUnloggedWordBytes = kMinBlockSize * 64;
inline constexpr std::size_t kSmallBlockMax = 8 * 1024;
inline constexpr std::size_t kMediumBlockMax = 64 * 1024;
inline constexpr std::size_t kLargeBlockMax = 512 * 1024;
// Blocks start aligned to the largest power of two dividing their size, up to
// this, so allocate_aligned can use ordinary pages for most alignments.
inline constexpr std::size_t kMaxNaturalAlign = 4096;

// Larger requests get nullptr: far beyond any machine, and safe from overflow
// in every rounding. Alignments must stay below kSegmentSize, so an aligned
// huge block still starts in its segment's first 4 MiB (where free() finds it).
inline constexpr std::size_t kMaxAllocation = std::size_t{1} << 46;

// Empty segments a runtime keeps mapped whatever its recent peak (more
// while the peak wants them: SegmentPool); trim() unmaps them all.
inline constexpr std::size_t kSegmentCacheMax = 4;

// A page the pool asks to populate (RuntimeOptions::populate_small_pages)
// is faulted in this many bytes at a time, ahead of its allocation: one
// system call where there would be four page faults, and a partly used
// page holds at most this much unwritten memory (measured: README.md,
// "Memory and the operating system").
inline constexpr std::size_t kPopulateStepBytes = 16 * 1024;
// Empty segments unmapped per page taken or given back, once fewer are in
// use than the recent peak (SegmentPool): a munmap of a resident 4 MiB
// segment took 0.25-0.8 ms on a 2-core VM, and a collection that empties
// dozens would otherwise stall one allocation (and the pool's lock) for all
// of them. trim() unmaps every empty segment at once.
inline constexpr std::size_t kSegmentUnmapStep = 2;
// Huge pages come dear (SegmentPool::note_huge_touch) once this many more
// timed first touches have cost over RuntimeOptions::huge_os_page_fault_limit_ns
// than under it (a count that never goes below zero). One dear touch was the
// verdict before: on a VM whose huge faults cost 2-4 ms now and then, one
// run of rewire at 100 MiB had 1 dear touch in 57 and another 54 in 56,
// and both went to 4 KiB pages for good, the mutator then faulting 70,000
// pages itself (bench/README.md, "Incremental marking"). Where huge faults
// are dear every time, the verdict comes two faults later.
inline constexpr int kHugeDearVerdict = 3;
// Yields an abandoning thread spends waiting for frees that announced
// themselves to a page before it was closed and have not set their bit yet
// (RuntimeCore::abandon_page_locked): a few instructions, unless that
// thread is descheduled between them.
inline constexpr int kAnnouncedFreeWaitSpins = 1000;
// Freed huge segments kept whole for reuse, per runtime: at least this many
// bytes, more while more was in use just before (SegmentPool).
inline constexpr std::size_t kHugeCacheBytes = std::size_t{64} << 20;
// How long free memory stays with the process (SegmentPool): a free page
// stays committed for 1-2 purge periods (then MADV_FREE), and empty
// segments up to the most in use over the last 1-2 segment windows stay
// mapped. A collected heap breathes with its collection cycle, seconds
// long at a GiB: rewire at 1 GiB live (incremental, 1M operations) made
// 4,600-8,300 MADV_FREE calls (0.36-0.51 s of system calls on the
// allocating thread, some of 4-9 ms) and, now and then, unmapped an
// emptied segment in one allocation for 20-25 ms on a 2-core VM, only to
// map and fault one in again within the next cycle. At 1 s and 5 s: wall
// 11.1-11.6 s against 12.1-16.8, longest operation 2.7-3.9 ms against
// 3.6-13.0, the same peak RSS; binary-trees 21, GCBench and mt-GCBench
// level or faster, with up to 25% fewer faults. Pages released with
// MADV_FREE count in RSS until the kernel runs short anyway, so the
// delay costs a user no reported memory.
inline constexpr std::int64_t kPurgeDelayMs = 1000;
inline constexpr std::int64_t kSegmentWindowMs = 5000;
// A freed huge segment kept whole for reuse stays at most this long: a
// large block freed and allocated again is a short-lived pattern, and a
// cached huge segment holds all its memory committed.
inline constexpr std::int64_t kHugeCacheAgeMs = 200;
// Full pages a heap scans for cross-thread frees per page search
// (Heap::scan_full_queue): one scan of the whole queue (about 16,000 pages
// at 1 GiB of live data) stalled an allocation for 4 ms (rewire,
// incremental).
inline constexpr std::size_t kFullScanChunk = 256;
// Aged free pages released to the OS per page taken or given back
// (SegmentPool): 1-2 ms of madvise at most on a slow VM.
inline constexpr std::size_t kReleaseStepBytes = std::size_t{256} << 10;

#if defined(TAGHEAP_CHECKED)
inline constexpr bool kChecked = true;
#else
inline constexpr bool kChecked = false;
#endif
#if defined(TAGHEAP_CHECKED) || !defined(NDEBUG)
inline constexpr bool kDebug = true;
#else
inline constexpr bool kDebug = false;
#endif

[[noreturn]] void fatal(const char* fmt, ...) noexcept
    __attribute__((format(printf, 1, 2)));

}  // namespace tagheap::internal

#define TAGHEAP_CHECK(cond, ...)                              \
  do {                                                        \
    if (__builtin_expect(!(cond), 0)) ::tagheap::internal::fatal(__VA_ARGS__); \
  } while (0)
#define TAGHEAP_DASSERT(cond)                                                   \
  do {                                                                          \
    if (::tagheap::internal::kDebug && !(cond))                                 \
      ::tagheap::internal::fatal("assertion failed: %s (%s:%d)", #cond, __FILE__, __LINE__); \
  } while (0)
#define TAGHEAP_XASSERT(cond)                                                   \
  do {                                                                          \
    if (::tagheap::internal::kChecked && !(cond))                               \
      ::tagheap::internal::fatal("invariant failed: %s (%s:%d)", #cond, __FILE__, __LINE__); \
  } while (0)
