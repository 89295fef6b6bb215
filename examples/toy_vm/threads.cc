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
//   (the spawner may drop the Thread object at once); the result is
//   reachable only through the Thread object, so an unreferenced thread's
//   result is garbage.
//
//   join waits inside world.blocking(), so a collection need not wait for
//   it. Errors in a thread are printed there and raised again by join.
#include <pthread.h>

#include <cstring>
#include <ostream>
#include <string>

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
    try {
      Scope s(m);
      Value& thunk = m.push(h->thunk);
      const Value r = apply(m, thunk, nullptr, 0);
      h->result = r;
    } catch (VmError& e) {
      h->failed = true;
      h->error = e.what();
      std::lock_guard lock(start.vm->out_mu());
      start.vm->err() << format_error(start.vm->opts().script_name, e) << " (in thread " << h->id << ")"
                      << std::endl;
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

Value Vm::join(Mutator& m, Value thread) {
  ThreadHandle* h = thread.as<Thread>()->handle;
  m.safe_.store(true);
  world_.blocking([&] {
    std::lock_guard lock(h->join_mu);
    if (!h->joined) pthread_join(h->thread, nullptr);
    h->joined = true;
  });
  m.safe_.store(false);
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
    m.safe_.store(true);
    world_.blocking([&] {
      std::lock_guard lock(next->join_mu);
      if (!next->joined) pthread_join(next->thread, nullptr);
      next->joined = true;
    });
    m.safe_.store(false);
  }
}

}  // namespace tvm
