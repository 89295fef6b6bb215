// threads.cc: (spawn thunk) and (join thread).
//
// Design
//   spawn makes a ThreadHandle (owned by the Vm until it ends) and a Thread
//   object pointing at it, then starts an OS thread with a 64 MiB stack. The
//   new thread makes its own Mutator (a ThreadState attached through the
//   World), calls the thunk, stores the result in the handle and tears its
//   Mutator down: its pages are abandoned to the runtime's pool, where the
//   collector still walks them and later threads reclaim them by tag.
//
//   Roots: until the thread is done, the Vm's handle list roots its thunk
//   and its Thread object (the spawner may drop it at once); the result is
//   reachable only through the Thread object, so an unreferenced thread's
//   result is garbage. The result's store is followed by the write barrier
//   on the Thread object, which is alive then (a root until done).
//
//   join waits inside Mutator::blocking(), so a collection need not wait
//   for it (nor for a second joiner waiting on join_mu meanwhile). A join
//   that would wait for the joining thread itself, directly (self-join) or
//   through a chain of threads joining each other, is a VmError instead of
//   a deadlock: each handle records whom it joins, under handles_mu, and a
//   new join first follows that chain from its target. Errors in a thread
//   are printed there and raised again by join.
#include <pthread.h>

#include <cstring>
#include <ostream>
#include <string>

#include "examples/toy_vm/barrier.h"
#include "examples/toy_vm/error.h"
#include "examples/toy_vm/eval.h"
#include "examples/toy_vm/heap.h"
#include "examples/toy_vm/vm.h"

namespace tvm {

namespace {
constexpr std::size_t kThreadStack = std::size_t{64} << 20;

struct Start {
  Vm* vm;
  ThreadHandle* handle;
};

void* thread_main(void* arg) {
  const Start start = *static_cast<Start*>(arg);
  delete static_cast<Start*>(arg);
  ThreadHandle* h = start.handle;
  {
    Mutator m(*start.vm);
    m.thread_handle = h;
    try {
      Scope s(m);
      Value& thunk = m.push(h->thunk);
      const Value r = apply(m, thunk, nullptr, 0);
      h->result = r;  // traced through the Thread object, rooted until done
      write_barrier(m, h->object);
    } catch (VmError& e) {
      h->failed = true;
      h->error = e.what();
      start.vm->write(m, Vm::Stream::kErr,
                      format_error(start.vm->opts().script_name, e) + " (in thread " + std::to_string(h->id) + ")\n");
    }
    h->done.store(true, std::memory_order_release);
  }
  return nullptr;
}
}  // namespace

Value Vm::spawn(Mutator& m, Value thunk) {
  Scope s(m);
  Value& fn = m.push(thunk);
  auto owned = std::make_unique<ThreadHandle>();
  ThreadHandle* h = owned.get();
  h->thunk = fn;
  auto* obj = static_cast<Thread*>(m.gc_alloc(sizeof(Thread), Type::kThread));
  obj->handle = h;
  h->object = Value::ptr(obj);
  Value& result = m.push(Value::ptr(obj));
  {
    std::lock_guard lock(handles_mu_);
    h->id = next_thread_id_++;
    handles_.push_back(std::move(owned));
  }
  pthread_attr_t attr;
  pthread_attr_init(&attr);
  pthread_attr_setstacksize(&attr, kThreadStack);
  auto* start = new Start{this, h};
  const int rc = pthread_create(&h->thread, &attr, thread_main, start);
  pthread_attr_destroy(&attr);
  if (rc != 0) {
    delete start;
    h->joined = true;  // nothing to join
    h->failed = true;
    h->error = std::string("cannot create a thread: ") + std::strerror(rc);
    h->done.store(true, std::memory_order_release);
    throw VmError("spawn: " + h->error);
  }
  return result;
}

namespace {
// Waits for h's OS thread inside m.blocking(); any number of joiners.
void wait_for(Mutator& m, ThreadHandle* h) {
  m.blocking([&] {
    std::lock_guard lock(h->join_mu);
    if (!h->joined) pthread_join(h->thread, nullptr);
    h->joined = true;
  });
}
}  // namespace

Value Vm::join(Mutator& m, Value thread) {
  ThreadHandle* h = thread.as<Thread>()->handle;
  ThreadHandle* self = m.thread_handle;
  if (self != nullptr) {  // the main thread is joined by nobody: no cycle through it
    std::lock_guard lock(handles_mu_);
    for (const ThreadHandle* w = h; w != nullptr; w = w->joining) {
      if (w != self) continue;
      if (h == self) throw VmError("join: thread " + std::to_string(h->id) + " cannot join itself");
      throw VmError("join: thread " + std::to_string(h->id) + " is waiting (through joins) for thread " +
                    std::to_string(self->id) + ", which would wait for it: a deadlock");
    }
    self->joining = h;
  }
  struct Done {
    Vm& vm;
    ThreadHandle* self;
    ~Done() {
      if (self == nullptr) return;
      std::lock_guard lock(vm.handles_mu_);
      self->joining = nullptr;
    }
  } done{*this, self};
  wait_for(m, h);
  if (h->failed) throw VmError("join: thread " + std::to_string(h->id) + " failed: " + h->error);
  return h->result;
}

void Vm::join_all(Mutator& m) {
  for (;;) {
    ThreadHandle* next = nullptr;
    {
      std::lock_guard lock(handles_mu_);
      for (auto& h : handles_) {
        if (!h->joined.load()) {
          next = h.get();
          break;
        }
      }
    }
    if (next == nullptr) return;
    wait_for(m, next);
  }
}

}  // namespace tvm
