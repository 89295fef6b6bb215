// machine_jitter: the pauses the machine itself makes, with no allocator and
// no collector: the floor under rewire's longest pauses.
//
//   machine_jitter [OPS] [WORK_US] [MEMORY_MIB]
//
// Runs OPS operations (default 3,000) of fixed work, each WORK_US
// microseconds long (default 400, Options::mark_step_ns's default), no
// system call inside an operation. The work's rate is calibrated first (the
// fastest of 50 trials), so every operation does the same work and any
// extra time is the machine's. The work:
//   MEMORY_MIB 0 (default)  a register-only loop (xorshift): what the host
//       does to a running vCPU (preempting it: on this VM the guest sees
//       that as system time of a thread that made no system call, with no
//       fault and no context switch; no steal time is reported),
//       interrupts, frequency changes;
//   MEMORY_MIB > 0  loads that chase a random cycle through a buffer of
//       that many MiB (one 8-byte link per 64-byte line, on transparent
//       huge pages as tagheap's segments are), written once before the
//       operations as a built heap is: all of the above, and what the host
//       does to the guest's memory (a mark step's loads of objects and page
//       headers turned from 0.1 to 40 us each for 2.5 ms, rewire at 100
//       MiB under `perf`, 2026-12-07: the host faulting guest memory back).
//
// rewire's incremental steps are operations of about the same length, back
// to back with mutator work on the same thread; with as many operations as
// a rewire run has pauses, the two are exposed to the machine alike. So a
// pause of rewire's past what this program sees is the collector's or the
// allocator's; one within it may be the machine's.
//
// Prints, in rewire's format (incremental_pauses.py reads both):
//   jitter_<work>us machine <wall_ms> <peak_rss_kib> ops=.. pauses=..
//       p50_ms=.. p90_ms=.. p99_ms=.. max_ms=.. over1ms=.. over2ms=..
// where every operation counts as a pause. GCB_PAUSE_LOG=FILE: every
// operation as "t_ms,pause_ms,0", after a first line "# start_ns=N".
#include <sys/mman.h>

#include <algorithm>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <vector>

#include "bench/common.h"

namespace {

using bench::now_ns;

// The fixed work, `units` of it from state x: iterations of xorshift64, or
// links of the cycle through `lines`.
struct Work {
  std::uint64_t* lines = nullptr;  // 8 words a line; word 0 the next line's index

  std::uint64_t run(std::uint64_t x, std::uint64_t units) const {
    if (lines != nullptr) {
      for (std::uint64_t i = 0; i < units; ++i) x = lines[x * 8];
      return x;
    }
    for (std::uint64_t i = 0; i < units; ++i) {
      x ^= x << 13;
      x ^= x >> 7;
      x ^= x << 17;
    }
    return x;
  }
};

// A random cycle through every line of a buffer of `mib` MiB (Sattolo's
// shuffle), each line written once.
std::uint64_t* chase_buffer(std::size_t mib) {
  const std::size_t bytes = mib << 20, n = bytes / 64;
  void* mem = mmap(nullptr, bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (mem == MAP_FAILED) {
    std::perror("mmap");
    std::exit(1);
  }
  madvise(mem, bytes, MADV_HUGEPAGE);
  std::vector<std::uint32_t> order(n);
  for (std::size_t i = 0; i < n; ++i) order[i] = static_cast<std::uint32_t>(i);
  bench::Rng rng(7);
  for (std::size_t i = n - 1; i > 0; --i) std::swap(order[i], order[rng.below(static_cast<std::uint32_t>(i))]);
  auto* lines = static_cast<std::uint64_t*>(mem);
  for (std::size_t i = 0; i < n; ++i) lines[std::size_t{order[i]} * 8] = order[(i + 1) % n];
  return lines;
}

// Units of work per microsecond at the fastest.
double calibrate(const Work& work, std::uint64_t& x) {
  const std::uint64_t trial = work.lines != nullptr ? 2'000 : 200'000;
  std::uint64_t best = ~std::uint64_t{0};
  for (int i = 0; i < 50; ++i) {
    const std::uint64_t t0 = now_ns();
    x = work.run(x, trial);
    best = std::min(best, now_ns() - t0);
  }
  return static_cast<double>(trial) * 1000.0 / static_cast<double>(std::max<std::uint64_t>(best, 1));
}

}  // namespace

int main(int argc, char** argv) {
  const long ops = argc > 1 ? std::atol(argv[1]) : 3000;
  const double work_us = argc > 2 ? std::atof(argv[2]) : 400;
  const long memory_mib = argc > 3 ? std::atol(argv[3]) : 0;
  if (ops <= 0 || work_us <= 0 || memory_mib < 0 || memory_mib > (1 << 16)) {
    std::fprintf(stderr, "usage: %s [OPS > 0] [WORK_US > 0] [MEMORY_MIB 0..65536]\n", argv[0]);
    return 2;
  }
  Work work;
  std::uint64_t x = 88172645463325252ull;
  if (memory_mib > 0) {
    work.lines = chase_buffer(static_cast<std::size_t>(memory_mib));
    x = 0;
  }
  const auto units = static_cast<std::uint64_t>(calibrate(work, x) * work_us);
  std::vector<double> ms(static_cast<std::size_t>(ops));
  std::vector<double> at(static_cast<std::size_t>(ops));
  const std::uint64_t start = now_ns();
  for (long i = 0; i < ops; ++i) {
    const std::uint64_t t0 = now_ns();
    x = work.run(x, units);
    const std::uint64_t t1 = now_ns();
    ms[static_cast<std::size_t>(i)] = static_cast<double>(t1 - t0) / 1e6;
    at[static_cast<std::size_t>(i)] = static_cast<double>(t0 - start) / 1e6;
  }
  bench::do_not_optimize(x);
  const double wall_ms = static_cast<double>(now_ns() - start) / 1e6;
  std::vector<double> sorted = ms;  // bench::quantile reorders
  const long over1 = std::count_if(ms.begin(), ms.end(), [](double d) { return d >= 1.0; });
  const long over2 = std::count_if(ms.begin(), ms.end(), [](double d) { return d >= 2.0; });
  std::printf("jitter_%gus_%ldMiB machine %.1f %ld ops=%ld pauses=%ld p50_ms=%.3f p90_ms=%.3f p99_ms=%.3f "
              "max_ms=%.3f over1ms=%ld over2ms=%ld\n",
              work_us, memory_mib, wall_ms, bench::peak_rss_kib(), ops, ops, bench::quantile(sorted, 0.5),
              bench::quantile(sorted, 0.9), bench::quantile(sorted, 0.99), *std::max_element(ms.begin(), ms.end()),
              over1, over2);
  if (const char* path = std::getenv("GCB_PAUSE_LOG")) {
    if (std::FILE* f = std::fopen(path, "w")) {
      std::fprintf(f, "# start_ns=%llu\n", static_cast<unsigned long long>(start));
      for (std::size_t i = 0; i < ms.size(); ++i) std::fprintf(f, "%.3f,%.4f,0\n", at[i], ms[i]);
      std::fclose(f);
    }
  }
  return 0;
}
