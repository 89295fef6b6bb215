// tree_node.h: the 24-byte binary-tree node of the pause and rewire
// benchmarks (left, right, a word of payload: all a tracer reads are the
// two pointers), the linking of a complete tree, and a count of a tree's
// nodes that uses no collector.
#pragma once

#include <cstddef>
#include <cstdint>
#include <vector>

namespace gcb {

struct TreeNode {
  TreeNode* left;
  TreeNode* right;
  std::uintptr_t payload;
};
static_assert(sizeof(TreeNode) == 24);

// What a collector model's trace does with a TreeNode (Tracer: anything
// with mark(void*)).
template <class Tracer>
void trace_tree_node(void* obj, Tracer& t) {
  auto* n = static_cast<TreeNode*>(obj);
  t.mark(n->left);
  t.mark(n->right);
}

// Links order[0..n) as a complete binary tree, breadth-first (node i's
// children are nodes 2i + 1 and 2i + 2; the others' stay as they are) and
// returns its root.
inline TreeNode* link_complete_tree(TreeNode* const* order, std::size_t n) {
  for (std::size_t i = 0; 2 * i + 1 < n; ++i) {
    order[i]->left = order[2 * i + 1];
    if (2 * i + 2 < n) order[i]->right = order[2 * i + 2];
  }
  return n ? order[0] : nullptr;
}

inline long count_nodes(const TreeNode* root) {
  std::vector<const TreeNode*> stack{root};
  long n = 0;
  while (!stack.empty()) {
    const TreeNode* x = stack.back();
    stack.pop_back();
    ++n;
    if (x->left) stack.push_back(x->left);
    if (x->right) stack.push_back(x->right);
  }
  return n;
}

}  // namespace gcb
