/* The collector's C API (gc/tagheap_gc.h), from C: a graph of nodes, roots
 * and trace callbacks, a collection that keeps exactly the reachable nodes,
 * a weak slot, an ordered finalizer, generational mode with its write
 * barrier, incremental mode, root pieces, and leaf tags. Exits non-zero (with a
 * message) on the first wrong verdict. */
#include <stdio.h>
#include <unistd.h>
#include <stdlib.h>

#include "gc/tagheap_gc.h"

typedef struct node {
  struct node* next;
  struct node* weak;
  long id;
} node;

typedef struct vm {
  node* root;
  int finalized;
  long finalized_id;
} vm;

static int failures = 0;
#define EXPECT(cond)                                              \
  do {                                                            \
    if (!(cond)) {                                                \
      fprintf(stderr, "%s:%d: FAILED: %s\n", __FILE__, __LINE__, #cond); \
      ++failures;                                                 \
    }                                                             \
  } while (0)

static void roots(tagheap_tracer* t, void* ctx) { tagheap_tracer_mark(t, ((vm*)ctx)->root); }
static void trace(void* obj, tagheap_tracer* t, void* ctx) {
  node* n = (node*)obj;
  (void)ctx;
  tagheap_tracer_mark(t, n->next);
  tagheap_tracer_mark_weak(t, (void**)&n->weak);
}
/* As trace, and counts the blocks of tag 2 it is handed (a leaf tag when
 * the options say so). */
static int g_leaves_traced = 0;
static void trace_leaf_aware(void* obj, tagheap_tracer* t, void* ctx) {
  if (tagheap_tag_of(obj) == 2) ++g_leaves_traced;
  tagheap_tracer_mark(t, ((node*)obj)->next);
  (void)ctx;
}
static void on_finalize(void* obj, void* data) {
  vm* v = (vm*)data;
  v->finalized++;
  v->finalized_id = ((node*)obj)->id;
}

/* Root pieces: each piece is the head of a list; the plain roots are none. */
enum { kPieces = 32 };
static node* g_piece_heads[kPieces];
static size_t g_piece_count = 0;
static int g_piece_marks[kPieces]; /* per piece, atomically: pieces may run on several markers */
static size_t root_pieces(void* ctx) {
  (void)ctx;
  return g_piece_count;
}
static void mark_root_piece(size_t i, tagheap_tracer* t, void* ctx) {
  (void)ctx;
  __atomic_fetch_add(&g_piece_marks[i], 1, __ATOMIC_RELAXED);
  tagheap_tracer_mark(t, g_piece_heads[i]);
}
/* As trace; and asks to drop the pieces while the collection runs, when set. */
static tagheap_collector* g_set_pieces_from = NULL;
static int g_set_pieces_refused = 0, g_set_pieces_accepted = 0;
static void trace_pieces(void* obj, tagheap_tracer* t, void* ctx) {
  if (g_set_pieces_from != NULL) {
    int* outcome = tagheap_collector_set_root_pieces(g_set_pieces_from, NULL, NULL) == 0 ? &g_set_pieces_accepted
                                                                                         : &g_set_pieces_refused;
    __atomic_store_n(outcome, 1, __ATOMIC_RELAXED);
  }
  trace(obj, t, ctx);
}
static void no_roots(tagheap_tracer* t, void* ctx) {
  (void)t;
  (void)ctx;
}

static node* make(tagheap_thread_state* ts, long id, node* next) {
  node* n = (node*)tagheap_heap_allocate(ts, 1, sizeof(node));
  n->next = next;
  n->weak = NULL;
  n->id = id;
  return n;
}

static long count_gc(tagheap_runtime* rt) { return tagheap_visit_gc_blocks(rt, NULL, NULL); }

static int count_fn(const tagheap_block_ref* b, void* arg) {
  (void)b;
  ++*(long*)arg;
  return 1;
}

int main(void) {
  tagheap_runtime_options ro = {1u << 1, 0};
  tagheap_runtime* rt = tagheap_runtime_new(&ro);
  tagheap_thread_state* ts = tagheap_thread_state_new(rt);
  EXPECT(tagheap_thread_state_attach(ts) == 0);
  vm v = {NULL, 0, 0};
  tagheap_gc_model model = {roots, trace, NULL, NULL, &v};
  tagheap_gc_model no_trace = {roots, NULL, NULL, NULL, &v};
  EXPECT(tagheap_collector_new(rt, &no_trace, NULL) == NULL);

  tagheap_collector* c = tagheap_collector_new(rt, &model, NULL);
  EXPECT(c != NULL);
  for (long i = 0; i < 1000; ++i) v.root = make(ts, i, v.root);
  for (long i = 0; i < 500; ++i) make(ts, 5000 + i, NULL); /* garbage */
  node* weak_target = make(ts, 9999, NULL);
  v.root->weak = weak_target;
  tagheap_collect_stats s;
  EXPECT(tagheap_collect(c, &s) == 0);
  EXPECT(s.live_blocks == 1000);
  EXPECT(s.freed_blocks == 501);
  EXPECT(s.markers >= 1 && s.markers_took_part >= 1 && s.markers_took_part <= s.markers);
  EXPECT(v.root->weak == NULL);
  long n = 0;
  tagheap_visit_gc_blocks(rt, count_fn, &n);
  EXPECT(n == 1000);
  (void)count_gc;

  /* An ordered finalizer on the list's second node, once it is cut off. */
  node* second = v.root->next;
  EXPECT(tagheap_register_finalizer(c, second, on_finalize, &v, 1) == 0);
  v.root->next = NULL;
  EXPECT(tagheap_collect(c, &s) == 0);
  EXPECT(s.finalizers_queued == 1);
  EXPECT(tagheap_run_finalizers(c) == 1);
  EXPECT(v.finalized == 1 && v.finalized_id == 998);
  EXPECT(tagheap_collect(c, &s) == 0);
  EXPECT(s.live_blocks == 1);
  tagheap_collector_delete(c);

  /* parallel_mark_bytes: a bar of one byte puts every hardware thread on
   * even this tiny heap (the default leaves it to the caller alone). */
  tagheap_gc_options po = {0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 0};
  c = tagheap_collector_new(rt, &model, &po);
  EXPECT(tagheap_collect(c, &s) == 0);
  EXPECT(sysconf(_SC_NPROCESSORS_ONLN) < 2 || s.markers >= 2);
  tagheap_collector_delete(c);

  /* Generational: the barrier keeps a young node stored into an old one. */
  tagheap_gc_options go = {0, 0, 2, 1, 1, 0, 0, 0, 0.25, 0, 0};
  c = tagheap_collector_new(rt, &model, &go);
  EXPECT(tagheap_collect(c, &s) == 0); /* full: the root is old */
  EXPECT(!s.minor);
  v.root->next = make(ts, 42, NULL);
  tagheap_write_barrier(c, v.root);
  EXPECT(tagheap_collect(c, &s) == 0);
  EXPECT(s.minor);
  EXPECT(s.live_blocks == 1);
  EXPECT(v.root->next->id == 42);
  EXPECT(tagheap_collect_full(c, &s) == 0);
  EXPECT(s.live_blocks == 2);
  tagheap_collector_delete(c);

  /* Incremental with generational: refused. */
  tagheap_gc_options both = {0, 0, 1, 1, 0, 1, 0, 0, 0, 0, 0};
  EXPECT(tagheap_collector_new(rt, &model, &both) == NULL);

  /* Incremental: a cycle of pauses; a node stored into a traced one
   * between pauses survives through the barrier. 1 ns steps: a pause
   * traces 16 to 64 objects. */
  tagheap_gc_options io = {0, 0, 1, 0, 0, 1, 1, 1, 0, 0, 0};
  c = tagheap_collector_new(rt, &model, &io);
  EXPECT(c != NULL);
  node* chain = NULL;
  for (long i = 0; i < 1000; ++i) chain = make(ts, 100 + i, chain);
  v.root->next = chain;
  /* The first pauses may only finish the earlier collections' lazy sweep
   * (one segment per 1 ns pause); marking begins in the pause after. */
  int pauses = 0;
  do {
    EXPECT(tagheap_collect(c, &s) == 0);
    ++pauses;
  } while (!tagheap_collector_is_marking(c) && !s.cycle_done && pauses < 1000);
  EXPECT(s.incremental && !s.cycle_done);
  EXPECT(tagheap_collector_is_marking(c));
  node* late = make(ts, 7, NULL);
  v.root->weak = NULL;
  chain->weak = NULL;
  late->next = chain->next;
  chain->next = late; /* chain's head was traced in the first pause */
  tagheap_write_barrier(c, chain);
  while (tagheap_collector_is_marking(c)) {
    EXPECT(tagheap_collect(c, &s) == 0);
    ++pauses;
  }
  EXPECT(s.cycle_done);
  EXPECT(pauses > 2 && (size_t)pauses == s.cycle_pauses);
  EXPECT(chain->next == late && late->id == 7);
  EXPECT(s.live_blocks == 1002);
  tagheap_collector_delete(c);

  /* Root pieces: every marker claims some; each is marked once a
   * collection. Only one of the two callbacks: refused. */
  tagheap_gc_model piece_model = {no_roots, trace_pieces, NULL, NULL, &v};
  c = tagheap_collector_new(rt, &piece_model, &po); /* every hardware thread marks */
  EXPECT(c != NULL);
  EXPECT(tagheap_collector_set_root_pieces(c, root_pieces, NULL) == -1);
  EXPECT(tagheap_collector_set_root_pieces(c, root_pieces, mark_root_piece) == 0);
  for (size_t i = 0; i < kPieces; ++i) {
    g_piece_heads[i] = NULL;
    for (long k = 0; k < 100; ++k) g_piece_heads[i] = make(ts, (long)i * 1000 + k, g_piece_heads[i]);
  }
  g_piece_count = kPieces;
  EXPECT(tagheap_collect(c, &s) == 0);
  EXPECT(s.live_blocks == 100 * kPieces); /* v's nodes went: only pieces are roots now */
  for (size_t i = 0; i < kPieces; ++i) EXPECT(g_piece_marks[i] == 1);
  g_piece_count = kPieces / 2;
  EXPECT(tagheap_collect(c, &s) == 0);
  EXPECT(s.live_blocks == 100 * kPieces / 2);
  for (size_t i = 0; i < kPieces; ++i) EXPECT(g_piece_marks[i] == (i < kPieces / 2 ? 2 : 1));
  /* From a callback of a collection under way: refused, the pieces stay. */
  g_set_pieces_from = c;
  EXPECT(tagheap_collect(c, &s) == 0);
  EXPECT(g_set_pieces_refused && !g_set_pieces_accepted);
  EXPECT(s.live_blocks == 100 * kPieces / 2);
  g_set_pieces_from = NULL;
  EXPECT(tagheap_collector_set_root_pieces(c, NULL, NULL) == 0); /* roots alone again: none */
  EXPECT(tagheap_collect(c, &s) == 0);
  EXPECT(s.live_blocks == 0);
  tagheap_collector_delete(c);

  v.root = NULL;
  tagheap_thread_state_detach(ts);
  tagheap_thread_state_delete(ts);
  tagheap_runtime_delete(rt);

  /* Leaf tags: tag 2's blocks are marked and kept through the nodes that
   * point to them, but never traced (the trace callback would follow their
   * first word to the bait node and keep it). */
  tagheap_runtime_options lro = {(1u << 1) | (1u << 2), 0};
  rt = tagheap_runtime_new(&lro);
  ts = tagheap_thread_state_new(rt);
  EXPECT(tagheap_thread_state_attach(ts) == 0);
  tagheap_gc_model leaf_model = {roots, trace_leaf_aware, NULL, NULL, &v};
  tagheap_gc_options lo = {0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 1u << 2};
  c = tagheap_collector_new(rt, &leaf_model, &lo);
  EXPECT(c != NULL);
  node* bait = make(ts, 1, NULL);
  v.root = make(ts, 2, NULL);
  node* leaf = (node*)tagheap_heap_allocate(ts, 2, sizeof(node));
  leaf->next = bait;
  leaf->weak = NULL;
  leaf->id = -1;
  v.root->next = leaf;
  g_leaves_traced = 0;
  EXPECT(tagheap_collect(c, &s) == 0);
  EXPECT(s.live_blocks == 2); /* the root and the leaf; the bait went */
  EXPECT(g_leaves_traced == 0);
  EXPECT(leaf->id == -1);
  v.root = NULL;
  EXPECT(tagheap_collect(c, &s) == 0);
  EXPECT(s.live_blocks == 0);
  tagheap_collector_delete(c);
  tagheap_thread_state_detach(ts);
  tagheap_thread_state_delete(ts);
  tagheap_runtime_delete(rt);
  printf("%s\n", failures == 0 ? "collector C API: all passed" : "collector C API: FAILED");
  return failures == 0 ? 0 : 1;
}
