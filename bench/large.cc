// large: churn of large blocks, 64 KiB .. 4 MiB.
//
// A table of W slots (default 64) is filled with blocks of log-uniform random
// sizes in [64 KiB, 4 MiB] (mean about 1 MiB, so about 64 MiB live). Then
// each op picks a random slot, reads back the bytes written into its block,
// frees it, and allocates a new one of a random size there, writing its
// first and last byte and one byte every 64 KiB in between: an allocator
// that hands out fresh (lazily committed) memory pays for the page faults
// of what a program would touch, one that reuses committed memory does not.
// Sizes above 512 KiB are tagheap's huge blocks (one segment each); 64..512
// KiB are its large pages. The slot and size of every op are pre-generated
// (same seed for every allocator), outside the timed loop.
//
//   large [--slots=64] [--ops=60000] [--seed=1]
// Prints: large <allocator> <ns per op (one free + one allocate + touches)>
//         <peak RSS KiB>
#include <algorithm>
#include <cmath>
#include <cstdint>

#include "bench/allocator.h"
#include "bench/common.h"

namespace {
constexpr std::size_t kMinSize = std::size_t{64} << 10;
constexpr std::size_t kMaxSize = std::size_t{4} << 20;
constexpr std::size_t kStride = std::size_t{64} << 10;  // one byte touched per 64 KiB

// Log-uniform in [kMinSize, kMaxSize], rounded down to 16 bytes.
std::uint32_t random_size(bench::Rng& rng) {
  const double u = static_cast<double>(rng.next() >> 11) * 0x1p-53;  // [0, 1)
  const double s = static_cast<double>(kMinSize) * std::exp2(u * std::log2(double(kMaxSize) / kMinSize));
  return static_cast<std::uint32_t>(std::clamp<std::size_t>(static_cast<std::size_t>(s) & ~std::size_t{15},
                                                             kMinSize, kMaxSize));
}

void touch(char* p, std::size_t size, char v) {
  p[0] = v;
  for (std::size_t off = kStride; off < size - 1; off += kStride) p[off] = v;
  p[size - 1] = v;
}

unsigned read_back(const char* p, std::size_t size) {
  unsigned sum = static_cast<unsigned char>(p[0]);
  for (std::size_t off = kStride; off < size - 1; off += kStride) sum += static_cast<unsigned char>(p[off]);
  return sum + static_cast<unsigned char>(p[size - 1]);
}
}  // namespace

int main(int argc, char** argv) {
  const std::uint32_t slots = static_cast<std::uint32_t>(bench::arg_long(argc, argv, "--slots", 64));
  const std::size_t ops = static_cast<std::size_t>(bench::arg_long(argc, argv, "--ops", 60000));
  const std::uint64_t seed = static_cast<std::uint64_t>(bench::arg_long(argc, argv, "--seed", 1));

  // Cycled like churn's stream, to keep its memory small.
  struct Op {
    std::uint32_t slot, size;
  };
  const std::size_t stream_len = std::min<std::size_t>(ops, std::size_t{1} << 16);
  bench::Rng rng(seed);
  auto* stream = bench::os_array<Op>(stream_len);
  for (std::size_t i = 0; i < stream_len; ++i) stream[i] = Op{rng.below(slots), random_size(rng)};
  auto* table = bench::os_array<char*>(slots);
  auto* table_size = bench::os_array<std::uint32_t>(slots);

  bench::Process process;
  bench::Thread thread(process);

  for (std::uint32_t s = 0; s < slots; ++s) {
    const std::uint32_t size = random_size(rng);
    char* p = static_cast<char*>(thread.alloc(size));
    touch(p, size, static_cast<char>(s));
    table[s] = p;
    table_size[s] = size;
  }

  unsigned sum = 0;
  const std::uint64_t t0 = bench::now_ns();
  for (std::size_t i = 0, j = 0; i < ops; ++i) {
    const Op op = stream[j];
    if (++j == stream_len) j = 0;
    sum += read_back(table[op.slot], table_size[op.slot]);
    bench::bench_free(table[op.slot]);
    char* p = static_cast<char*>(thread.alloc(op.size));
    touch(p, op.size, static_cast<char>(i));
    table[op.slot] = p;
    table_size[op.slot] = op.size;
  }
  const std::uint64_t t1 = bench::now_ns();

  for (std::uint32_t s = 0; s < slots; ++s) sum += read_back(table[s], table_size[s]);
  bench::do_not_optimize(sum);
  bench::report("large", bench::kAllocatorName, static_cast<double>(t1 - t0) / static_cast<double>(ops));
  for (std::uint32_t s = 0; s < slots; ++s) bench::bench_free(table[s]);
  return 0;
}
