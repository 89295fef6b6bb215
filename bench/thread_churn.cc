// thread_churn: short-lived threads, each leaving some blocks behind.
//
// S worker slots (default 2). Each slot repeatedly starts a thread and joins
// it, until T threads (default 4000) have run in all. Each thread registers
// with the allocator (tagheap: a new ThreadState attached to it, heap of tag
// 0), allocates B blocks (default 4000; mixed small sizes: 7 in 8 of
// 16..512 B, 1 in 8 of 513..4096 B; first byte written), frees 7 in 8 of
// them in a shuffled order, and hands the rest to a shared mailbox, taking
// out the batch the previous thread left there and freeing it (blocks of a
// thread that has usually exited). Then it exits: tagheap destroys its
// ThreadState and abandons its pages, still holding the handed-over blocks,
// and later threads reclaim them; the peers do what their thread-exit hooks
// do (mimalloc abandons its segments too, jemalloc flushes its tcache,
// glibc's arena goes back to its free list).
//
// Sizes and free orders come from 16 pre-generated programs (same seed for
// every allocator); thread g runs program g % 16. Thread creation and join
// are inside the timed region: they are the workload.
//
//   thread_churn [--threads=4000] [--slots=2] [--blocks=4000]
// Prints: thread_churn <allocator> <ns per allocation, wall time / (T x B),
//         thread start and exit included> <peak RSS KiB> us_per_thread=<wall
//         time x S / T, one thread's lifetime>
#include <algorithm>
#include <atomic>
#include <cstdint>
#include <cstdio>
#include <mutex>
#include <thread>
#include <vector>

#include "bench/allocator.h"
#include "bench/common.h"

namespace {
constexpr std::uint32_t kPrograms = 16;

// One thread's leftover blocks, waiting for the next thread.
struct Batch {
  char** table = nullptr;             // the thread's block table
  const std::uint32_t* left = nullptr;  // indices of the blocks left in it
  std::uint32_t count = 0;
};
}  // namespace

int main(int argc, char** argv) {
  const std::uint32_t threads = static_cast<std::uint32_t>(bench::arg_long(argc, argv, "--threads", 4000));
  const unsigned slots = static_cast<unsigned>(bench::arg_long(argc, argv, "--slots", 2));
  const std::uint32_t blocks = static_cast<std::uint32_t>(bench::arg_long(argc, argv, "--blocks", 4000));
  if (slots < 1 || slots > 64 || blocks < 8 || blocks > (1u << 24)) {
    std::fprintf(stderr, "thread_churn: need 1 <= --slots <= 64 and 8 <= --blocks <= 2^24\n");
    return 2;
  }
  const std::uint32_t keep = blocks / 8;  // handed over to the next thread
  const std::uint32_t freed = blocks - keep;

  // Programs: sizes[p * blocks + i], and order[p * blocks + k]: the k-th
  // block to free (the first `freed` are freed, the rest handed over).
  bench::Rng rng(11);
  auto* sizes = bench::os_array<std::uint16_t>(std::size_t{kPrograms} * blocks);
  auto* order = bench::os_array<std::uint32_t>(std::size_t{kPrograms} * blocks);
  for (std::uint32_t p = 0; p < kPrograms; ++p) {
    std::uint16_t* sz = sizes + std::size_t{p} * blocks;
    std::uint32_t* ord = order + std::size_t{p} * blocks;
    for (std::uint32_t i = 0; i < blocks; ++i) {
      sz[i] = static_cast<std::uint16_t>(rng.below(8) != 0 ? 16 + rng.below(512 - 16 + 1) : 513 + rng.below(4096 - 513 + 1));
      ord[i] = i;
    }
    for (std::uint32_t i = blocks; i > 1; --i) std::swap(ord[i - 1], ord[rng.below(i)]);  // Fisher-Yates
  }

  // Block tables: one per running thread plus the one in the mailbox is
  // enough (a thread swaps its own for the mailbox's); kept on a free stack.
  const unsigned tables = slots + 1;
  auto* free_tables = bench::os_array<char**>(tables);
  unsigned free_count = tables;
  for (unsigned i = 0; i < tables; ++i) free_tables[i] = bench::os_array<char*>(blocks);
  std::mutex mu;  // guards free_tables, free_count, mailbox
  Batch mailbox;

  bench::Process process;
  std::atomic<std::uint32_t> next{0};
  unsigned sums[64] = {};  // per slot (slots <= 64)

  auto lifetime = [&](std::uint32_t g, unsigned slot) {
    bench::Thread thread(process);
    char** table;
    {
      std::lock_guard<std::mutex> lock(mu);
      table = free_tables[--free_count];
    }
    const std::uint16_t* sz = sizes + std::size_t{g % kPrograms} * blocks;
    const std::uint32_t* ord = order + std::size_t{g % kPrograms} * blocks;
    for (std::uint32_t i = 0; i < blocks; ++i) {
      char* p = static_cast<char*>(thread.alloc(sz[i]));
      p[0] = static_cast<char>(i);
      table[i] = p;
    }
    unsigned sum = 0;
    for (std::uint32_t k = 0; k < freed; ++k) {
      char* p = table[ord[k]];
      sum += static_cast<unsigned char>(p[0]);
      bench::bench_free(p);
    }
    Batch prev;
    {
      std::lock_guard<std::mutex> lock(mu);
      prev = mailbox;
      mailbox = Batch{table, ord + freed, keep};
    }
    for (std::uint32_t k = 0; k < prev.count; ++k) {
      char* p = prev.table[prev.left[k]];
      sum += static_cast<unsigned char>(p[0]);
      bench::bench_free(p);
    }
    if (prev.table != nullptr) {
      std::lock_guard<std::mutex> lock(mu);
      free_tables[free_count++] = prev.table;
    }
    sums[slot] += sum;
  };  // ~Thread: tagheap detaches and destroys the ThreadState (pages abandoned)

  const std::uint64_t t0 = bench::now_ns();
  std::vector<std::thread> drivers;
  for (unsigned s = 0; s < slots; ++s) {
    drivers.emplace_back([&, s] {
      bench::pin_this_thread(s);  // its short-lived workers inherit the CPU
      for (std::uint32_t g; (g = next.fetch_add(1)) < threads;) {
        std::thread worker(lifetime, g, s);
        worker.join();
      }
    });
  }
  for (auto& d : drivers) d.join();
  const std::uint64_t t1 = bench::now_ns();

  for (std::uint32_t k = 0; k < mailbox.count; ++k) bench::bench_free(mailbox.table[mailbox.left[k]]);
  unsigned sum = 0;
  for (unsigned s = 0; s < slots; ++s) sum += sums[s];
  bench::do_not_optimize(sum);
  const double wall = static_cast<double>(t1 - t0);
  std::printf("thread_churn %s %.3f %ld us_per_thread=%.1f\n", bench::kAllocatorName,
              wall / (static_cast<double>(threads) * blocks), bench::peak_rss_kib(),
              wall * slots / threads / 1000.0);
  std::fflush(stdout);
  return 0;
}
