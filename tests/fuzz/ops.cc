// The operation interpreter (see ops.h). The model is deliberately simple:
// a table of live blocks with their tag, size and fill byte, the edges and
// roots of the GC graph, and a graph search of its own; every answer tagheap
// gives is compared with it.
#include "tests/fuzz/ops.h"

#include <algorithm>
#include <cstdarg>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <unordered_map>
#include <unordered_set>
#include <vector>

#include "alloc/tagheap.h"
#include "gc/mark_sweep.h"
#include "gc/visit.h"

namespace tagheap::fuzz {
namespace {

constexpr int kSlots = 4;
constexpr unsigned kTags = 4;                 // tags 0..3; 1 and 2 are GC tags
constexpr std::size_t kMaxLive = 4096;        // bounds memory per input
constexpr std::size_t kMaxHuge = 6;
constexpr std::size_t kMaxEdges = 6;
constexpr std::size_t kCheckBytes = 32;       // pattern bytes at each end of a block

[[noreturn]] void fail(const char* fmt, ...) {
  std::va_list ap;
  va_start(ap, fmt);
  std::fputs("fuzz ops: MISMATCH: ", stderr);
  std::vfprintf(stderr, fmt, ap);
  std::fputc('\n', stderr);
  va_end(ap);
  std::fflush(stderr);
  std::abort();
}

bool is_gc_tag(Tag t) { return t == 1 || t == 2; }

struct Obj {
  Tag tag = 0;
  std::size_t size = 0;
  std::uint8_t pat = 0;
  std::size_t index = 0;  // in Interp::blocks_
  std::vector<void*> edges;
};

class Reader {
 public:
  Reader(const std::uint8_t* d, std::size_t n) : d_(d), n_(n) {}
  bool done() const { return i_ >= n_; }
  std::uint8_t byte() { return i_ < n_ ? d_[i_++] : 0; }
  std::uint16_t u16() {
    const std::uint16_t lo = byte();
    return static_cast<std::uint16_t>(lo | (byte() << 8));
  }

 private:
  const std::uint8_t* d_;
  std::size_t n_, i_ = 0;
};

class Interp;

struct GraphModel {
  Interp* in;
  std::vector<void*> finalized;
  void roots(gc::Tracer& t);
  void trace(void* obj, gc::Tracer& t);
  void finalize(void* obj) noexcept { finalized.push_back(obj); }
};

class Interp {
 public:
  Interp(bool debug_fill, OpStats& stats) : stats_(stats), rt_(RuntimeOptions{.gc_tags = {1, 2}, .debug_fill = debug_fill}) {}

  ~Interp() {
    detach_current();
    for (auto& s : slots_) s.reset();  // abandons every page: all blocks stay live
    walk_and_check(TagSet{0, 1, 2, 3});
    rt_.verify();
    // Free half of what is left with no thread state attached (into the
    // pool), then check again; the Runtime releases the rest.
    std::vector<void*> all = blocks_;
    for (std::size_t i = 0; i < all.size(); i += 2) free_block(all[i]);
    walk_and_check(TagSet{0, 1, 2, 3});
    rt_.verify();
  }

  void run(Reader& r) {
    while (!r.done()) {
      ++stats_.ops;
      const std::uint8_t op = r.byte();
      switch (op % 16) {
        case 0: create(r.byte() % kSlots); break;
        case 1: destroy(r.byte() % kSlots); break;
        case 2: attach(r.byte() % kSlots); break;
        case 3: detach_current(); break;
        case 4: case 5: case 6: allocate(r, 1); break;
        case 7: allocate(r, 1 + r.byte() % 64); break;  // a burst fills pages
        case 8: case 9: free_op(r); break;
        case 10: free_from_other(r); break;
        case 11: abandon(r.byte() % kSlots); break;
        case 12: walk_and_check(TagSet::from_bits(static_cast<std::uint16_t>(r.byte() & 0xF))); break;
        case 13: link_or_root(r); break;
        case 14: collect(r); break;
        case 15:
          if (r.byte() & 1) rt_.verify();
          else rt_.trim();
          break;
      }
    }
  }

