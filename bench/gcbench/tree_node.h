// tree_node.h: the 24-byte binary-tree node of the pause and rewire
// benchmarks (left, right, a word of payload: all a tracer reads are the
// two pointers), and a count of a tree's nodes that uses no collector.
#pragma once

#include <cstdint>
#include <vector>

namespace gcb {

struct TreeNode {
  TreeNode* left;
  TreeNode* right;
  std::uintptr_t payload;
};
static_assert(sizeof(TreeNode) == 24);

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
