// boehm_api.cc: the exported C functions, with the names and meanings of
// Debian's bdwgc 8.2 headers (included here, so every signature is checked
// against them). Each is a thin door into the files of this folder; the
// version script (libgc.lds) exports GC_* and nothing else.
#define GC_THREADS 1              // declare the thread functions...
#define GC_NO_THREAD_REDIRECTS 1  // ...without renaming pthread_create here
#include <dlfcn.h>
#include <gc/gc.h>
#include <gc/gc_inline.h>
#include <gc/gc_mark.h>
#include <gc/gc_typed.h>
#include <pthread.h>

#include <atomic>
#include <climits>
#include <cstdint>
#include <cstdio>
#include <cstring>

#include "examples/libgc/boehm_hooks.h"
#include "examples/libgc/collector.h"
#include "examples/libgc/finalization.h"
#include "examples/libgc/heap.h"
#include "examples/libgc/object_scan.h"
#include "examples/libgc/roots.h"
#include "examples/libgc/threads.h"
#include "examples/libgc/typed.h"

namespace lg = tagheap::libgc;

// This file implements bdwgc's deprecated names too (its variables, the
// stubborn and debug allocators): their uses here are not warnings.
#pragma GCC diagnostic ignored "-Wdeprecated-declarations"

namespace {

std::atomic<unsigned long> g_time_limit_ms{GC_TIME_UNLIMITED};  // GC_set_time_limit

// The size bdwgc reports for an object: the whole block, extra byte included.
std::size_t object_size(const void* p) { return tagheap::usable_size(p); }

struct StartArgs {
  void* (*fn)(void*);
  void* arg;
};

void* registered_thread_start(void* raw) {
  StartArgs a = *static_cast<StartArgs*>(raw);
  lg::register_current_thread(nullptr, false);
  lg::free_object(raw);
  void* result = a.fn(a.arg);
  lg::unregister_current_thread();
  return result;
}

// p's bits, out of an opaque asm: gc.h declares many arguments
// GC_ATTR_NONNULL, and GCC folds a check of one against null to false
// unless the value comes from where it cannot see.
std::uintptr_t opaque_bits(const void* p) noexcept {
  auto bits = reinterpret_cast<std::uintptr_t>(p);
  asm("" : "+r"(bits));
  return bits;
}

// The calling thread's allocation not yet added to the global count
// (heap.h, kFlushBytes), added now: the statistics getters are exact for a
// single-threaded client, as bdwgc's are.
void count_own_allocation() noexcept {
  if (lg::ThreadRecord* t = lg::current_thread(); t != nullptr) lg::flush_allocation_count(*t);
}

}  // namespace

