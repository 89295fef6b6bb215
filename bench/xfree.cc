// xfree: producer/consumer, every block freed by a thread that did not
// allocate it.
//
// One producer allocates blocks of random sizes in [16, 512] (pre-generated),
// writes their first byte and hands them over in batches of 256 through a
// single-producer single-consumer ring of batches; one consumer reads each
// block's first byte and frees it. A thread that finds the ring full (or
// empty) spins briefly, then sleeps until half of it is free (or filled), so
// a wake-up hands over 32 batches and a machine with fewer free cores than
// threads is not fought over.
//
//   xfree [--blocks=8000000]
// Prints: xfree <allocator> <ns per block, wall time / blocks> <peak RSS KiB>
#include <algorithm>
#include <atomic>
#include <cstdint>
#include <thread>

#include "bench/allocator.h"
#include "bench/common.h"

namespace {
constexpr std::size_t kBatch = 256;
constexpr std::uint32_t kRing = 64;  // batches in flight at most

struct Batch {
  char* blocks[kBatch];
};

// A count of batches, and the count its one reader sleeps for, if it sleeps.
struct alignas(64) Counter {
  static constexpr std::uint32_t kNobody = UINT32_MAX;
  std::atomic<std::uint32_t> v{0};
  std::atomic<std::uint32_t> wanted{kNobody};
};

// Returns once `c` reaches `at_least`. A short spin first; if that is not
// enough, sleeps (futex) until `c` reaches `wake_at`, so that one wake-up
// hands over half the ring. Spinning with yields instead put the two threads
// in one of two modes at random, 4x apart, for every allocator alike.
void wait_until(Counter& c, std::uint32_t at_least, std::uint32_t wake_at) {
  for (unsigned spins = 0; spins < 256; ++spins) {
    if (c.v.load(std::memory_order_acquire) >= at_least) return;
    __builtin_ia32_pause();
  }
  c.wanted.store(wake_at);  // seq_cst: pairs with advance()'s store, then load
  for (std::uint32_t v; (v = c.v.load()) < wake_at;) c.v.wait(v);
  c.wanted.store(Counter::kNobody, std::memory_order_relaxed);
}

void advance(Counter& c, std::uint32_t to) {
  c.v.store(to);
  if (to >= c.wanted.load()) c.v.notify_one();
}
}  // namespace

int main(int argc, char** argv) {
  const std::size_t blocks = static_cast<std::size_t>(bench::arg_long(argc, argv, "--blocks", 8000000)) / kBatch * kBatch;
  constexpr std::uint32_t kMinSize = 16, kMaxSize = 512;
  bench::Rng rng(7);
  auto* sizes = bench::os_array<std::uint16_t>(blocks);
  for (std::size_t i = 0; i < blocks; ++i) sizes[i] = static_cast<std::uint16_t>(kMinSize + rng.below(kMaxSize - kMinSize + 1));
  auto* ring = bench::os_array<Batch>(kRing);
  Counter produced, consumed;  // batches
  const auto batches = static_cast<std::uint32_t>(blocks / kBatch);

  bench::Process process;
  std::atomic<int> ready{0};
  std::uint64_t t0 = 0;
  std::thread producer([&] {
    bench::pin_this_thread(0);
    bench::Thread thread(process);
    ready.fetch_add(1);
    while (ready.load() < 2) std::this_thread::yield();
    t0 = bench::now_ns();
    for (std::uint32_t b = 0; b < batches; ++b) {
      if (b >= kRing) wait_until(consumed, b - kRing + 1, b - kRing / 2 + 1);
      Batch& batch = ring[b % kRing];
      for (std::size_t i = 0; i < kBatch; ++i) {
        char* p = static_cast<char*>(thread.alloc(sizes[std::size_t{b} * kBatch + i]));
        p[0] = static_cast<char>(i);
        batch.blocks[i] = p;
      }
      advance(produced, b + 1);
    }
  });
  unsigned sum = 0;
  std::thread consumer([&] {
    bench::pin_this_thread(1);
    bench::Thread thread(process);  // a registered thread, as a VM's would be
    ready.fetch_add(1);
    for (std::uint32_t b = 0; b < batches; ++b) {
      wait_until(produced, b + 1, std::min(batches, b + kRing / 2));
      Batch& batch = ring[b % kRing];
      for (std::size_t i = 0; i < kBatch; ++i) {
        sum += static_cast<unsigned char>(batch.blocks[i][0]);
        bench::bench_free(batch.blocks[i]);
      }
      advance(consumed, b + 1);
    }
  });
  producer.join();
  consumer.join();
  const std::uint64_t t1 = bench::now_ns();
  bench::do_not_optimize(sum);
  bench::report("xfree", bench::kAllocatorName, static_cast<double>(t1 - t0) / static_cast<double>(blocks));
  return 0;
}