  Obj* obj(void* p) {
    auto it = live_.find(p);
    return it == live_.end() ? nullptr : &it->second;
  }
  const std::unordered_set<void*>& roots() const { return roots_; }

 private:
  ThreadState* current() { return current_ < 0 ? nullptr : slots_[current_].get(); }

  void create(int s) {
    if (slots_[s]) return;
    slots_[s] = std::make_unique<ThreadState>(rt_);
    ++stats_.thread_states;
  }
  void destroy(int s) {
    if (!slots_[s]) return;
    if (current_ == s) current_ = -1;  // the destructor detaches it
    slots_[s].reset();
  }
  void attach(int s) {
    detach_current();
    if (!slots_[s]) create(s);
    slots_[s]->attach();
    current_ = s;
    if (ThreadState::current() != slots_[s].get()) fail("attach: current() is not the attached state");
  }
  void detach_current() {
    if (current_ >= 0) slots_[current_]->detach();
    current_ = -1;
    if (ThreadState::current() != nullptr) fail("detach: a thread state is still current");
  }
  void abandon(int s) {
    if (!slots_[s]) return;
    slots_[s]->abandon();
    ++stats_.abandons;
  }

  std::size_t decode_size(std::uint8_t kind, std::uint8_t b) {
    switch (kind & 7) {
      case 0: case 1: case 2: return b;
      case 3: return std::size_t{b} * 4;
      case 4: return std::size_t{b} * 32;                  // up to 8 KiB: small pages
      case 5: return 8192 + std::size_t{b} * 220;          // medium pages
      case 6: return 65536 + std::size_t{b} * 1800;        // large pages, past 512 KiB: huge
      default: return huge_ < kMaxHuge ? 600 * 1024 + std::size_t{b} * 1024 : b;
    }
  }

  void allocate(Reader& r, int count) {
    const Tag tag = static_cast<Tag>(r.byte() % kTags);
    const std::uint8_t kind = r.byte();
    const std::uint8_t b = r.byte();
    ThreadState* ts = current();
    if (ts == nullptr) return;
    for (int k = 0; k < count && live_.size() < kMaxLive; ++k) {
      const std::size_t size = decode_size(kind, b);
      const int variant = kind >> 5;  // 0..5 plain, 6 zeroed, 7 aligned
      std::size_t align = 16;
      void* p;
      if (variant == 6) {
        p = ts->heap(tag).allocate_zeroed(size);
      } else if (variant == 7) {
        align = std::size_t{16} << (b & 7);
        p = ts->heap(tag).allocate_aligned(size, align);
      } else {
        p = ts->heap(tag).allocate(size);
      }
      ++stats_.allocations;
      if (p == nullptr) fail("allocate(%zu, tag %u) gave nullptr", size, tag);
      if (reinterpret_cast<std::uintptr_t>(p) % align != 0) fail("block %p is not %zu-aligned", p, align);
      if (live_.count(p)) fail("block %p handed out twice", p);
      if (tag_of(p) != tag) fail("tag_of(%p) = %u, allocated in tag %u", p, tag_of(p), tag);
      if (usable_size(p) < size) fail("usable_size(%p) = %zu < %zu", p, usable_size(p), size);
      if (find_block(p) != p) fail("find_block(%p) does not find the new block", p);
      const auto* bytes = static_cast<const unsigned char*>(p);
      if (variant == 6) {
        for (std::size_t i = 0; i < size; ++i)
          if (bytes[i] != 0) fail("allocate_zeroed(%zu): byte %zu of %p is %#x", size, i, p, bytes[i]);
      } else if (rt_.options().debug_fill && variant != 7) {
        for (std::size_t i = 0; i < std::min(size, kCheckBytes); ++i)
          if (bytes[i] != 0xCD) fail("debug_fill: fresh block %p byte %zu is %#x", p, i, bytes[i]);
      }
      if (size > 600 * 1024) ++huge_;
      Obj o;
      o.tag = tag;
      o.size = size;
      o.pat = static_cast<std::uint8_t>((serial_++ * 131 + 7) | 1);
      o.index = blocks_.size();
      write_pattern(p, o);
      blocks_.push_back(p);
      live_.emplace(p, std::move(o));
    }
  }

