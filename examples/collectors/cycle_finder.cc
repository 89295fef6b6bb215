// cycle_finder: reference counting plus a cycle collector shaped like
// free-threaded CPython's Python/gc_free_threading.c. There is no list of GC
// objects: every pass finds the objects by walking the GC heaps
// (visit_gc_blocks), as CPython walks its mimalloc GC heaps.
//
//   1. update_refs:   gc_refs = refcount, for every object
//   2. subtract:      for every object, each reference it holds to another
//                     GC object decrements that object's gc_refs
//   3. mark:          gc_refs > 0 means a reference from outside the GC
//                     heap (a root): mark everything reachable from it
//   4. collect:       the unmarked objects are cyclic garbage: drop their
//                     references to survivors, then free them
#include <cstdint>
#include <cstdio>
#include <thread>
#include <vector>

#include "alloc/tagheap.h"
#include "gc/visit.h"

using namespace tagheap;

namespace {

constexpr Tag kGc = 1;

struct Obj {
  std::int64_t refcnt;
  std::int64_t gc_refs;  // scratch for the collector (CPython reuses ob_tid)
  bool reachable;
  Obj* ref[2];
};

Obj* new_obj(Heap& heap) {
  auto* o = static_cast<Obj*>(heap.allocate(sizeof(Obj)));
  *o = Obj{1, 0, false, {nullptr, nullptr}};  // the caller holds the new reference
  return o;
}
void incref(Obj* o) {
  if (o) ++o->refcnt;
}
// Frees o when its count drops to zero, and whatever that releases (an
// explicit stack: no recursion on long chains).
void decref(Obj* o) {
  std::vector<Obj*> todo;
  if (o && --o->refcnt == 0) todo.push_back(o);
  while (!todo.empty()) {
    Obj* d = todo.back();
    todo.pop_back();
    for (Obj* c : d->ref)
      if (c && --c->refcnt == 0) todo.push_back(c);
    tagheap::free(d);
  }
}
// o->ref[i] = v, with the counts kept right.
void set_ref(Obj* o, int i, Obj* v) {
  incref(v);
  Obj* old = o->ref[i];
  o->ref[i] = v;
  decref(old);
}

std::size_t count_objects(Runtime& rt) {
  std::size_t n = 0;
  visit_gc_blocks(rt, [&](const BlockRef&) { ++n; });
  return n;
}

struct CycleStats {
  std::size_t examined = 0, roots = 0, unreachable = 0;
};

// The world is stopped (here: one thread). Four walks of the GC heaps.
CycleStats collect_cycles(Runtime& rt) {
  CycleStats st;
  visit_gc_blocks(rt, [&](const BlockRef& b) {  // 1. update_refs
    auto* o = static_cast<Obj*>(b.block);
    o->gc_refs = o->refcnt;
    o->reachable = false;
    ++st.examined;
  });
  visit_gc_blocks(rt, [&](const BlockRef& b) {  // 2. subtract internal references
    for (Obj* c : static_cast<Obj*>(b.block)->ref)
      if (c) --c->gc_refs;
  });
  std::vector<Obj*> stack;
  visit_gc_blocks(rt, [&](const BlockRef& b) {  // 3. mark from the roots
    auto* o = static_cast<Obj*>(b.block);
    if (o->gc_refs <= 0 || o->reachable) return;
    ++st.roots;
    o->reachable = true;
    stack.push_back(o);
    while (!stack.empty()) {
      Obj* x = stack.back();
      stack.pop_back();
      for (Obj* c : x->ref)
        if (c && !c->reachable) {
          c->reachable = true;
          stack.push_back(c);
        }
    }
  });
  std::vector<Obj*> garbage;  // 4. no freeing during the walk but of the block at hand: gather first
  visit_gc_blocks(rt, [&](const BlockRef& b) {
    auto* o = static_cast<Obj*>(b.block);
    if (!o->reachable) garbage.push_back(o);
  });
  st.unreachable = garbage.size();
  // Garbage may hold references to survivors: release those (tp_clear),
  // then free the garbage itself; references inside the garbage set need no
  // counting since all of it goes.
  for (Obj* o : garbage)
    for (Obj*& c : o->ref) {
      if (c && c->reachable) decref(c);
      c = nullptr;
    }
  for (Obj* o : garbage) tagheap::free(o);
  return st;
}

}  // namespace

int main() {
  Runtime rt({.gc_tags = {kGc}});
  ThreadState ts(rt);
  ts.attach();
  Heap& heap = ts.heap(kGc);
  std::vector<Obj*> handles;  // references from outside the GC heap (the "stack")

  std::size_t made = 0, in_garbage_cycles = 0, kept = 0;
  for (int round = 0; round < 2000; ++round) {
    // An acyclic chain of 10: refcounting alone frees it.
    Obj* head = new_obj(heap);
    Obj* cur = head;
    for (int i = 0; i < 9; ++i) {
      Obj* n = new_obj(heap);
      set_ref(cur, 0, n);
      decref(n);
      cur = n;
    }
    made += 10;
    decref(head);
    // A ring of 8: refcounting leaks it once the handle is gone.
    Obj* first = new_obj(heap);
    cur = first;
    for (int i = 0; i < 7; ++i) {
      Obj* n = new_obj(heap);
      set_ref(cur, 0, n);
      decref(n);
      cur = n;
    }
    set_ref(cur, 0, first);
    made += 8;
    // A self-cycle and a two-object cycle that points at a ring it keeps
    // referenced from outside: the ring of every 4th round stays reachable.
    Obj* self = new_obj(heap);
    set_ref(self, 0, self);
    Obj* a = new_obj(heap);
    Obj* b = new_obj(heap);
    set_ref(a, 0, b);
    set_ref(b, 0, a);
    set_ref(b, 1, first);
    made += 3;
    if (round % 4 == 0) {
      handles.push_back(first);  // keeps our reference to the ring
      kept += 8;
    } else {
      decref(first);
      in_garbage_cycles += 8;
    }
    decref(self);
    decref(a);
    decref(b);
    in_garbage_cycles += 3;
  }
  const std::size_t before = count_objects(rt);
  std::printf("objects made:                          %zu\n", made);
  std::printf("live after refcounting alone:          %zu  (leaked in cycles: %zu, reachable: %zu)\n", before,
              in_garbage_cycles, kept);
  const CycleStats st = collect_cycles(rt);
  const std::size_t after = count_objects(rt);
  std::printf("cycle collection: examined %zu, roots (gc_refs > 0) %zu, cyclic garbage freed %zu\n", st.examined,
              st.roots, st.unreachable);
  std::printf("live after the cycle collector:        %zu\n", after);
  // The kept rings are whole: follow each 8 steps back to its start.
  bool rings_ok = true;
  for (Obj* h : handles) {
    Obj* c = h;
    for (int i = 0; i < 8; ++i) c = c->ref[0];
    rings_ok &= c == h && h->refcnt == 2;  // the handle + the ring's last object
  }
  const bool ok = before == in_garbage_cycles + kept && st.unreachable == in_garbage_cycles && after == kept && rings_ok;
  // Dropping the handles leaves the kept rings as cycles too.
  for (Obj* h : handles) decref(h);
  const CycleStats st2 = collect_cycles(rt);
  std::printf("handles dropped: second collection freed %zu, live now %zu\n", st2.unreachable, count_objects(rt));
  std::printf("%s\n", ok && count_objects(rt) == 0 ? "OK: every cycle and nothing else was collected" : "MISMATCH");
  ts.detach();
  return ok ? 0 : 1;
}
