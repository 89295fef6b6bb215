#include "gc/heap_map.h"

#include <algorithm>
#include <cstdio>
#include <map>

#include "alloc/heap_walk.h"

namespace tagheap::gc {

namespace {
constexpr std::size_t kRowBytes = std::size_t{4} << 20;  // one row = one 4 MiB unit
constexpr int kRowWidth = 768, kRowHeight = 14, kRowGap = 3, kLeft = 130, kTop = 96;

// Sixteen tag hues, far apart around the wheel, alternating lightness bands.
constexpr std::array<int, kTagCount> kHue = {210, 30, 120, 280, 0, 170, 60, 330,
                                             240, 90, 15, 190, 300, 140, 45, 260};

std::string fmt(const char* f, auto... args) {
  char buf[512];
  std::snprintf(buf, sizeof buf, f, args...);
  return buf;
}

std::string xml_escape(const std::string& s) {
  std::string out;
  for (char c : s) {
    switch (c) {
      case '<': out += "&lt;"; break;
      case '>': out += "&gt;"; break;
      case '&': out += "&amp;"; break;
      case '"': out += "&quot;"; break;
      default:
        if (static_cast<unsigned char>(c) >= 0x20 || c == '\n') out += c;
    }
  }
  return out;
}

std::string json_escape(const std::string& s) {
  std::string out;
  for (char c : s) {
    if (c == '"' || c == '\\') {
      out += '\\';
      out += c;
    } else if (static_cast<unsigned char>(c) < 0x20) {
      out += fmt("\\u%04x", c);
    } else {
      out += c;
    }
  }
  return out;
}

std::string tag_name(const HeapMapOptions& o, Tag t) {
  return o.tag_names[t].empty() ? fmt("tag %u", t) : o.tag_names[t];
}

std::string mib(std::size_t bytes) { return fmt("%.1f MiB", static_cast<double>(bytes) / (1 << 20)); }

// Fill colour of a page of tag t at occupancy 0..1: pale when empty.
std::string cell_colour(Tag t, double occupancy) {
  const int lightness = static_cast<int>(88 - 50 * std::clamp(occupancy, 0.0, 1.0));
  return fmt("hsl(%d,70%%,%d%%)", kHue[t], lightness);
}

struct Cell {
  double x, w;
  int row, rows;
  Tag tag;
  double occupancy;
  bool in_use, abandoned, huge;
  std::string tip;
};
}  // namespace

HeapSnapshot take_heap_snapshot(Runtime& runtime) {
  HeapSnapshot snap;
  snap.stats = runtime.stats();  // a walk: collects thread-free lists first
  snap.gc_tags = runtime.options().gc_tags;
  for_each_segment(runtime, [&](SegmentView seg) {
    SegmentRecord rec;
    rec.base = seg.base();
    rec.size = seg.size();
    rec.kind = seg.kind();
    for (std::size_t i = 0; i < seg.page_count(); ++i) {
      PageView page = seg.page(i);
      PageRecord p;
      p.in_use = page.in_use();
      p.bytes = seg.is_huge() ? seg.size() : seg.page_bytes();
      if (p.in_use) {
        p.block_size = page.block_size();
        p.blocks = page.block_count();
        p.live = page.live_blocks();
        p.tag = page.tag();
        p.size_class = static_cast<std::uint8_t>(page.size_class());
        p.abandoned = page.is_abandoned();
        p.huge = page.is_huge();
      }
      rec.pages.push_back(p);
    }
    snap.segments.push_back(std::move(rec));
  });
  std::sort(snap.segments.begin(), snap.segments.end(),
            [](const SegmentRecord& a, const SegmentRecord& b) { return a.base < b.base; });
  return snap;
}

std::string heap_map_svg(const HeapSnapshot& snap, const HeapMapOptions& options) {
  std::vector<Cell> cells;
  std::vector<std::string> row_labels;
  // Rows each segment needs drawn one by one.
  std::size_t rows_needed = 0;
  for (const auto& seg : snap.segments) rows_needed += (seg.size + kRowBytes - 1) / kRowBytes;
  const std::size_t group = rows_needed <= options.max_rows ? 1 : (rows_needed + options.max_rows - 1) / options.max_rows;
  int row = 0;
  if (group == 1) {
    for (const auto& seg : snap.segments) {
      const int seg_rows = static_cast<int>((seg.size + kRowBytes - 1) / kRowBytes);
      row_labels.push_back(fmt("%#zx", static_cast<std::size_t>(seg.base)));
      for (int r = 1; r < seg_rows; ++r) row_labels.push_back("");
      double x = 0;
      for (const auto& p : seg.pages) {
        const double w = seg.kind == 3 ? kRowWidth : kRowWidth * static_cast<double>(p.bytes) / kRowBytes;
        Cell c{x, w, row, seg.kind == 3 ? seg_rows : 1, p.tag,
               p.blocks ? static_cast<double>(p.live) / p.blocks : 0.0, p.in_use, p.abandoned, p.huge, ""};
        c.tip = p.in_use ? fmt("%s, %zu-byte blocks, %u/%u live%s", tag_name(options, p.tag).c_str(), p.block_size,
                               p.live, p.blocks, p.abandoned ? ", abandoned" : "")
                         : std::string("free page");
        if (p.huge) c.tip = fmt("%s, huge block of %s", tag_name(options, p.tag).c_str(), mib(p.block_size).c_str());
        cells.push_back(std::move(c));
        x += w;
      }
      row += seg_rows;
    }
  } else {
    // Aggregate: `group` consecutive small/medium/large segments per row;
    // cell i shows page i across them. Huge segments are summarised per row
    // as one cell whose width is their share of the row's bytes.
    for (std::size_t first = 0; first < snap.segments.size(); first += group) {
      const std::size_t last = std::min(first + group, snap.segments.size());
      row_labels.push_back(fmt("%#zx +%zu", static_cast<std::size_t>(snap.segments[first].base), last - first - 1));
      constexpr std::size_t kCols = 64;
      struct Acc {
        std::size_t live = 0, blocks = 0, used = 0, abandoned = 0;
        std::array<std::size_t, kTagCount> by_tag{};
      };
      std::array<Acc, kCols> acc{};
      for (std::size_t s = first; s < last; ++s) {
        const auto& seg = snap.segments[s];
        for (std::size_t i = 0; i < seg.pages.size(); ++i) {
          const auto& p = seg.pages[i];
          const std::size_t span = kCols / seg.pages.size();  // columns this page covers
          for (std::size_t k = 0; k < span; ++k) {
            Acc& a = acc[i * span + k];
            if (!p.in_use) continue;
            ++a.used;
            a.live += p.live;
            a.blocks += p.blocks;
            a.abandoned += p.abandoned;
            ++a.by_tag[p.tag];
          }
        }
      }
      for (std::size_t col = 0; col < kCols; ++col) {
        const Acc& a = acc[col];
        const Tag t = static_cast<Tag>(std::max_element(a.by_tag.begin(), a.by_tag.end()) - a.by_tag.begin());
        Cell c{col * (kRowWidth / double(kCols)), kRowWidth / double(kCols), row, 1, t,
               a.blocks ? static_cast<double>(a.live) / a.blocks : 0.0, a.used > 0, a.abandoned * 2 > a.used,
               false, fmt("%zu of %zu pages in use, mostly %s", a.used, last - first, tag_name(options, t).c_str())};
        cells.push_back(std::move(c));
      }
      ++row;
    }
  }

  const RuntimeStats& st = snap.stats;
  TagSet used_tags;
  for (unsigned t = 0; t < kTagCount; ++t)
    if (st.tags[t].pages) used_tags = used_tags.with(static_cast<Tag>(t));
  const int legend_rows = 3 + static_cast<int>(std::popcount(used_tags.bits()));
  const int height = kTop + row * (kRowHeight + kRowGap) + 30 + legend_rows * 18;
  const int width = kLeft + kRowWidth + 40;

  std::string out;
  out += "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n";
  out += fmt("<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"%d\" height=\"%d\" viewBox=\"0 0 %d %d\" "
             "font-family=\"sans-serif\">\n", width, height, width, height);
  out += "<defs><pattern id=\"abandoned\" width=\"6\" height=\"6\" patternUnits=\"userSpaceOnUse\" "
         "patternTransform=\"rotate(45)\"><rect width=\"2\" height=\"6\" fill=\"#000\" fill-opacity=\"0.45\"/>"
         "</pattern></defs>\n";
  out += fmt("<rect width=\"%d\" height=\"%d\" fill=\"#ffffff\"/>\n", width, height);
  out += fmt("<text x=\"16\" y=\"28\" font-size=\"20\" font-weight=\"bold\">%s</text>\n",
             xml_escape(options.title).c_str());
  out += fmt("<text id=\"totals\" x=\"16\" y=\"52\" font-size=\"13\" data-segments=\"%zu\" data-pages=\"%zu\" "
             "data-blocks=\"%zu\" data-bytes-in-use=\"%zu\" data-bytes-committed=\"%zu\" data-abandoned-pages=\"%zu\">"
             "%zu segments, %zu pages, %zu live blocks, %s in use of %s committed, %zu abandoned pages</text>\n",
             snap.segments.size(), st.total.pages, st.total.blocks, st.total.bytes_in_use, st.total.bytes_committed,
             st.total.abandoned_pages, snap.segments.size(), st.total.pages, st.total.blocks,
             mib(st.total.bytes_in_use).c_str(), mib(st.total.bytes_committed).c_str(), st.total.abandoned_pages);
  out += fmt("<text x=\"16\" y=\"72\" font-size=\"12\" fill=\"#555\">one row per 4 MiB of a segment%s; "
             "cell width to scale; deeper colour = fuller page</text>\n",
             group > 1 ? fmt(" (%zu segments per row: page i across them)", group).c_str() : "");
  for (int r = 0; r < row; ++r)
    if (!row_labels[r].empty())
      out += fmt("<text x=\"%d\" y=\"%d\" font-size=\"10\" font-family=\"monospace\" text-anchor=\"end\" "
                 "fill=\"#444\">%s</text>\n", kLeft - 8, kTop + r * (kRowHeight + kRowGap) + kRowHeight - 3,
                 row_labels[r].c_str());
  for (const Cell& c : cells) {
    const double x = kLeft + c.x, y = kTop + c.row * (kRowHeight + kRowGap);
    const double h = c.rows * kRowHeight + (c.rows - 1) * kRowGap;
    const std::string fill = c.in_use ? cell_colour(c.tag, c.occupancy) : std::string("#e6e6e6");
    out += fmt("<rect class=\"page\" x=\"%.1f\" y=\"%.1f\" width=\"%.1f\" height=\"%.1f\" fill=\"%s\" "
               "stroke=\"#ffffff\" stroke-width=\"0.6\"", x, y, std::max(c.w, 0.5), h, fill.c_str());
    if (c.in_use)
      out += fmt(" data-tag=\"%u\" data-occupancy=\"%.3f\"%s%s", c.tag, c.occupancy,
                 c.abandoned ? " data-abandoned=\"1\"" : "", c.huge ? " data-huge=\"1\"" : "");
    out += "><title>" + xml_escape(c.tip) + "</title></rect>\n";
    if (c.in_use && c.abandoned)
      out += fmt("<rect x=\"%.1f\" y=\"%.1f\" width=\"%.1f\" height=\"%.1f\" fill=\"url(#abandoned)\"/>\n", x, y,
                 std::max(c.w, 0.5), h);
  }
  // Legend: a swatch per tag in use (full and empty shades), then the marks.
  int y = kTop + row * (kRowHeight + kRowGap) + 26;
  out += fmt("<text x=\"16\" y=\"%d\" font-size=\"13\" font-weight=\"bold\">Legend</text>\n", y);
  for (Tag t : used_tags) {
    y += 18;
    const TagStats& ts = st.tags[t];
    out += fmt("<rect x=\"16\" y=\"%d\" width=\"14\" height=\"12\" fill=\"%s\"/>"
               "<rect x=\"32\" y=\"%d\" width=\"14\" height=\"12\" fill=\"%s\"/>\n",
               y - 10, cell_colour(t, 1.0).c_str(), y - 10, cell_colour(t, 0.0).c_str());
    out += fmt("<text class=\"legend-tag\" data-tag=\"%u\" x=\"54\" y=\"%d\" font-size=\"12\">%s%s: %zu pages, "
               "%zu blocks, %s in use, %zu abandoned</text>\n",
               t, y, xml_escape(tag_name(options, t)).c_str(), snap.gc_tags.contains(t) ? " (GC)" : "", ts.pages,
               ts.blocks, mib(ts.bytes_in_use).c_str(), ts.abandoned_pages);
  }
  y += 18;
  out += fmt("<rect x=\"16\" y=\"%d\" width=\"30\" height=\"12\" fill=\"#e6e6e6\"/>"
             "<text x=\"54\" y=\"%d\" font-size=\"12\">free page (no blocks; its memory is kept or given back to the OS)</text>\n", y - 10, y);
  y += 18;
  out += fmt("<rect x=\"16\" y=\"%d\" width=\"30\" height=\"12\" fill=\"#bbbbbb\"/>"
             "<rect x=\"16\" y=\"%d\" width=\"30\" height=\"12\" fill=\"url(#abandoned)\"/>"
             "<text x=\"54\" y=\"%d\" font-size=\"12\">abandoned page (waiting in the pool for a heap of its tag)"
             "</text>\n", y - 10, y - 10, y);
  out += "</svg>\n";
  return out;
}

std::string heap_stats_json(const HeapSnapshot& snap, const HeapMapOptions& options) {
  struct ClassAcc {
    std::size_t pages = 0, blocks = 0, bytes_used = 0, bytes_committed = 0, abandoned = 0, block_size = 0;
  };
  std::array<std::map<int, ClassAcc>, kTagCount> classes;
  for (const auto& seg : snap.segments)
    for (const auto& p : seg.pages) {
      if (!p.in_use) continue;
      ClassAcc& a = classes[p.tag][p.huge ? -1 : p.size_class];
      ++a.pages;
      a.blocks += p.live;
      a.bytes_used += std::size_t{p.live} * p.block_size;
      a.bytes_committed += p.bytes;
      a.abandoned += p.abandoned;
      a.block_size = p.huge ? 0 : p.block_size;
    }
  const RuntimeStats& st = snap.stats;
  auto tag_stats = [](const TagStats& t) {
    return fmt("\"pages\": %zu, \"blocks\": %zu, \"bytes_used\": %zu, \"bytes_committed\": %zu, "
               "\"abandoned_pages\": %zu, \"huge_pages\": %zu, \"abandoned_total\": %zu, \"reclaimed_total\": %zu",
               t.pages, t.blocks, t.bytes_in_use, t.bytes_committed, t.abandoned_pages, t.huge_pages,
               t.abandoned_total, t.reclaimed_total);
  };
  std::string out = "{\n  \"schema\": \"tagheap-heap-stats/1\",\n";
  out += "  \"title\": \"" + json_escape(options.title) + "\",\n";
  out += fmt("  \"segments\": %zu,\n  \"thread_states\": %zu,\n", snap.segments.size(), st.thread_states);
  out += "  \"total\": {" + tag_stats(st.total) + "},\n  \"tags\": [";
  bool first_tag = true;
  for (unsigned t = 0; t < kTagCount; ++t) {
    if (st.tags[t].pages == 0 && st.tags[t].abandoned_total == 0) continue;
    out += first_tag ? "\n" : ",\n";
    first_tag = false;
    out += fmt("    {\"tag\": %u, \"name\": \"%s\", \"gc\": %s, ", t, json_escape(tag_name(options, static_cast<Tag>(t))).c_str(),
               snap.gc_tags.contains(static_cast<Tag>(t)) ? "true" : "false");
    out += tag_stats(st.tags[t]) + ", \"size_classes\": [";
    bool first_class = true;
    for (const auto& [c, a] : classes[t]) {
      out += first_class ? "\n" : ",\n";
      first_class = false;
      out += fmt("      {\"class\": %d, \"block_size\": %zu, \"pages\": %zu, \"blocks\": %zu, \"bytes_used\": %zu, "
                 "\"bytes_committed\": %zu, \"abandoned_pages\": %zu}",
                 c < 0 ? 0 : c, a.block_size, a.pages, a.blocks, a.bytes_used, a.bytes_committed, a.abandoned);
    }
    out += first_class ? "]}" : "\n    ]}";
  }
  out += first_tag ? "]\n}\n" : "\n  ]\n}\n";
  return out;
}

bool write_file(const std::string& path, const std::string& text) {
  std::FILE* f = std::fopen(path.c_str(), "wb");
  if (f == nullptr) return false;
  const bool ok = std::fwrite(text.data(), 1, text.size(), f) == text.size();
  return std::fclose(f) == 0 && ok;
}

}  // namespace tagheap::gc
