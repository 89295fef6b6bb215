// SlotIndex (slot_index.h), the link table's flat index: random inserts,
// finds and erases against std::unordered_map, with keys crowded into few
// home buckets so that runs wrap around the array's end and erases shift
// keys back across it.
#include <doctest/doctest.h>

#include <cstdint>
#include <random>
#include <unordered_map>
#include <vector>

#include "examples/libgc/slot_index.h"

using tagheap::libgc::SlotIndex;

namespace {

void** slot_at(std::uintptr_t i) { return reinterpret_cast<void**>(0x100000 + 8 * i); }

// Every key of the model found with its value, and as many in the index.
void check_same(SlotIndex& index, const std::unordered_map<void**, std::uint32_t>& model) {
  REQUIRE(index.size() == model.size());
  for (const auto& [slot, value] : model) {
    const std::uint32_t* v = index.find(slot);
    REQUIRE(v != nullptr);
    CHECK(*v == value);
  }
}

}  // namespace

TEST_SUITE("libgc.slot_index") {
  TEST_CASE("random inserts, updates and erases agree with a map, across growth and wrapped runs") {
    for (const std::uintptr_t key_space : {std::uintptr_t{40}, std::uintptr_t{5000}, std::uintptr_t{200000}}) {
      CAPTURE(key_space);
      SlotIndex index;
      std::unordered_map<void**, std::uint32_t> model;
      std::mt19937_64 rng(key_space);
      for (int op = 0; op < 200'000; ++op) {
        void** slot = slot_at(rng() % key_space);
        const std::uint32_t value = static_cast<std::uint32_t>(rng());
        switch (rng() % 4) {
          case 0:
          case 1:
            if (!model.count(slot)) {
              index.insert(slot, value);
              model.emplace(slot, value);
            }
            break;
          case 2:
            CHECK(index.erase(slot) == (model.erase(slot) == 1));
            break;
          default:
            if (std::uint32_t* v = index.find(slot)) {
              REQUIRE(model.count(slot));
              *v = value;  // as LinkTable::remove renumbers the moved entry
              model[slot] = value;
            } else {
              CHECK(!model.count(slot));
            }
        }
        if (op % 20'000 == 0) check_same(index, model);
      }
      check_same(index, model);
      for (auto it = model.begin(); it != model.end(); it = model.erase(it)) CHECK(index.erase(it->first));
      CHECK(index.size() == 0);
      CHECK(index.find(slot_at(1)) == nullptr);
    }
  }

  TEST_CASE("an empty index finds nothing and erases nothing") {
    SlotIndex index;
    CHECK(index.find(slot_at(7)) == nullptr);
    CHECK(!index.erase(slot_at(7)));
    CHECK(index.size() == 0);
  }
}
