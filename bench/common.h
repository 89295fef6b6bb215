// common.h: timing, RSS and output helpers shared by the benchmarks.
//
// Every benchmark prints one machine-readable line per measurement:
//   <workload> <allocator> <ns_per_op> <peak_rss_kib>
// Lines starting with '#' are for humans; bench/run.py ignores them.
#pragma once

#include <pthread.h>
#include <sched.h>
#include <sys/resource.h>
#include <sys/mman.h>

#include <algorithm>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <vector>

namespace bench {

// BENCH_HUGE_OS_PAGES, for A/B runs of tagheap's huge-page options (a
// tagheap::RuntimeOptions; a template so this header needs no allocator):
// unset keeps the library's defaults, 0 no huge pages at all, 1 huge pages
// for every segment of small pages, N > 1 huge pages past N MiB in use.
// BENCH_POPULATE_AHEAD=N sets RuntimeOptions::populate_ahead_above to N MiB
// (0: off); BENCH_HUGE_FAULT_LIMIT_US=N sets huge_os_page_fault_limit_ns
// to N microseconds (0: no limit, huge pages however dear);
// BENCH_POPULATE_PAGES=0 turns RuntimeOptions::populate_small_pages off.
template <class RuntimeOptions>
void apply_huge_os_pages_env(RuntimeOptions& o) {
  if (const char* p = std::getenv("BENCH_POPULATE_PAGES")) o.populate_small_pages = std::atol(p) != 0;
  if (const char* p = std::getenv("BENCH_POPULATE_AHEAD"))
    o.populate_ahead_above = static_cast<std::size_t>(std::atol(p)) << 20;
  if (const char* p = std::getenv("BENCH_HUGE_FAULT_LIMIT_US"))
    o.huge_os_page_fault_limit_ns = static_cast<std::int64_t>(std::atol(p)) * 1000;
  const char* v = std::getenv("BENCH_HUGE_OS_PAGES");
  if (v == nullptr) return;
  const long n = std::atol(v);
  o.huge_os_pages = n == 1;
  o.huge_os_pages_above = n > 1 ? static_cast<std::size_t>(n) << 20 : 0;
}

// Pins the calling thread to the k-th CPU (mod their number) this process may
// run on. The multi-threaded benchmarks pin worker k to CPU k, for every
// peer alike: on 2 cores, two spinning threads the scheduler put on one CPU
// made runs 4x slower at random (spreads of 300%).
inline void pin_this_thread(unsigned k) {
  cpu_set_t allowed;
  if (sched_getaffinity(0, sizeof allowed, &allowed) != 0) return;
  const int n = CPU_COUNT(&allowed);
  if (n <= 0) return;
  int want = static_cast<int>(k % static_cast<unsigned>(n));
  for (int cpu = 0; cpu < CPU_SETSIZE; ++cpu) {
    if (!CPU_ISSET(cpu, &allowed) || want-- != 0) continue;
    cpu_set_t one;
    CPU_ZERO(&one);
    CPU_SET(cpu, &one);
    pthread_setaffinity_np(pthread_self(), sizeof one, &one);
    return;
  }
}

inline std::uint64_t now_ns() {
  return static_cast<std::uint64_t>(
      std::chrono::duration_cast<std::chrono::nanoseconds>(std::chrono::steady_clock::now().time_since_epoch())
          .count());
}

// High-water mark of the resident set, in KiB: VmHWM from /proc/self/status.
// Not getrusage's ru_maxrss: Linux carries that over execve(), so a benchmark
// started by run.py (fork of a ~20 MiB Python) would never report less than
// the Python process's RSS. ru_maxrss is the fallback without /proc.
inline long peak_rss_kib() {
  if (std::FILE* f = std::fopen("/proc/self/status", "r")) {
    char line[256];
    long kib = -1;
    while (std::fgets(line, sizeof line, f) != nullptr)
      if (std::strncmp(line, "VmHWM:", 6) == 0) {
        kib = std::atol(line + 6);
        break;
      }
    std::fclose(f);
    if (kib >= 0) return kib;
  }
  rusage ru{};
  getrusage(RUSAGE_SELF, &ru);
  return ru.ru_maxrss;
}

inline void report(const char* workload, const char* allocator, double ns_per_op) {
  std::printf("%s %s %.3f %ld\n", workload, allocator, ns_per_op, peak_rss_kib());
  std::fflush(stdout);
}

// xorshift64*: cheap and deterministic; used only to pre-generate op streams.
struct Rng {
  std::uint64_t s;
  explicit Rng(std::uint64_t seed) : s(seed * 0x9E3779B97F4A7C15ull + 1) {}
  std::uint64_t next() {
    s ^= s >> 12;
    s ^= s << 25;
    s ^= s >> 27;
    return s * 0x2545F4914F6CDD1Dull;
  }
  // Uniform in [0, n) (Lemire's multiply-shift; bias is irrelevant here).
  std::uint32_t below(std::uint32_t n) {
    return static_cast<std::uint32_t>((static_cast<unsigned __int128>(next()) * n) >> 64);
  }
};

// Memory for op streams and slot tables, straight from the OS so that the
// allocator under test neither serves nor sees it. Every allocator pays for
// the same mapping in its RSS.
template <class T>
T* os_array(std::size_t n) {
  void* p = mmap(nullptr, n * sizeof(T), PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (p == MAP_FAILED) {
    std::perror("mmap");
    std::exit(1);
  }
  return static_cast<T*>(p);
}

// Parses "--name=value" style integer options; returns def when absent.
inline long arg_long(int argc, char** argv, const char* name, long def) {
  const std::size_t n = std::strlen(name);
  for (int i = 1; i < argc; ++i)
    if (std::strncmp(argv[i], name, n) == 0 && argv[i][n] == '=') return std::atol(argv[i] + n + 1);
  return def;
}

// The q-quantile (0..1) of v, 0 for none; reorders v.
inline double quantile(std::vector<double>& v, double q) {
  if (v.empty()) return 0;
  const auto k = static_cast<std::size_t>(q * static_cast<double>(v.size() - 1));
  std::nth_element(v.begin(), v.begin() + static_cast<std::ptrdiff_t>(k), v.end());
  return v[k];
}

// Keeps a value alive for the optimiser.
template <class T>
inline void do_not_optimize(const T& v) {
  asm volatile("" : : "r,m"(v) : "memory");
}

}  // namespace bench
