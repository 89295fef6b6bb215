/* boehm_api_test.c: a Boehm client, compiled against Debian's gc.h and
 * linked with -lgc, run by boehm_api_test.sh once with Debian's libgc (so
 * the test itself is checked against the reference) and once with tagheap's
 * libgc.so.1 through LD_LIBRARY_PATH.
 *
 * The collector is conservative: a stale copy of a pointer on the stack or
 * in a register may keep one object alive. So "is collected" is asserted
 * over a hundred objects, made in a function whose frame is gone and with
 * the stack scrubbed, and must hold for most of them; "stays alive" and
 * "never out of order" are exact.
 *
 * Usage: boehm_api_test [all | oom | oom_set | divisor | high_water | granules | growing | expand_absurd |
 *                        link_churn | compat | fork | exact_sizes]
 *   oom          run with GC_MAXIMUM_HEAP_SIZE set
 *   oom_set      the same limit by GC_set_max_heap_size
 *   divisor      prints GC_get_free_space_divisor() (the script sets
 *                GC_FREE_SPACE_DIVISOR), then checks that a larger divisor
 *                collects more often
 *   high_water   once the heap has grown for a large live set, collections
 *                come only when its free part is used up, even after the
 *                live set shrank (the heap never shrinks)
 *   granules     allocation since the last collection counts whole 16-byte
 *                granules (GC_get_bytes_since_gc after 16384 GC_MALLOC(1)),
 *                and larger objects their size class (1024 for 1000 bytes)
 *   growing      while a live list grows, a collection comes only once the
 *                heap's free part (the heap as the last collection grew it,
 *                less the list) has been allocated
 *   compat       the rest of what Debian's libgc users import: setters,
 *                the version, stubborn and debug allocation, bdwgc's
 *                variables, GC_stackbottom moved onto a fiber's stack
 *   bad_links    null and misaligned link slots are refused (tagheap's
 *                library only)
 *   dont_expand N  prints the collections a program makes with
 *                GC_set_dont_expand(N) (the script compares 0 and 1)
 *   link_churn   links registered, moved and unregistered at random with
 *                collections between, checked against a model
 *   expand_absurd  GC_expand_hp of more than the kernel would map fails
 *                and leaves the heap (and the collections) as they were
 *                (with GC_INITIAL_HEAP_SIZE of as much: ignored with a
 *                warning, tagheap's library only; bdwgc exits)
 *   fork         a child forked while another thread allocates collects,
 *                looks up, and starts and joins a thread of its own
 *   exact_sizes  GC_set_all_interior_pointers(0) before GC_INIT: objects
 *                take no extra byte (GC_size of a 16-byte object is 16)
 *   nested       collections asked for inside a collection are ignored
 *                (tagheap's library only: bdwgc overflows its stack)
 */
#define GC_THREADS 1
#define GC_NO_THREAD_REDIRECTS 1 /* pthread_create stays pthread_create */
#include <gc/gc.h>
#include <gc/gc_mark.h>
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

static int failures = 0;
#define CHECK(cond, ...)                                   \
  do {                                                     \
    if (!(cond)) {                                         \
      fprintf(stderr, "FAILED %s:%d: ", __FILE__, __LINE__); \
      fprintf(stderr, __VA_ARGS__);                        \
      fprintf(stderr, "\n");                               \
      ++failures;                                          \
    }                                                      \
  } while (0)

enum { kMany = 100 };

/* Overwrites dead stack below the caller so old pointers do not linger. */
static __attribute__((noinline)) void scrub_stack(void) {
  volatile char pad[16384];
  memset((char*)pad, 0, sizeof pad);
}
static void full_gc(void) {
  scrub_stack();
  GC_gcollect();
  scrub_stack();
  GC_gcollect();
}

/* ---- GCBench's shape: trees built top-down and bottom-up ---------------- */
typedef struct Node {
  struct Node* left;
  struct Node* right;
  long i, j;
} Node;

static Node* new_node(Node* l, Node* r) {
  Node* n = (Node*)GC_MALLOC(sizeof(Node));
  n->left = l;
  n->right = r;
  return n;
}
static void populate(int depth, Node* n) {
  if (depth <= 0) return;
  n->left = new_node(NULL, NULL);
  n->right = new_node(NULL, NULL);
  populate(depth - 1, n->left);
  populate(depth - 1, n->right);
}
static Node* make_tree(int depth) {
  return depth <= 0 ? new_node(NULL, NULL) : new_node(make_tree(depth - 1), make_tree(depth - 1));
}
static long count_nodes(const Node* n) { return n == NULL ? 0 : 1 + count_nodes(n->left) + count_nodes(n->right); }

static void gcbench(void) {
  const GC_word gc0 = GC_get_gc_no();
  Node* long_lived = new_node(NULL, NULL);
  populate(16, long_lived);
  double* array = (double*)GC_MALLOC_ATOMIC(500000 * sizeof(double));
  for (int i = 0; i < 500000; ++i) array[i] = 1.0 / (i + 1);
  for (int depth = 4; depth <= 16; depth += 2) {
    const int iterations = 2 * (1 << (16 - depth));
    for (int k = 0; k < iterations; ++k) {
      Node* t = new_node(NULL, NULL);
      populate(depth, t);
      CHECK(count_nodes(t) == (2L << depth) - 1, "top-down tree of depth %d has %ld nodes", depth, count_nodes(t));
      t = make_tree(depth);
      CHECK(count_nodes(t) == (2L << depth) - 1, "bottom-up tree of depth %d has %ld nodes", depth, count_nodes(t));
    }
  }
  CHECK(count_nodes(long_lived) == (2L << 16) - 1, "the long-lived tree lost nodes: %ld", count_nodes(long_lived));
  CHECK(array[1000] == 1.0 / 1001, "the atomic array changed");
  CHECK(GC_get_gc_no() > gc0 + 3, "GCBench ran only %lu collections", (unsigned long)(GC_get_gc_no() - gc0));
}

/* ---- finalizers ----------------------------------------------------------- */
typedef struct Final {
  struct Final* next;  /* for ordered pairs: A points to B */
  long id;
  long payload[4];
} Final;

enum { kIds = 8 * kMany };
static int finalized[kIds];
static int finalize_order[kIds];
static long id_base = 0; /* each section finalizes ids of its own: a late
                            finalizer of an earlier one counts nowhere */
static int finalize_seq = 0;
static int finalize_bad_payload = 0;

static void GC_CALLBACK on_finalize(void* obj, void* cd) {
  Final* f = (Final*)obj;
  long id = (long)(intptr_t)cd;
  if (f->id != id || f->payload[3] != id * 7) ++finalize_bad_payload;
  if (id < id_base || id >= id_base + 2 * kMany) return; /* an earlier section's */
  id -= id_base;
  if (f->next != NULL && f->next->payload[3] != f->next->id * 7) ++finalize_bad_payload;  /* its child is intact */
  finalized[id]++;
  finalize_order[id] = ++finalize_seq;
}

static Final* new_final(long id, int ordered) {
  id += id_base;
  Final* f = (Final*)GC_MALLOC(sizeof(Final));
  f->id = id;
  f->payload[3] = id * 7;
  if (ordered)
    GC_REGISTER_FINALIZER(f, on_finalize, (void*)(intptr_t)id, NULL, NULL);
  else
    GC_REGISTER_FINALIZER_NO_ORDER(f, on_finalize, (void*)(intptr_t)id, NULL, NULL);
  return f;
}

static Final* kept[kMany];  /* in the data segment: a root */

static __attribute__((noinline)) void make_finalizable(int ordered) {
  for (long i = 0; i < kMany; ++i) {
    Final* b = new_final(kMany + i, ordered);
    Final* a = new_final(i, ordered);
    a->next = b;  /* A reaches B */
  }
  for (long i = 0; i < kMany; ++i) kept[i] = NULL;
}

static void reset_finalized(void) {
  memset(finalized, 0, sizeof finalized);
  memset(finalize_order, 0, sizeof finalize_order);
  finalize_seq = 0;
  finalize_bad_payload = 0;
  id_base += 2 * kMany;
}

static void run_gcs_and_finalizers(int rounds) {
  for (int r = 0; r < rounds; ++r) {
    full_gc();
    GC_invoke_finalizers();
  }
}

