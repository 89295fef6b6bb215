// The heap map's numbers agree with the runtime's statistics.
#include <doctest/doctest.h>

#include <regex>
#include <string>
#include <thread>
#include <vector>

#include "alloc/tagheap.h"
#include "gc/heap_map.h"

using namespace tagheap;

namespace {
std::size_t count(const std::string& text, const std::string& needle) {
  std::size_t n = 0;
  for (std::size_t at = text.find(needle); at != std::string::npos; at = text.find(needle, at + 1)) ++n;
  return n;
}
std::size_t attr(const std::string& text, const std::string& name) {
  std::smatch m;
  REQUIRE(std::regex_search(text, m, std::regex(name + "=\"([0-9]+)\"")));
  return std::stoul(m[1]);
}
}  // namespace

TEST_SUITE("gc.heap_map") {
  TEST_CASE("the map draws every page in use once, with the runtime's totals") {
    Runtime rt({.gc_tags = {1}});
    std::vector<void*> keep;
    {
      ThreadState ts(rt);
      ts.attach();
      for (int i = 0; i < 20000; ++i) keep.push_back(ts.heap(1).allocate(64));
      for (int i = 0; i < 3000; ++i) keep.push_back(ts.heap(0).allocate(3000));
      keep.push_back(ts.heap(2).allocate(5 << 20));  // huge
      ts.detach();
    }  // abandoned: its pages wait in the pool
    gc::HeapSnapshot snap = gc::take_heap_snapshot(rt);
    const std::string svg = gc::heap_map_svg(snap, {.title = "test <map>", .tag_names = {"data", "objects"}});
    const RuntimeStats& st = snap.stats;
    CHECK(st.total.pages > 3);
    CHECK(count(svg, "data-tag=\"1\" data-occupancy") == st.tags[1].pages);
    CHECK(count(svg, "data-tag=\"0\" data-occupancy") == st.tags[0].pages);
    CHECK(count(svg, "data-huge=\"1\"") == 1);
    CHECK(count(svg, "data-abandoned=\"1\"") == st.total.abandoned_pages);
    CHECK(attr(svg, "data-blocks") == 23001);
    CHECK(attr(svg, "data-pages") == st.total.pages);
    CHECK(attr(svg, "data-bytes-in-use") == st.total.bytes_in_use);
    CHECK(svg.find("test &lt;map&gt;") != std::string::npos);
    CHECK(svg.find(">objects (GC):") != std::string::npos);

    const std::string json = gc::heap_stats_json(snap);
    CHECK(json.find("\"schema\": \"tagheap-heap-stats/1\"") != std::string::npos);
    CHECK(json.find(std::string("\"blocks\": ") + std::to_string(st.total.blocks)) != std::string::npos);
    ThreadState ts(rt);
    ts.attach();
    for (void* p : keep) tagheap::free(p);
    ts.detach();
  }

  TEST_CASE("a heap with many segments is aggregated into at most max_rows rows") {
    Runtime rt;
    std::vector<void*> keep;
    ThreadState ts(rt);
    ts.attach();
    for (int i = 0; i < 130; ++i) keep.push_back(ts.heap(3).allocate(300 << 10));  // 13 per large page
    gc::HeapSnapshot snap = gc::take_heap_snapshot(rt);
    REQUIRE(snap.segments.size() >= 6);
    const std::string svg = gc::heap_map_svg(snap, {.max_rows = 4});
    CHECK(count(svg, "class=\"page\"") <= 4 * 64);
    CHECK(svg.find("segments per row") != std::string::npos);
    for (void* p : keep) tagheap::free(p);
    ts.detach();
  }
}
