// binary-trees (the Computer Language Benchmarks Game), single-threaded:
// a stretch tree of depth max+1, a long-lived tree of depth max, then
// 2^(max - d + 4) trees of each depth d = 4, 6, .., max, each built
// bottom-up, checked (node count) and dropped. max = argv[1] (default 18).
// Prints the usual lines prefixed with '#', then:
//   binarytrees <variant> <wall_ms> <peak_rss_kib> <collections>
// Exits 1 if a tree's node count is wrong.
#include <chrono>
#include <cstdio>
#include <cstdlib>

#include "bench/gcbench/variant.h"

namespace {

struct Node {
  Node* left;
  Node* right;
};
static_assert(sizeof(Node) == 16);

// Both subtrees stay rooted until the parent holds them: allocating the
// parent may collect. The only stores of node pointers go into the parent
// just allocated, which is young: no write barrier is needed (generational
// mode, variant.h).
Node* bottom_up(int depth) {
  if (depth <= 0) {
    auto* leaf = static_cast<Node*>(gcb::alloc_node(sizeof(Node)));
    leaf->left = leaf->right = nullptr;
    return leaf;
  }
  Node* left = bottom_up(depth - 1);
  gcb::RootScope<Node> keep_left(left);
  Node* right = bottom_up(depth - 1);
  gcb::RootScope<Node> keep_right(right);
  auto* n = static_cast<Node*>(gcb::alloc_node(sizeof(Node)));
  n->left = left;
  n->right = right;
  return n;
}

long check(const Node* n) {
  long c = 1;
  while (n->left) {  // recursion on one side, a loop on the other
    c += check(n->left) + 1;
    n = n->right;
  }
  return c;
}

}  // namespace

int main(int argc, char** argv) {
  const int n = argc > 1 ? std::atoi(argv[1]) : 18;
  const int min_depth = 4;
  const int max_depth = n < min_depth + 2 ? min_depth + 2 : n;
  gcb::init();
  const auto t0 = std::chrono::steady_clock::now();
  {
    Node* stretch = bottom_up(max_depth + 1);
    gcb::RootScope<Node> root(stretch);
    std::printf("# stretch tree of depth %d\t check: %ld\n", max_depth + 1, check(stretch));
    gcb::release_tree(reinterpret_cast<gcb::Links*>(stretch));
    stretch = nullptr;
  }
  bool ok = true;
  Node* long_lived = bottom_up(max_depth);
  gcb::RootScope<Node> root_long(long_lived);
  for (int d = min_depth; d <= max_depth; d += 2) {
    const long iters = 1L << (max_depth - d + min_depth);
    long sum = 0;
    Node* t = nullptr;
    gcb::RootScope<Node> root(t);
    for (long i = 0; i < iters; ++i) {
      t = bottom_up(d);
      sum += check(t);
      gcb::release_tree(reinterpret_cast<gcb::Links*>(t));
      t = nullptr;
    }
    std::printf("# %ld\t trees of depth %d\t check: %ld\n", iters, d, sum);
    if (sum != iters * ((2L << d) - 1)) ok = false;
  }
  const long long_check = check(long_lived);
  std::printf("# long lived tree of depth %d\t check: %ld\n", max_depth, long_check);
  if (long_check != (2L << max_depth) - 1) ok = false;
  if (!ok) {
    std::printf("# failed: a tree has the wrong node count (a collector freed live nodes)\n");
    return 1;
  }
  const double ms = gcb::ms_since(t0);
  gcb::print_detail();
  std::printf("binarytrees %s %.1f %ld %zu\n", gcb::variant_name(), ms, gcb::peak_rss_kib(), gcb::collections());
  return 0;
}
