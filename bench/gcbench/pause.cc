// pause: the pause of one full collection against the live heap size.
//
//   pause_<variant> <live_mib> [other_mib] [collections]
//
// Builds a complete binary tree of 24-byte GC nodes (left, right, a word of
// payload) holding <live_mib> MiB, allocated in breadth-first order, with one
// root. Optionally interleaves <other_mib> MiB of live 256-byte blocks that
// are not traced: for tagheap, blocks of a non-GC tag in the same runtime
// (they share segments with the GC pages); for Boehm,
// GC_MALLOC_ATOMIC_UNCOLLECTABLE blocks (pointer-free, never collected, in
// the collector's heap: the closest Boehm has). Then runs
// one untimed collection and <collections> (default 10) timed ones, and
// checks that the tree survived.
//
//   tagheap  gc::MarkSweep::collect(): mark from the root, then sweep the
//            GC tags' pages (single-threaded; the pause includes the sweep).
//   boehm    GC_gcollect(): a full, stop-the-world collection (Debian's libgc
//            marks with helper threads only once started: set
//            GCB_BOEHM_MARKER_THREADS=1, variant.h; sweeping is mostly
//            lazy, done later by allocation, so not in the pause).
//
// Prints: pause_<live>MiB <variant>[_<n>markers][+<other>MiB_other or _atomic] <median_ms> <peak_rss_kib>
//         min_ms=.. max_ms=.. n=..
#define GC_THREADS 1  // before gc.h (through variant.h): GC_get_parallel

#include <sys/mman.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <vector>

#include "bench/gcbench/tree_node.h"
#include "bench/gcbench/variant.h"

namespace {

using Node = gcb::TreeNode;
constexpr std::size_t kOtherBlock = 256;

#if defined(GCB_TAGHEAP)
constexpr tagheap::Tag kGcTag = 1;
constexpr tagheap::Tag kOtherTag = 0;
Node* g_root;

struct Model {
  void roots(tagheap::gc::Tracer& t) { t.mark(g_root); }
  void trace(void* obj, tagheap::gc::Tracer& t) { gcb::trace_tree_node(obj, t); }
};

struct Env {
  tagheap::Runtime rt{gcb::runtime_options(kGcTag)};
  tagheap::ThreadState ts{rt};
  Model model;
  tagheap::gc::MarkSweep<Model> ms{rt, model, gcb::bench_options()};
  tagheap::Heap* gc_heap;
  tagheap::Heap* other_heap;
  Env() {
    ts.attach();
    gc_heap = &ts.heap(kGcTag);
    other_heap = &ts.heap(kOtherTag);
  }
  ~Env() { ts.detach(); }
  void* alloc_node() { return gc_heap->allocate(sizeof(Node)); }
  void* alloc_other() { return other_heap->allocate(kOtherBlock); }
  void set_root(Node* r) { g_root = r; }
  void begin_build() {}
  void end_build() {}
  double collect_ms() {
    const auto t0 = std::chrono::steady_clock::now();
    last = ms.collect();
    return gcb::ms_since(t0);
  }
  // The last collection's phases and each marker's share, for the record.
  void report() const {
    std::printf("# tagheap: last pause %.3f ms: mark %.3f ms, sweep %.3f ms, %u markers, MiB marked by each:",
                last.pause_ns / 1e6, last.mark_ns / 1e6, last.sweep_ns / 1e6, last.markers);
    for (unsigned i = 0; i < last.markers && i < last.kMarkersReported; ++i)
      std::printf(" %.1f", last.marked_bytes_by_marker[i] / 1048576.0);
    std::printf("\n");
  }
  tagheap::gc::CollectStats last;
  unsigned markers() const { return ms.markers(); }
  const char* label() const { return "tagheap"; }
  const char* other_label() const { return "other"; }
};

#elif defined(GCB_BOEHM)
Node* volatile g_root;  // in .bss: a Boehm root

struct Env {
  Env() { gcb::init_boehm(); }
  void* alloc_node() { return GC_MALLOC(sizeof(Node)); }
  // Pointer-free and kept until freed by hand, as tagheap's non-GC blocks
  // are. Boehm adds a byte to each object (interior pointers past the
  // end), so 255 bytes take a 256-byte slot.
  void* alloc_other() { return GC_MALLOC_ATOMIC_UNCOLLECTABLE(kOtherBlock - 1); }
  void set_root(Node* r) { g_root = r; }
  void report() const {
    // Helper marker threads (GC_get_parallel) and heap size, for the record.
    std::printf("# boehm: %d helper markers, heap %zu KiB\n", GC_get_parallel(), GC_get_heap_size() / 1024);
  }
  void begin_build() { GC_disable(); }  // no collections while building
  void end_build() { GC_enable(); }
  double collect_ms() {
    const auto t0 = std::chrono::steady_clock::now();
    GC_gcollect();
    return gcb::ms_since(t0);
  }
  unsigned markers() const { return static_cast<unsigned>(GC_get_parallel()) + 1; }
  const char* label() const { return "boehm"; }
  const char* other_label() const { return "atomic"; }
};
#else
#error "pause: GCB_TAGHEAP or GCB_BOEHM"
#endif


}  // namespace

