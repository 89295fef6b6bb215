// The collector's C API (gc/tagheap_gc.h): gc::MarkSweep over a model of C
// callbacks. Two adapters, so a model without a finalize callback gets no
// finalization pass. No exception leaves an extern "C" function.
#include "gc/tagheap_gc.h"

#include <memory>
#include <mutex>
#include <new>

#include "gc/internal/c_handles.h"
#include "gc/mark_sweep.h"

namespace {

using tagheap::gc::Liveness;
using tagheap::gc::Tracer;

tagheap_tracer* to_c(Tracer& t) { return reinterpret_cast<tagheap_tracer*>(&t); }
Tracer& from_c(tagheap_tracer* t) { return *reinterpret_cast<Tracer*>(t); }

struct CModel {
  tagheap_gc_model m;
  // tagheap_collector_set_root_pieces's, both or neither, under a lock: a
  // VM may set them from one thread while another collects (refused, but
  // the refusal's test and the collection's read race). A round uses the
  // pair root_pieces() read, whatever is set meanwhile.
  using CountFn = std::size_t (*)(void* ctx);
  using MarkFn = void (*)(std::size_t i, tagheap_tracer* tracer, void* ctx);
  std::mutex pieces_mu{};
  CountFn pieces_count = nullptr;
  MarkFn pieces_mark = nullptr;
  MarkFn round_mark = nullptr;  // this round's, written before the helpers start
  void roots(Tracer& t) { m.roots(to_c(t), m.ctx); }
  void trace(void* obj, Tracer& t) { m.trace(obj, to_c(t), m.ctx); }
  void process_weak(const Liveness& l) {
    if (m.process_weak != nullptr) m.process_weak(reinterpret_cast<const tagheap_liveness*>(&l), m.ctx);
  }
  // No pieces set: a claim per marker a round, nothing else.
  std::size_t root_pieces() {
    CountFn count;
    {
      std::lock_guard lock(pieces_mu);
      count = pieces_count;
      round_mark = pieces_mark;
    }
    return count != nullptr ? count(m.ctx) : 0;
  }
  void mark_root_piece(std::size_t i, Tracer& t) { round_mark(i, to_c(t), m.ctx); }
};
struct CFinalizingModel : CModel {
  void finalize(void* obj) noexcept { m.finalize(obj, m.ctx); }
};

void copy_stats(const tagheap::gc::CollectStats& s, tagheap_collect_stats* out) {
  if (out == nullptr) return;
  *out = tagheap_collect_stats{s.live_blocks, s.live_bytes, s.freed_blocks,      s.freed_bytes, s.pause_ns,
                               s.mark_ns,     s.sweep_ns,   s.markers,           s.minor,       s.finalizers_queued,
                               s.incremental, s.cycle_done, s.cycle_pauses, s.markers_took_part};
}

}  // namespace

struct tagheap_collector {
  virtual ~tagheap_collector() = default;
  virtual bool due() const noexcept = 0;
  virtual tagheap::gc::CollectStats collect(bool full) = 0;
  virtual void barrier(void* obj) noexcept = 0;
  virtual bool marking() const noexcept = 0;
  virtual std::pair<tagheap::gc::FinalizerFn, void*> finalizer(void* obj, tagheap::gc::FinalizerFn fn, void* data,
                                                               tagheap::gc::FinalizerOrder order) = 0;
  virtual std::size_t run_finalizers() = 0;
  virtual bool set_root_pieces(std::size_t (*count)(void*), void (*mark)(std::size_t, tagheap_tracer*, void*)) = 0;
};

namespace {
template <class Model>
struct Collector final : tagheap_collector {
  Model model;
  tagheap::gc::MarkSweep<Model> ms;
  Collector(tagheap::Runtime& rt, const tagheap_gc_model& m, const tagheap::gc::Options& o)
      : model{{m}}, ms(rt, model, o) {}
  bool due() const noexcept override { return ms.collection_due(); }
  tagheap::gc::CollectStats collect(bool full) override { return full ? ms.collect_full() : ms.collect(); }
  void barrier(void* obj) noexcept override { ms.write_barrier(obj); }
  bool marking() const noexcept override { return ms.is_marking(); }
  std::pair<tagheap::gc::FinalizerFn, void*> finalizer(void* obj, tagheap::gc::FinalizerFn fn, void* data,
                                                       tagheap::gc::FinalizerOrder order) override {
    return ms.register_finalizer(obj, fn, data, order);
  }
  std::size_t run_finalizers() override { return ms.run_finalizers(); }
  bool set_root_pieces(std::size_t (*count)(void*), void (*mark)(std::size_t, tagheap_tracer*, void*)) override {
    if ((count == nullptr) != (mark == nullptr)) return false;
    std::lock_guard lock(model.pieces_mu);
    if (ms.is_collecting()) return false;
    model.pieces_count = count;
    model.pieces_mark = mark;
    return true;
  }
};

int collect(tagheap_collector* c, tagheap_collect_stats* stats, bool full) {
  try {
    copy_stats(c->collect(full), stats);
    return 0;
  } catch (...) {
    return -1;
  }
}
}  // namespace

