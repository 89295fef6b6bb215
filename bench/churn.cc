// churn: single-thread churn of mixed small sizes.
//
// A table of W slots (default 100k) is filled with blocks of random sizes in
// [16, 512]. Then each op picks a random slot, frees its block and allocates a
// new one of a random size there, writing its first byte. The slot and size
// of every op are pre-generated (same seed for every allocator), so RNG cost
// is outside the timed loop and the op stream is identical everywhere.
//
//   churn [--slots=100000] [--ops=30000000] [--seed=1]
// Prints: churn <allocator> <ns per op (one free + one allocate)> <peak RSS KiB>
#include <algorithm>
#include <cstdint>

#include "bench/allocator.h"
#include "bench/common.h"

int main(int argc, char** argv) {
  const std::uint32_t slots = static_cast<std::uint32_t>(bench::arg_long(argc, argv, "--slots", 100000));
  const std::size_t ops = static_cast<std::size_t>(bench::arg_long(argc, argv, "--ops", 30000000));
  const std::uint64_t seed = static_cast<std::uint64_t>(bench::arg_long(argc, argv, "--seed", 1));
  constexpr std::uint32_t kMinSize = 16, kMaxSize = 512;

  // op = slot << 10 | size (size <= 1023). The stream is cycled, so that its
  // memory stays small next to the allocator's (it counts in every RSS).
  const std::size_t stream_len = std::min<std::size_t>(ops, std::size_t{1} << 20);
  bench::Rng rng(seed);
  auto* stream = bench::os_array<std::uint32_t>(stream_len);
  for (std::size_t i = 0; i < stream_len; ++i)
    stream[i] = rng.below(slots) << 10 | (kMinSize + rng.below(kMaxSize - kMinSize + 1));
  auto* table = bench::os_array<char*>(slots);

  bench::Process process;
  bench::Thread thread(process);

  for (std::uint32_t s = 0; s < slots; ++s) {
    char* p = static_cast<char*>(thread.alloc(kMinSize + rng.below(kMaxSize - kMinSize + 1)));
    p[0] = static_cast<char>(s);
    table[s] = p;
  }

  const std::uint64_t t0 = bench::now_ns();
  for (std::size_t i = 0, j = 0; i < ops; ++i) {
    const std::uint32_t op = stream[j];
    if (++j == stream_len) j = 0;
    char*& slot = table[op >> 10];
    bench::bench_free(slot);
    char* p = static_cast<char*>(thread.alloc(op & 1023));
    p[0] = static_cast<char>(i);
    slot = p;
  }
  const std::uint64_t t1 = bench::now_ns();

  unsigned sum = 0;
  for (std::uint32_t s = 0; s < slots; ++s) sum += static_cast<unsigned char>(table[s][0]);
  bench::do_not_optimize(sum);
  bench::report("churn", bench::kAllocatorName, static_cast<double>(t1 - t0) / static_cast<double>(ops));
  for (std::uint32_t s = 0; s < slots; ++s) bench::bench_free(table[s]);
  return 0;
}