static void finalizers_ordered(void) {
  reset_finalized();
  make_finalizable(1);
  full_gc();
  GC_invoke_finalizers();
  int a_first = 0, b_first = 0;
  for (int i = 0; i < kMany; ++i) {
    if (finalized[i]) ++a_first;
    if (finalized[kMany + i] && !finalized[i]) ++b_first;
  }
  CHECK(b_first == 0, "ordered: %d objects finalized while an unfinalized object still pointed at them", b_first);
  CHECK(a_first >= kMany * 9 / 10, "ordered: only %d of %d unreachable objects finalized after a collection", a_first, kMany);
  run_gcs_and_finalizers(4);
  int both = 0, wrong_order = 0, twice = 0;
  for (int i = 0; i < kMany; ++i) {
    if (finalized[i] && finalized[kMany + i]) ++both;
    if (finalized[i] && finalized[kMany + i] && finalize_order[kMany + i] < finalize_order[i]) ++wrong_order;
    if (finalized[i] > 1 || finalized[kMany + i] > 1) ++twice;
  }
  CHECK(both >= kMany * 9 / 10, "ordered: only %d of %d pairs fully finalized after five collections", both, kMany);
  CHECK(wrong_order == 0, "ordered: %d pointed-to objects finalized before their referrer", wrong_order);
  CHECK(twice == 0, "%d objects finalized twice", twice);
  CHECK(finalize_bad_payload == 0, "%d finalizers saw a damaged object", finalize_bad_payload);
}

static void finalizers_no_order(void) {
  reset_finalized();
  make_finalizable(0);
  full_gc();
  GC_invoke_finalizers();
  int both = 0;
  for (int i = 0; i < kMany; ++i)
    if (finalized[i] && finalized[kMany + i]) ++both;
  CHECK(both >= kMany * 9 / 10, "no_order: only %d of %d pairs finalized by one collection", both, kMany);
  CHECK(finalize_bad_payload == 0, "%d finalizers saw a damaged object", finalize_bad_payload);
}

/* Client data is kept alive by the registration (bdwgc traces it): Guile's
 * guardians hold their only reference to a weak vector there. */
static int client_data_intact = 0, client_data_seen = 0;
static void GC_CALLBACK check_client_data(void* obj, void* cd) {
  (void)obj;
  long* data = (long*)cd;
  ++client_data_seen;
  if (data[0] == 4242 && data[7] == 7) ++client_data_intact;
}
static void* finalizable_for_cd[kMany];  /* alive for the first rounds */
static __attribute__((noinline)) void register_with_client_data(void) {
  for (int i = 0; i < kMany; ++i) {
    long* cd = (long*)GC_MALLOC(8 * sizeof(long));  /* reachable only from the registration */
    cd[0] = 4242;
    cd[7] = 7;
    finalizable_for_cd[i] = GC_MALLOC(16);
    GC_REGISTER_FINALIZER_NO_ORDER(finalizable_for_cd[i], check_client_data, cd, NULL, NULL);
  }
}
static void client_data_survives(void) {
  register_with_client_data();
  for (int round = 0; round < 6; ++round) {
    if (round == 3) memset(finalizable_for_cd, 0, sizeof finalizable_for_cd);
    full_gc();
    for (int i = 0; i < 5000; ++i) {  /* reuse freed memory: a freed cd would be overwritten */
      long* junk = (long*)GC_MALLOC(8 * sizeof(long));
      for (int j = 0; j < 8; ++j) junk[j] = -1;
    }
  }
  GC_invoke_finalizers();
  CHECK(client_data_seen >= kMany * 9 / 10, "only %d of %d finalizers ran", client_data_seen, kMany);
  CHECK(client_data_intact == client_data_seen, "%d finalizers saw their client data freed and reused",
        client_data_seen - client_data_intact);
}

static void reachable_objects_are_not_finalized(void) {
  reset_finalized();
  for (long i = 0; i < kMany; ++i) kept[i] = new_final(i, 1);
  run_gcs_and_finalizers(3);
  int ran = 0;
  for (int i = 0; i < kMany; ++i) ran += finalized[i];
  CHECK(ran == 0, "%d reachable objects were finalized", ran);
  /* Unregistering: a finalizer replaced by NULL never runs. */
  for (long i = 0; i < kMany; ++i) {
    GC_finalization_proc old = NULL;
    void* old_cd = NULL;
    GC_REGISTER_FINALIZER(kept[i], NULL, NULL, &old, &old_cd);
    CHECK(old == on_finalize && old_cd == (void*)(intptr_t)(id_base + i), "GC_register_finalizer did not return the old finalizer");
    kept[i] = NULL;
  }
  run_gcs_and_finalizers(3);
  ran = 0;
  for (int i = 0; i < kMany; ++i) ran += finalized[i];
  CHECK(ran == 0, "%d unregistered finalizers ran", ran);
}

/* ---- disappearing links ------------------------------------------------- */
static void** links;  /* in glibc's heap: not a root, so links do not keep targets alive */

static __attribute__((noinline)) void make_linked(long** kept_targets) {
  for (int i = 0; i < kMany; ++i) {
    long* target = (long*)GC_MALLOC(4 * sizeof(long));
    target[0] = i;
    links[i] = target;
    CHECK(GC_GENERAL_REGISTER_DISAPPEARING_LINK(&links[i], target) == GC_SUCCESS, "registration failed");
    kept_targets[i] = (i % 2 == 0) ? target : NULL;  /* keep the even ones */
  }
  CHECK(GC_GENERAL_REGISTER_DISAPPEARING_LINK(&links[0], links[0]) == GC_DUPLICATE, "a second registration is not a duplicate");
}

static void disappearing_links(void) {
  links = (void**)calloc(kMany, sizeof(void*));
  long** kept_targets = (long**)GC_MALLOC_UNCOLLECTABLE(kMany * sizeof(long*));
  make_linked(kept_targets);
  /* Unregistered links are never cleared, even when their target dies. */
  for (int i = 1; i < kMany; i += 4) CHECK(GC_unregister_disappearing_link(&links[i]) == 1, "unregister failed");
  full_gc();
  int cleared_odd = 0, cleared_even = 0, cleared_unregistered = 0;
  for (int i = 0; i < kMany; ++i) {
    if (i % 4 == 1) {
      if (links[i] == NULL) ++cleared_unregistered;
    } else if (i % 2 == 0) {
      if (links[i] == NULL) ++cleared_even;
      else CHECK(*(long*)links[i] == i, "a live link's target changed");
    } else if (links[i] == NULL) {
      ++cleared_odd;
    }
  }
  CHECK(cleared_even == 0, "%d links to reachable objects were cleared", cleared_even);
  CHECK(cleared_unregistered == 0, "%d unregistered links were cleared", cleared_unregistered);
  CHECK(cleared_odd >= (kMany / 4) * 9 / 10, "only %d of %d links to unreachable objects were cleared", cleared_odd, kMany / 4);
  /* A link is cleared before its finalizable target is finalized. */
  reset_finalized();
  static Final* final_target;  /* static: dropped below */
  final_target = new_final(3, 1);
  links[0] = final_target;
  GC_unregister_disappearing_link(&links[0]);
  GC_GENERAL_REGISTER_DISAPPEARING_LINK(&links[0], final_target);
  final_target = NULL;
  full_gc();
  CHECK(links[0] == NULL || !finalized[3], "the link to a finalizable object survived its finalization");
  GC_invoke_finalizers();
  for (int i = 0; i < kMany; ++i) GC_unregister_disappearing_link(&links[i]);
  GC_FREE(kept_targets);
  free(links);
}

/* ---- links registered, moved and unregistered at random, against a model */
/* Slots in glibc's heap (not roots); targets kept alive by an uncollectable
   array, or not. After each collection: a registered link to a kept target
   holds it, no unregistered or moved-away slot was touched, and links to
   dropped targets are cleared (most of them: a stale stack word may keep
   one) and so unregistered; every call's answer matches the model. */
enum { kChurnSlots = 4096, kChurnOps = 60000, kChurnGcEvery = 5000 };
static uint64_t churn_rng = 88172645463325252ull;
static unsigned churn_below(unsigned n) {
  churn_rng ^= churn_rng << 13;
  churn_rng ^= churn_rng >> 7;
  churn_rng ^= churn_rng << 17;
  return (unsigned)(churn_rng % n);
}
static __attribute__((noinline)) void* churn_target(int kept_slot, void** kept) {
  long* t = (long*)GC_MALLOC(4 * sizeof(long));
  t[0] = kept_slot;
  if (kept_slot >= 0) kept[kept_slot] = t;
  return t;
}
/* A link to a target no longer kept may have been cleared by a collection
   that an allocation started: then it is unregistered too. */
