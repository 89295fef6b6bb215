// test_util.h: helpers shared by the suites in tests/.
//
//   Rng             a small deterministic generator (splitmix64), seeded per test
//   without_populator  RuntimeOptions for tests that count maps
//   AttachedState   a ThreadState attached to the calling OS thread for a scope
//   run_in_child    fork(); the child runs a function with its stderr piped to
//                   the parent, which waits and returns how the child ended
//   fill / filled   a per-block byte pattern, written and checked on samples of
//                   large blocks so stress tests stay fast
//   RefuseGuard     os::refuse_after(n) for a scope, always undone
//   pending_sweep   pages still holding a collection's marks, and their segments
//   statm_bytes     a field of /proc/self/statm (0: size, 1: resident), in bytes
#pragma once

#if defined(__SANITIZE_ADDRESS__)
#include <sanitizer/asan_interface.h>
#endif

#include <fcntl.h>
#include <signal.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <functional>
#include <string>

#include "alloc/heap_walk.h"
#include "alloc/internal/config.h"
#include "alloc/os.h"
#include "alloc/tagheap.h"

namespace tagheap::test {

class Rng {
 public:
  explicit Rng(std::uint64_t seed) : s_(seed * 0x9E3779B97F4A7C15ull + 0x1234567ull) {}
  std::uint64_t next() {
    std::uint64_t z = (s_ += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
  }
  // Uniform in [0, n).
  std::uint64_t below(std::uint64_t n) { return n == 0 ? 0 : next() % n; }
  // Uniform in [lo, hi].
  std::uint64_t range(std::uint64_t lo, std::uint64_t hi) { return lo + below(hi - lo + 1); }
  bool chance(unsigned percent) { return below(100) < percent; }

 private:
  std::uint64_t s_;
};

// A thread state attached to the calling OS thread until the end of scope.
// Options for a test that counts the OS's maps or mapped bytes: no
// populator mapping segments ahead on a thread of its own
// (RuntimeOptions::populate_ahead_above; tests/populate_ahead_test.cc).
inline RuntimeOptions without_populator(RuntimeOptions o = {}) {
  o.populate_ahead_above = 0;
  return o;
}

struct AttachedState {
  ThreadState ts;
  explicit AttachedState(Runtime& rt) : ts(rt) { ts.attach(); }
  ~AttachedState() { ts.detach(); }
  Heap& heap(Tag t) { return ts.heap(t); }
};

// A field of /proc/self/statm (0: the virtual size, 1: the resident size),
// in bytes; 0 if unreadable. Read with read(2), not stdio, which would
// malloc a buffer.
inline std::size_t statm_bytes(int field) {
  char buf[128] = {};
  const int fd = open("/proc/self/statm", O_RDONLY);
  if (fd < 0) return 0;
  const ssize_t n = read(fd, buf, sizeof buf - 1);
  close(fd);
  if (n <= 0) return 0;
  const char* p = buf;
  char* end = nullptr;
  unsigned long long v = 0;
  for (int i = 0; i <= field; ++i, p = end) v = std::strtoull(p, &end, 10);
  return static_cast<std::size_t>(v) * static_cast<std::size_t>(sysconf(_SC_PAGESIZE));
}

inline std::string ptr_str(const void* p) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%p", p);
  return buf;
}

// How a child process ended, and what it wrote on stderr.
struct ChildResult {
  bool exited = false;
  int exit_code = -1;
  bool signaled = false;
  int signal = 0;
  std::string err;