  static void write_pattern(void* p, const Obj& o) {
    auto* b = static_cast<unsigned char*>(p);
    const std::size_t n = std::min(o.size, kCheckBytes);
    std::memset(b, o.pat, n);
    std::memset(b + o.size - n, o.pat, n);
  }
  static void check_pattern(const void* p, const Obj& o, const char* when) {
    const auto* b = static_cast<const unsigned char*>(p);
    const std::size_t n = std::min(o.size, kCheckBytes);
    for (std::size_t i = 0; i < n; ++i)
      if (b[i] != o.pat || b[o.size - n + i] != o.pat)
        fail("%s: block %p (tag %u, size %zu) was overwritten", when, p, o.tag, o.size);
  }

  void* pick(Reader& r) {
    const std::uint16_t k = r.u16();
    return blocks_.empty() ? nullptr : blocks_[k % blocks_.size()];
  }

  // Takes p out of the model: the table, the roots, every edge to it.
  void forget(void* p) {
    Obj& o = live_.at(p);
    if (o.size > 600 * 1024) --huge_;
    const std::size_t i = o.index;
    blocks_[i] = blocks_.back();
    live_.at(blocks_[i]).index = i;
    blocks_.pop_back();
    live_.erase(p);
    roots_.erase(p);
    for (auto& [q, other] : live_) std::erase(other.edges, p);
  }

  void free_block(void* p) {
    check_pattern(p, live_.at(p), "free");
    forget(p);
    tagheap::free(p);
    ++stats_.frees;
    if (find_block(p) == p) fail("find_block(%p) still finds a freed block", p);
  }

  void free_op(Reader& r) {
    void* p = pick(r);
    if (p != nullptr) free_block(p);
  }

  // Free through another thread state (or none): the cross-thread path.
  void free_from_other(Reader& r) {
    const int other = r.byte() % (kSlots + 1);  // kSlots: none attached
    void* p = pick(r);
    if (p == nullptr) return;
    const int saved = current_;
    detach_current();
    if (other < kSlots && slots_[other]) {
      slots_[other]->attach();
      current_ = other;
    }
    free_block(p);
    ++stats_.remote_frees;
    detach_current();
    if (saved >= 0 && slots_[saved]) {
      slots_[saved]->attach();
      current_ = saved;
    }
  }

  void walk_and_check(TagSet tags) {
    ++stats_.walks;
    std::unordered_map<void*, Tag> seen;
    std::size_t visits = 0;
    visit_blocks(rt_, tags, [&](const BlockRef& b) {
      ++visits;
      if (!tags.contains(b.tag)) fail("walk of tags %#x visited %p of tag %u", tags.bits(), b.block, b.tag);
      if (!seen.emplace(b.block, b.tag).second) fail("walk visited %p twice", b.block);
      const Obj* o = obj(b.block);
      if (o == nullptr) fail("walk visited %p (tag %u), which is not live", b.block, b.tag);
      if (o->tag != b.tag) fail("walk says %p has tag %u, allocated in %u", b.block, b.tag, o->tag);
      if (b.size != usable_size(b.block)) fail("walk size %zu != usable_size %zu", b.size, usable_size(b.block));
      check_pattern(b.block, *o, "walk");
    });
    std::size_t expected = 0;
    for (auto& [p, o] : live_) {
      if (!tags.contains(o.tag)) continue;
      ++expected;
      if (!seen.count(p)) fail("walk of tags %#x missed live block %p (tag %u, size %zu)", tags.bits(), p, o.tag, o.size);
      if (find_block(static_cast<char*>(p) + o.size / 2) != p && o.size > 0)
        fail("find_block of the middle of %p (size %zu) is wrong", p, o.size);
    }
    if (visits != expected) fail("walk visited %zu blocks, model has %zu", visits, expected);
  }