extern "C" {

tagheap_collector* tagheap_collector_new(tagheap_runtime* runtime, const tagheap_gc_model* model,
                                         const tagheap_gc_options* options) {
  if (runtime == nullptr || model == nullptr || model->roots == nullptr || model->trace == nullptr) return nullptr;
  tagheap::gc::Options o;
  if (options != nullptr) {
    if (options->heap_growth > 0) o.heap_growth = options->heap_growth;
    if (options->min_budget_bytes != 0) o.min_budget_bytes = options->min_budget_bytes;
    o.markers = options->markers;
    o.generational = options->generational != 0;
    o.verify_minor = options->verify_minor != 0;
    o.incremental = options->incremental != 0;
    if (options->mark_step_ns != 0) o.mark_step_ns = options->mark_step_ns;
    o.verify_incremental = options->verify_incremental != 0;
    if (options->nursery_growth > 0) o.nursery_growth = options->nursery_growth;
    if (options->parallel_mark_bytes != 0) o.parallel_mark_bytes = options->parallel_mark_bytes;
    o.leaf_tags = tagheap::TagSet::from_bits(options->leaf_tags);
  }
  try {
    if (model->finalize != nullptr) return new Collector<CFinalizingModel>(runtime->rt, *model, o);
    return new Collector<CModel>(runtime->rt, *model, o);
  } catch (...) {
    return nullptr;
  }
}
void tagheap_collector_delete(tagheap_collector* collector) { delete collector; }

int tagheap_collector_set_root_pieces(tagheap_collector* collector, size_t (*count)(void* ctx),
                                      void (*mark)(size_t i, tagheap_tracer* tracer, void* ctx)) {
  return collector->set_root_pieces(count, mark) ? 0 : -1;
}

int tagheap_collection_due(const tagheap_collector* collector) { return collector->due() ? 1 : 0; }
int tagheap_collect(tagheap_collector* collector, tagheap_collect_stats* stats) {
  return collect(collector, stats, false);
}
int tagheap_collect_full(tagheap_collector* collector, tagheap_collect_stats* stats) {
  return collect(collector, stats, true);
}
void tagheap_write_barrier(tagheap_collector* collector, void* obj) { collector->barrier(obj); }
int tagheap_collector_is_marking(const tagheap_collector* collector) { return collector->marking() ? 1 : 0; }

void tagheap_tracer_mark(tagheap_tracer* tracer, void* obj) { from_c(tracer).mark(obj); }
int tagheap_tracer_mark_conservative(tagheap_tracer* tracer, uintptr_t word) {
  return from_c(tracer).mark_conservative(word) ? 1 : 0;
}
void tagheap_tracer_mark_weak(tagheap_tracer* tracer, void** slot) { from_c(tracer).mark_weak(slot); }
void tagheap_tracer_mark_ephemeron(tagheap_tracer* tracer, void* key, void* value) {
  from_c(tracer).mark_ephemeron(key, value);
}
int tagheap_liveness_is_live(const tagheap_liveness* liveness, const void* obj) {
  return reinterpret_cast<const Liveness*>(liveness)->is_live(obj) ? 1 : 0;
}

int tagheap_register_finalizer(tagheap_collector* collector, void* obj, tagheap_finalizer_fn fn, void* data,
                               int ordered) {
  try {
    collector->finalizer(obj, fn, data,
                         ordered ? tagheap::gc::FinalizerOrder::kOrdered : tagheap::gc::FinalizerOrder::kUnordered);
    return 0;
  } catch (...) {
    return -1;
  }
}
size_t tagheap_run_finalizers(tagheap_collector* collector) {
  std::size_t n = 0;
  for (;;) {
    try {
      return n + collector->run_finalizers();
    } catch (...) {
      ++n;  // a C++ finalizer threw: it has run; go on with the rest
    }
  }
}

}  // extern "C"
