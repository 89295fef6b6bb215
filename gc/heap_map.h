// heap_map.h: a picture of a runtime's heap, and the same data as JSON.
//
// take_heap_snapshot() (world stopped) records every segment and page: tag,
// block size, live blocks, abandoned or huge. heap_map_svg() draws it: one
// row per 4 MiB of address space in a segment, one cell per page (width to
// scale with its bytes, so huge pages span several rows), coloured by tag,
// shaded by occupancy (pale = empty, deep = full), abandoned pages hatched,
// free pages grey. Past kMaxRows rows, consecutive segments share a row and
// a cell shows the page index across them (majority tag, mean occupancy),
// so a heap of a few GiB stays readable. No external dependency: the SVG is
// written by hand.
//
// heap_stats_json() writes per-tag and per-size-class figures; its schema is
// gc/heap_stats.schema.json (the "schema" field names its version).
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "alloc/runtime.h"
#include "alloc/tag.h"

namespace tagheap::gc {

struct PageRecord {
  std::size_t bytes = 0;       // page memory (huge: the whole block's segment)
  std::size_t block_size = 0;
  std::uint32_t blocks = 0;    // capacity
  std::uint32_t live = 0;      // live blocks
  Tag tag = 0;
  std::uint8_t size_class = 0; // 0 for huge
  bool in_use = false;
  bool abandoned = false;
  bool huge = false;
};

struct SegmentRecord {
  std::uintptr_t base = 0;
  std::size_t size = 0;
  int kind = 0;  // 0 small, 1 medium, 2 large, 3 huge
  std::vector<PageRecord> pages;
};

struct HeapSnapshot {
  std::vector<SegmentRecord> segments;  // by address
  RuntimeStats stats;
  TagSet gc_tags;
};

// World stopped.
HeapSnapshot take_heap_snapshot(Runtime& runtime);

struct HeapMapOptions {
  std::string title = "tagheap heap map";
  std::array<std::string, kTagCount> tag_names{};  // empty: "tag N"
  std::size_t max_rows = 512;                       // aggregate beyond this
};

std::string heap_map_svg(const HeapSnapshot& snapshot, const HeapMapOptions& options = {});
std::string heap_stats_json(const HeapSnapshot& snapshot, const HeapMapOptions& options = {});

// Writes text to path; false (errno set) on failure.
bool write_file(const std::string& path, const std::string& text);

}  // namespace tagheap::gc