extern "C" {

// bdwgc's plausible-heap bounds, which GC_MARK_AND_PUSH compares against
// before calling GC_mark_and_push: all user space (find_block decides).
void* GC_least_plausible_heap_addr = reinterpret_cast<void*>(std::uintptr_t{4096});
void* GC_greatest_plausible_heap_addr = reinterpret_cast<void*>(~std::uintptr_t{0} >> 16);
// bdwgc's deprecated variable: the helper markers (GC_get_parallel), kept
// by collector.cc.
// bdwgc's other variables a client may read or write directly (Neko sets
// GC_no_dls and GC_java_finalization and reads GC_all_interior_pointers);
// GC_init reads GC_all_interior_pointers as bdwgc does. (GC_stackbottom
// lives in threads.cc, GC_dont_expand, GC_full_freq and GC_max_retries in
// policy.cc.)
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wdeprecated-declarations"
int GC_parallel = 0;
int GC_all_interior_pointers = 1;
int GC_java_finalization = 1;
int GC_no_dls = 0;
#pragma GCC diagnostic pop

// --- initialisation and collection ---------------------------------------

void GC_init(void) {
  // A client that cleared the variable before GC_init asked for what
  // GC_set_all_interior_pointers(0) asks.
  if (__atomic_load_n(&GC_all_interior_pointers, __ATOMIC_RELAXED) == 0 && !lg::initialized())
    lg::set_all_interior_pointers(false);
  lg::init();
  lg::current_thread_or_register();
}
int GC_is_init_called(void) { return lg::initialized() ? 1 : 0; }
void GC_gcollect(void) { lg::collect("GC_gcollect"); }
// One marker (collector.cc): no marker threads to start.
void GC_start_mark_threads(void) { lg::start_mark_threads(); }
int GC_get_parallel(void) { return static_cast<int>(lg::helper_markers()); }
void GC_set_markers_count(unsigned n) { lg::set_markers_count(n); }
void GC_gcollect_and_unmap(void) { lg::collect("GC_gcollect_and_unmap"); }
int GC_try_to_collect(GC_stop_func) { return lg::collect("GC_try_to_collect") ? 1 : 0; }
// No incremental mode: it needs dirty bits for conservatively scanned
// objects (bdwgc's write protection or the kernel's soft-dirty bits), which
// this library does not keep. As a bdwgc built without it, asking for it
// initialises and stays stop-the-world, and the mode reads as off: programs
// that enable it unconditionally (Boehm's GCBench with
// GCB_BOEHM_INCREMENTAL) run unchanged.
void GC_enable_incremental(void) { lg::init(); }
// Kept for the getter; a collection here is never incremental, so never
// cut short.
void GC_set_time_limit(unsigned long ms) { g_time_limit_ms.store(ms, std::memory_order_relaxed); }
unsigned long GC_get_time_limit(void) { return g_time_limit_ms.load(std::memory_order_relaxed); }
int GC_is_incremental_mode(void) { return 0; }
int GC_incremental_protection_needs(void) { return GC_PROTECTS_NONE; }
void GC_start_incremental_collection(void) { lg::collect("GC_start_incremental_collection"); }
// Collects when a collection is due, and says no work is left.
int GC_collect_a_little(void) {
  lg::init();
  if (lg::collection_due()) lg::collect("GC_collect_a_little");
  return 0;
}
void GC_enable(void) { lg::enable(); }
void GC_disable(void) { lg::disable(); }
int GC_is_disabled(void) { return lg::is_disabled() ? 1 : 0; }
int GC_expand_hp(size_t bytes) {
  lg::init();
  return lg::expand_heap(bytes) ? 1 : 0;
}
void GC_set_max_heap_size(GC_word bytes) { lg::set_max_heap_size(bytes); }
void GC_set_free_space_divisor(GC_word divisor) {
  lg::init();  // GC_FREE_SPACE_DIVISOR is read first, then overridden
  lg::set_free_space_divisor(divisor);
}
GC_word GC_get_free_space_divisor(void) { return lg::free_space_divisor(); }
// The counters below include the calling thread's allocation not yet
// added to the global count (count_own_allocation).
size_t GC_get_heap_size(void) { return lg::heap_size(); }
size_t GC_get_free_bytes(void) {
  count_own_allocation();
  return lg::heap_size() - lg::live_bytes() - lg::bytes_since_collection();
}
size_t GC_get_bytes_since_gc(void) {
  count_own_allocation();
  return lg::bytes_since_collection();
}
size_t GC_get_total_bytes(void) {
  count_own_allocation();
  return lg::total_allocated();
}
size_t GC_get_memory_use(void) {
  count_own_allocation();
  return lg::live_bytes() + lg::bytes_since_collection();
}
GC_word GC_get_gc_no(void) { return lg::collections(); }
void GC_get_heap_usage_safe(GC_word* heap_size, GC_word* free_bytes, GC_word* unmapped_bytes,
                            GC_word* bytes_since_gc, GC_word* total_bytes) {
  if (heap_size) *heap_size = GC_get_heap_size();
  if (free_bytes) *free_bytes = GC_get_free_bytes();
  if (unmapped_bytes) *unmapped_bytes = 0;
  if (bytes_since_gc) *bytes_since_gc = GC_get_bytes_since_gc();
  if (total_bytes) *total_bytes = GC_get_total_bytes();
}
// See object_scan.h for the rule these set.
// Kept for the getter. Loaded objects' data segments are scanned all the
// same (dl_iterate_phdr, roots.h): more roots than asked for can only keep
// more alive, and bdwgc may scan the main program's through this switch.
void GC_set_no_dls(int on) { __atomic_store_n(&GC_no_dls, on, __ATOMIC_RELAXED); }
int GC_get_no_dls(void) { return __atomic_load_n(&GC_no_dls, __ATOMIC_RELAXED); }
void GC_set_all_interior_pointers(int on) {
  lg::set_all_interior_pointers(on != 0);
  __atomic_store_n(&GC_all_interior_pointers, on != 0 ? 1 : 0, __ATOMIC_RELAXED);
}
int GC_get_all_interior_pointers(void) { return lg::all_interior_pointers() ? 1 : 0; }
void GC_register_displacement(size_t offset) { lg::register_displacement(offset); }
// Ready objects always keep what they reach alive until finalized, which
// is what Java-style finalization asks for: the setting is kept for the
// getter (and the variable) only.
void GC_set_java_finalization(int on) { __atomic_store_n(&GC_java_finalization, on, __ATOMIC_RELAXED); }
int GC_get_java_finalization(void) { return __atomic_load_n(&GC_java_finalization, __ATOMIC_RELAXED); }
void GC_set_finalize_on_demand(int on) { lg::set_finalize_on_demand(on != 0); }
int GC_get_finalize_on_demand(void) { return lg::finalize_on_demand() ? 1 : 0; }
void GC_set_finalizer_notifier(GC_finalizer_notifier_proc fn) { lg::set_finalizer_notifier(fn); }
GC_finalizer_notifier_proc GC_get_finalizer_notifier(void) { return lg::finalizer_notifier(); }
void GC_set_start_callback(GC_start_callback_proc fn) { lg::set_start_callback(fn); }
GC_start_callback_proc GC_get_start_callback(void) { return lg::start_callback(); }
void GC_set_warn_proc(GC_warn_proc p) { lg::set_warn_proc(p); }
GC_warn_proc GC_get_warn_proc(void) { return lg::warn_proc(); }
void GC_set_oom_fn(GC_oom_func f) { lg::set_oom_fn(f); }
GC_oom_func GC_get_oom_fn(void) { return lg::oom_fn(); }
void GC_dump(void) {
  std::fprintf(stderr, "tagheap libgc: %llu collections, live %zu bytes, %zu since the last, heap %zu\n",
               static_cast<unsigned long long>(lg::collections()), lg::live_bytes(), lg::bytes_since_collection(),
               lg::heap_size());
  lg::print_heap_by_kind(stderr);
}

// --- allocation -------------------------------------------------------------

void* GC_malloc(size_t n) { return lg::allocate_or_oom(n, lg::kKindNormal); }
void* GC_malloc_atomic(size_t n) { return lg::allocate_or_oom(n, lg::kKindPtrfree); }
void* GC_malloc_uncollectable(size_t n) { return lg::allocate_or_oom(n, lg::kKindUncollectable); }
void* GC_malloc_atomic_uncollectable(size_t n) { return lg::allocate_or_oom(n, lg::kKindAtomicUncollectable); }
void* GC_malloc_ignore_off_page(size_t n) { return GC_malloc(n); }
void* GC_malloc_atomic_ignore_off_page(size_t n) { return GC_malloc_atomic(n); }
void* GC_malloc_kind(size_t n, int k) { return lg::allocate_or_oom(n, static_cast<unsigned>(k)); }
void* GC_generic_malloc(size_t n, int k) { return lg::allocate_or_oom(n, static_cast<unsigned>(k)); }
void* GC_generic_malloc_ignore_off_page(size_t n, int k) { return GC_generic_malloc(n, k); }
void* GC_generic_malloc_uncollectable(size_t n, int k) {
  return lg::allocate_or_oom(n, lg::kind(static_cast<unsigned>(k)).scanned ? lg::kKindUncollectable
                                                                        : lg::kKindAtomicUncollectable);
}

// A list of objects linked through their first word (GC_NEXT).
void GC_generic_malloc_many(size_t n, int k, void** result) {
  *result = lg::allocate_many(n, static_cast<unsigned>(k));
}
void* GC_malloc_many(size_t n) {
  void* result = nullptr;
  GC_generic_malloc_many(n, lg::kKindNormal, &result);
  return result;
}

void* GC_memalign(size_t align, size_t n) {
  // Blocks are 16-byte aligned; larger alignments are asked of tagheap's
  // size classes by rounding the size up (a power-of-two class aligns).
  if (align <= 16) return GC_malloc(n);
  size_t rounded = align;
  while (rounded < n + 1) rounded *= 2;
  void* p = GC_malloc(rounded - 1);
  if (p != nullptr && (reinterpret_cast<std::uintptr_t>(p) & (align - 1)) != 0) {
    lg::free_object(p);
    return nullptr;
  }
  return p;
}
int GC_posix_memalign(void** out, size_t align, size_t n) {
  if (align < sizeof(void*) || (align & (align - 1)) != 0) return 22;  // EINVAL
  void* p = GC_memalign(align, n);
  if (p == nullptr) return 12;  // ENOMEM
  *out = p;
  return 0;
}
char* GC_strdup(const char* s) {
  if (s == nullptr) return nullptr;
  const size_t n = std::strlen(s);
  auto* p = static_cast<char*>(GC_malloc_atomic(n + 1));
  if (p != nullptr) std::memcpy(p, s, n + 1);
  return p;
}
char* GC_strndup(const char* s, size_t max) {
  // gc.h declares s nonnull (opaque_bits). bdwgc crashes on a null string;
  // NULL, as GC_strdup.
  if (opaque_bits(s) == 0) return nullptr;
  const size_t n = strnlen(s, max);
  auto* p = static_cast<char*>(GC_malloc_atomic(n + 1));
  if (p != nullptr) {
    std::memcpy(p, s, n);
    p[n] = '\0';
  }
  return p;
}

void GC_free(void* p) {
  if (p == nullptr) return;
  if (lg::finalizers_registered() != 0) lg::forget_freed_object(p);
  lg::free_object(p);
}

void* GC_realloc(void* p, size_t n) {
  if (p == nullptr) return GC_malloc(n);
  if (n == 0) {
    GC_free(p);
    return nullptr;
  }
  const size_t old = tagheap::usable_size(p);
  const unsigned k = lg::kind_number_of_tag(tagheap::tag_of(p));
  if (n + lg::extra_bytes() <= old && n + lg::extra_bytes() >= old / 2) {  // fits, and not much too big: keep it
    if (lg::kind(k).clear) std::memset(static_cast<char*>(p) + n, 0, old - n);
    return p;
  }
  void* q = lg::allocate(n, k);
  if (q == nullptr) return lg::out_of_memory(n);
  std::memcpy(q, p, std::min(old, n));
  GC_free(p);
  return q;
}

void* GC_base(void* p) {
  if (!lg::initialized()) return nullptr;
  return lg::find_block_from_mutator(p);
}
void* GC_is_visible(void* p) { return p; }
// Anywhere in the heap's memory, free blocks included, as bdwgc answers
// (its HDR(p) != 0): reads no page, so no lookup handshake (Guile asks on
// every set-car!).
int GC_is_heap_ptr(const void* p) { return lg::initialized() && tagheap::in_runtime_memory(p, lg::runtime()) ? 1 : 0; }
size_t GC_size(const void* p) { return object_size(p); }

// Explicitly typed objects (typed.h). An array from GC_calloc_explicitly_typed
// is scanned whole: a superset of what its element bitmap names.
GC_descr GC_make_descriptor(const GC_word* bitmap, size_t len) { return lg::make_descriptor(bitmap, len); }
void* GC_malloc_explicitly_typed(size_t n, GC_descr d) {
  void* p = lg::allocate_typed(n, d);
  return p != nullptr ? p : lg::out_of_memory(n);
}
void* GC_malloc_explicitly_typed_ignore_off_page(size_t n, GC_descr d) { return GC_malloc_explicitly_typed(n, d); }
void* GC_calloc_explicitly_typed(size_t count, size_t n, GC_descr) {
  if (n != 0 && count > SIZE_MAX / n) return nullptr;
  return GC_malloc(count * n);
}

// --- kinds and mark procedures ---------------------------------------------

void** GC_new_free_list(void) {
  // bdwgc's kinds own a free-list array; tagheap's heaps are the free lists,
  // so this is only a distinct, never-read token.
  return static_cast<void**>(GC_malloc_uncollectable(sizeof(void*)));
}
void** GC_new_free_list_inner(void) { return GC_new_free_list(); }
unsigned GC_new_proc(GC_mark_proc proc) {
  lg::init();
  return lg::new_mark_proc(reinterpret_cast<lg::MarkProc>(proc));
}
unsigned GC_new_proc_inner(GC_mark_proc proc) { return GC_new_proc(proc); }
unsigned GC_new_kind(void**, GC_word descr, int adjust, int clear) {
  const GC_word tag = descr & GC_DS_TAGS;
  if (tag == GC_DS_PROC) {
    const auto proc = static_cast<unsigned>((descr >> GC_DS_TAG_BITS) & (GC_MAX_MARK_PROCS - 1));
    const std::uintptr_t env = descr >> (GC_DS_TAG_BITS + GC_LOG_MAX_MARK_PROCS);
    return lg::new_kind(true, proc, env, clear != 0);
  }
  // A length descriptor of 0 that is not adjusted to the object: nothing to
  // scan. Anything else (lengths, bitmaps): the whole object, conservatively.
  const bool scanned = !(tag == GC_DS_LENGTH && descr == 0 && adjust == 0);
  return lg::new_kind(scanned, lg::kNoMarkProc, 0, clear != 0);
}
unsigned GC_new_kind_inner(void** fl, GC_word descr, int adjust, int clear) {
  return GC_new_kind(fl, descr, adjust, clear);
}
struct GC_ms_entry* GC_mark_and_push(void* obj, struct GC_ms_entry* msp, struct GC_ms_entry*, void**) {
  lg::mark_from_procedure(reinterpret_cast<std::uintptr_t>(obj));
  return msp;
}
// For a push-other-roots procedure or a mark procedure, while marking (ECL
// pushes its Lisp stacks so): the range's words as heap words. Without
// incremental mode every page counts as dirty, so the conditional push is
// the same.
void GC_push_all(void* lo, void* hi) { lg::mark_range_from_procedure(lo, hi); }
void GC_push_all_eager(void* lo, void* hi) { lg::mark_range_from_procedure(lo, hi); }
void GC_push_conditional(void* lo, void* hi, int) { lg::mark_range_from_procedure(lo, hi); }
// While marking: the object containing p is kept, and (unlike bdwgc, which
// leaves it unscanned) traced like any marked object, which can only keep
// more alive. Outside a collection nothing is pending to keep it from.
void GC_set_mark_bit(const void* p) { lg::mark_from_procedure(reinterpret_cast<std::uintptr_t>(p)); }
void GC_set_push_other_roots(GC_push_other_roots_proc fn) { GC_push_other_roots = fn; }
GC_push_other_roots_proc GC_get_push_other_roots(void) { return GC_push_other_roots; }

// --- roots ------------------------------------------------------------------

void GC_add_roots(void* lo, void* hi) {
  lg::init();
  lg::add_roots(lo, hi);
}
void GC_remove_roots(void* lo, void* hi) {
  lg::init();
  lg::remove_roots(lo, hi);
}
void GC_clear_roots(void) {
  lg::init();
  lg::clear_roots();
}

// --- finalization and disappearing links ------------------------------------

void GC_register_finalizer(void* obj, GC_finalization_proc fn, void* cd, GC_finalization_proc* ofn, void** ocd) {
  lg::register_finalizer(obj, fn, cd, true, ofn, ocd);
}
void GC_register_finalizer_ignore_self(void* obj, GC_finalization_proc fn, void* cd, GC_finalization_proc* ofn,
                                       void** ocd) {
  lg::register_finalizer(obj, fn, cd, true, ofn, ocd);
}
void GC_register_finalizer_no_order(void* obj, GC_finalization_proc fn, void* cd, GC_finalization_proc* ofn,
                                    void** ocd) {
  lg::register_finalizer(obj, fn, cd, false, ofn, ocd);
}
int GC_invoke_finalizers(void) { return lg::invoke_finalizers(); }
int GC_should_invoke_finalizers(void) { return lg::finalizers_ready() ? 1 : 0; }
// A link slot the collector would write through: not null, aligned. bdwgc
// aborts on a bad one ("Bad link arg"); a null slot used to be accepted
// here and crashed the next collection that cleared it. Refused with a
// warning, nothing registered or moved.
static bool good_link_slot(void** link, const char* what) noexcept {
  const std::uintptr_t bits = opaque_bits(link);
  if (bits != 0 && bits % sizeof(void*) == 0) return true;
  lg::warn(what, static_cast<unsigned long>(reinterpret_cast<std::uintptr_t>(link)));
  return false;
}
int GC_general_register_disappearing_link(void** link, const void* obj) {
  if (!good_link_slot(link, "tagheap libgc: bad link %#lx to GC_general_register_disappearing_link: ignored\n"))
    return GC_NO_MEMORY;
  lg::init();
  return lg::register_link(link, obj);
}
int GC_register_disappearing_link(void** link) {
  void* base = GC_base(link);
  return base != nullptr ? GC_general_register_disappearing_link(link, base) : GC_NOT_FOUND;
}
int GC_unregister_disappearing_link(void** link) { return lg::unregister_link(link); }
int GC_move_disappearing_link(void** link, void** new_link) {
  if (!good_link_slot(new_link, "tagheap libgc: bad new link %#lx to GC_move_disappearing_link: not moved\n"))
    return GC_NOT_FOUND;
  return lg::move_link(link, new_link);
}

// --- threads ----------------------------------------------------------------

// The client goes multi-threaded: bdwgc 8.2 starts its helper markers here
// and at the first GC_pthread_create (Guile calls only this one).
void GC_allow_register_threads(void) { lg::start_default_markers(); }
int GC_thread_is_registered(void) { return lg::current_thread() != nullptr ? 1 : 0; }
int GC_get_stack_base(struct GC_stack_base* sb) {
  sb->mem_base = lg::stack_base_of_current_thread();
  return GC_SUCCESS;
}
void* GC_call_with_stack_base(GC_stack_base_func fn, void* arg) {
  GC_stack_base sb{};
  GC_get_stack_base(&sb);
  return fn(&sb, arg);
}
int GC_register_my_thread(const struct GC_stack_base* sb) {
  lg::init();
  if (lg::register_current_thread(static_cast<char*>(sb->mem_base), false)) return GC_SUCCESS;
  lg::current_thread()->implicit = false;
  return GC_DUPLICATE;
}
int GC_unregister_my_thread(void) { return lg::unregister_current_thread() ? GC_SUCCESS : GC_NOT_FOUND; }
// A blocked thread is stopped by the same signal as a running one (the
// call it blocks in is restarted), so these need no bookkeeping.
void* GC_do_blocking(GC_fn_type fn, void* arg) { return fn(arg); }
void* GC_call_with_gc_active(GC_fn_type fn, void* arg) { return fn(arg); }
// The registry lock is the one every collection holds from stop to resume.
void* GC_call_with_alloc_lock(GC_fn_type fn, void* arg) {
  lg::init();
  lg::RegistryLock lock;
  return fn(arg);
}
int GC_get_suspend_signal(void) { return lg::kSuspendSignal; }
int GC_get_thr_restart_signal(void) { return lg::kResumeSignal; }
void GC_set_suspend_signal(int) {}      // fixed: SIGPWR
void GC_set_thr_restart_signal(int) {}  // fixed: SIGXCPU

int GC_pthread_create(pthread_t* id, const pthread_attr_t* attr, void* (*fn)(void*), void* arg) {
  lg::init();
  lg::current_thread_or_register();
  lg::start_default_markers();
  auto* a = static_cast<StartArgs*>(lg::allocate(sizeof(StartArgs), lg::kKindUncollectable));
  if (a == nullptr) return 11;  // EAGAIN
  *a = StartArgs{fn, arg};
  const int rc = pthread_create(id, attr, registered_thread_start, a);
  if (rc != 0) lg::free_object(a);
  return rc;
}
int GC_pthread_join(pthread_t id, void** result) { return pthread_join(id, result); }
int GC_pthread_detach(pthread_t id) { return pthread_detach(id); }
void GC_pthread_exit(void* result) {
  lg::unregister_current_thread();
  pthread_exit(result);
}
int GC_pthread_cancel(pthread_t id) { return pthread_cancel(id); }
int GC_pthread_sigmask(int how, const sigset_t* set, sigset_t* old) {
  if (set == nullptr || how == SIG_UNBLOCK) return pthread_sigmask(how, set, old);
  sigset_t fixed = *set;  // the collector's signals are never blocked
  sigdelset(&fixed, lg::kSuspendSignal);
  sigdelset(&fixed, lg::kResumeSignal);
  return pthread_sigmask(how, &fixed, old);
}
void* GC_dlopen(const char* path, int mode) { return dlopen(path, mode); }

// --- the rest of what Debian's libgc users import ----------------------------
// (asymptote, Crystal, Inkscape, Macaulay2, Neko, Parser 3: each imports a
// few of these; without them the program would not load or would stop at
// its first call. tests/debian_imports.txt lists every name they import, and
// boehm_api_test checks the list against the library's exports.)

void GC_set_dont_expand(int on) { __atomic_store_n(&GC_dont_expand, on, __ATOMIC_RELAXED); }
int GC_get_dont_expand(void) { return __atomic_load_n(&GC_dont_expand, __ATOMIC_RELAXED); }
void GC_set_full_freq(int n) { __atomic_store_n(&GC_full_freq, n, __ATOMIC_RELAXED); }
int GC_get_full_freq(void) { return __atomic_load_n(&GC_full_freq, __ATOMIC_RELAXED); }
void GC_set_max_retries(GC_word n) { __atomic_store_n(&GC_max_retries, n, __ATOMIC_RELAXED); }
GC_word GC_get_max_retries(void) { return __atomic_load_n(&GC_max_retries, __ATOMIC_RELAXED); }
unsigned GC_get_version(void) {
  return (GC_VERSION_MAJOR << 16) | (GC_VERSION_MINOR << 8) | GC_VERSION_MICRO;  // the API we implement
}
// Fork is always handled (threads.cc installs its pthread_atfork handlers
// at initialisation); the request is accepted and changes nothing.
void GC_set_handle_fork(int) {}
void GC_abort_on_oom(void) {
  std::fputs("Insufficient memory for the allocation\n", stderr);
  std::abort();
}
void GC_ignore_warn_proc(char*, GC_word) {}

// Stubborn objects are ordinary ones since bdwgc 7.
void* GC_malloc_stubborn(size_t n) { return GC_malloc(n); }
void GC_change_stubborn(const void*) {}
void GC_end_stubborn_change(const void*) {}

// The debugging allocator: the same objects, without bdwgc's debug header
// (no smashed-object checks), so a GC_DEBUG build of a client runs as its
// release build does. Every GC_debug_ call takes and returns the objects
// the others do.
void* GC_debug_malloc(size_t n, GC_EXTRA_PARAMS) { return GC_malloc(n); }
void* GC_debug_malloc_atomic(size_t n, GC_EXTRA_PARAMS) { return GC_malloc_atomic(n); }
void* GC_debug_malloc_uncollectable(size_t n, GC_EXTRA_PARAMS) { return GC_malloc_uncollectable(n); }
void* GC_debug_malloc_atomic_uncollectable(size_t n, GC_EXTRA_PARAMS) { return GC_malloc_atomic_uncollectable(n); }
void* GC_debug_malloc_ignore_off_page(size_t n, GC_EXTRA_PARAMS) { return GC_malloc_ignore_off_page(n); }
void* GC_debug_malloc_atomic_ignore_off_page(size_t n, GC_EXTRA_PARAMS) {
  return GC_malloc_atomic_ignore_off_page(n);
}
void* GC_debug_malloc_stubborn(size_t n, GC_EXTRA_PARAMS) { return GC_malloc(n); }
void* GC_debug_malloc_replacement(size_t n) { return GC_malloc(n); }
void* GC_debug_realloc(void* p, size_t n, GC_EXTRA_PARAMS) { return GC_realloc(p, n); }
void* GC_debug_realloc_replacement(void* p, size_t n) { return GC_realloc(p, n); }
char* GC_debug_strdup(const char* str, GC_EXTRA_PARAMS) { return GC_strdup(str); }
char* GC_debug_strndup(const char* str, size_t n, GC_EXTRA_PARAMS) { return GC_strndup(str, n); }
void GC_debug_free(void* p) { GC_free(p); }
void GC_debug_change_stubborn(const void*) {}
void GC_debug_end_stubborn_change(const void*) {}
void GC_debug_register_displacement(size_t n) { GC_register_displacement(n); }
void GC_debug_register_finalizer(void* obj, GC_finalization_proc fn, void* cd, GC_finalization_proc* ofn,
                                 void** ocd) {
  GC_register_finalizer(obj, fn, cd, ofn, ocd);
}
void GC_debug_register_finalizer_ignore_self(void* obj, GC_finalization_proc fn, void* cd, GC_finalization_proc* ofn,
                                             void** ocd) {
  GC_register_finalizer_ignore_self(obj, fn, cd, ofn, ocd);
}
void GC_debug_register_finalizer_no_order(void* obj, GC_finalization_proc fn, void* cd, GC_finalization_proc* ofn,
                                          void** ocd) {
  GC_register_finalizer_no_order(obj, fn, cd, ofn, ocd);
}

}  // extern "C"