static void churn_reconcile(unsigned k, void** slots, void** shadow, char* registered, const char* kept_alive) {
  if (registered[k] && !kept_alive[k] && slots[k] == NULL) {
    registered[k] = 0;
    shadow[k] = NULL;
  }
}
static int link_churn(void) {
  void** slots = (void**)calloc(kChurnSlots, sizeof(void*));
  void** shadow = (void**)calloc(kChurnSlots, sizeof(void*)); /* what each slot should hold, unless cleared */
  char* registered = (char*)calloc(kChurnSlots, 1);
  char* kept_alive = (char*)calloc(kChurnSlots, 1);
  void** kept = (void**)GC_MALLOC_UNCOLLECTABLE(kChurnSlots * sizeof(void*));
  long cleared = 0, dropped_targets = 0;
  for (int op = 1; op <= kChurnOps; ++op) {
    const unsigned i = churn_below(kChurnSlots), what = churn_below(10);
    churn_reconcile(i, slots, shadow, registered, kept_alive);
    if (what < 5) { /* register a new target in slot i */
      if (registered[i]) {
        CHECK(GC_GENERAL_REGISTER_DISAPPEARING_LINK(&slots[i], slots[i]) == GC_DUPLICATE, "slot %u: not a duplicate", i);
        continue;
      }
      const int keep = churn_below(2) == 0;
      kept[i] = NULL;
      slots[i] = shadow[i] = churn_target(keep ? (int)i : -1, kept);
      kept_alive[i] = (char)keep;
      CHECK(GC_GENERAL_REGISTER_DISAPPEARING_LINK(&slots[i], slots[i]) == GC_SUCCESS, "slot %u: registration failed", i);
      registered[i] = 1;
    } else if (what < 7) { /* unregister slot i */
      CHECK(GC_unregister_disappearing_link(&slots[i]) == registered[i], "slot %u: unregister answered wrongly", i);
      registered[i] = 0;
    } else if (what < 9) { /* move slot i's link to slot j */
      const unsigned j = churn_below(kChurnSlots);
      churn_reconcile(j, slots, shadow, registered, kept_alive);
      const int want = !registered[i] ? GC_NOT_FOUND : i == j ? GC_SUCCESS : registered[j] ? GC_DUPLICATE : GC_SUCCESS;
      if (want == GC_SUCCESS && i != j) {
        slots[j] = shadow[j] = slots[i];
        kept[j] = kept[i];
        kept_alive[j] = kept_alive[i];
      }
      CHECK(GC_move_disappearing_link(&slots[i], &slots[j]) == want, "move %u -> %u answered wrongly", i, j);
      if (want == GC_SUCCESS && i != j) {
        registered[j] = 1;
        registered[i] = 0;
        kept[i] = NULL;  /* slot i keeps its (stale) value, now unregistered */
      }
    } else if (registered[i] && kept_alive[i]) { /* drop a kept target */
      kept[i] = NULL;
      kept_alive[i] = 0;
    }
    if (op % kChurnGcEvery != 0) continue;
    full_gc();
    for (unsigned k = 0; k < kChurnSlots; ++k) {
      if (!registered[k]) {
        CHECK(slots[k] == shadow[k], "slot %u touched while unregistered", k);
        continue;
      }
      if (kept_alive[k]) {
        CHECK(slots[k] == shadow[k] && slots[k] == kept[k], "slot %u: a link to a kept target was cleared", k);
      } else {
        CHECK(slots[k] == NULL || slots[k] == shadow[k], "slot %u: a link holds what it never held", k);
        ++dropped_targets;
        if (slots[k] == NULL) {
          ++cleared;
          shadow[k] = NULL;
          registered[k] = 0; /* a cleared link is unregistered */
          CHECK(GC_unregister_disappearing_link(&slots[k]) == 0, "slot %u: cleared, still registered", k);
        }
      }
    }
  }
  CHECK(dropped_targets > 1000 && cleared >= dropped_targets * 8 / 10,
        "only %ld of %ld links to dropped targets were cleared", cleared, dropped_targets);
  for (unsigned k = 0; k < kChurnSlots; ++k)
    if (registered[k]) GC_unregister_disappearing_link(&slots[k]);
  printf("link churn: %ld of %ld links to dropped targets cleared\n", cleared, dropped_targets);
  GC_FREE(kept);
  free(slots);
  free(shadow);
  free(registered);
  free(kept_alive);
  return failures ? 1 : 0;
}

/* ---- the rest of what Debian's libgc users import ---------------------- */
/* Setters read back, the version, the stubborn and debug allocators (the
   same objects: zeroed, collectable or not, freed, finalized), bdwgc's
   variables, and GC_stackbottom moved onto a fiber's stack (Crystal): a
   collection from the fiber scans the fiber's stack up to GC_stackbottom
   and finds what only the fiber holds. */
#include <ucontext.h>
/* (bdwgc marks its variables deprecated; the programs we stand in for use them.) */
#pragma GCC diagnostic ignored "-Wdeprecated-declarations"
static ucontext_t fiber_ctx, main_ctx;
static void** fiber_link; /* in glibc's heap: not a root */
static int fiber_kept;
static void on_fiber(void) {
  char* saved_bottom = GC_stackbottom;
  GC_stackbottom = (char*)fiber_ctx.uc_stack.ss_sp + fiber_ctx.uc_stack.ss_size;
  long* only_here = (long*)GC_MALLOC(4 * sizeof(long)); /* on this stack only */
  only_here[0] = 4242;
  *fiber_link = only_here;
  GC_GENERAL_REGISTER_DISAPPEARING_LINK(fiber_link, only_here);
  for (int i = 0; i < 3; ++i) GC_gcollect();
  fiber_kept = *fiber_link == only_here && only_here[0] == 4242;
  __asm__ volatile("" : : "r"(only_here) : "memory"); /* held until here */
  GC_stackbottom = saved_bottom;
  swapcontext(&fiber_ctx, &main_ctx);
}
static int finalized_debug;
static void on_debug_finalize(void* obj, void* cd) {
  (void)obj;
  (void)cd;
  ++finalized_debug;
}
static __attribute__((noinline)) void drop_debug_objects(void) {
  for (int i = 0; i < 100; ++i) {
    void* p = GC_debug_malloc(48, GC_EXTRAS);
    GC_debug_register_finalizer_ignore_self(p, on_debug_finalize, NULL, NULL, NULL);
  }
}
static int compat(void) {
  CHECK(GC_get_version() >> 16 == 8, "version %#x", GC_get_version());
  GC_set_dont_expand(1);
  CHECK(GC_get_dont_expand() == 1, "dont_expand not kept");
  GC_set_dont_expand(0);
  GC_set_full_freq(7);
  CHECK(GC_get_full_freq() == 7, "full_freq not kept");
  GC_set_max_retries(3);
  CHECK(GC_get_max_retries() == 3, "max_retries not kept");
  GC_set_handle_fork(1);
  CHECK(GC_all_interior_pointers == 1 && GC_java_finalization == 1 && GC_no_dls == 0,
        "variables %d %d %d", GC_all_interior_pointers, GC_java_finalization, GC_no_dls);
  char here;
  CHECK(GC_stackbottom != NULL && GC_stackbottom > &here, "GC_stackbottom %p below a local %p", (void*)GC_stackbottom,
        (void*)&here);
  GC_warn_proc old_warn = GC_get_warn_proc();
  GC_set_warn_proc(GC_ignore_warn_proc);
  CHECK(GC_get_warn_proc() == GC_ignore_warn_proc, "GC_ignore_warn_proc not set");
  GC_set_warn_proc(old_warn);
  /* stubborn objects are ordinary ones */
  long* st = (long*)GC_malloc_stubborn(64);
  CHECK(st != NULL && st[7] == 0, "GC_malloc_stubborn");
  GC_change_stubborn(st);
  st[0] = 1;
  GC_end_stubborn_change(st);
  /* the debug allocator */
  long* d = (long*)GC_debug_malloc(100, GC_EXTRAS);
  CHECK(d != NULL && d[11] == 0, "GC_debug_malloc: not zeroed");
  char* a = (char*)GC_debug_malloc_atomic(100, GC_EXTRAS);
  CHECK(a != NULL, "GC_debug_malloc_atomic");
  a[99] = 1;
  static long** hidden; /* the only reference to an uncollectable object, hidden */
  hidden = (long**)GC_debug_malloc_uncollectable(sizeof(long*), GC_EXTRAS);
  long* u = (long*)GC_debug_malloc_uncollectable(64, GC_EXTRAS);
  u[0] = 77;
  *hidden = (long*)~(GC_word)u; /* not a pointer to it */
  u = NULL;
  GC_debug_free(d);
  drop_debug_objects();
  for (int i = 0; i < 4 && finalized_debug < 90; ++i) run_gcs_and_finalizers(2);
  CHECK(finalized_debug >= 90, "only %d of 100 debug finalizers ran", finalized_debug);
  CHECK(((long*)~(GC_word)*hidden)[0] == 77, "an uncollectable debug object was collected");
  GC_debug_free((void*)~(GC_word)*hidden);
  GC_debug_free(hidden);
  /* GC_stackbottom moved onto a fiber's stack */
  const size_t stack_size = 256 * 1024;
  void** link_slot = (void**)calloc(1, sizeof(void*));
  fiber_link = link_slot;
  char* stack = (char*)malloc(stack_size);
  getcontext(&fiber_ctx);
  fiber_ctx.uc_stack.ss_sp = stack;
  fiber_ctx.uc_stack.ss_size = stack_size;
  fiber_ctx.uc_link = &main_ctx;
  makecontext(&fiber_ctx, on_fiber, 0);
  swapcontext(&main_ctx, &fiber_ctx);
  CHECK(fiber_kept, "an object held only on the fiber's stack was collected");
  CHECK(GC_stackbottom > &here, "GC_stackbottom not restored");
  GC_unregister_disappearing_link(link_slot);
  free(link_slot);
  free(stack);
  return failures ? 1 : 0;
}

