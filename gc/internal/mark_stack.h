// internal/mark_stack.h: a marker's stack of objects waiting to be traced,
// and the chunks markers hand each other (mark_worklist.h).
// Internal: users must not rely on anything under gc/internal/.
//
// Design
//   Three pointers and a push that is always inlined. A std::vector<void*>
//   held the stack before: its push_back is a call wherever the compiler
//   has stopped inlining, and it stops in the drain loops that matter
//   most (libgc's, which inlines a conservative scan of every object:
//   3.9M calls of 23 instructions on Guile's closures.scm with two
//   markers). A mark tests has_room() and pushes with push_unchecked();
//   growing is the tracer's business (Tracer::push_growing, under
//   Options' mark stack limit), never a side effect of a push.
//
// Invariants
//   begin_ <= top_ <= cap_; [begin_, top_) are the entries, oldest first;
//   begin_ == nullptr exactly when nothing was ever reserved. Memory comes
//   from ::operator new (counted by the tests' counting_new, and taken by
//   libgc's pause allocator in a pause) and is kept until destruction:
//   clear() keeps the capacity, so a warm pause allocates nothing.
#pragma once

#include <algorithm>
#include <cstddef>
#include <cstring>
#include <new>
#include <utility>

namespace tagheap::gc::internal {

class MarkStack {
 public:
  MarkStack() = default;
  MarkStack(MarkStack&& other) noexcept { swap(other); }
  MarkStack& operator=(MarkStack&& other) noexcept {
    MarkStack moved(std::move(other));
    swap(moved);
    return *this;
  }
  MarkStack(const MarkStack&) = delete;
  MarkStack& operator=(const MarkStack&) = delete;
  ~MarkStack() { ::operator delete(begin_); }

  bool empty() const noexcept { return top_ == begin_; }
  std::size_t size() const noexcept { return static_cast<std::size_t>(top_ - begin_); }
  std::size_t capacity() const noexcept { return static_cast<std::size_t>(cap_ - begin_); }
  bool has_room() const noexcept { return top_ != cap_; }

  // has_room() must hold.
  [[gnu::always_inline]] void push_unchecked(void* obj) noexcept { *top_++ = obj; }
  // !empty() must hold.
  void* back() const noexcept { return top_[-1]; }
  void pop_back() noexcept { --top_; }

  void clear() noexcept { top_ = begin_; }
  // Room for n entries in all, the entries kept. Throws std::bad_alloc.
  void reserve(std::size_t n) {
    if (n <= capacity()) return;
    auto** fresh = static_cast<void**>(::operator new(n * sizeof(void*)));
    const std::size_t used = size();
    if (used != 0) std::memcpy(fresh, begin_, used * sizeof(void*));
    ::operator delete(begin_);
    begin_ = fresh;
    top_ = fresh + used;
    cap_ = fresh + n;
  }
  // Appends [first, last). Throws std::bad_alloc, the stack as it was.
  void append(void* const* first, void* const* last) {
    const auto n = static_cast<std::size_t>(last - first);
    if (n > capacity() - size()) reserve(std::max(size() + n, 2 * capacity()));
    if (n != 0) std::memcpy(top_, first, n * sizeof(void*));
    top_ += n;
  }
  // Removes the n oldest entries (n <= size()).
  void drop_front(std::size_t n) noexcept {
    const std::size_t rest = size() - n;
    if (rest != 0) std::memmove(begin_, begin_ + n, rest * sizeof(void*));
    top_ = begin_ + rest;
  }
  void* const* begin() const noexcept { return begin_; }
  void* const* end() const noexcept { return top_; }

  void swap(MarkStack& other) noexcept {
    std::swap(begin_, other.begin_);
    std::swap(top_, other.top_);
    std::swap(cap_, other.cap_);
  }

 private:
  void** begin_ = nullptr;
  void** top_ = nullptr;
  void** cap_ = nullptr;
};

}  // namespace tagheap::gc::internal
