// Runtimes: the abandoned pool, huge pages, and the public Runtime.
#include "alloc/runtime.h"

#include <cstdlib>
#include <cstring>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include "alloc/heap.h"
#include "alloc/heap_walk.h"
#include "alloc/internal/lookup_guard.h"
#include "alloc/internal/runtime_core.h"
#include "alloc/os.h"
#include "alloc/thread_state.h"

namespace tagheap::internal {

RuntimeCore::RuntimeCore(const RuntimeOptions& opts) : options(opts) {}

RuntimeCore::~RuntimeCore() {
  // Every thread state is gone, each having flushed and given back its buffer.
  for (RemoteFreeBuffer* b = remote_free_buffers.load(std::memory_order_relaxed); b != nullptr;) {
    RemoteFreeBuffer* next = b->next;
    b->~RemoteFreeBuffer();
    os::unmap(b, remote_free_buffer_bytes());
    b = next;
  }
  // Pages still in lists are unmapped with their segments; unlink them first
  // so safe-mode hooks do not complain.
  for (TagShard& shard : shards) {
    for (auto& bin : shard.bins) bin.clear();
    shard.full.clear();
    shard.huge.clear();
  }
}

void* RuntimeCore::allocate_huge(Tag tag, std::size_t size, std::size_t align, bool debug_fill) noexcept {
  check_no_walk("a huge allocation");
  if (size > kMaxAllocation || align >= kSegmentSize) return nullptr;  // absurd: never a block
  size = (size + 15) & ~std::size_t{15};
  Page* page = segments.take_huge_page(size, align);
  if (page == nullptr) return nullptr;
  page->init(size, 0, tag, debug_fill, align);
  page->used = 1;
  page->free_word(0) = 0;
  asan::unpoison(page->blocks_start, size);
  allocated_bytes[tag].fetch_add(size, std::memory_order_relaxed);
  {
    TagShard& shard = shards[tag];
    std::lock_guard lock(shard.mu);
    shard.huge.push_back(*page);
  }
  void* block = reinterpret_cast<void*>(page->blocks_start);
  if (debug_fill) std::memset(block, kFillFresh, size);
  return block;
}

void RuntimeCore::free_huge(Page* page, std::uintptr_t p) noexcept {
  TagShard& shard = shards[page->tag];
  std::unique_lock lock(shard.mu);
  if (!page->in_use || page->used == 0)
    fatal("tagheap: double free of huge block %p", reinterpret_cast<void*>(p));
  if (p != page->blocks_start)
    fatal("tagheap: free(%p): interior pointer into the huge block at %p", reinterpret_cast<void*>(p),
          reinterpret_cast<void*>(page->blocks_start));
  // Invariant 7 on every path: the block may stay mapped (the huge cache,
  // or a walk standing on it), and a dangling pointer must then read 0xDD.
  if (page->debug_fill) std::memset(reinterpret_cast<void*>(p), kFillFreed, page->block_size);
  page->used = 0;
  page->free_word(0) = 1;
  if (page->in_walk) return;  // the walk gives it back when it leaves the page
  shard.huge.erase(shard.huge.iterator_to(*page));
  lock.unlock();
  release_page(page);
}

void RuntimeCore::abandon_page_locked(TagShard& shard, Page* page) noexcept {
  page->drop_cache();
  page->owner_token().store(0, std::memory_order_release);
  page->heap = nullptr;
  page->set_in_full(false);
  sweep_if_pending(page);
  // Frees that read the owner before the store above and announced since
  // are collected here; later ones find the page closed and take our lock
  // (Page::kThreadFreeClosed), so none is stranded on an unowned page. An
  // announced free sets its bit a few instructions later: wait for it, a
  // bounded while (its thread may be descheduled there, or stopped by a
  // collector), so that the page goes back to the OS at once if it is
  // empty. Past the bound the page waits in a bin (TagShard::add), where
  // reclaim collects it.
  page->close_thread_free();
  for (int spins = 0; page->thread_frees_pending() != 0 && spins < kAnnouncedFreeWaitSpins; ++spins) {
    std::this_thread::yield();
    page->collect_thread_free();
  }
  if (page->used == 0) {
    release_page(page);
    return;
  }
  ++shard.abandoned_total;
  shard.add(*page);
}

Page* RuntimeCore::reclaim(Tag tag, std::size_t c, Heap* heap, std::uintptr_t owner) noexcept {
  TagShard& shard = shards[tag];
  if (shard.available.load(std::memory_order_relaxed) == 0) return nullptr;
  std::lock_guard lock(shard.mu);
  PageList& bin = shard.bins[c];
  Page* page = nullptr;
  internal::PageList waiting;  // thread frees announced, bits not set yet: back to the bin after
  while (!bin.empty()) {
    page = &bin.front();
    shard.remove(*page);
    sweep_if_pending(page);  // a page the last collection left to sweep lazily
    page->collect_thread_free();
    if (page->has_free_in_bits()) break;
    if (page->thread_frees_pending() != 0) {
      waiting.push_back(*page);
    } else {
      shard.add(*page);  // every block still live: to the full list
    }
    page = nullptr;
  }
  while (!waiting.empty()) {
    Page& w = waiting.front();
    waiting.pop_front();
    shard.add(w);
  }
  if (page == nullptr) return nullptr;
  ++shard.reclaimed_total;
  TAGHEAP_DASSERT(page->tag == tag && page->size_class == c);
  page->open_thread_free();  // before the owner: a free seeing it may push
  page->heap = heap;
  page->owner_token().store(owner, std::memory_order_release);
  return page;
}

void RuntimeCore::free_in_abandoned(Page* page, std::uintptr_t p) noexcept {
  if (page->kind == PageKind::kHuge) return free_huge(page, p);
  TagShard& shard = shards[page->tag];
  std::unique_lock lock(shard.mu);
  while (page->owner_token().load(std::memory_order_acquire) != 0) {
    // Reclaimed since the caller looked: an ordinary cross-thread free. Our
    // block keeps the page in use, so it cannot go away meanwhile. The push
    // fails only if the page was abandoned again since: then under the lock.
    lock.unlock();
    if (page->free_block_remote(p) == Page::RemoteFree::kDone) return;
    lock.lock();
  }
  if (!page->in_pool)
    fatal("tagheap: free(%p): no live block there (double free, or a pointer tagheap never gave out)",
          reinterpret_cast<void*>(p));
  page->free_block_owned(p);
  page->collect_thread_free();
  if (page->used == 0 && !page->in_walk) {
    shard.remove(*page);
    release_page(page);
  } else {
    shard.refile(*page);
  }
}

void RuntimeCore::release_if_empty_unowned(Page* page) noexcept {
  TagShard& shard = shards[page->tag];
  std::unique_lock lock(shard.mu);
  if (page->used != 0) return;
  if (page->kind == PageKind::kHuge) {
    shard.huge.erase(shard.huge.iterator_to(*page));
  } else if (page->in_pool) {
    shard.remove(*page);
  } else {
    return;
  }
  lock.unlock();
  release_page(page);
}

void after_walk(RuntimeCore& core, Page* page) noexcept {
  if (page->owner_token().load(std::memory_order_relaxed) != 0) {
    page->heap->after_walk(page);
    return;
  }
  if (page->used == 0) {
    core.release_if_empty_unowned(page);
  } else if (page->in_pool) {
    TagShard& shard = core.shards[page->tag];
    std::lock_guard lock(shard.mu);
    shard.refile(*page);
  }
}

void RuntimeCore::make_marks_sticky(TagSet tags) noexcept {
  sticky_tags = static_cast<std::uint16_t>(sticky_tags | tags.bits());
  segments.for_each_segment([&](Segment& seg) {
    for (std::size_t i = 0; i < seg.page_count; ++i) {
      Page& page = seg.pages[i];
      if (page.in_use && tags.contains(page.tag)) page.slow_free |= Page::kSlowFreeSticky;
    }
  });
}

void RuntimeCore::flush_remote_frees() noexcept {
  if (remote_free_buffers_holding.load(std::memory_order_acquire) == 0) return;
  for (RemoteFreeBuffer* b = remote_free_buffers.load(std::memory_order_acquire); b != nullptr; b = b->next)
    b->flush();
}

std::size_t RuntimeCore::remote_free_buffer_bytes() noexcept {
  return (sizeof(RemoteFreeBuffer) + os::page_size() - 1) & ~(os::page_size() - 1);
}

RemoteFreeBuffer* RuntimeCore::take_remote_free_buffer() noexcept {
  for (RemoteFreeBuffer* b = remote_free_buffers.load(std::memory_order_acquire); b != nullptr; b = b->next) {
    bool expected = false;
    if (!b->taken.load(std::memory_order_relaxed) &&
        b->taken.compare_exchange_strong(expected, true, std::memory_order_acquire))
      return b;
  }
  // From the OS, not malloc or new: this runs inside free(), which may be
  // called where malloc's locks are held by a thread stopped for a
  // collection (libgc's stop signal); and a program may replace operator new.
  void* mem = os::map_aligned(remote_free_buffer_bytes(), os::page_size());
  if (mem == nullptr) return nullptr;  // frees land one by one
  auto* b = new (mem) RemoteFreeBuffer(*this);
  b->taken.store(true, std::memory_order_relaxed);
  b->next = remote_free_buffers.load(std::memory_order_relaxed);
  while (!remote_free_buffers.compare_exchange_weak(b->next, b, std::memory_order_release, std::memory_order_relaxed)) {
  }
  return b;
}

void RuntimeCore::give_back_remote_free_buffer(RemoteFreeBuffer* buffer) noexcept {
  buffer->flush();
  buffer->taken.store(false, std::memory_order_release);
}

void RuntimeCore::begin_lazy_sweep(TagSet tags, bool keep_marks) noexcept {
  // Frees gathered while these tags were not swept lazily: a sweep must
  // not find their blocks dead and free them again.
  flush_remote_frees();
  ++sweep_epoch;
  sweep_tags = tags.bits();
  sweep_keeps_marks = keep_marks;
  {
    std::lock_guard lock(threads_mu);
    for (ThreadNode& node : threads)
      for (Tag tag : tags)
        if (Heap* heap = node.self->heap_if_made(tag)) heap->prepare_lazy_sweep();
  }
  for (Tag tag : tags) {
    TagShard& shard = shards[tag];
    std::unique_lock lock(shard.mu);
    // Full pool pages may hold dead blocks now: to their bins, where
    // reclaim sweeps a page before it hands it over.
    while (!shard.full.empty()) {
      Page& page = shard.full.front();
      shard.remove(page);
      page.pool_full = 0;
      page.in_pool = 1;
      shard.bins[page.size_class].push_back(page);
      shard.available.fetch_add(1, std::memory_order_relaxed);
    }
    // A dead huge block is a whole segment: freed now, not at some later
    // sweep (nothing allocates from huge pages to trigger one).
    PageList dead;
    for (auto it = shard.huge.begin(); it != shard.huge.end();) {
      Page& page = *it++;
      if (page.in_walk) continue;
      page.sweep_unmarked(sweep_epoch, keep_marks);
      if (page.used == 0) {
        shard.huge.erase(shard.huge.iterator_to(page));
        dead.push_back(page);
      }
    }
    lock.unlock();
    while (!dead.empty()) {
      Page& page = dead.front();
      dead.pop_front();
      release_page(&page);
    }
  }
}

void throw_nested_walk(const char* what) {
  throw std::logic_error(std::string("tagheap: ") + what +
                         " inside a walk of the same runtime on this thread (from a visitor, a finalizer or a "
                         "collector's callback): do it after the walk returns");
}

std::size_t RuntimeCore::trim_pool() noexcept {
  std::size_t released = 0;
  for (TagShard& shard : shards) {
    std::lock_guard lock(shard.mu);
    auto sweep = [&](PageList& list) {
      for (auto it = list.begin(); it != list.end();) {
        Page& page = *it++;
        if (page.in_walk) continue;
        sweep_if_pending(&page);
        page.collect_thread_free();  // a free that announced before the page was closed, and landed after
        if (page.used == 0) {
          shard.remove(page);
          release_page(&page);
          ++released;
        } else {
          shard.refile(page);  // a full page that gained free blocks goes to its bin
        }
      }
    };
    for (auto& bin : shard.bins) sweep(bin);
    sweep(shard.full);
  }
  return released;
}

}  // namespace tagheap::internal