/* Bad link slots (tagheap's library only: bdwgc aborts, or takes a null one
   and writes through it later): refused at the call, with a warning, and
   nothing registered or moved; collections run on. */
static int bad_links(void) {
  /* gc.h declares these arguments nonnull: called through plain function
     pointers, so that neither the compiler nor UBSan takes the bad calls
     for this test's own undefined behaviour. */
  int (*volatile register_link)(void**, const void*) = GC_general_register_disappearing_link;
  int (*volatile move_link)(void**, void**) = GC_move_disappearing_link;
  char* (*volatile strndup_fn)(const char*, size_t) = GC_strndup;
  void** null_slot = NULL;
  static void* slot;
  slot = GC_MALLOC(16);
  CHECK(register_link(null_slot, slot) == GC_NO_MEMORY, "a null link was registered");
  CHECK(register_link((void**)((char*)&slot + 3), slot) == GC_NO_MEMORY, "a misaligned link was registered");
  CHECK(register_link(&slot, slot) == GC_SUCCESS, "registration failed");
  CHECK(move_link(&slot, null_slot) == GC_NOT_FOUND, "a link was moved to null");
  CHECK(move_link(&slot, (void**)((char*)&slot + 1)) == GC_NOT_FOUND, "moved to a misaligned slot");
  CHECK(strndup_fn(NULL, 4) == NULL, "GC_strndup(NULL, 4)");
  static void* keep; /* the target stays alive: the link stays registered */
  keep = slot;
  for (int i = 0; i < 3; ++i) GC_gcollect();
  CHECK(slot == keep && GC_unregister_disappearing_link(&slot) == 1, "the link was lost");
  return failures ? 1 : 0;
}

/* ---- kinds, roots, realloc, base and size ------------------------------- */
static int stays_alive_from(void** slot_owner_kind) { return *(long*)slot_owner_kind[0] == 42; }

static void uncollectable_and_roots(void) {
  void** u = (void**)GC_MALLOC_UNCOLLECTABLE(2 * sizeof(void*));
  long* v = (long*)GC_MALLOC_ATOMIC(sizeof(long));
  *v = 42;
  u[0] = v;
  void** region = (void**)malloc(4 * sizeof(void*));  /* malloc memory, registered as roots */
  long* w = (long*)GC_MALLOC_ATOMIC(sizeof(long));
  *w = 43;
  region[1] = w;
  GC_add_roots(region, region + 4);
  v = NULL;
  w = NULL;
  for (int i = 0; i < 20000; ++i) {  /* churn: the freed memory is reused */
    long* junk = (long*)GC_MALLOC(sizeof(long) * 2);
    junk[0] = junk[1] = -1;
  }
  full_gc();
  CHECK(stays_alive_from(u), "an object reachable from an uncollectable one was collected");
  CHECK(*(long*)region[1] == 43, "an object reachable from GC_add_roots memory was collected");
  GC_remove_roots(region, region + 4);
  free(region);
  GC_FREE(u);

  char* s = (char*)GC_MALLOC_ATOMIC(10);
  strcpy(s, "tagheap");
  s = (char*)GC_REALLOC(s, 100000);
  CHECK(strcmp(s, "tagheap") == 0, "GC_realloc lost the contents");
  CHECK(GC_size(s) >= 100000, "GC_size %zu is below the size asked", GC_size(s));
  CHECK(GC_base(s + 5000) == s, "GC_base of an interior pointer");
  CHECK(GC_base(&failures) == NULL, "GC_base of a static variable");
  int* zeroed = (int*)GC_MALLOC(1000);
  int nonzero = 0;
  for (int i = 0; i < 250; ++i) nonzero += zeroed[i] != 0;
  CHECK(nonzero == 0, "GC_malloc memory is not cleared");
}

/* A push-other-roots procedure (as ECL pushes its Lisp stacks): objects
 * reachable only from malloc memory it pushes with GC_push_all, or only
 * through GC_set_mark_bit (their address hidden), survive collections, and
 * the procedure it replaced is still called through the chain. */
static long** other_roots;                   /* malloc memory: not a root */
static GC_hidden_pointer hidden_marked;      /* kept by GC_set_mark_bit only */
static GC_push_other_roots_proc previous_push;
static int pushes;
static void GC_CALLBACK push_mine(void) {
  ++pushes;
  GC_push_all(other_roots, other_roots + kMany);
  GC_set_mark_bit(GC_REVEAL_POINTER(hidden_marked));
  if (previous_push != NULL) previous_push();
}
static void push_other_roots(void) {
  other_roots = (long**)malloc(kMany * sizeof(long*));
  for (int i = 0; i < kMany; ++i) {
    other_roots[i] = (long*)GC_MALLOC_ATOMIC(2 * sizeof(long));
    other_roots[i][0] = i;
    other_roots[i][1] = -i;
  }
  long* marked = (long*)GC_MALLOC_ATOMIC(2 * sizeof(long));
  marked[0] = marked[1] = 7;
  hidden_marked = GC_HIDE_POINTER(marked);
  marked = NULL;
  previous_push = GC_get_push_other_roots();
  GC_set_push_other_roots(push_mine);
  CHECK(GC_get_push_other_roots() == push_mine, "GC_get_push_other_roots");
  for (int round = 0; round < 4; ++round) {
    for (int i = 0; i < 20000; ++i) {  /* churn of the same size: freed memory is reused */
      long* junk = (long*)GC_MALLOC_ATOMIC(2 * sizeof(long));
      junk[0] = junk[1] = -1;
    }
    full_gc();
  }
  int intact = 0;
  for (int i = 0; i < kMany; ++i) intact += other_roots[i][0] == i && other_roots[i][1] == -i;
  const long* kept = (const long*)GC_REVEAL_POINTER(hidden_marked);
  CHECK(pushes >= 8, "the push-other-roots procedure ran %d times in 8 collections", pushes);
  CHECK(intact == kMany, "%d of %d objects pushed by GC_push_all were collected", kMany - intact, kMany);
  CHECK(kept[0] == 7 && kept[1] == 7, "an object kept by GC_set_mark_bit was collected");
  GC_set_push_other_roots(previous_push);
  free(other_roots);
}

static void enable_disable(void) {
  GC_disable();
  const GC_word before = GC_get_gc_no();
  for (int i = 0; i < 200000; ++i) (void)GC_MALLOC(64);
  CHECK(GC_get_gc_no() == before, "a collection ran while disabled");
  GC_enable();
  for (int i = 0; i < 400000; ++i) (void)GC_MALLOC(64);
  CHECK(GC_get_gc_no() > before, "no collection after enabling again");
  CHECK(GC_get_heap_size() > 0, "no heap size");
}

static void GC_CALLBACK my_warn(char* msg, GC_word arg) { (void)msg; (void)arg; }
static void* GC_CALLBACK my_oom(size_t n) { (void)n; return NULL; }

static void settings(void) {
  GC_warn_proc old = GC_get_warn_proc();
  GC_set_warn_proc(my_warn);
  CHECK(GC_get_warn_proc() == my_warn, "GC_get_warn_proc");
  GC_set_warn_proc(old);
  GC_set_oom_fn(my_oom);
  CHECK(GC_get_oom_fn() == my_oom, "GC_get_oom_fn");
  struct GC_stack_base sb;
  CHECK(GC_get_stack_base(&sb) == GC_SUCCESS && (char*)sb.mem_base > (char*)&sb, "GC_get_stack_base");
}

