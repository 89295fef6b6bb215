/* tagheap_c.h: the allocation and walking calls for VMs written in C.
 *
 * Mirrors alloc/tagheap.h and gc/visit.h. No exception ever crosses this
 * interface (each function is noexcept to C++ callers, and catches what the
 * C++ side throws): functions that can fail return NULL or -1 instead. Out
 * of memory makes tagheap_runtime_new, tagheap_thread_state_new and the
 * allocation calls return NULL; an invalid tag makes tagheap_heap_allocate
 * return NULL; a visit that cannot run returns -1. A visitor callback must
 * not throw either (one that does ends the process). */
#ifndef TAGHEAP_C_H_
#define TAGHEAP_C_H_

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
#define TAGHEAP_C_NOEXCEPT noexcept
extern "C" {
#else
#define TAGHEAP_C_NOEXCEPT
#endif

typedef struct tagheap_runtime tagheap_runtime;
typedef struct tagheap_thread_state tagheap_thread_state;

typedef struct tagheap_runtime_options {
  uint16_t gc_tags;  /* bit t set: tag t holds GC objects */
  int debug_fill;    /* nonzero: 0xCD fresh, 0xDD freed */
} tagheap_runtime_options;

typedef struct tagheap_block_ref {
  void* block;
  size_t size;
  uint8_t tag;
} tagheap_block_ref;

/* Returns nonzero to go on, zero to stop the walk. */
typedef int (*tagheap_visit_fn)(const tagheap_block_ref* block, void* arg);

/* NULL when memory runs out. */
tagheap_runtime* tagheap_runtime_new(const tagheap_runtime_options* options) TAGHEAP_C_NOEXCEPT;
void tagheap_runtime_delete(tagheap_runtime* runtime) TAGHEAP_C_NOEXCEPT;

/* NULL when memory runs out. */
tagheap_thread_state* tagheap_thread_state_new(tagheap_runtime* runtime) TAGHEAP_C_NOEXCEPT;
void tagheap_thread_state_delete(tagheap_thread_state* ts) TAGHEAP_C_NOEXCEPT;
int tagheap_thread_state_attach(tagheap_thread_state* ts) TAGHEAP_C_NOEXCEPT; /* 0, or -1 if another is attached */
void tagheap_thread_state_detach(tagheap_thread_state* ts) TAGHEAP_C_NOEXCEPT;
void tagheap_thread_state_abandon(tagheap_thread_state* ts) TAGHEAP_C_NOEXCEPT;

/* NULL when memory runs out or the tag is >= 16. */
void* tagheap_heap_allocate(tagheap_thread_state* ts, unsigned tag, size_t size) TAGHEAP_C_NOEXCEPT;
void* tagheap_heap_allocate_zeroed(tagheap_thread_state* ts, unsigned tag, size_t size) TAGHEAP_C_NOEXCEPT;
void tagheap_free(void* p) TAGHEAP_C_NOEXCEPT;
size_t tagheap_usable_size(const void* p) TAGHEAP_C_NOEXCEPT;
/* The usable size of the block an allocation of size bytes gets (tagheap::good_size); 0 for a size
   no allocation can have. */
size_t tagheap_good_size(size_t size) TAGHEAP_C_NOEXCEPT;
int tagheap_tag_of(const void* p) TAGHEAP_C_NOEXCEPT;
void* tagheap_find_block(const void* p) TAGHEAP_C_NOEXCEPT;
/* 1 if p lies in memory one of runtime's segments covers (a block, free or
 * not): tagheap::in_runtime_memory, from any thread, world running. */
int tagheap_in_runtime_memory(const tagheap_runtime* runtime, const void* p) TAGHEAP_C_NOEXCEPT;

/* World stopped. Returns the number of blocks visited, or -1 if the walk
 * could not run. */
long tagheap_visit_blocks(tagheap_runtime* runtime, uint16_t tags, tagheap_visit_fn fn, void* arg) TAGHEAP_C_NOEXCEPT;
long tagheap_visit_gc_blocks(tagheap_runtime* runtime, tagheap_visit_fn fn, void* arg) TAGHEAP_C_NOEXCEPT;

#ifdef __cplusplus
}
#endif

#endif /* TAGHEAP_C_H_ */
