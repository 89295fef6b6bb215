// xfree: producer/consumer, every block freed by a thread that did not
// allocate it.
//
// One producer allocates blocks of random sizes in [16, 512] (pre-generated),
// writes their first byte and hands them over in batches of 256 through a
// single-producer single-consumer ring of batches; one consumer reads each
// block's first byte and frees it. Spinning threads yield, since the machine
// may have fewer free cores than threads.
//
//   xfree [--blocks=8000000]
// Prints: xfree <allocator> <ns per block, wall time / blocks> <peak RSS KiB>
#include <atomic>
#include <cstdint>
#include <thread>

#include "bench/allocator.h"
#include "bench/common.h"

namespace {
constexpr std::size_t kBatch = 256;
constexpr std::size_t kRing = 64;  // batches in flight at most

struct Batch {
  char* blocks[kBatch];
};

struct alignas(64) Counter {
  std::atomic<std::size_t> v{0};
};

void wait_until(const std::atomic<std::size_t>& a, std::size_t at_least) {
  for (unsigned spins = 0; a.load(std::memory_order_acquire) < at_least; ++spins)
    if (spins > 64) std::this_thread::yield();
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
  const std::size_t batches = blocks / kBatch;

  bench::Process process;
  std::atomic<int> ready{0};
  std::uint64_t t0 = 0;
  std::thread producer([&] {
    bench::pin_this_thread(0);
    bench::Thread thread(process);
    ready.fetch_add(1);
    while (ready.load() < 2) std::this_thread::yield();
    t0 = bench::now_ns();
    for (std::size_t b = 0; b < batches; ++b) {
      if (b >= kRing) wait_until(consumed.v, b - kRing + 1);
      Batch& batch = ring[b % kRing];
      for (std::size_t i = 0; i < kBatch; ++i) {
        char* p = static_cast<char*>(thread.alloc(sizes[b * kBatch + i]));
        p[0] = static_cast<char>(i);
        batch.blocks[i] = p;
      }
      produced.v.store(b + 1, std::memory_order_release);
    }
  });
  unsigned sum = 0;
  std::thread consumer([&] {
    bench::pin_this_thread(1);
    bench::Thread thread(process);  // a registered thread, as a VM's would be
    ready.fetch_add(1);
    for (std::size_t b = 0; b < batches; ++b) {
      wait_until(produced.v, b + 1);
      Batch& batch = ring[b % kRing];
      for (std::size_t i = 0; i < kBatch; ++i) {
        sum += static_cast<unsigned char>(batch.blocks[i][0]);
        bench::bench_free(batch.blocks[i]);
      }
      consumed.v.store(b + 1, std::memory_order_release);
    }
  });
  producer.join();
  consumer.join();
  const std::uint64_t t1 = bench::now_ns();
  bench::do_not_optimize(sum);
  bench::report("xfree", bench::kAllocatorName, static_cast<double>(t1 - t0) / static_cast<double>(blocks));
  return 0;
}