/* ---- threads: lists built while other threads collect -------------------- */
typedef struct Cell {
  struct Cell* next;
  long value;
} Cell;

/* Garbage blocks of 4 KiB each thread allocates per 1000 cells, so that
   together they pass the heap the earlier parts left (set by threads()):
   a collection comes once the heap's free part is used up. */
static long garbage_per_1000_cells = 1;

static void* build_lists(void* arg) {
  long seed = (long)(intptr_t)arg;
  long bad = 0;
  for (int round = 0; round < 30; ++round) {
    Cell* head = NULL;
    for (long i = 0; i < 5000; ++i) {
      Cell* c = (Cell*)GC_MALLOC(sizeof(Cell));
      c->next = head;
      c->value = seed * 100000 + i;
      head = c;
      if (i % 1000 == 0)  /* garbage, to make collections happen */
        for (long g = 0; g < garbage_per_1000_cells; ++g) (void)GC_MALLOC_ATOMIC(4096);
    }
    long expect = 4999;
    for (Cell* c = head; c != NULL; c = c->next, --expect)
      if (c->value != seed * 100000 + expect) ++bad;
    if (expect != -1) ++bad;
  }
  return (void*)(intptr_t)bad;
}

static void* registered_by_hand(void* arg) {
  struct GC_stack_base sb;
  GC_get_stack_base(&sb);
  GC_register_my_thread(&sb);
  void* r = build_lists(arg);
  GC_unregister_my_thread();
  return r;
}

static void threads(void) {
  enum { kThreads = 4 };
  pthread_t ids[kThreads];
  const GC_word gc0 = GC_get_gc_no();
  /* 30 rounds of 5 x 1000 cells in each of kThreads + 1 threads: twice the heap. */
  garbage_per_1000_cells = 1 + (long)(2 * GC_get_heap_size() / (4096 * 30 * 5 * (kThreads + 1)));
  GC_allow_register_threads();
  for (long i = 0; i < kThreads; ++i) {
    int rc = (i % 2 == 0) ? GC_pthread_create(&ids[i], NULL, build_lists, (void*)(intptr_t)(i + 1))
                          : pthread_create(&ids[i], NULL, registered_by_hand, (void*)(intptr_t)(i + 1));
    CHECK(rc == 0, "thread creation failed");
  }
  void* main_result = build_lists((void*)(intptr_t)99);
  CHECK(main_result == NULL, "the main thread's lists were damaged");
  for (int i = 0; i < kThreads; ++i) {
    void* r = NULL;
    if (i % 2 == 0)
      GC_pthread_join(ids[i], &r);
    else
      pthread_join(ids[i], &r);
    CHECK(r == NULL, "thread %d found %ld damaged cells", i, (long)(intptr_t)r);
  }
  CHECK(GC_get_gc_no() > gc0, "no collection ran while the threads allocated");
}

/* ---- GC_is_heap_ptr: anywhere in the heap, freed objects included -------- */
static int not_in_heap_static;
static void heap_ptr(void) {
  char* p = (char*)GC_MALLOC(40);
  char* atomic = (char*)GC_MALLOC_ATOMIC(5000);
  CHECK(GC_is_heap_ptr(p) && GC_is_heap_ptr(p + 39), "an object is not in the heap");
  CHECK(GC_is_heap_ptr(atomic + 4999), "an atomic object's last byte is not in the heap");
  GC_FREE(p);
  CHECK(GC_is_heap_ptr(p), "a freed object's memory left the heap (bdwgc: still heap memory)");
  void* from_malloc = malloc(40);
  int on_stack = 0;
  CHECK(!GC_is_heap_ptr(from_malloc) && !GC_is_heap_ptr(&on_stack) && !GC_is_heap_ptr(&not_in_heap_static),
        "malloc, stack or static memory taken for heap memory");
  free(from_malloc);
}

/* ---- GC_dump: from the program and from a finalizer --------------------- */
static void dump_from_finalizer(void* obj, void* cd) {
  (void)obj;
  GC_dump();
  ++*(int*)cd;
}
static __attribute__((noinline)) void finalizable_garbage(int* ran) {
  /* Several: a conservative scan (an ASan build's stack) may keep a few. */
  for (int i = 0; i < 20; ++i) GC_REGISTER_FINALIZER(GC_MALLOC(32), dump_from_finalizer, ran, NULL, NULL);
}
static int dump(void) {
  static void* kept[3];
  kept[0] = GC_MALLOC(100);
  kept[1] = GC_MALLOC_ATOMIC(3000);
  kept[2] = GC_MALLOC_UNCOLLECTABLE(24);
  GC_dump();
  int ran = 0;
  finalizable_garbage(&ran);
  for (int i = 0; i < 5 && ran == 0; ++i) {
    GC_gcollect();
    GC_invoke_finalizers();
  }
  CHECK(ran >= 1 && ran <= 20, "the finalizers that dump ran %d times", ran);
  GC_FREE(kept[2]);
  return failures ? 1 : 0;
}

/* ---- GC_malloc_many: lists of cleared objects ---------------------------- */
/* Checks one list: object starts, at least n bytes, cleared past the link,
   none twice. Returns its length. */
static int check_many(void* list, size_t n) {
  int count = 0;
  for (void* p = list; p != NULL; p = GC_NEXT(p)) {
    CHECK(GC_base(p) == p, "GC_malloc_many(%zu) gave an interior address", n);
    CHECK(GC_size(p) >= n, "GC_malloc_many(%zu) gave %zu bytes", n, GC_size(p));
    size_t i = sizeof(void*);
    while (i < n && ((char*)p)[i] == 0) ++i;
    if (i < n) {
      CHECK(0, "GC_malloc_many(%zu): byte %zu not cleared", n, i);
      return count;
    }
    for (size_t i = sizeof(void*); i < n; ++i) ((char*)p)[i] = (char)0x5a; /* dirty, for the blocks reused next */
    CHECK(++count <= 4096, "GC_malloc_many(%zu)'s list does not end", n);
  }
  return count;
}
static atomic_int many_peer_stop;
static void* many_peer(void* arg) {
  (void)arg;
  while (!atomic_load(&many_peer_stop)) (void)GC_MALLOC(32);
  return NULL;
}
static void malloc_many(void) {
  for (size_t n = 1; n <= 300; n = n * 3 / 2 + 7) {
    void* list = GC_malloc_many(n);
    CHECK(list != NULL, "GC_malloc_many(%zu) gave nothing", n);
    check_many(list, n);
  }
  /* Lists dropped and reused, lookups between them (the lookups tagheap's
     library makes its allocation wait on, another thread allocating), and
     collections meanwhile: every list whole, every object cleared. */
  GC_allow_register_threads();
  pthread_t peer;
  atomic_store(&many_peer_stop, 0);
  CHECK(GC_pthread_create(&peer, NULL, many_peer, NULL) == 0, "thread creation failed");
  const GC_word gc0 = GC_get_gc_no();
  void* kept = GC_malloc_many(48);
  int kept_count = check_many(kept, 48);
  long total = 0;
  for (int round = 0; round < 40000; ++round) {
    void* list = GC_malloc_many(16 + (size_t)(round % 5) * 16);
    CHECK(GC_is_heap_ptr(list), "a list from GC_malloc_many is not in the heap");
    total += check_many(list, 16 + (size_t)(round % 5) * 16);
  }
  int again = 0;
  for (void* p = kept; p != NULL; p = GC_NEXT(p)) ++again;
  CHECK(again == kept_count, "a list held across collections lost objects (%d of %d)", again, kept_count);
  CHECK(GC_get_gc_no() > gc0, "no collection while lists were allocated");
  atomic_store(&many_peer_stop, 1);
  GC_pthread_join(peer, NULL);
  CHECK(total >= 40000, "GC_malloc_many gave %ld objects in 40000 calls", total);
}

static void* GC_CALLBACK oom_marker(size_t n) {
  (void)n;
  static long token;
  return &token;
}