int main(int argc, char** argv) {
  if (argc < 2) {
    std::fprintf(stderr, "usage: %s LIVE_MIB [OTHER_MIB] [COLLECTIONS]\n", argv[0]);
    return 2;
  }
  const double live_mib = std::atof(argv[1]);
  const double other_mib = argc > 2 ? std::atof(argv[2]) : 0;
  const int reps = argc > 3 ? std::atoi(argv[3]) : 10;
  const auto nodes = static_cast<std::size_t>(live_mib * 1024 * 1024 / sizeof(Node));
  const auto others = static_cast<std::size_t>(other_mib * 1024 * 1024 / kOtherBlock);

  static Env env;
  env.begin_build();
  // Node addresses in breadth-first order, kept outside every heap (an
  // anonymous mapping no collector scans) and dropped after linking.
  const std::size_t map_bytes = nodes * sizeof(Node*);
  auto** order = static_cast<Node**>(
      mmap(nullptr, map_bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0));
  if (order == MAP_FAILED) {
    std::perror("mmap");
    return 1;
  }
  std::size_t others_done = 0;
  for (std::size_t i = 0; i < nodes; ++i) {
    auto* n = static_cast<Node*>(env.alloc_node());
    n->left = n->right = nullptr;
    n->payload = i;
    order[i] = n;
    // Other blocks interleaved in proportion, so both kinds share segments.
    for (; others_done * nodes < (i + 1) * others; ++others_done) {
      auto* b = static_cast<char*>(env.alloc_other());
      std::memset(b, 0x5a, 16);
    }
  }
  env.set_root(gcb::link_complete_tree(order, nodes));
  std::memset(order, 0, map_bytes);
  munmap(order, map_bytes);
  env.end_build();

  env.collect_ms();  // untimed: the first one may find the heap unsettled
  std::vector<double> ms;
  for (int r = 0; r < reps; ++r) ms.push_back(env.collect_ms());
  std::sort(ms.begin(), ms.end());
  const long found = gcb::count_nodes(g_root);
  if (found != static_cast<long>(nodes)) {
    std::printf("# failed: %ld of %zu nodes left after the collections\n", found, nodes);
    return 1;
  }
  // The peer names the markers when there are several (tagheap_2markers,
  // boehm_2markers): what ran, not what was asked for.
  char label[48];
  if (env.markers() > 1) std::snprintf(label, sizeof label, "%s_%umarkers", env.label(), env.markers());
  else std::snprintf(label, sizeof label, "%s", env.label());
  char peer[96];
  if (others)
    std::snprintf(peer, sizeof peer, "%s+%gMiB_%s", label, other_mib, env.other_label());
  else
    std::snprintf(peer, sizeof peer, "%s", label);
  std::printf("pause_%gMiB %s %.3f %ld min_ms=%.3f max_ms=%.3f n=%d\n", live_mib, peer, ms[ms.size() / 2],
              gcb::peak_rss_kib(), ms.front(), ms.back(), reps);
  env.report();
  return 0;
}
