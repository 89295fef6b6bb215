// larson: a larson-like multi-threaded churn with cross-thread frees.
//
// T threads (default 2) and T slot tables of S slots each. In epoch e, thread
// t churns table (t + e) % T: pick a random slot, free its block, allocate a
// new one of random size in [16, 512] there, write its first byte. Tables
// rotate between threads at every epoch (a std::barrier separates epochs), so
// many frees hit blocks another thread allocated, as in Larson & Krishnan's
// server benchmark where a thread's blocks outlive it. Op streams are
// pre-generated per thread, identical for every allocator.
//
//   larson [--threads=2] [--slots=20000] [--ops=20000] [--epochs=500]
// Prints: larson <allocator> <ns per op, wall time / total ops> <peak RSS KiB>
#include <barrier>
#include <cstdint>
#include <thread>
#include <vector>

#include "bench/allocator.h"
#include "bench/common.h"

int main(int argc, char** argv) {
  const unsigned threads = static_cast<unsigned>(bench::arg_long(argc, argv, "--threads", 2));
  const std::uint32_t slots = static_cast<std::uint32_t>(bench::arg_long(argc, argv, "--slots", 20000));
  const std::size_t ops = static_cast<std::size_t>(bench::arg_long(argc, argv, "--ops", 20000));
  const unsigned epochs = static_cast<unsigned>(bench::arg_long(argc, argv, "--epochs", 500));
  constexpr std::uint32_t kMinSize = 16, kMaxSize = 512;

  std::vector<std::uint32_t*> streams(threads);
  std::vector<char**> tables(threads);
  for (unsigned t = 0; t < threads; ++t) {
    bench::Rng rng(1000 + t);
    streams[t] = bench::os_array<std::uint32_t>(ops);
    for (std::size_t i = 0; i < ops; ++i)
      streams[t][i] = rng.below(slots) << 10 | (kMinSize + rng.below(kMaxSize - kMinSize + 1));
    tables[t] = bench::os_array<char*>(slots);
  }

  bench::Process process;
  std::barrier sync(static_cast<std::ptrdiff_t>(threads) + 1);
  std::vector<std::thread> workers;
  for (unsigned t = 0; t < threads; ++t) {
    workers.emplace_back([&, t] {
      bench::pin_this_thread(t);
      bench::Thread thread(process);
      char** own = tables[t];
      for (std::uint32_t s = 0; s < slots; ++s) {
        char* p = static_cast<char*>(thread.alloc(kMinSize + (s * 37) % (kMaxSize - kMinSize + 1)));
        p[0] = 1;
        own[s] = p;
      }
      const std::uint32_t* stream = streams[t];
      sync.arrive_and_wait();  // start
      for (unsigned e = 0; e < epochs; ++e) {
        char** table = tables[(t + e) % threads];
        for (std::size_t i = 0; i < ops; ++i) {
          const std::uint32_t op = stream[i];
          char*& slot = table[op >> 10];
          bench::bench_free(slot);
          char* p = static_cast<char*>(thread.alloc(op & 1023));
          p[0] = static_cast<char>(i);
          slot = p;
        }
        sync.arrive_and_wait();  // end of epoch: tables rotate
      }
      sync.arrive_and_wait();  // main has read the clock
      // Each thread frees the table it used last (blocks of every thread).
      char** table = tables[(t + epochs - 1) % threads];
      for (std::uint32_t s = 0; s < slots; ++s) bench::bench_free(table[s]);
    });
  }
  sync.arrive_and_wait();
  const std::uint64_t t0 = bench::now_ns();
  for (unsigned e = 0; e < epochs; ++e) sync.arrive_and_wait();
  const std::uint64_t t1 = bench::now_ns();
  sync.arrive_and_wait();
  for (auto& w : workers) w.join();
  bench::report("larson", bench::kAllocatorName,
                static_cast<double>(t1 - t0) / (static_cast<double>(ops) * threads * epochs));
  return 0;
}