static int oom(void) {
  GC_set_oom_fn(oom_marker);
  void** keep = (void**)GC_MALLOC_UNCOLLECTABLE(4096 * sizeof(void*));
  for (int i = 0; i < 4096; ++i) {
    void* p = GC_MALLOC_ATOMIC(1 << 20);
    __asm__ volatile("" : "+r"(p)); /* GC_malloc_atomic is declared malloc-like: the
                                       compiler would fold the comparisons below */
    if (p == NULL || p == oom_marker(0)) { /* bdwgc 8.2 returns NULL for large objects */
      printf("oom after %d MiB\n", i);
      /* Small objects at the limit: the inline allocation path's ways out
         answer with the oom function too. A list, kept through keep[0]. */
      GC_free(keep[0]);
      keep[0] = NULL;
      for (long n = 0; n < (1L << 26) / 48; ++n) {
        void** q = (void**)GC_MALLOC(48);
        __asm__ volatile("" : "+r"(q));
        if (q == oom_marker(0)) {
          printf("small objects: oom after %ld\n", n);
          return 0;
        }
        if (q == NULL) break;
        q[0] = keep[0];
        keep[0] = q;
      }
      fprintf(stderr, "FAILED: small objects at the heap limit did not get the oom function's answer\n");
      return 1;
    }
    keep[i] = p;
  }
  fprintf(stderr, "FAILED: 4 GiB allocated past GC_MAXIMUM_HEAP_SIZE without the oom function\n");
  return 1;
}

/* ---- the free space divisor: bdwgc's knob between time and memory -------- */
static Node* divisor_live;  /* in the data segment: a root */
static GC_word collections_while_allocating(GC_word divisor) {
  GC_set_free_space_divisor(divisor);
  GC_gcollect(); /* the budget follows the new divisor from here */
  const GC_word gc0 = GC_get_gc_no();
  for (int i = 0; i < (64 << 20) / 64; ++i) (void)GC_MALLOC(64);
  return GC_get_gc_no() - gc0;
}
static int divisor(void) {
  printf("divisor %lu\n", (unsigned long)GC_get_free_space_divisor());
  divisor_live = make_tree(16); /* 4 to 6 MiB of scanned live data */
  /* The tight one first: bdwgc uses all of a heap that grew before
     collecting, whatever the divisor says now. */
  const GC_word tight = collections_while_allocating(8);
  const GC_word relaxed = collections_while_allocating(1);
  CHECK(tight > 2 * relaxed, "divisor 8: %lu collections, divisor 1: %lu (expected several times more)",
        (unsigned long)tight, (unsigned long)relaxed);
  CHECK(count_nodes(divisor_live) == (1L << 17) - 1, "the live tree was damaged");
  return failures ? 1 : 0;
}

/* ---- allocation counts whole granules, as bdwgc's GC_bytes_allocd -------- */
/* Bytes GC_get_bytes_since_gc counts for `count` objects of `size` bytes
   allocated right after a collection; SIZE_MAX if another came in between. */
static size_t counted_after_collection(int count, size_t size) {
  GC_gcollect();
  const GC_word gc0 = GC_get_gc_no();
  for (int i = 0; i < count; ++i) (void)GC_MALLOC(size);
  const size_t counted = GC_get_bytes_since_gc();
  return GC_get_gc_no() == gc0 ? counted : SIZE_MAX;
}
static int granules(void) {
  /* 1-byte objects (2 with the extra byte) take a 16-byte granule each;
     the budget is spent by granules, or a program of small objects would
     take several times its budget in blocks between collections. Retried
     if a collection came in between anyway. */
  GC_expand_hp(8 << 20); /* room for them without a collection */
  for (int attempt = 0; attempt < 10; ++attempt) {
    const size_t counted = counted_after_collection(16384, 1);
    if (counted == SIZE_MAX) continue;
    CHECK(counted >= 16384 * 16 && counted <= 16384 * 16 + 65536,
          "16384 one-byte objects counted %zu bytes since the collection (expected 16 each)", counted);
    /* Larger objects count their size class: 1000 bytes (1001 with the
       extra byte) take 1024 in both libraries (bdwgc's size map rounds up to
       four objects a 4 KiB block; tagheap's class is 1024), not the 1008 of
       their granules. */
    const size_t counted_large = counted_after_collection(4096, 1000);
    if (counted_large == SIZE_MAX) continue;
    CHECK(counted_large >= 4096 * 1024 && counted_large <= 4096 * 1024 + 65536,
          "4096 objects of 1000 bytes counted %zu bytes since the collection (expected 1024 each)", counted_large);
    return failures ? 1 : 0;
  }
  fprintf(stderr, "FAILED: a collection came in every one of 10 attempts\n");
  return 1;
}

/* ---- an expansion the kernel would not map fails, and changes nothing -- */
static int expand_absurd(void) {
  GC_gcollect();
  const size_t heap = GC_get_heap_size();
  CHECK(GC_expand_hp((size_t)1 << 60) == 0, "GC_expand_hp(2^60) succeeded");
  CHECK(GC_expand_hp(SIZE_MAX) == 0, "GC_expand_hp(SIZE_MAX) succeeded");
  CHECK(GC_get_heap_size() < heap + ((size_t)1 << 30), "the heap grew from %zu to %zu bytes", heap,
        GC_get_heap_size());
  /* Collections still come: 64 MiB of garbage in a heap of a few MiB. */
  const GC_word gc0 = GC_get_gc_no();
  for (int i = 0; i < (64 << 20) / 64; ++i) (void)GC_MALLOC(48);
  CHECK(GC_get_gc_no() - gc0 >= 3, "only %lu collections for 64 MiB of garbage after the failed expansions",
        (unsigned long)(GC_get_gc_no() - gc0));
  CHECK(GC_expand_hp(1 << 20) == 1, "GC_expand_hp(1 MiB) failed");
  return failures ? 1 : 0;
}

/* ---- a grown heap is filled before the next collection ----------------- */
/* A live list grows to 24 MiB, with as much garbage again. bdwgc grows its
   heap whenever a collection finds too little of it free (a third at a
   time, at most 8 MiB a step) and allocates until the grown heap is full
   before it collects again. So between two collections the program
   allocates at least the heap's free part as the first one left it: the
   heap size then less the live list. (A budget of only what the rule asks,
   2 x scanned live / 3, collected at about half that after each growth.) */
typedef struct GrowCell {
  struct GrowCell* next;
  char pad[40];
} GrowCell;
static GrowCell* growing_list; /* in the data segment: a root */
static int growing(void) {
  enum { kCounted = 64 }; /* 48 bytes and the extra one: four granules */
  const long want = (24L << 20) / kCounted;
  long cells = 0, allocated = 0, short_cycles = 0, cycles = 0;
  GC_gcollect();
  GC_word gc = GC_get_gc_no();
  long free_part = (long)GC_get_heap_size(); /* nothing live yet */
  while (cells < want) {
    GrowCell* c = (GrowCell*)GC_MALLOC(sizeof(GrowCell));
    c->next = growing_list;
    growing_list = c;
    ++cells;
    (void)GC_MALLOC(sizeof(GrowCell)); /* garbage */
    allocated += 2 * kCounted;
    if (GC_get_gc_no() == gc) continue;
    /* A collection came: was the heap's free part used up first? (Tens of
       KiB of slack: allocation is counted in 64 KiB steps.) */
    ++cycles;
    if (allocated + (256L << 10) < free_part) {
      ++short_cycles;
      fprintf(stderr, "collection %lu after %ld bytes, with %ld free in the heap\n", (unsigned long)GC_get_gc_no(),
              allocated, free_part);
    }
    gc = GC_get_gc_no();
    allocated = 0;
    free_part = (long)GC_get_heap_size() - cells * kCounted;
  }
  long n = 0;
  for (GrowCell* c = growing_list; c != NULL; c = c->next) ++n;
  CHECK(n == cells, "the list lost cells: %ld of %ld", n, cells);
  CHECK(cycles >= 3, "only %ld collections while the live list grew to 24 MiB", cycles);
  CHECK(short_cycles == 0, "%ld of %ld collections came before the heap's free part was used", short_cycles,
        cycles);
  return failures ? 1 : 0;
}

/* GC_set_dont_expand(1): collect rather than grow the heap. The same
   program (a 6 MiB live list, 48 MiB of garbage) with and without it: the
   script checks that it collects more often with it. */
static GrowCell* dont_expand_list; /* in the data segment: a root */
static int dont_expand(int on) {
  GC_set_dont_expand(on);
  const GC_word gc0 = GC_get_gc_no();
  for (long i = 0; i < (6L << 20) / 64; ++i) {
    GrowCell* c = (GrowCell*)GC_MALLOC(sizeof(GrowCell));
    c->next = dont_expand_list;
    dont_expand_list = c;
    for (int j = 0; j < 8; ++j) (void)GC_MALLOC(sizeof(GrowCell));
  }
  printf("%lu\n", (unsigned long)(GC_get_gc_no() - gc0));
  return failures ? 1 : 0;
}

