/* tagheap_gc.h: the mark-sweep collector for VMs written in C.
 *
 * Mirrors gc/mark_sweep.h: a model of callbacks (roots, trace, optional
 * finalize and process_weak), the heap-sizing policy, parallel marking,
 * generational mode with its write barrier, weak slots, ephemerons and
 * ordered finalizers. No exception crosses this header: a C++ exception
 * thrown by a callback makes tagheap_collect return -1 with the runtime as
 * before the collection. The runtime and thread states come from
 * alloc/tagheap_c.h. */
#ifndef TAGHEAP_GC_H_
#define TAGHEAP_GC_H_

#include <stddef.h>
#include <stdint.h>

#include "alloc/tagheap_c.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct tagheap_collector tagheap_collector;
typedef struct tagheap_tracer tagheap_tracer;
typedef struct tagheap_liveness tagheap_liveness;

typedef struct tagheap_gc_model {
  void (*roots)(tagheap_tracer* tracer, void* ctx);                 /* required */
  void (*trace)(void* obj, tagheap_tracer* tracer, void* ctx);      /* required; may run on several threads */
  void (*finalize)(void* obj, void* ctx);                          /* optional: each dead block, in the pause */
  void (*process_weak)(const tagheap_liveness* liveness, void* ctx); /* optional: after marking */
  void* ctx;
} tagheap_gc_model;

typedef struct tagheap_gc_options {
  double heap_growth;       /* <= 0: the default */
  size_t min_budget_bytes;  /* 0: the default */
  unsigned markers;         /* 0: one per CPU the process may use */
  int generational;         /* nonzero: sticky mark bits, minor collections */
  int verify_minor;         /* nonzero: check every minor collection (debugging) */
  int incremental;          /* nonzero: full collections as cycles of short pauses (not with generational) */
  uint64_t mark_step_ns;    /* incremental: marking time of one pause; 0: the default */
  int verify_incremental;   /* nonzero: check every incremental cycle (debugging) */
  double nursery_growth;    /* generational: minor collections every this x old bytes; <= 0: the default */
  size_t parallel_mark_bytes; /* markers 0: a collection expected to mark less marks on the caller alone;
                                 0: the default */
  uint16_t leaf_tags;       /* bit t: GC tag t's blocks hold no GC pointers: marked, never traced */
} tagheap_gc_options;

typedef struct tagheap_collect_stats {
  size_t live_blocks, live_bytes, freed_blocks, freed_bytes;
  uint64_t pause_ns, mark_ns, sweep_ns;
  unsigned markers;
  int minor;
  size_t finalizers_queued;
  int incremental;     /* a pause of an incremental cycle */
  int cycle_done;      /* the cycle (or the whole collection) is over and the sweep began */
  size_t cycle_pauses; /* incremental: pauses of this cycle so far */
  unsigned markers_took_part; /* of markers, those that marked (a helper scheduled too late does not) */
} tagheap_collect_stats;

/* NULL on a missing roots/trace callback, incremental with generational, or out of memory. options may be
 * NULL; a zero-initialised struct gives the defaults. */
tagheap_collector* tagheap_collector_new(tagheap_runtime* runtime, const tagheap_gc_model* model,
                                         const tagheap_gc_options* options);
void tagheap_collector_delete(tagheap_collector* collector);

/* Optional: roots that every marker scans, in pieces (gc/README.md, "Root pieces"). count says how many at
 * the start of each marking round, before the model's roots; mark marks piece i, on several threads at once
 * for different pieces, each piece once a round. Both, or both NULL for the model's roots alone. Between
 * collections: 0, or -1 with only one of them or from a callback of a collection under way. */
int tagheap_collector_set_root_pieces(tagheap_collector* collector, size_t (*count)(void* ctx),
                                      void (*mark)(size_t i, tagheap_tracer* tracer, void* ctx));

/* Any mutator thread: allocation since the last collection passed the budget. */
int tagheap_collection_due(const tagheap_collector* collector);
/* World stopped. 0, or -1 if a callback threw (nothing freed, every mark undone) or a collection already
 * runs (a nested or concurrent call). Incremental mode: one pause of a cycle. stats may be NULL. */
int tagheap_collect(tagheap_collector* collector, tagheap_collect_stats* stats);
int tagheap_collect_full(tagheap_collector* collector, tagheap_collect_stats* stats);
/* After storing a GC pointer into GC object obj (generational and incremental modes; harmless otherwise). */
void tagheap_write_barrier(tagheap_collector* collector, void* obj);
/* Incremental mode: a cycle's marking has begun and not ended (the write barrier is on). A cycle's first
 * pauses may only finish the last cycle's lazy sweep; marking begins in the pause after them. */
int tagheap_collector_is_marking(const tagheap_collector* collector);

/* From roots and trace. */
void tagheap_tracer_mark(tagheap_tracer* tracer, void* obj);
int tagheap_tracer_mark_conservative(tagheap_tracer* tracer, uintptr_t word);
void tagheap_tracer_mark_weak(tagheap_tracer* tracer, void** slot);
void tagheap_tracer_mark_ephemeron(tagheap_tracer* tracer, void* key, void* value);
/* From process_weak. */
int tagheap_liveness_is_live(const tagheap_liveness* liveness, const void* obj);

/* Ordered (ordered != 0) or unordered finalizer; fn NULL unregisters. 0, or -1 out of memory. */
typedef void (*tagheap_finalizer_fn)(void* obj, void* data);
int tagheap_register_finalizer(tagheap_collector* collector, void* obj, tagheap_finalizer_fn fn, void* data,
                               int ordered);
/* Runs queued finalizers on the calling thread; returns how many ran. */
size_t tagheap_run_finalizers(tagheap_collector* collector);

#ifdef __cplusplus
}
#endif

#endif /* TAGHEAP_GC_H_ */
