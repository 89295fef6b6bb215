// The default marker count follows the CPUs the process may use, not the
// machine's: a process pinned to one CPU marks with one marker (two would
// share it by time slices and the pause would wait for each slice).
#include "gc/internal/usable_cpus.h"

#include <doctest/doctest.h>
#include <sched.h>

#include <thread>

#include "alloc/runtime.h"
#include "gc/mark_sweep.h"

namespace gc = tagheap::gc;
using gc::internal::cpus_from_cpu_max;

namespace {

struct NoRoots {
  void roots(gc::Tracer&) {}
  void trace(void*, gc::Tracer&) {}
};

// Pins the calling thread to one CPU it may already use, and restores its
// mask on scope exit.
class PinnedToOneCpu {
 public:
  PinnedToOneCpu() {
    CPU_ZERO(&old_);
    REQUIRE(sched_getaffinity(0, sizeof old_, &old_) == 0);
    int first = 0;
    while (!CPU_ISSET(first, &old_)) ++first;
    cpu_set_t one;
    CPU_ZERO(&one);
    CPU_SET(first, &one);
    REQUIRE(sched_setaffinity(0, sizeof one, &one) == 0);
  }
  ~PinnedToOneCpu() { sched_setaffinity(0, sizeof old_, &old_); }

 private:
  cpu_set_t old_;
};

}  // namespace

TEST_CASE("a thread pinned to one CPU gets one default marker") {
  PinnedToOneCpu pinned;
  CHECK(gc::internal::usable_cpus() == 1);
  CHECK(gc::internal::default_markers() == 1);
  tagheap::Runtime rt;
  NoRoots model;
  gc::MarkSweep<NoRoots> ms(rt, model);
  CHECK(ms.markers() == 1);
}

TEST_CASE("usable CPUs never exceed the affinity mask nor the machine") {
  cpu_set_t set;
  CPU_ZERO(&set);
  REQUIRE(sched_getaffinity(0, sizeof set, &set) == 0);
  const unsigned n = gc::internal::usable_cpus();
  CHECK(n >= 1);
  CHECK(n <= static_cast<unsigned>(CPU_COUNT(&set)));
  if (std::thread::hardware_concurrency() != 0) CHECK(n <= std::thread::hardware_concurrency());
  CHECK(gc::internal::default_markers() == n);
}

TEST_CASE("a cgroup cpu.max quota rounds up to whole CPUs") {
  CHECK(cpus_from_cpu_max("150000 100000") == 2u);
  CHECK(cpus_from_cpu_max("100000 100000") == 1u);
  CHECK(cpus_from_cpu_max("50000 100000") == 1u);   // half a CPU still gets one marker
  CHECK(cpus_from_cpu_max("400000 100000") == 4u);
}

TEST_CASE("an unlimited or unreadable cgroup quota imposes no limit") {
  CHECK_FALSE(cpus_from_cpu_max("max 100000").has_value());
  CHECK_FALSE(cpus_from_cpu_max("-1 100000").has_value());  // v1's "no limit"
  CHECK_FALSE(cpus_from_cpu_max("").has_value());
  CHECK_FALSE(cpus_from_cpu_max(" ").has_value());
  CHECK_FALSE(cpus_from_cpu_max("abc 100000").has_value());
  CHECK_FALSE(cpus_from_cpu_max("100000 0").has_value());
  CHECK_FALSE(cpus_from_cpu_max("0 100000").has_value());
  CHECK_FALSE(cpus_from_cpu_max("100000").has_value());
}
