// machine_jitter: the pauses the machine itself makes, with no allocator and
// no collector: the floor under rewire's longest pauses.
//
//   machine_jitter [OPS] [WORK_US]
//
// Runs OPS operations (default 3,000) of fixed work, each WORK_US
// microseconds long (default 400, Options::mark_step_ns's default) on an
// unloaded core: a register-only loop (xorshift), no memory beyond a few
// words, no system call inside an operation. The loop's iterations per
// microsecond are calibrated first (the fastest of 50 runs of 100 us), so
// every operation does the same work and any extra time is the machine's:
// the host preempting the virtual CPU (on this VM the guest sees it as
// system time, with no fault and no context switch: no steal time is
// reported), interrupts, frequency changes.
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
#include <algorithm>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <vector>

#include "bench/common.h"

namespace {

using bench::now_ns;

// The fixed work: iterations of xorshift64, registers only.
std::uint64_t spin(std::uint64_t x, std::uint64_t iterations) {
  for (std::uint64_t i = 0; i < iterations; ++i) {
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
  }
  return x;
}

// Iterations per microsecond on this core at its fastest.
double calibrate() {
  constexpr std::uint64_t kTrial = 200'000;
  std::uint64_t best = ~std::uint64_t{0};
  std::uint64_t x = 88172645463325252ull;
  for (int i = 0; i < 50; ++i) {
    const std::uint64_t t0 = now_ns();
    x = spin(x, kTrial);
    best = std::min(best, now_ns() - t0);
  }
  bench::do_not_optimize(x);
  return static_cast<double>(kTrial) * 1000.0 / static_cast<double>(std::max<std::uint64_t>(best, 1));
}

}  // namespace

int main(int argc, char **argv) {
  const long ops = argc > 1 ? std::atol(argv[1]) : 3000;
  const double work_us = argc > 2 ? std::atof(argv[2]) : 400;
  if (ops <= 0 || work_us <= 0) {
    std::fprintf(stderr, "usage: %s [OPS > 0] [WORK_US > 0]\n", argv[0]);
    return 2;
  }
  const auto iterations = static_cast<std::uint64_t>(calibrate() * work_us);
  std::vector<double> ms(static_cast<std::size_t>(ops));
  std::vector<double> at(static_cast<std::size_t>(ops));
  std::uint64_t x = 88172645463325252ull;
  const std::uint64_t start = now_ns();
  for (long i = 0; i < ops; ++i) {
    const std::uint64_t t0 = now_ns();
    x = spin(x, iterations);
    const std::uint64_t t1 = now_ns();
    ms[static_cast<std::size_t>(i)] = static_cast<double>(t1 - t0) / 1e6;
    at[static_cast<std::size_t>(i)] = static_cast<double>(t0 - start) / 1e6;
  }
  bench::do_not_optimize(x);
  const double wall_ms = static_cast<double>(now_ns() - start) / 1e6;
  std::vector<double> sorted = ms;  // bench::quantile reorders
  const long over1 = std::count_if(ms.begin(), ms.end(), [](double d) { return d >= 1.0; });
  const long over2 = std::count_if(ms.begin(), ms.end(), [](double d) { return d >= 2.0; });
  std::printf(
      "jitter_%gus machine %.1f %ld ops=%ld pauses=%ld p50_ms=%.3f "
      "p90_ms=%.3f p99_ms=%.3f max_ms=%.3f "
      "over1ms=%ld over2ms=%ld\n",
      work_us, wall_ms, bench::peak_rss_kib(), ops, ops, bench::quantile(sorted, 0.5), bench::quantile(sorted, 0.9),
      bench::quantile(sorted, 0.99), *std::max_element(ms.begin(), ms.end()), over1, over2);
  if (const char *path = std::getenv("GCB_PAUSE_LOG")) {
    if (std::FILE *f = std::fopen(path, "w")) {
      std::fprintf(f, "# start_ns=%llu\n", static_cast<unsigned long long>(start));
      for (std::size_t i = 0; i < ms.size(); ++i) std::fprintf(f, "%.3f,%.4f,0\n", at[i], ms[i]);
      std::fclose(f);
    }
  }
  return 0;
}
