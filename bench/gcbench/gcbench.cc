// GCBench in its usual shape (the program is in gcbench_program.h), on one
// thread, against the memory manager variant.h selects. Prints:
//   gcbench <variant> <wall_ms> <peak_rss_kib> <collections>
#include <chrono>
#include <cstdio>

#include "bench/gcbench/gcbench_program.h"
#include "bench/gcbench/variant.h"

namespace {

struct Memory {
  static void* alloc_node(std::size_t n) { return gcb::alloc_node(n); }
  static void* alloc_atomic(std::size_t n) { return gcb::alloc_atomic(n); }
  static void release_tree(gcbench::Node* t) { gcb::release_tree(reinterpret_cast<gcb::Links*>(t)); }
  static void write_barrier(gcbench::Node* n) { gcb::write_barrier(n); }
  template <class T>
  using Root = gcb::RootScope<T>;
};

}  // namespace

int main() {
  gcb::init();
  const auto t0 = std::chrono::steady_clock::now();
  if (!gcbench::Program<Memory>::run(/*release_long_lived=*/false)) {
    std::printf("# failed: long-lived data lost\n");
    return 1;
  }
  const double ms = gcb::ms_since(t0);
  gcb::print_detail();
  std::printf("gcbench %s %.1f %ld %zu\n", gcb::variant_name(), ms, gcb::peak_rss_kib(), gcb::collections());
  return 0;
}
