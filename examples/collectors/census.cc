// census: live GC objects and bytes per type, by walking the GC heaps (as
// Python's gc.get_objects() or Ruby's ObjectSpace.each_object do), from
// several thread states, one of them gone (its pages abandoned).
#include <algorithm>
#include <array>
#include <cstdint>
#include <cstdio>
#include <mutex>
#include <random>
#include <thread>
#include <vector>

#include "alloc/tagheap.h"
#include "gc/visit.h"

using namespace tagheap;

namespace {

constexpr Tag kGc = 1;

enum Type : std::uint32_t { kInt, kFloat, kStr, kTuple, kList, kDict, kFunction, kModule, kTypeCount };
constexpr const char* kTypeName[kTypeCount] = {"int", "float", "str", "tuple", "list", "dict", "function", "module"};
// Every object starts with its type word, as a VM's header would.
struct Header {
  std::uint32_t type;
  std::uint32_t len;
};

std::size_t size_for(Type t, std::mt19937& rng) {
  switch (t) {
    case kInt: case kFloat: return 24;
    case kStr: return sizeof(Header) + 1 + rng() % 120;
    case kTuple: return sizeof(Header) + 8 * (1 + rng() % 6);
    case kList: return sizeof(Header) + 8 * (4 + rng() % 60);
    case kDict: return 64 + 24 * (8u << (rng() % 4));
    case kFunction: return 136;
    case kModule: return 2048 + rng() % 4096;
    default: return 16;
  }
}

}  // namespace

int main() {
  Runtime rt({.gc_tags = {kGc}});
  std::array<std::size_t, kTypeCount> expect{};  // kept by the mutators, for the check
  std::mutex mu;
  std::vector<std::thread> threads;
  std::vector<void*> keep;
  for (int t = 0; t < 3; ++t)
    threads.emplace_back([&, t] {
      ThreadState ts(rt);
      ts.attach();
      std::mt19937 rng(t + 7);
      std::array<std::size_t, kTypeCount> mine{};
      std::vector<void*> objs;
      for (int i = 0; i < 60000; ++i) {
        // Skewed: small objects dominate, as in real programs.
        const auto type = static_cast<Type>(std::min<unsigned>(kTypeCount - 1, std::countr_zero(rng() | 0x80u)));
        auto* h = static_cast<Header*>(ts.heap(kGc).allocate(size_for(type, rng)));
        h->type = type;
        h->len = 0;
        if (rng() % 3 == 0) {
          tagheap::free(h);  // short-lived
        } else {
          ++mine[type];
          objs.push_back(h);
        }
      }
      std::lock_guard lock(mu);
      for (unsigned k = 0; k < kTypeCount; ++k) expect[k] += mine[k];
      keep.insert(keep.end(), objs.begin(), objs.end());
      ts.detach();
    });  // each thread state ends with its thread: its pages are abandoned
  for (auto& th : threads) th.join();

  struct Row {
    std::size_t count = 0, bytes = 0;
    unsigned type = 0;
  };
  std::array<Row, kTypeCount> rows{};
  std::size_t total = 0, total_bytes = 0;
  visit_gc_blocks(rt, [&](const BlockRef& b) {
    const auto* h = static_cast<const Header*>(b.block);
    Row& r = rows[h->type];
    r.type = h->type;
    ++r.count;
    r.bytes += b.size;  // usable size: what the object really occupies
    ++total;
    total_bytes += b.size;
  });
  std::sort(rows.begin(), rows.end(), [](const Row& a, const Row& b) { return a.bytes > b.bytes; });
  std::printf("%-10s %10s %12s %8s %10s\n", "type", "count", "bytes", "%bytes", "avg");
  bool ok = total == keep.size();
  for (const Row& r : rows) {
    if (r.count == 0) continue;
    std::printf("%-10s %10zu %12zu %7.1f%% %10.1f\n", kTypeName[r.type], r.count, r.bytes, 100.0 * r.bytes / total_bytes,
                double(r.bytes) / r.count);
    ok &= r.count == expect[r.type];
  }
  std::printf("%-10s %10zu %12zu\n", "total", total, total_bytes);
  const RuntimeStats s = rt.stats();
  std::printf("pages walked: %zu (%zu abandoned by exited threads), committed %zu KiB\n", s.tags[kGc].pages,
              s.tags[kGc].abandoned_pages, s.tags[kGc].bytes_committed / 1024);
  std::printf("%s\n", ok ? "OK: counts match what the mutators kept" : "MISMATCH");
  for (void* p : keep) tagheap::free(p);
  return ok ? 0 : 1;
}