  void link_or_root(Reader& r) {
    const std::uint8_t how = r.byte();
    void* a = pick(r);
    void* b = pick(r);
    if (a == nullptr) return;
    if (how & 1) {
      if (how & 2) roots_.insert(a);
      else roots_.erase(a);
      return;
    }
    Obj& o = live_.at(a);
    if (!is_gc_tag(o.tag)) return;  // only GC objects hold edges
    if (o.edges.size() >= kMaxEdges) o.edges.erase(o.edges.begin());
    o.edges.push_back(b);
  }

  void collect(Reader& r) {
    // Optionally drop some roots first so that something becomes garbage.
    const std::uint8_t drop = r.byte();
    if (drop & 1) {
      std::vector<void*> rs(roots_.begin(), roots_.end());
      std::sort(rs.begin(), rs.end());
      for (std::size_t i = 0; i < rs.size(); ++i)
        if ((drop >> (1 + i % 7)) & 1) roots_.erase(rs[i]);
    }
    // The model's verdict: GC blocks reachable from the roots through GC
    // blocks (a mark of a non-GC block is ignored and not traced).
    std::unordered_set<void*> reach;
    std::vector<void*> todo;
    for (void* p : roots_)
      if (is_gc_tag(live_.at(p).tag) && reach.insert(p).second) todo.push_back(p);
    while (!todo.empty()) {
      void* p = todo.back();
      todo.pop_back();
      for (void* q : live_.at(p).edges)
        if (is_gc_tag(live_.at(q).tag) && reach.insert(q).second) todo.push_back(q);
    }
    std::unordered_set<void*> dead;
    std::size_t dead_bytes = 0;
    for (auto& [p, o] : live_)
      if (is_gc_tag(o.tag) && !reach.count(p)) {
        dead.insert(p);
        dead_bytes += usable_size(p);
      }
    GraphModel model{this, {}};
    gc::MarkSweep<GraphModel> ms(rt_, model);
    const gc::CollectStats s = ms.collect();
    ++stats_.collections;
    stats_.freed_by_gc += s.freed_blocks;
    if (s.live_blocks != reach.size()) fail("collect: %zu live, model says %zu", s.live_blocks, reach.size());
    if (s.freed_blocks != dead.size()) fail("collect: freed %zu, model says %zu", s.freed_blocks, dead.size());
    if (s.freed_bytes != dead_bytes) fail("collect: freed %zu bytes, model says %zu", s.freed_bytes, dead_bytes);
    if (model.finalized.size() != dead.size()) fail("collect: %zu finalized, %zu dead", model.finalized.size(), dead.size());
    for (void* p : model.finalized) {
      if (!dead.erase(p)) fail("collect: finalized %p, which the model says is reachable (or twice)", p);
    }
    for (void* p : model.finalized) forget(p);
    walk_and_check(TagSet{0, 1, 2, 3});
  }

  OpStats& stats_;
  Runtime rt_;
  std::unique_ptr<ThreadState> slots_[kSlots];
  int current_ = -1;
  std::unordered_map<void*, Obj> live_;
  std::vector<void*> blocks_;
  std::unordered_set<void*> roots_;
  std::uint64_t serial_ = 0;
  std::size_t huge_ = 0;
};

void GraphModel::roots(gc::Tracer& t) {
  // Sorted: the collector's behaviour must not depend on hash order.
  std::vector<void*> rs(in->roots().begin(), in->roots().end());
  std::sort(rs.begin(), rs.end());
  for (void* p : rs) t.mark(p);
}

void GraphModel::trace(void* obj, gc::Tracer& t) {
  const Obj* o = in->obj(obj);
  if (o == nullptr) fail("trace(%p): the collector traced a block the model does not hold", obj);
  for (void* q : o->edges) t.mark(q);
}

}  // namespace

void run_ops(const std::uint8_t* data, std::size_t size, OpStats* stats) {
  OpStats local;
  OpStats& st = stats ? *stats : local;
  Reader r(data, size);
  const bool debug_fill = size > 0 && (data[0] & 0x80) != 0;
  {
    Interp in(debug_fill, st);
    in.run(r);
  }
  if (ThreadState::current() != nullptr) fail("a thread state is still attached after the run");
}

}  // namespace tagheap::fuzz
