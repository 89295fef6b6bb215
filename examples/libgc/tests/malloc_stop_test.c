/* malloc_stop_test.c: collections while other threads are inside glibc's
 * malloc. A thread is stopped by signal wherever it is, so it may hold a
 * malloc arena lock through the whole pause; a collector that calls malloc
 * or free before resuming then waits for that lock forever.
 *
 * malloc_stop_test.sh runs this with glibc's tunables set so that every
 * thread shares one arena and no per-thread cache hides a call
 * (glibc.malloc.arena_max=1, glibc.malloc.tcache_count=0), under a timeout:
 * a hang is the failure. Registered finalizers and disappearing links give
 * the collector's finalization and weak processing work on every collection
 * (tagheap's gc::MarkSweep keeps the weak slots it meets in a vector made
 * afresh in each pause).
 */
#define GC_THREADS 1
#define GC_NO_THREAD_REDIRECTS 1
#include <gc/gc.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

enum { kChurners = 3, kCollections = 300, kFinalizable = 64, kLinks = 4096 };

static atomic_int stop = 0;

/* malloc and free of sizes past any per-thread cache: mostly inside the
 * arena lock. */
static void* churn(void* arg) {
  unsigned seed = (unsigned)(intptr_t)arg;
  void* keep[16] = {0};
  while (!atomic_load_explicit(&stop, memory_order_relaxed)) {
    seed = seed * 1103515245u + 12345u;
    const unsigned i = (seed >> 8) % 16;
    free(keep[i]);
    keep[i] = malloc(1024 + (seed >> 16) % 8192);
  }
  for (int i = 0; i < 16; ++i) free(keep[i]);
  return NULL;
}

static void GC_CALLBACK never(void* obj, void* cd) {
  (void)obj;
  (void)cd;
}

static void* kept[kFinalizable]; /* in the data segment: roots */
static void* linked[kLinks];      /* roots too: the links are never cleared */
static void* links[kLinks];       /* the link slots */

int main(void) {
  GC_INIT();
  GC_allow_register_threads();
  for (int i = 0; i < kFinalizable; ++i) {
    kept[i] = GC_MALLOC(32);
    GC_REGISTER_FINALIZER(kept[i], never, NULL, NULL, NULL);
  }
  for (int i = 0; i < kLinks; ++i) {
    linked[i] = GC_MALLOC(16);
    links[i] = linked[i];
    GC_general_register_disappearing_link(&links[i], linked[i]);
  }
  pthread_t ids[kChurners];
  for (long i = 0; i < kChurners; ++i) GC_pthread_create(&ids[i], NULL, churn, (void*)(intptr_t)(i + 1));
  for (int i = 0; i < kCollections; ++i) {
    for (int j = 0; j < 100; ++j) (void)GC_MALLOC(64); /* garbage, and a mark stack to fill */
    GC_gcollect();
  }
  atomic_store(&stop, 1);
  for (int i = 0; i < kChurners; ++i) GC_pthread_join(ids[i], NULL);
  int cleared = 0;
  for (int i = 0; i < kLinks; ++i) cleared += links[i] != linked[i];
  printf("malloc_stop_test: %s (%lu collections, %d links cleared)\n", cleared ? "FAILED" : "ok",
         (unsigned long)GC_get_gc_no(), cleared);
  return cleared ? 1 : 0;
}
