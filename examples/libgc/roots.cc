// roots.cc: data segments and GC_add_roots ranges (roots.h).
#include "examples/libgc/roots.h"

#include <elf.h>
#include <link.h>

#include <algorithm>
#include <cstring>

namespace tagheap::libgc {
namespace {

std::vector<Range> g_added;  // registry lock held
std::size_t g_sanitizer_bytes = 0;

// A sanitizer's runtime (libtsan's data is 50 MB, mostly its own tables):
// scanned like any object, but left out of the policy's root bytes, or a
// TSan build would collect several times less often than a plain one.
bool is_sanitizer_runtime(const dl_phdr_info* info) {
  const char* name = info->dlpi_name != nullptr ? std::strrchr(info->dlpi_name, '/') : nullptr;
  name = name != nullptr ? name + 1 : info->dlpi_name;
  if (name == nullptr) return false;
  for (const char* prefix : {"libtsan.so", "libasan.so", "libubsan.so", "liblsan.so"})
    if (std::strncmp(name, prefix, std::strlen(prefix)) == 0) return true;
  return false;
}

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
    if (is_sanitizer_runtime(info)) g_sanitizer_bytes += ph.p_memsz;
  }
  return 0;
}

}  // namespace

void read_static_roots(std::vector<Range>& out) {
  out.clear();
  g_sanitizer_bytes = 0;
  dl_iterate_phdr(add_object_segments, &out);
}

std::size_t sanitizer_runtime_bytes() noexcept { return g_sanitizer_bytes; }

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
