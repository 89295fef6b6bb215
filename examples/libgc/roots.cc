// roots.cc: data segments and GC_add_roots ranges (roots.h).
#include "examples/libgc/roots.h"

#include <elf.h>
#include <link.h>

#include <algorithm>

namespace tagheap::libgc {
namespace {

std::vector<Range> g_added;  // registry lock held

bool contains_this_library(const dl_phdr_info* info) {
  const auto self = reinterpret_cast<std::uintptr_t>(&read_static_roots);
  for (int i = 0; i < info->dlpi_phnum; ++i) {
    const ElfW(Phdr)& ph = info->dlpi_phdr[i];
    if (ph.p_type != PT_LOAD) continue;
    const std::uintptr_t lo = info->dlpi_addr + ph.p_vaddr;
    if (self >= lo && self < lo + ph.p_memsz) return true;
  }
  return false;
}

int add_object_segments(dl_phdr_info* info, std::size_t, void* data) {
  auto& out = *static_cast<std::vector<Range>*>(data);
  if (contains_this_library(info)) return 0;
  for (int i = 0; i < info->dlpi_phnum; ++i) {
    const ElfW(Phdr)& ph = info->dlpi_phdr[i];
    if (ph.p_type != PT_LOAD || (ph.p_flags & PF_W) == 0) continue;
    const auto* lo = reinterpret_cast<const char*>(info->dlpi_addr + ph.p_vaddr);
    out.push_back(Range{lo, lo + ph.p_memsz});
  }
  return 0;
}

}  // namespace

void read_static_roots(std::vector<Range>& out) {
  out.clear();
  dl_iterate_phdr(add_object_segments, &out);
}

std::vector<Range>& added_roots() noexcept { return g_added; }

void add_roots(const void* lo, const void* hi) {
  if (lo >= hi) return;
  RegistryLock lock;
  g_added.push_back(Range{static_cast<const char*>(lo), static_cast<const char*>(hi)});
}

// bdwgc removes the ranges that lie entirely inside [lo, hi).
void remove_roots(const void* lo, const void* hi) {
  RegistryLock lock;
  std::erase_if(g_added, [&](const Range& r) { return r.lo >= lo && r.hi <= hi; });
}

void clear_roots() {
  RegistryLock lock;
  g_added.clear();
}

}  // namespace tagheap::libgc