  bool aborted() const { return signaled && signal == SIGABRT; }
  // Aborted with a message that names p and says `what` (bad input's rule).
  bool aborted_naming(const void* p, const char* what) const {
    return aborted() && err.find(ptr_str(p)) != std::string::npos && err.find(what) != std::string::npos;
  }
  std::string describe() const {
    std::string s = exited ? "exited with " + std::to_string(exit_code)
                  : signaled ? "killed by signal " + std::to_string(signal)
                             : "ended oddly";
    return s + "; stderr: [" + err + "]";
  }
};

// Forks; the child resets crash handlers (doctest's would report the expected
// abort as a failure of its copy of the test), sends stderr to a pipe, runs
// fn and exits 0. The parent reads the pipe to its end and reaps the child.
inline ChildResult run_in_child(const std::function<void()>& fn) {
  int fds[2];
  if (pipe(fds) != 0) return {};
  std::fflush(stdout);
  std::fflush(stderr);
  const pid_t pid = fork();
  if (pid == 0) {
    for (int sig : {SIGABRT, SIGSEGV, SIGBUS, SIGILL, SIGFPE}) signal(sig, SIG_DFL);
    close(fds[0]);
    dup2(fds[1], 2);
    close(fds[1]);
    const int devnull = open("/dev/null", O_WRONLY);
    if (devnull >= 0) dup2(devnull, 1);
    fn();
    std::fflush(stderr);
    _exit(0);
  }
  close(fds[1]);
  ChildResult r;
  char buf[4096];
  for (;;) {
    const ssize_t n = read(fds[0], buf, sizeof buf);
    if (n > 0) {
      r.err.append(buf, static_cast<std::size_t>(n));
    } else if (n == 0 || errno != EINTR) {
      break;
    }
  }
  close(fds[0]);
  int status = 0;
  while (waitpid(pid, &status, 0) < 0 && errno == EINTR) {
  }
  r.exited = WIFEXITED(status);
  if (r.exited) r.exit_code = WEXITSTATUS(status);
  r.signaled = WIFSIGNALED(status);
  if (r.signaled) r.signal = WTERMSIG(status);
  return r;
}

// Used in a child: report a failed expectation on stderr and remember it.
struct ChildChecks {
  int failures = 0;
  void expect(bool ok, const char* what) {
    if (!ok) {
      ++failures;
      std::fprintf(stderr, "FAILED: %s\n", what);
      std::fflush(stderr);
    }
  }
  [[noreturn]] void finish() {
    std::fflush(stderr);
    _exit(failures == 0 ? 0 : 1);
  }
};

// The byte a block is filled with: derived from its address and a counter,
// so that a block reused for another allocation gets another pattern.
inline std::uint8_t pattern_of(const void* p, std::uint64_t serial) {
  std::uint64_t x = reinterpret_cast<std::uintptr_t>(p) ^ (serial * 0x9E3779B97F4A7C15ull);
  x ^= x >> 29;
  const auto b = static_cast<std::uint8_t>(x ^ (x >> 8) ^ (x >> 16));
  return b == 0 ? 0x5A : b;  // never 0: a zeroed block must not pass for a filled one
}

// Blocks up to kFullCheck bytes are written and checked whole; larger ones in
// 64-byte samples every 4 KiB, plus their last 64 bytes.
inline constexpr std::size_t kFullCheck = 4096;

template <class F>
inline void for_each_sample(std::size_t n, F&& f) {
  if (n <= kFullCheck) {
    f(std::size_t{0}, n);
    return;
  }
  for (std::size_t off = 0; off + 64 <= n; off += 4096) f(off, std::size_t{64});
  f(n - 64, std::size_t{64});
}

inline void fill(void* p, std::size_t n, std::uint8_t byte) {
  auto* b = static_cast<unsigned char*>(p);
  for_each_sample(n, [&](std::size_t off, std::size_t len) { std::memset(b + off, byte, len); });
}

inline bool filled(const void* p, std::size_t n, std::uint8_t byte) {
  const auto* b = static_cast<const unsigned char*>(p);
  bool ok = true;
  for_each_sample(n, [&](std::size_t off, std::size_t len) {
    for (std::size_t i = 0; i < len; ++i) ok &= b[off + i] == byte;
  });
  return ok;
}

// Lets a test read memory that tagheap freed: in ASan builds freed blocks are
// poisoned, so the range is unpoisoned for the scope and poisoned again.
class PeekFreed {
 public:
  PeekFreed(const void* p, std::size_t n) : p_(p), n_(n) {
#if defined(__SANITIZE_ADDRESS__)
    was_poisoned_ = __asan_region_is_poisoned(const_cast<void*>(p), n) != nullptr;
    if (was_poisoned_) __asan_unpoison_memory_region(p, n);
#endif
  }
  ~PeekFreed() {
#if defined(__SANITIZE_ADDRESS__)
    if (was_poisoned_) __asan_poison_memory_region(p_, n_);
#endif
  }
  PeekFreed(const PeekFreed&) = delete;
  PeekFreed& operator=(const PeekFreed&) = delete;

 private:
  [[maybe_unused]] const void* p_;
  [[maybe_unused]] std::size_t n_;
  [[maybe_unused]] bool was_poisoned_ = false;
};

// Every byte of [p, p + n) equals `byte` (whole range, no sampling).
inline bool all_bytes(const void* p, std::size_t n, std::uint8_t byte) {
  PeekFreed peek(p, n);
  const auto* b = static_cast<const unsigned char*>(p);
  for (std::size_t i = 0; i < n; ++i)
    if (b[i] != byte) return false;
  return true;
}

// os::refuse_after for a scope; -1 (never refuse) again at its end.
struct RefuseGuard {
  explicit RefuseGuard(long n) { os::refuse_after(n); }
  ~RefuseGuard() { os::refuse_after(-1); }
};

inline constexpr std::size_t kSegment = internal::kSegmentSize;
inline std::uintptr_t segment_of(const void* p) {
  return reinterpret_cast<std::uintptr_t>(p) & ~internal::kSegmentMask;
}

// World stopped: the in-use pages of the runtime still holding the last
// collection's marks (RuntimeCore's "pending"), and how many segments they
// lie in. Reads the headers only: nothing is swept.
struct PendingSweep {
  std::size_t pages = 0, segments = 0;
};
inline PendingSweep pending_sweep(Runtime& rt) {
  PendingSweep p;
  for_each_segment(rt, [&](SegmentView seg) {
    std::size_t here = 0;
    for (std::size_t i = 0; i < seg.page_count(); ++i)
      if (seg.page(i).in_use() && sweep_pending(rt, seg.page(i))) ++here;
    p.pages += here;
    p.segments += here > 0;
  });
  return p;
}

}  // namespace tagheap::test