namespace tagheap {

using internal::fatal;

Runtime::Runtime(RuntimeOptions options)
    : options_(options), core_(std::make_unique<internal::RuntimeCore>(options_)) {}

Runtime::~Runtime() {
  const std::size_t n = thread_state_count();
  if (n != 0)
    fatal("tagheap: Runtime %p destroyed with %zu thread state(s) alive; destroy them first",
          static_cast<void*>(this), n);
}

std::uint64_t Runtime::allocated_bytes(TagSet tags) const noexcept {
  std::uint64_t total = 0;
  for (Tag tag : tags) total += core_->allocated_bytes[tag].load(std::memory_order_relaxed);
  return total;
}

std::size_t Runtime::thread_state_count() const noexcept {
  std::lock_guard lock(core_->threads_mu);
  return core_->threads.size();
}

namespace {
thread_local char t_fork_id;  // its address names the calling thread
std::uintptr_t fork_id() noexcept { return reinterpret_cast<std::uintptr_t>(&t_fork_id); }
}  // namespace

void Runtime::before_fork() {
  internal::refuse_inside_walk(*core_, "Runtime::before_fork()");
  if (core_->fork_holder.load(std::memory_order_relaxed) == fork_id())
    throw std::logic_error("tagheap: Runtime::before_fork() called again before after_fork_parent()");
  // threads_mu first (a walk holds it over pages it may sweep and give
  // back), then the lock order of internal/runtime_core.h: each shard,
  // then the pool.
  core_->threads_mu.lock();
  for (auto& shard : core_->shards) shard.mu.lock();
  core_->segments.lock_for_fork();
  core_->fork_holder.store(fork_id(), std::memory_order_relaxed);
}

void Runtime::after_fork_parent() {
  if (core_->fork_holder.load(std::memory_order_relaxed) != fork_id())
    throw std::logic_error("tagheap: Runtime::after_fork_parent() without before_fork() on this thread");
  core_->fork_holder.store(0, std::memory_order_relaxed);
  core_->segments.unlock_after_fork_parent();
  for (std::size_t t = kTagCount; t-- > 0;) core_->shards[t].mu.unlock();
  core_->threads_mu.unlock();
}

void Runtime::after_fork_child(ThreadState& survivor) { after_fork_child_keeping(&survivor); }

void Runtime::after_fork_child() { after_fork_child_keeping(nullptr); }

void Runtime::after_fork_child_keeping(ThreadState* survivor) {
  // Threads that held these locks at fork() are gone in the child.
  new (&core_->threads_mu) std::mutex();
  core_->fork_holder.store(0, std::memory_order_relaxed);
  for (auto& shard : core_->shards) new (&shard.mu) std::mutex();
  core_->segments.after_fork_child();
  internal::lookups_after_fork_child();  // process-wide: any runtime's call will do
  std::vector<ThreadState*> orphans;
  for (internal::ThreadNode& node : core_->threads)
    if (node.self != survivor) orphans.push_back(node.self);
  for (ThreadState* ts : orphans) {
    ts->attached_.store(false, std::memory_order_relaxed);
    ts->abandon();
    // Its buffer of gathered frees, flushed by abandon(), as its detach
    // would have given it back.
    if (ts->node_.remote_frees != nullptr) core_->give_back_remote_free_buffer(ts->node_.remote_frees);
    ts->node_.remote_frees = nullptr;
    // Their threads will never destroy them: they leave the runtime now, and
    // a later destructor (if any) finds nothing to do.
    std::lock_guard lock(core_->threads_mu);
    core_->threads.erase(core_->threads.iterator_to(ts->node_));
    ts->in_runtime_list_ = false;
  }
}

std::size_t Runtime::trim() {
  // The walk's next page may be one trim would release, its segment one it
  // would unmap.
  internal::refuse_inside_walk(*core_, "Runtime::trim()");
  // The calling thread's gathered frees (others' land at their next flush,
  // or when the world is stopped for a walk).
  if (internal::RemoteFreeBuffer* own = internal::t_remote_frees; own != nullptr && own->runtime() == core_.get())
    own->flush();
  const std::size_t released = core_->trim_pool();
  core_->segments.purge_all();
  return released;
}

RuntimeStats Runtime::stats() {
  RuntimeStats s;
  for_each_page(*this, TagSet::all(), [&](PageView page) {
    TagStats& t = s.tags[page.tag()];
    ++t.pages;
    t.abandoned_pages += page.is_abandoned();
    t.huge_pages += page.is_huge();
    t.blocks += page.live_blocks();
    t.bytes_in_use += page.live_blocks() * page.block_size();
    t.bytes_committed += page.committed_bytes();
    return true;
  });
  for (unsigned tag = 0; tag < kTagCount; ++tag) {
    TagStats& t = s.tags[tag];
    {
      std::lock_guard lock(core_->shards[tag].mu);
      t.abandoned_total = core_->shards[tag].abandoned_total;
      t.reclaimed_total = core_->shards[tag].reclaimed_total;
    }
    s.total.pages += t.pages;
    s.total.abandoned_pages += t.abandoned_pages;
    s.total.huge_pages += t.huge_pages;
    s.total.blocks += t.blocks;
    s.total.bytes_in_use += t.bytes_in_use;
    s.total.bytes_committed += t.bytes_committed;
    s.total.abandoned_total += t.abandoned_total;
    s.total.reclaimed_total += t.reclaimed_total;
  }
  s.segments = core_->segments.segment_count();
  s.empty_segments = core_->segments.empty_segment_count();
  s.segments_mapped_total = core_->segments.segments_mapped_total();
  s.segments_unmapped_total = core_->segments.segments_unmapped_total();
  s.huge_os_pages_declined = core_->segments.huge_os_pages_declined();
  s.thread_states = thread_state_count();
  return s;
}

std::size_t Runtime::verify() {
  internal::RuntimeCore& core = *core_;
  internal::refuse_inside_walk(core, "Runtime::verify()");
  std::size_t reachable = 0;
  auto check_page = [&](internal::Page& page, Tag tag) {
    page.is_valid();
    if (page.tag != tag) fatal("verify: page %p of tag %u found among tag %u's pages", static_cast<void*>(&page), page.tag, tag);
    if (internal::Segment::of(reinterpret_cast<void*>(page.area))->runtime != &core)
      fatal("verify: page %p belongs to another runtime", static_cast<void*>(&page));
    ++reachable;
  };
  {
    std::lock_guard lock(core.threads_mu);
    for (internal::ThreadNode& node : core.threads) {
      for (unsigned tag = 0; tag < kTagCount; ++tag) {
        Heap* heap = node.self->heap_if_made(static_cast<Tag>(tag));
        if (heap == nullptr) continue;
        heap->is_valid();
        heap->for_each_page([&](internal::Page& page) {
          check_page(page, static_cast<Tag>(tag));
          if (page.heap != heap || page.owner_token().load() != node.self->owner_token())
            fatal("verify: page %p in a heap's queue is not owned by it", static_cast<void*>(&page));
          if (page.thread_free().load() & internal::Page::kThreadFreeClosed)
            fatal("verify: owned page %p is closed to thread frees", static_cast<void*>(&page));
          return true;
        });
      }
    }
  }
  // An abandoned page is closed to thread frees, and one with some pending
  // sits in a bin, where reclaim collects them: no block waits where nobody
  // collects.
  auto check_closed = [](internal::Page& page) {
    if (!(page.thread_free().load() & internal::Page::kThreadFreeClosed))
      fatal("verify: abandoned page %p is open to thread frees", static_cast<void*>(&page));
    if (page.pool_full && page.thread_frees_pending() != 0)
      fatal("verify: full abandoned page %p has thread frees pending", static_cast<void*>(&page));
  };
  for (unsigned tag = 0; tag < kTagCount; ++tag) {
    internal::TagShard& shard = core.shards[tag];
    std::lock_guard lock(shard.mu);
    std::size_t available = 0;
    for (std::size_t c = 0; c < internal::kClassCount; ++c)
      for (internal::Page& page : shard.bins[c]) {
        check_page(page, static_cast<Tag>(tag));
        if (page.owner_token().load() != 0 || !page.in_pool || page.pool_full || page.size_class != c)
          fatal("verify: abandoned page %p is in the wrong state or bin", static_cast<void*>(&page));
        check_closed(page);
        ++available;
      }
    if (available != shard.available.load()) fatal("verify: pool of tag %u counts %zu pages, holds %zu", tag, shard.available.load(), available);
    for (internal::Page& page : shard.full) {
      check_page(page, static_cast<Tag>(tag));
      if (page.owner_token().load() != 0 || !page.in_pool || !page.pool_full)
        fatal("verify: full abandoned page %p is in the wrong state", static_cast<void*>(&page));
      check_closed(page);
    }
    for (internal::Page& page : shard.huge) {
      check_page(page, static_cast<Tag>(tag));
      if (!page.is_huge() || page.used != 1) fatal("verify: huge page %p is in the wrong state", static_cast<void*>(&page));
    }
  }
  // Every page in use is reachable from a heap, the pool or a huge list:
  // none is orphaned where no walk would find it.
  std::size_t in_use = 0;
  core.segments.for_each_segment([&](internal::Segment& seg) {
    seg.is_valid();
    in_use += seg.pages_in_use;
  });
  if (in_use != reachable)
    fatal("verify: %zu pages in use but %zu reachable by a walk (orphaned pages)", in_use, reachable);
  return reachable;
}

}  // namespace tagheap
