/* tagheap_c.h: the allocation and walking calls for VMs written in C.
 *
 * Mirrors alloc/tagheap.h and gc/visit.h. Functions that can fail return
 * NULL (or a negative value) instead of throwing: an invalid tag makes
 * tagheap_heap_allocate return NULL and tagheap_visit_blocks return -1. */
#ifndef TAGHEAP_C_H_
#define TAGHEAP_C_H_

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
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

tagheap_runtime* tagheap_runtime_new(const tagheap_runtime_options* options);
void tagheap_runtime_delete(tagheap_runtime* runtime);

tagheap_thread_state* tagheap_thread_state_new(tagheap_runtime* runtime);
void tagheap_thread_state_delete(tagheap_thread_state* ts);
int tagheap_thread_state_attach(tagheap_thread_state* ts); /* 0, or -1 if another is attached */
void tagheap_thread_state_detach(tagheap_thread_state* ts);
void tagheap_thread_state_abandon(tagheap_thread_state* ts);

void* tagheap_heap_allocate(tagheap_thread_state* ts, unsigned tag, size_t size);
void* tagheap_heap_allocate_zeroed(tagheap_thread_state* ts, unsigned tag, size_t size);
void tagheap_free(void* p);
size_t tagheap_usable_size(const void* p);
int tagheap_tag_of(const void* p);
void* tagheap_find_block(const void* p);

/* World stopped. Returns the number of blocks visited, or -1 on a bad tag set. */
long tagheap_visit_blocks(tagheap_runtime* runtime, uint16_t tags, tagheap_visit_fn fn, void* arg);
long tagheap_visit_gc_blocks(tagheap_runtime* runtime, tagheap_visit_fn fn, void* arg);

#ifdef __cplusplus
}
#endif

#endif /* TAGHEAP_C_H_ */
