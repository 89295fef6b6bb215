// internal/usable_cpus.cc: affinity mask and cgroup CPU quota (usable_cpus.h).
#include "gc/internal/usable_cpus.h"

#include <sched.h>

#include <algorithm>
#include <charconv>
#include <cstdio>
#include <memory>
#include <string>
#include <thread>

namespace tagheap::gc::internal {
namespace {

// The tighter of two limits, either of which may be unknown.
std::optional<unsigned> tighter(std::optional<unsigned> a, std::optional<unsigned> b) noexcept {
  if (!a) return b;
  if (!b) return a;
  return std::min(*a, *b);
}

// The first line of a small file, without its newline; empty if unreadable.
// May throw std::bad_alloc (the caller catches).
std::string first_line(const std::string& path) {
  std::FILE* f = std::fopen(path.c_str(), "re");
  if (f == nullptr) return {};
  char buf[512];
  std::string line;
  const std::unique_ptr<std::FILE, int (*)(std::FILE*)> close(f, &std::fclose);
  if (std::fgets(buf, sizeof buf, f) != nullptr) line = buf;
  while (!line.empty() && (line.back() == '\n' || line.back() == '\r')) line.pop_back();
  return line;
}

std::optional<std::uint64_t> parse_u64(std::string_view s) noexcept {
  std::uint64_t v = 0;
  const auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
  if (ec != std::errc{} || end != s.data() + s.size()) return std::nullopt;
  return v;
}

unsigned affinity_cpus() noexcept {
  cpu_set_t set;
  CPU_ZERO(&set);
  if (sched_getaffinity(0, sizeof set, &set) != 0) return 0;  // 0: unknown
  return static_cast<unsigned>(CPU_COUNT(&set));
}

// The tightest quota from a cgroup directory up to the root of the
// hierarchy the process can see (a container's view starts at its own).
// quota_at(dir) reads one directory's limit.
template <class QuotaAt>
std::optional<unsigned> tightest_up_from(const std::string& root, std::string path, QuotaAt quota_at) {
  std::optional<unsigned> best;
  for (;;) {
    best = tighter(best, quota_at(root + (path == "/" ? std::string() : path)));
    const auto slash = path.rfind('/');
    if (path.empty() || path == "/" || slash == std::string::npos) return best;
    path = slash == 0 ? "/" : path.substr(0, slash);
  }
}

// cgroup v2 (cpu.max, Debian's default since 11) or v1 (cpu.cfs_quota_us
// and cpu.cfs_period_us under the cpu controller's mount).
std::optional<unsigned> cgroup_quota_cpus() noexcept {
  try {
    std::FILE* f = std::fopen("/proc/self/cgroup", "re");
    if (f == nullptr) return std::nullopt;
    const std::unique_ptr<std::FILE, int (*)(std::FILE*)> close(f, &std::fclose);
    std::optional<unsigned> best;
    char buf[1024];
    while (std::fgets(buf, sizeof buf, f) != nullptr) {
      std::string_view line(buf);
      while (!line.empty() && (line.back() == '\n' || line.back() == '\r')) line.remove_suffix(1);
      const auto c1 = line.find(':');
      const auto c2 = c1 == std::string_view::npos ? c1 : line.find(':', c1 + 1);
      if (c2 == std::string_view::npos) continue;
      const std::string controllers(line.substr(c1 + 1, c2 - c1 - 1));
      const std::string path(line.substr(c2 + 1));
      if (line.substr(0, c1) == "0" && controllers.empty()) {
        best = tighter(best, tightest_up_from("/sys/fs/cgroup", path, [](const std::string& dir) {
          return cpus_from_cpu_max(first_line(dir + "/cpu.max"));
        }));
      } else if (("," + controllers + ",").find(",cpu,") != std::string::npos) {
        best = tighter(best, tightest_up_from("/sys/fs/cgroup/" + controllers, path, [](const std::string& dir) {
          return cpus_from_cpu_max(first_line(dir + "/cpu.cfs_quota_us") + " " +
                                   first_line(dir + "/cpu.cfs_period_us"));
        }));
      }
    }
    return best;
  } catch (...) {  // out of memory for a path: no limit known
    return std::nullopt;
  }
}

}  // namespace

std::optional<unsigned> cpus_from_cpu_max(std::string_view line) noexcept {
  const auto space = line.find(' ');
  if (space == std::string_view::npos) return std::nullopt;
  const std::string_view quota = line.substr(0, space);
  if (quota == "max") return std::nullopt;
  const auto q = parse_u64(quota);
  const auto period = parse_u64(line.substr(space + 1));
  if (!q || !period || *period == 0 || *q == 0) return std::nullopt;
  return static_cast<unsigned>(std::max<std::uint64_t>(1, (*q + *period - 1) / *period));
}

unsigned usable_cpus() noexcept {
  auto known = [](unsigned n) { return n != 0 ? std::optional<unsigned>(n) : std::nullopt; };  // 0: unknown
  const auto n = tighter(tighter(known(std::thread::hardware_concurrency()), known(affinity_cpus())),
                         cgroup_quota_cpus());
  return std::max(1u, n.value_or(1));
}

}  // namespace tagheap::gc::internal
