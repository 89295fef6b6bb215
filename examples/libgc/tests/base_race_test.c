/* base_race_test.c: GC_base, GC_is_heap_ptr, GC_size and link
 * registration from threads that do not own the objects, while their owners
 * allocate (GC_MALLOC and GC_malloc_many) and free on the same pages (Guile checks every set-car! target
 * with GC_is_heap_ptr, whichever thread made the pair). Run under TSan by
 * base_race_test.sh: any data race fails it; answers are checked exactly.
 *
 * Collections are off (GC_disable): the race under test is between lookups
 * and owners, not with the collector.
 */
#define GC_THREADS 1
#define GC_NO_THREAD_REDIRECTS 1
#include <gc/gc.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

enum { kOwners = 2, kLookers = 2, kSlots = 256, kRounds = 20000 };

/* Objects the owners publish (live to the end); lookers ask about them. */
static _Atomic(char*) slots[kOwners][kSlots];
static atomic_int owners_done = 0;
static atomic_long bad = 0;

static void* owner(void* arg) {
  const long id = (long)(intptr_t)arg;
  unsigned seed = (unsigned)id * 7919u + 1;
  for (long i = 0; i < kRounds; ++i) {
    seed = seed * 1103515245u + 12345u;
    const size_t size = 8 + (seed >> 16) % 120;
    char* p;
    if (i % 8 == 0) {
      /* A list from GC_malloc_many (one entry into the allocator for its
       * blocks): the first published, the rest freed. */
      p = (char*)GC_malloc_many(size);
      for (void* q = GC_NEXT(p); q != NULL;) {
        void* next = GC_NEXT(q);
        GC_FREE(q);
        q = next;
      }
      GC_NEXT(p) = NULL;
    } else {
      p = (char*)GC_MALLOC(size);
    }
    /* Published objects stay allocated (no collection runs, and the owner
     * never frees them); the owner's frees touch the same bitmaps. */
    atomic_store(&slots[id][i % kSlots], p);
    GC_FREE(GC_MALLOC(size));
  }
  atomic_fetch_add(&owners_done, 1);
  return NULL;
}

static void* looker(void* arg) {
  long round = 0;
  void* link = GC_MALLOC_UNCOLLECTABLE(sizeof(void*));
  while (atomic_load(&owners_done) < kOwners || round < 1000) {
    const long id = round % kOwners;
    char* p = atomic_load(&slots[id][(round * 31 + (long)(intptr_t)arg) % kSlots]);
    ++round;
    if (p == NULL) continue;
    if (GC_base(p + 3) != p) atomic_fetch_add(&bad, 1);
    if (!GC_is_heap_ptr(p)) atomic_fetch_add(&bad, 1);
    if (GC_size(p) < 8) atomic_fetch_add(&bad, 1);
    if (round % 64 == 0) {
      *(void**)link = p;
      GC_general_register_disappearing_link((void**)link, p);
      GC_unregister_disappearing_link((void**)link);
    }
  }
  return NULL;
}

int main(void) {
  GC_INIT();
  GC_disable();
  GC_allow_register_threads();
  pthread_t ids[kOwners + kLookers];
  for (long i = 0; i < kOwners; ++i) GC_pthread_create(&ids[i], NULL, owner, (void*)(intptr_t)i);
  for (long i = 0; i < kLookers; ++i) GC_pthread_create(&ids[kOwners + i], NULL, looker, (void*)(intptr_t)i);
  for (int i = 0; i < kOwners + kLookers; ++i) GC_pthread_join(ids[i], NULL);
  const long b = atomic_load(&bad);
  printf("base_race_test: %s (%ld wrong answers)\n", b == 0 ? "ok" : "FAILED", b);
  return b == 0 ? 0 : 1;
}
