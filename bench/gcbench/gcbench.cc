// GCBench (Hans Boehm and John Ellis's benchmark, after William Clinger's
// Java version), in its usual shape: a stretch tree of depth 18, a
// long-lived tree of depth 16 and an array of 500,000 doubles that stay live
// throughout, then short-lived trees built top-down (Populate) and bottom-up
// (MakeTree) at depths 4, 6, .., 16, NumIters(d) = 2 * TreeSize(18) /
// TreeSize(d) of each. Prints:
//   gcbench <variant> <wall_ms> <peak_rss_kib> <collections>
#include <chrono>
#include <cstdio>

#include "bench/gcbench/variant.h"

namespace {

constexpr int kStretchTreeDepth = 18;
constexpr int kLongLivedTreeDepth = 16;
constexpr int kArraySize = 500000;
constexpr int kMinTreeDepth = 4;
constexpr int kMaxTreeDepth = 16;

struct Node {
  Node* left;
  Node* right;
  int i, j;
};
static_assert(sizeof(Node) == 24);

Node* new_node(Node* l = nullptr, Node* r = nullptr) {
  auto* n = static_cast<Node*>(gcb::alloc_node(sizeof(Node)));
  n->left = l;
  n->right = r;
  n->i = n->j = 0;
  return n;
}

int tree_size(int i) { return (1 << (i + 1)) - 1; }

int count_nodes(const Node* n) { return n ? 1 + count_nodes(n->left) + count_nodes(n->right) : 0; }
int num_iters(int i) { return 2 * tree_size(kStretchTreeDepth) / tree_size(i); }

// Top-down: `node` is reachable from a root, so are the children once linked.
void populate(int depth, Node* node) {
  if (depth <= 0) return;
  --depth;
  node->left = new_node();
  node->right = new_node();
  populate(depth, node->left);
  populate(depth, node->right);
}

// Bottom-up: the left subtree is rooted while the right one is built, and
// both while their parent is allocated (that allocation may collect).
Node* make_tree(int depth) {
  if (depth <= 0) return new_node();
  Node* left = make_tree(depth - 1);
  gcb::RootScope<Node> keep_left(left);
  Node* right = make_tree(depth - 1);
  gcb::RootScope<Node> keep_right(right);
  return new_node(left, right);
}

void time_construction(int depth) {
  const int iters = num_iters(depth);
  Node* temp = nullptr;
  gcb::RootScope<Node> root(temp);
  for (int i = 0; i < iters; ++i) {
    temp = new_node();
    populate(depth, temp);
    gcb::release_tree(reinterpret_cast<gcb::Links*>(temp));
    temp = nullptr;
  }
  for (int i = 0; i < iters; ++i) {
    temp = make_tree(depth);
    gcb::release_tree(reinterpret_cast<gcb::Links*>(temp));
    temp = nullptr;
  }
}

}  // namespace

int main() {
  gcb::init();
  const auto t0 = std::chrono::steady_clock::now();

  Node* temp = make_tree(kStretchTreeDepth);  // stretch the heap
  gcb::release_tree(reinterpret_cast<gcb::Links*>(temp));
  temp = nullptr;

  Node* long_lived = new_node();
  gcb::RootScope<Node> root_tree(long_lived);
  populate(kLongLivedTreeDepth, long_lived);
  auto* array = static_cast<double*>(gcb::alloc_atomic(sizeof(double) * kArraySize));
  for (int i = 0; i < kArraySize / 2; ++i) array[i] = 1.0 / i;
  for (int i = kArraySize / 2; i < kArraySize; ++i) array[i] = 0;

  for (int d = kMinTreeDepth; d <= kMaxTreeDepth; d += 2) time_construction(d);

  if (long_lived == nullptr || count_nodes(long_lived) != tree_size(kLongLivedTreeDepth) ||
      array[1000] != 1.0 / 1000) {
    std::printf("# failed: long-lived data lost\n");
    return 1;
  }
  const double ms = gcb::ms_since(t0);
  gcb::print_detail();
  std::printf("gcbench %s %.1f %ld %zu\n", gcb::kVariant, ms, gcb::peak_rss_kib(), gcb::collections());
  return 0;
}