/* ---- a table of links or finalizers collects before it grows ------------ */
/* bdwgc's tables of disappearing links and of finalizers grow by doubling;
   from 4096 buckets on, a registration that would grow one collects first
   and keeps the size if the collection emptied a quarter of it. So links
   (or finalizers) on objects that die keep being collected however little
   the client allocates: with the heap expanded out of the budget's way, a
   run of registrations on dying objects collects about once per 4096. */
enum { kTableRegistrations = 20000 };
static void** table_links; /* in glibc's heap: not a root */
static void count_finalized(void* obj, void* cd) {
  (void)obj;
  ++*(long*)cd;
}
static __attribute__((noinline)) void register_dying(int finalizers, long* finalized_count) {
  for (int i = 0; i < kTableRegistrations; ++i) {
    void* target = GC_MALLOC(16);
    if (finalizers) {
      GC_REGISTER_FINALIZER(target, count_finalized, finalized_count, NULL, NULL);
    } else {
      table_links[i] = target;
      CHECK(GC_GENERAL_REGISTER_DISAPPEARING_LINK(&table_links[i], target) == GC_SUCCESS, "registration failed");
    }
  }
}
static int table_growth(void) {
  GC_expand_hp(32 << 20); /* no collection for lack of room */
  table_links = (void**)calloc(kTableRegistrations, sizeof(void*));
  GC_gcollect();
  GC_word before = GC_get_gc_no();
  register_dying(0, NULL);
  const GC_word by_links = GC_get_gc_no() - before;
  int kept = 0;
  for (int i = 0; i < kTableRegistrations - 4096; ++i) kept += table_links[i] != NULL;
  CHECK(by_links >= 3 && by_links <= 8, "%lu collections while registering %d links on dying objects (expected 4)",
        (unsigned long)by_links, kTableRegistrations);
  CHECK(kept <= kTableRegistrations / 10, "%d of the first %d links were never cleared", kept,
        kTableRegistrations - 4096);
  for (int i = 0; i < kTableRegistrations; ++i) GC_unregister_disappearing_link(&table_links[i]);
  GC_gcollect();
  static long finalized_count;
  before = GC_get_gc_no();
  register_dying(1, &finalized_count);
  const GC_word by_finalizers = GC_get_gc_no() - before;
  CHECK(by_finalizers >= 3 && by_finalizers <= 8,
        "%lu collections while registering %d finalizers on dying objects (expected 4)",
        (unsigned long)by_finalizers, kTableRegistrations);
  printf("table growth: %lu collections for the links, %lu for the finalizers\n", (unsigned long)by_links,
         (unsigned long)by_finalizers);
  free(table_links);
  return failures ? 1 : 0;
}

/* ---- the heap keeps its high-water mark --------------------------------- */
static Node* high_water_live;  /* in the data segment: a root */
static int high_water(void) {
  high_water_live = make_tree(18); /* 16 to 24 MiB of scanned live data */
  GC_gcollect();
  high_water_live = NULL;
  GC_gcollect();
  const size_t heap = GC_get_heap_size();
  CHECK(heap >= (16u << 20), "the heap is %zu bytes after holding 16 MiB", heap);
  /* Half the heap, with almost nothing live: bdwgc's GC_min_bytes_allocd
     alone would collect every MiB or so, about 10 times here. */
  const GC_word gc0 = GC_get_gc_no();
  for (size_t i = 0; i < heap / 2 / 64; ++i) (void)GC_MALLOC(48);
  CHECK(GC_get_gc_no() - gc0 <= 1, "%lu collections while half of the %zu-byte heap was used",
        (unsigned long)(GC_get_gc_no() - gc0), heap);
  CHECK(GC_get_heap_size() >= heap, "the heap shrank from %zu to %zu bytes", heap, GC_get_heap_size());
  return failures ? 1 : 0;
}

/* ---- fork: the child keeps a working collector ------------------------- */
static Node* fork_live;  /* in the data segment: a root */
static atomic_int fork_stop;
static atomic_int fork_allocating; /* set once the thread has allocated */
static void* fork_allocator(void* arg) {
  (void)arg;
  while (!atomic_load(&fork_stop)) {
    (void)make_tree(6);
    atomic_store(&fork_allocating, 1);
  }
  return NULL;
}
static int fork_child(void) {
  pthread_t t;
  atomic_store(&fork_stop, 0);
  CHECK(GC_pthread_create(&t, NULL, fork_allocator, NULL) == 0, "child: thread creation failed");
  for (int i = 0; i < 1000; ++i) CHECK(GC_base((char*)fork_live + 8) == fork_live, "child: GC_base of a live node");
  const GC_word gc0 = GC_get_gc_no();
  GC_gcollect();
  CHECK(GC_get_gc_no() > gc0, "child: GC_gcollect did not collect");
  CHECK(count_nodes(fork_live) == (2L << 10) - 1, "child: the live tree was damaged");
  atomic_store(&fork_stop, 1);
  GC_pthread_join(t, NULL);
  return failures;
}
/* A thread the collector does not know forks; in the child it registers
   (the only thread there, its id now the process's) and collects: its own
   stack is scanned, not the parent's main stack up to GC_stackbottom. */
static void* fork_from_plain_thread(void* arg) {
  (void)arg;
  const pid_t pid = fork();
  if (pid == 0) {
    struct GC_stack_base sb;
    int ok = GC_get_stack_base(&sb) == GC_SUCCESS && GC_register_my_thread(&sb) == GC_SUCCESS;
    Node* kept = make_tree(8);
    GC_gcollect();
    ok = ok && count_nodes(kept) == (2L << 8) - 1;
    _exit(ok ? 0 : 1);
  }
  int status = 0;
  const int ok = pid > 0 && waitpid(pid, &status, 0) == pid && WIFEXITED(status) && WEXITSTATUS(status) == 0;
  return (void*)(intptr_t)ok;
}
static int fork_test(void) {
  fork_live = make_tree(10);
  GC_allow_register_threads();
  pthread_t t;
  atomic_store(&fork_stop, 0);
  CHECK(GC_pthread_create(&t, NULL, fork_allocator, NULL) == 0, "thread creation failed");
  /* Fork only once the thread is past its start-up: a thread still starting
   * may hold the C library's (or a sanitizer's) allocator locks, and the
   * child of a fork at that moment can hang in malloc whatever collector it
   * uses (GCC 12's ASan runtime has no fork handlers for its allocator). */
  while (!atomic_load(&fork_allocating)) sched_yield();
  for (int i = 0; i < 1000; ++i) (void)GC_base((char*)fork_live + 8);  /* lookups while it allocates */
  const pid_t pid = fork();
  if (pid == 0) _exit(fork_child() == 0 ? 0 : 1);
  int status = 0;
  CHECK(pid > 0 && waitpid(pid, &status, 0) == pid, "fork or waitpid failed");
  CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 0, "the child failed (status %d)", status);
  atomic_store(&fork_stop, 1);
  GC_pthread_join(t, NULL);
  GC_gcollect();
  CHECK(count_nodes(fork_live) == (2L << 10) - 1, "the live tree was damaged");
  pthread_t plain; /* pthread_create, not GC_pthread_create: never registered */
  void* forked_ok = NULL;
  CHECK(pthread_create(&plain, NULL, fork_from_plain_thread, NULL) == 0 && pthread_join(plain, &forked_ok) == 0,
        "the plain thread");
  CHECK(forked_ok != NULL, "the child of a fork from an unregistered thread failed");
  return failures ? 1 : 0;
}

static int exact_sizes(void) {
  void* small = GC_MALLOC(16);
  void* atomic = GC_MALLOC_ATOMIC(48);
  CHECK(GC_size(small) == 16, "GC_size of a 16-byte object: %zu", GC_size(small));
  CHECK(GC_size(atomic) == 48, "GC_size of a 48-byte atomic object: %zu", GC_size(atomic));
  return failures ? 1 : 0;
}

// GC_enable_incremental before GC_INIT (allowed: it initialises): objects
// reachable from a root survive collections whatever mode it gave; prints
// whether the mode is on (bdwgc: yes; tagheap's library: no, documented).
struct list_node {
  struct list_node* next;
  long value;
};
static struct list_node* volatile incremental_root;

