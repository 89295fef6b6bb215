// internal/usable_cpus.h: how many CPUs this process may actually use, the
// default number of markers (Options::markers = 0).
// Internal: users must not rely on anything under gc/internal/.
//
// Design
//   std::thread::hardware_concurrency() counts the machine's online CPUs.
//   A process pinned with taskset or a cpuset, or a container given
//   `--cpus=1`, may use fewer: markers beyond that share a CPU by time
//   slices, and a stop-the-world pause waits for each slice (measured: a
//   100 MiB-live pause pinned to one CPU took 58 ms with two markers against
//   37.5 with one). So the count is the smaller of
//     - the CPUs in the calling thread's affinity mask (sched_getaffinity),
//     - the CPU quota of the process's cgroup and its ancestors, rounded
//       up: cgroup v2's cpu.max ("quota period"; "max" is no limit) or
//       v1's cpu.cfs_quota_us over cpu.cfs_period_us (-1 is no limit),
//   and at least 1. Read when a collector is constructed, not per
//   collection.
//
// Invariants
//   usable_cpus() >= 1 and <= the machine's CPUs (when it can count them).
//   A file it cannot read or parse imposes no limit (never fails).
#pragma once

#include <optional>
#include <string_view>

namespace tagheap::gc::internal {

// The CPUs the calling thread may run on, capped by the cgroup quota; >= 1.
unsigned usable_cpus() noexcept;

// A cgroup v2 cpu.max line ("150000 100000" -> 2, "max 100000" -> none,
// "50000 100000" -> 1); nothing for a line it cannot parse.
std::optional<unsigned> cpus_from_cpu_max(std::string_view line) noexcept;

}  // namespace tagheap::gc::internal
