// policy.cc: bdwgc's collection trigger on counters of our own (policy.h).
#include "examples/libgc/policy.h"

#include <sys/sysinfo.h>

#include <algorithm>
#include <atomic>
#include <cstdio>
#include <cstdlib>

#include "examples/libgc/threads.h"

// bdwgc's variables, set directly or by GC_set_dont_expand and the like
// (boehm_api.cc). GC_dont_expand: grow the heap only when a collection left
// less than 1 MiB of it free, and then to 1 MiB free, never for the rule's
// min_bytes; read under the registry lock. The other two only keep what was set (no partial
// collections, and an allocation retries once after a collection whatever
// GC_max_retries says).
extern "C" {
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wdeprecated-declarations"
int GC_dont_expand = 0;
int GC_full_freq = 19;       // bdwgc's default
unsigned long GC_max_retries = 0;
#pragma GCC diagnostic pop
}

namespace tagheap::libgc {
namespace {

constexpr std::size_t kMinBudget = std::size_t{1} << 20;
constexpr std::size_t kMinGrowth = std::size_t{256} << 10;  // bdwgc's MINHINCR x HBLKSIZE
constexpr std::size_t kMaxGrowth = std::size_t{8} << 20;    // bdwgc's MAXHINCR x HBLKSIZE

struct Settings {
  std::atomic<std::size_t> divisor{3};        // bdwgc's GC_FREE_SPACE_DIVISOR default
  double growth = 0;                          // TAGHEAP_GC_GROWTH: gc::Options' rule when > 0
  std::atomic<std::size_t> max_heap{SIZE_MAX};
};

Settings g_settings;
LiveHeap g_last;                                // registry lock held
std::atomic<std::size_t> g_since{0};            // bytes allocated since the last collection
std::atomic<std::size_t> g_budget{kMinBudget};
// The heap bdwgc would have: it grows by GC_expand_hp, and whenever live +
// the rule's budget pass it; it never shrinks (policy.h). Written under the
// registry lock (or by init).
std::atomic<std::size_t> g_heap{kMinBudget};
std::atomic<std::size_t> g_live{0};
std::atomic<std::size_t> g_total{0};

// bdwgc's GC_min_bytes_allocd, or gc::Options' rule under TAGHEAP_GC_GROWTH;
// never below kMinBudget.
std::size_t rule_budget(const LiveHeap& live) noexcept {
  double wanted;
  if (g_settings.growth > 0) {
    wanted = g_settings.growth * static_cast<double>(live.scanned + live.atomic);
  } else {
    const double scan_cost = 2.0 * static_cast<double>(live.scanned) + static_cast<double>(live.atomic) / 4 +
                             static_cast<double>(live.roots);
    wanted = scan_cost / static_cast<double>(g_settings.divisor.load(std::memory_order_relaxed));
  }
  return wanted > static_cast<double>(kMinBudget) ? static_cast<std::size_t>(wanted) : kMinBudget;
}

// The budget after a collection that left `live`, and the heap grown to
// hold it (registry lock held): bdwgc's rule, but never less than the free
// part of the heap it already has. Under TAGHEAP_GC_GROWTH the rule alone.
std::size_t budget_for(const LiveHeap& live) noexcept {
  std::size_t budget = rule_budget(live);
  const std::size_t in_use = live.scanned + live.atomic;
  const std::size_t heap = g_heap.load(std::memory_order_relaxed);
  if (g_settings.growth <= 0 && heap > in_use) budget = std::max(budget, heap - in_use);
  if (__atomic_load_n(&GC_dont_expand, __ATOMIC_RELAXED) != 0 && g_settings.growth <= 0) {
    // Collect rather than grow: the heap grows only by what the next 1 MiB
    // of allocation needs, as bdwgc then grows only when forced to.
    if (heap < in_use + kMinBudget) g_heap.store(in_use + kMinBudget, std::memory_order_relaxed);
    return std::max(heap, in_use + kMinBudget) - in_use;
  }
  // bdwgc grows a divisor-th of the heap at a time (GC_collect_or_expand),
  // at least MINHINCR blocks (256 KiB) and at most MAXHINCR (8 MiB) a step
  // (w3m's heap there: 53.7, 61.9, 70.1 MiB), and then fills the grown heap
  // before it collects again: the budget is the grown heap's free part, not
  // just what the rule asked for (which made 36 collections on w3m against
  // bdwgc's 30, 53 on GCBench against 32). (At least 256 KiB here too: a
  // huge GC_FREE_SPACE_DIVISOR would otherwise grow it a byte at a time.)
  if (in_use + budget > heap) {
    const std::size_t divisor = g_settings.divisor.load(std::memory_order_relaxed);
    std::size_t grown = std::max(heap, kMinBudget);
    while (grown < in_use + budget) grown += std::clamp(grown / divisor, kMinGrowth, kMaxGrowth);
    g_heap.store(grown, std::memory_order_relaxed);
    if (g_settings.growth <= 0) budget = grown - in_use;
  }
  return budget;
}

// What the kernel would map for bdwgc at most: physical memory and swap
// (the default overcommit heuristic refuses a mapping past them). A model
// heap beyond it would never fill, and the client would never collect.
std::size_t mappable_bytes() noexcept {
  struct sysinfo si;
  if (sysinfo(&si) != 0) return std::size_t{1} << 46;
  const unsigned long long unit = si.mem_unit != 0 ? si.mem_unit : 1;
  return static_cast<std::size_t>((static_cast<unsigned long long>(si.totalram) + si.totalswap) * unit);
}

// Whether the heap may grow by `bytes` to `heap` + bytes, as bdwgc's
// GC_expand_hp_inner decides: not past GC_set_max_heap_size's limit, nor
// past what the kernel would map.
bool may_expand(std::size_t heap, std::size_t bytes) noexcept {
  const std::size_t limit = std::min(g_settings.max_heap.load(std::memory_order_relaxed), mappable_bytes());
  return bytes <= limit && heap <= limit - bytes;
}

}  // namespace

std::size_t env_size(const char* name, std::size_t dflt) {
  const char* v = std::getenv(name);
  if (v == nullptr || *v == '\0') return dflt;
  char* end = nullptr;
  const unsigned long long n = std::strtoull(v, &end, 10);
  std::size_t mult = 1;
  if (end != nullptr && (*end == 'k' || *end == 'K')) mult = 1 << 10;
  if (end != nullptr && (*end == 'm' || *end == 'M')) mult = 1 << 20;
  if (end != nullptr && (*end == 'g' || *end == 'G')) mult = std::size_t{1} << 30;
  if (n > SIZE_MAX / mult) return SIZE_MAX;  // more than can be: callers refuse it
  return static_cast<std::size_t>(n) * mult;
}

void init_policy() {
  if (const std::size_t max = env_size("GC_MAXIMUM_HEAP_SIZE", 0); max != 0) g_settings.max_heap.store(max);
  std::size_t initial = env_size("GC_INITIAL_HEAP_SIZE", 0);
  if (initial > kMinBudget && !may_expand(0, initial)) {
    std::fprintf(stderr,
                 "tagheap libgc: GC_INITIAL_HEAP_SIZE=%zu is more than the heap may grow to (GC_MAXIMUM_HEAP_SIZE, "
                 "or memory and swap); ignored\n",
                 initial);
    initial = 0;
  }
  g_heap.store(std::max(initial, kMinBudget), std::memory_order_relaxed);
  if (const std::size_t d = env_size("GC_FREE_SPACE_DIVISOR", 0); d != 0) g_settings.divisor.store(d);
  if (const char* g = std::getenv("TAGHEAP_GC_GROWTH"); g != nullptr && std::atof(g) > 0)
    g_settings.growth = std::atof(g);
  g_budget.store(budget_for(g_last));
}

void add_allocated(std::size_t bytes) noexcept {
  g_since.fetch_add(bytes, std::memory_order_relaxed);
  g_total.fetch_add(bytes, std::memory_order_relaxed);
}

bool collection_due() noexcept {
  return g_since.load(std::memory_order_relaxed) >= g_budget.load(std::memory_order_relaxed);
}

std::size_t take_allocated_since() noexcept { return g_since.exchange(0, std::memory_order_relaxed); }

void after_collection(const LiveHeap& live) noexcept {
  g_last = live;
  g_live.store(live.scanned + live.atomic, std::memory_order_relaxed);
  g_budget.store(budget_for(live), std::memory_order_relaxed);
}

bool over_heap_limit(std::size_t bytes) noexcept {
  const std::size_t max = g_settings.max_heap.load(std::memory_order_relaxed);
  if (max == SIZE_MAX) return false;
  return g_live.load(std::memory_order_relaxed) + g_since.load(std::memory_order_relaxed) + bytes > max;
}

void set_free_space_divisor(std::size_t divisor) noexcept {
  RegistryLock lock;
  g_settings.divisor.store(std::max<std::size_t>(divisor, 1), std::memory_order_relaxed);
  g_budget.store(budget_for(g_last), std::memory_order_relaxed);
}
std::size_t free_space_divisor() noexcept { return g_settings.divisor.load(std::memory_order_relaxed); }

void set_max_heap_size(std::size_t bytes) noexcept {
  g_settings.max_heap.store(bytes != 0 ? bytes : SIZE_MAX, std::memory_order_relaxed);
}

bool expand_heap(std::size_t bytes) noexcept {
  RegistryLock lock;
  if (!may_expand(g_heap.load(std::memory_order_relaxed), bytes)) return false;
  g_heap.fetch_add(bytes, std::memory_order_relaxed);
  g_budget.store(budget_for(g_last), std::memory_order_relaxed);
  return true;
}

std::size_t heap_size() noexcept {
  return std::max(g_heap.load(std::memory_order_relaxed),
                  g_live.load(std::memory_order_relaxed) + g_since.load(std::memory_order_relaxed));
}
std::size_t bytes_since_collection() noexcept { return g_since.load(std::memory_order_relaxed); }
std::size_t live_bytes() noexcept { return g_live.load(std::memory_order_relaxed); }
std::size_t total_allocated() noexcept { return g_total.load(std::memory_order_relaxed); }
std::size_t budget() noexcept { return g_budget.load(std::memory_order_relaxed); }

}  // namespace tagheap::libgc
