// gcbench_program.h: GCBench's program (Hans Boehm and John Ellis's
// benchmark, after William Clinger's Java version), written once for the
// single-threaded driver (gcbench.cc) and each thread of the multi-threaded
// one (mt_gcbench.cc): a stretch tree of depth 18, a long-lived tree of
// depth 16 and an array of 500,000 doubles that stay live throughout, then
// short-lived trees built top-down (populate) and bottom-up (make_tree) at
// depths 4, 6, .., 16, num_iters(d) = 2 * tree_size(18) / tree_size(d) of
// each.
//
// Program<M> takes its memory management from M:
//   static void* alloc_node(std::size_t), static void* alloc_atomic(std::size_t)
//   static void release_tree(Node*)    explicit free of a whole tree (the floor), else nothing
//   static void write_barrier(Node*)   after storing a node pointer into a node allocated before
//                                      the stored one (generational collectors), else nothing
//   template <class T> using Root      an RAII scope that makes a T*& slot a root
#pragma once

#include <cstddef>

namespace gcbench {

inline constexpr int kStretchTreeDepth = 18;
inline constexpr int kLongLivedTreeDepth = 16;
inline constexpr int kArraySize = 500000;
inline constexpr int kMinTreeDepth = 4;
inline constexpr int kMaxTreeDepth = 16;

struct Node {
  Node* left;
  Node* right;
  int i, j;
};
static_assert(sizeof(Node) == 24);

inline int tree_size(int i) { return (1 << (i + 1)) - 1; }
inline int num_iters(int i) { return 2 * tree_size(kStretchTreeDepth) / tree_size(i); }
inline int count_nodes(const Node* n) { return n ? 1 + count_nodes(n->left) + count_nodes(n->right) : 0; }

template <class M>
class Program {
 public:
  // The whole program. True when the long-lived data came through intact.
  // release_long_lived: hand the long-lived tree to M::release_tree at the
  // end (a thread that is done with it; the single-threaded run just exits).
  static bool run(bool release_long_lived) {
    Node* temp = make_tree(kStretchTreeDepth);  // stretch the heap
    M::release_tree(temp);
    temp = nullptr;

    Node* long_lived = new_node();
    typename M::template Root<Node> root_tree(long_lived);
    populate(kLongLivedTreeDepth, long_lived);
    auto* array = static_cast<double*>(M::alloc_atomic(sizeof(double) * kArraySize));
    for (int i = 0; i < kArraySize / 2; ++i) array[i] = 1.0 / i;
    for (int i = kArraySize / 2; i < kArraySize; ++i) array[i] = 0;

    for (int d = kMinTreeDepth; d <= kMaxTreeDepth; d += 2) time_construction(d);

    const bool ok = long_lived != nullptr && count_nodes(long_lived) == tree_size(kLongLivedTreeDepth) &&
                    array[1000] == 1.0 / 1000;
    if (release_long_lived) M::release_tree(long_lived);
    return ok;
  }

 private:
  static Node* new_node(Node* l = nullptr, Node* r = nullptr) {
    auto* n = static_cast<Node*>(M::alloc_node(sizeof(Node)));
    n->left = l;
    n->right = r;
    n->i = n->j = 0;
    return n;
  }

  // Top-down: `node` is reachable from a root, so are the children once
  // linked. `node` is older than each child (a collection in between may
  // have made it old): each store is followed by the barrier.
  static void populate(int depth, Node* node) {
    if (depth <= 0) return;
    --depth;
    node->left = new_node();
    M::write_barrier(node);
    node->right = new_node();
    M::write_barrier(node);
    populate(depth, node->left);
    populate(depth, node->right);
  }

  // Bottom-up: the left subtree is rooted while the right one is built, and
  // both while their parent is allocated (that allocation may collect).
  static Node* make_tree(int depth) {
    if (depth <= 0) return new_node();
    Node* left = make_tree(depth - 1);
    typename M::template Root<Node> keep_left(left);
    Node* right = make_tree(depth - 1);
    typename M::template Root<Node> keep_right(right);
    return new_node(left, right);
  }

  static void time_construction(int depth) {
    const int iters = num_iters(depth);
    Node* temp = nullptr;
    typename M::template Root<Node> root(temp);
    for (int i = 0; i < iters; ++i) {
      temp = new_node();
      populate(depth, temp);
      M::release_tree(temp);
      temp = nullptr;
    }
    for (int i = 0; i < iters; ++i) {
      temp = make_tree(depth);
      M::release_tree(temp);
      temp = nullptr;
    }
  }
};

}  // namespace gcbench