static int incremental(void) {
  GC_enable_incremental();
  GC_INIT();
  const GC_word before = GC_get_gc_no();
  for (long i = 0; i < 2000; ++i) {
    struct list_node* n = (struct list_node*)GC_MALLOC(sizeof *n);
    n->next = incremental_root;
    n->value = i;
    incremental_root = n;
  }
  for (int i = 0; i < 400000; ++i) (void)GC_MALLOC(64);
  GC_start_incremental_collection();
  GC_gcollect();
  long sum = 0, count = 0;
  for (struct list_node* n = incremental_root; n != NULL; n = n->next) {
    sum += n->value;
    ++count;
  }
  CHECK(count == 2000 && sum == 1999L * 2000 / 2, "the list lost nodes: %ld nodes, sum %ld", count, sum);
  CHECK(GC_get_gc_no() > before, "no collection in incremental mode");
  printf("incremental mode %d\n", GC_is_incremental_mode());
  return failures ? 1 : 0;
}

// A collection asked for inside a collection, by the start callback and by
// a push-other-roots procedure: tagheap's library ignores it (and says so
// through the warn procedure); bdwgc recursed until its stack overflowed,
// so the script runs this mode on tagheap's library only.
static int nested_warnings;
static void GC_CALLBACK count_warning(char* msg, GC_word arg) {
  (void)msg;
  (void)arg;
  ++nested_warnings;
}
static void GC_CALLBACK collect_from_start_callback(void) {
  GC_gcollect();
  GC_dump();  /* a line saying it cannot, not a second stop of the world */
}
static void GC_CALLBACK collect_from_push(void) {
  GC_gcollect();
  (void)GC_MALLOC(64);  // allocating there is allowed, and collects nothing either
}
static int nested(void) {
  GC_set_warn_proc(count_warning);
  const GC_word before = GC_get_gc_no();
  GC_set_start_callback(collect_from_start_callback);
  GC_gcollect();
  GC_set_start_callback(NULL);
  GC_set_push_other_roots(collect_from_push);
  GC_gcollect();
  GC_gcollect();
  GC_set_push_other_roots(NULL);
  CHECK(GC_get_gc_no() == before + 3, "%lu collections for 3 asked for at the top", (unsigned long)(GC_get_gc_no() - before));
  CHECK(nested_warnings == 3, "%d warnings for 3 nested requests", nested_warnings);
  printf("nested collections ignored\n");
  return failures ? 1 : 0;
}

// Helper markers as bdwgc 8.2 starts them: with GC_MARKERS unset, none
// until the client goes multi-threaded (GC_allow_register_threads here),
// then one per CPU but one; the tree survives collections either way.
// Prints the helpers before and after, for the script to compare.
static int markers(void) {
  Node* tree = make_tree(16);  // 4 to 6 MiB of scanned live data
  GC_gcollect();
  const int before = GC_get_parallel();
  GC_allow_register_threads();
  GC_gcollect();
  const int after = GC_get_parallel();
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wdeprecated-declarations"
  CHECK(GC_parallel == after, "GC_parallel %d, GC_get_parallel %d", GC_parallel, after);
#pragma GCC diagnostic pop
  CHECK(count_nodes(tree) == (1L << 17) - 1, "the tree lost nodes");
  printf("helpers %d %d\n", before, after);
  return failures ? 1 : 0;
}

/* A mark procedure that asks for the markers from inside the collection,
   on whichever marker runs it: GC_get_parallel answers without the lock the
   collection holds, GC_start_mark_threads is ignored (a helper marker would
   wait for that lock, and its collection for the helper). bdwgc would
   deadlock on the second, so the script runs this mode on tagheap's
   library only. */
static atomic_int proc_calls;
static void** proc_tree; /* in the data segment: a root */
static struct GC_ms_entry* asking_proc(GC_word* addr, struct GC_ms_entry* msp, struct GC_ms_entry* lim, GC_word env) {
  (void)env;
  (void)GC_get_parallel();
  GC_start_mark_threads();
  atomic_fetch_add(&proc_calls, 1);
  msp = GC_MARK_AND_PUSH((void*)addr[1], msp, lim, (void**)addr);
  return GC_MARK_AND_PUSH((void*)addr[2], msp, lim, (void**)addr);
}
static int proc_kind;
static void** proc_node(int depth) {
  void** o = (void**)GC_generic_malloc(24, proc_kind);
  if (o == NULL) return NULL;
  if (depth > 0) {
    o[1] = proc_node(depth - 1);
    o[2] = proc_node(depth - 1);
  }
  return o;
}
static long proc_count(void** o) { return o == NULL ? 0 : 1 + proc_count((void**)o[1]) + proc_count((void**)o[2]); }
static int marker_calls(void) {
  GC_allow_register_threads(); /* the helpers join */
  proc_kind = (int)GC_new_kind(GC_new_free_list(), GC_MAKE_PROC(GC_new_proc(asking_proc), 0), 0, 1);
  proc_tree = proc_node(16);
  for (int i = 0; i < 20; ++i) GC_gcollect();
  const long n = proc_count(proc_tree);
  CHECK(n == (2L << 16) - 1, "the tree kept %ld of %ld nodes", n, (2L << 16) - 1);
  CHECK(atomic_load(&proc_calls) >= 20 * n, "the procedure ran %d times for 20 x %ld nodes", atomic_load(&proc_calls), n);
  printf("mark procedures asked for the markers %d times, helpers %d\n", atomic_load(&proc_calls), GC_get_parallel());
  return failures ? 1 : 0;
}

/* GC_set_markers_count before GC_INIT: that many markers once started
   (here 1: no helper even after going multi-threaded), GC_parallel the
   same as GC_get_parallel. */
static int markers_count(void) {
  GC_set_markers_count(1);
  GC_INIT();
  GC_set_markers_count(4); /* after initialisation: no effect */
  Node* tree = make_tree(14);
  GC_allow_register_threads();
  GC_gcollect();
  CHECK(count_nodes(tree) == (2L << 14) - 1, "the tree lost nodes");
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wdeprecated-declarations"
  const int variable = GC_parallel;
#pragma GCC diagnostic pop
  printf("helpers %d, GC_parallel %d\n", GC_get_parallel(), variable);
  return failures ? 1 : 0;
}

int main(int argc, char** argv) {
  if (argc > 1 && strcmp(argv[1], "markers_count") == 0) return markers_count();
  if (argc > 1 && strcmp(argv[1], "marker_calls") == 0) return marker_calls();
  if (argc > 1 && strcmp(argv[1], "markers") == 0) return markers();
  if (argc > 1 && strcmp(argv[1], "incremental") == 0) return incremental();
  if (argc > 1 && strcmp(argv[1], "exact_sizes") == 0) {
    GC_set_all_interior_pointers(0);
    GC_INIT();
    return exact_sizes();
  }
  GC_INIT();
  if (argc > 1 && strcmp(argv[1], "oom") == 0) return oom();
  if (argc > 1 && strcmp(argv[1], "oom_set") == 0) {
    GC_set_max_heap_size(64 << 20);
    return oom();
  }
  if (argc > 1 && strcmp(argv[1], "divisor") == 0) return divisor();
  if (argc > 1 && strcmp(argv[1], "high_water") == 0) return high_water();
  if (argc > 1 && strcmp(argv[1], "granules") == 0) return granules();
  if (argc > 1 && strcmp(argv[1], "growing") == 0) return growing();
  if (argc > 1 && strcmp(argv[1], "compat") == 0) return compat();
  if (argc > 1 && strcmp(argv[1], "bad_links") == 0) return bad_links();
  if (argc > 2 && strcmp(argv[1], "dont_expand") == 0) return dont_expand(atoi(argv[2]));
  if (argc > 1 && strcmp(argv[1], "link_churn") == 0) return link_churn();
  if (argc > 1 && strcmp(argv[1], "expand_absurd") == 0) return expand_absurd();
  if (argc > 1 && strcmp(argv[1], "table_growth") == 0) return table_growth();
  if (argc > 1 && strcmp(argv[1], "dump") == 0) return dump();
  if (argc > 1 && strcmp(argv[1], "fork") == 0) return fork_test();
  if (argc > 1 && strcmp(argv[1], "nested") == 0) return nested();
  settings();
  gcbench();
  finalizers_ordered();
  finalizers_no_order();
  reachable_objects_are_not_finalized();
  client_data_survives();
  disappearing_links();
  malloc_many();
  heap_ptr();
  uncollectable_and_roots();
  push_other_roots();
  enable_disable();
  threads();
  printf("boehm_api_test: %s (%lu collections)\n", failures ? "FAILED" : "ok", (unsigned long)GC_get_gc_no());
  return failures ? 1 : 0;
}
