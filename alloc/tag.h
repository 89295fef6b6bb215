// tag.h: heap tags and sets of tags.
//
// A tag (0..15) is fixed per heap at creation and copied into every page the
// heap creates. A VM keeps GC objects on GC-tagged heaps; walks and
// collections take a TagSet and touch only pages carrying those tags.
#pragma once

#include <concepts>
#include <cstdint>
#include <initializer_list>
#include <stdexcept>
#include <string>
#include <utility>

namespace tagheap {

using Tag = std::uint8_t;
inline constexpr unsigned kTagCount = 16;

// Throws std::invalid_argument naming the bad value: API misuse, never UB.
// Takes any integer type, so a value is checked before it could narrow to a
// Tag (256 must not become tag 0, nor -1 tag 255).
template <std::integral I>
constexpr Tag checked_tag(I tag) {
  if (std::cmp_less(tag, 0) || std::cmp_greater_equal(tag, kTagCount)) {
    throw std::invalid_argument("tagheap: invalid tag " + std::to_string(tag) +
                                " (tags are 0.." +
                                std::to_string(kTagCount - 1) + ")");
  }
  return static_cast<Tag>(tag);
}

// A set of tags, as a 16-bit mask.
class TagSet {
 public:
  constexpr TagSet() = default;
  constexpr TagSet(std::initializer_list<Tag> tags) {
    for (Tag t : tags) bits_ |= static_cast<std::uint16_t>(1u << checked_tag(t));
  }
  static constexpr TagSet from_bits(std::uint16_t bits) {
    TagSet s;
    s.bits_ = bits;
    return s;
  }
  static constexpr TagSet all() { return from_bits(0xFFFF); }

  constexpr bool contains(Tag t) const { return t < kTagCount && ((bits_ >> t) & 1u); }
  constexpr std::uint16_t bits() const { return bits_; }
  constexpr bool empty() const { return bits_ == 0; }
  constexpr TagSet with(Tag t) const {
    return from_bits(static_cast<std::uint16_t>(bits_ | (1u << checked_tag(t))));
  }
  constexpr bool operator==(const TagSet&) const = default;

  // Iterates the tags in increasing order: for (Tag t : set) ...
  class iterator {
   public:
    constexpr explicit iterator(std::uint16_t rest) : rest_(rest) {}
    constexpr Tag operator*() const { return static_cast<Tag>(__builtin_ctz(rest_)); }
    constexpr iterator& operator++() {
      rest_ = static_cast<std::uint16_t>(rest_ & (rest_ - 1));
      return *this;
    }
    constexpr bool operator!=(const iterator& o) const { return rest_ != o.rest_; }

   private:
    std::uint16_t rest_;
  };
  constexpr iterator begin() const { return iterator(bits_); }
  constexpr iterator end() const { return iterator(0); }

 private:
  std::uint16_t bits_ = 0;
};

}  // namespace tagheap
