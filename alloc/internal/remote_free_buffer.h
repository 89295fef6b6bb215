// internal/remote_free_buffer.h: frees from another thread, gathered by
// bitmap word before they reach the pages.
// Internal: users must not rely on anything under alloc/internal/.
//
// A free of a block whose page another thread owns announces itself on the
// page's thread-free count and sets the block's thread-free bit: two locked
// operations on lines the owner reads, paid per block (larson: about half
// of its time). An attached thread state instead notes such a free here,
// without a locked operation, as a bit in the mask of its (page, word)
// slot; flush() then announces each page's blocks with one add and sets
// each word's bits with one OR. The block stays allocated in its page until
// then, so nothing about the page changes meanwhile: it cannot be emptied
// or laid out again (its blocks keep `used` above zero), only abandoned,
// which closes it to thread frees, and a flush then frees those blocks
// under the pool's lock, as a free that finds a page closed does.
//
// What is noted and when it lands
//   - Only small blocks (up to kSmallBlockMax) of the thread state's own
//     runtime, on tags no collector sweeps lazily (RuntimeCore::sweep_tags:
//     a lazy sweep would free a dead block a second time), and never while
//     the thread walks (a visitor's frees land at once, as the walk rules
//     say).
//   - flush() (which reads only the slots in use) runs once kMaxBlocks
//     frees or kMaxBytes bytes gather, or the slots are three quarters
//     used; when the thread state detaches, is abandoned or destroyed; on
//     the calling thread's trim(); and for every
//     thread state of the runtime when a walk begins (the world is stopped:
//     a walk never shows a block freed on any thread) and when a collection
//     begins its lazy sweep (a tag that joins sweep_tags may have blocks
//     noted before).
//   - Until then a noted block is still allocated in its page, and its
//     memory is not reused (at most kMaxBytes a thread state); find_block()
//     looks in every buffer of the runtime (holds()) and finds it freed.
//
// Invariants
//   A slot is in use iff its key (page | word) is not 0; its mask is not
//   zero then, and no two slots in use have the same key.
//   Every bit of a mask in use is a block of that page freed by this
//   thread and not yet announced; a block noted twice is fatal at note(),
//   one freed by another path as well is fatal at the flush or when its
//   owner collects, as any double free from another thread.
//   Every slot in use is among the first slots_used_ entries of used_,
//   which are distinct; an entry is written before its slot, and a slot's
//   key last (fork(): a child flushing the buffer of a thread that died
//   in note() skips a half-written slot, and misses none).
#pragma once

#include <atomic>
#include <cstddef>
#include <cstdint>

#include "alloc/internal/config.h"
#include "alloc/internal/page.h"

namespace tagheap::internal {

class RuntimeCore;
struct Page;

class RemoteFreeBuffer {
 public:
  // 2,048 slots (32 KiB) rather than 512: larson's frees spread over about
  // as many bitmap words as 512 slots hold, so a slot landed little more
  // than one block; 28.3 -> 24.6 ns an operation (4,096 slots: no better
  // under the same 1 MiB; 2 MiB held: 23.5 ns for 4 MiB more RSS).
  static constexpr std::size_t kSlots = 2048;  // a power of two
  static constexpr std::size_t kMaxSlotsUsed = kSlots * 3 / 4;
  static constexpr std::uint32_t kMaxBlocks = 4096;
  static constexpr std::size_t kMaxBytes = std::size_t{1} << 20;

  explicit RemoteFreeBuffer(RuntimeCore& core) noexcept : core_(&core) {}
  RemoteFreeBuffer(const RemoteFreeBuffer&) = delete;
  RemoteFreeBuffer& operator=(const RemoteFreeBuffer&) = delete;

  RuntimeCore* runtime() const noexcept { return core_; }

  // Block i (of block_size bytes) of `page`, whose geometry p was checked
  // against, is freed by this thread: noted, and flushed when the buffer
  // is full. Fatal if it was noted already (a double free).
  void note(Page* page, std::uint32_t i, std::size_t block_size) noexcept {
    const std::uintptr_t key = key_of(page, i >> 6);
    const std::uint64_t bit = std::uint64_t{1} << (i & 63);
    if (blocks_ == 0) became_holding();  // before any slot: readers of find_block look here first
    ++blocks_;
    bytes_ += block_size;
    std::size_t h = hash(key);
    for (;; h = (h + 1) & (kSlots - 1)) {
      Slot& s = slots_[h];
      const std::uintptr_t in_slot = s.key.load(std::memory_order_relaxed);
      if (in_slot == key) {
        const std::uint64_t mask = s.mask.load(std::memory_order_relaxed);
        if (mask & bit) [[unlikely]] noted_twice(page, i);
        s.mask.store(mask | bit, std::memory_order_relaxed);
        break;
      }
      if (in_slot == 0) {
        used_[slots_used_++] = static_cast<std::uint16_t>(h);  // before the slot: see flush()
        s.mask.store(bit, std::memory_order_relaxed);
        s.key.store(key, std::memory_order_release);  // last (fork, and find_block's readers)
        break;
      }
    }
    if (blocks_ >= kMaxBlocks || bytes_ >= kMaxBytes || slots_used_ >= kMaxSlotsUsed) [[unlikely]] flush();
  }

  // Tests: leaves the buffer as a thread that died inside note() would,
  // between taking a fresh slot for block i of `page` (entry and mask
  // written) and publishing its key. Nothing of it ever lands.
  void note_interrupted_for_testing(const Page* page, std::uint32_t i) noexcept {
    if (blocks_ == 0) became_holding();
    ++blocks_;
    std::size_t h = hash(key_of(page, i >> 6));
    while (slots_[h].key.load(std::memory_order_relaxed) != 0) h = (h + 1) & (kSlots - 1);
    used_[slots_used_++] = static_cast<std::uint16_t>(h);
    slots_[h].mask.store(std::uint64_t{1} << (i & 63), std::memory_order_relaxed);
  }

  // Every noted free lands on its page: one count add per slot and one OR
  // per word, or under the pool's lock where the page has been abandoned
  // since. By the buffer's thread, or by any thread while that one is
  // stopped or gone (walks, after fork()).
  void flush() noexcept;

  // Whether block i of `page` is noted here. From any thread; exact while
  // the buffer's thread is stopped (find_block's promise).
  bool holds(const Page* page, std::uint32_t i) const noexcept {
    const std::uintptr_t key = key_of(page, i >> 6);
    for (std::size_t h = hash(key), n = 0; n < kSlots; h = (h + 1) & (kSlots - 1), ++n) {
      const Slot& s = slots_[h];
      const std::uintptr_t in_slot = s.key.load(std::memory_order_acquire);
      if (in_slot == 0) return false;
      if (in_slot == key) return (s.mask.load(std::memory_order_relaxed) >> (i & 63)) & 1;
    }
    return false;
  }

  // The runtime's buffers, never freed while it lives: an attached thread
  // state takes one at its first free into another thread's page
  // (take_remote_free_buffer_for_current, thread_state.h) and gives it back
  // flushed when it detaches.
  RemoteFreeBuffer* next = nullptr;      // set before the buffer is published
  std::atomic<bool> taken{false};

 private:
  // Slots are atomics (relaxed: plain moves) only for find_block's readers
  // on other threads. A slot is 16 bytes, the page and the word index in
  // one key (a Page is 64-byte aligned and has at most 64 bitmap words),
  // so the 2,048 slots take 32 KiB, not 48: a probe misses L1 less often.
  struct Slot {
    std::atomic<std::uintptr_t> key{0};  // page | word; 0: free
    std::atomic<std::uint64_t> mask{0};
  };
  static_assert(alignof(Page) >= 64 && kBitmapWords <= 64, "a key keeps the word in the page's low 6 bits");
  static std::uintptr_t key_of(const Page* page, std::uint32_t word) noexcept {
    return reinterpret_cast<std::uintptr_t>(page) | word;
  }
  static Page* page_of_key(std::uintptr_t key) noexcept { return reinterpret_cast<Page*>(key & ~std::uintptr_t{63}); }
  static std::uint32_t word_of_key(std::uintptr_t key) noexcept { return static_cast<std::uint32_t>(key & 63); }
  static std::size_t hash(std::uintptr_t key) noexcept {
    return static_cast<std::size_t>((key * 0x9E3779B97F4A7C15ull) >> 53);  // 64 - log2(kSlots)
  }
  static_assert(kSlots == 2048, "hash() keeps 11 bits; used_ holds 16-bit indices");
  void became_holding() noexcept;
  [[noreturn, gnu::cold, gnu::noinline]] static void noted_twice(const Page* page, std::uint32_t i) noexcept;

  RuntimeCore* core_;
  std::uint32_t blocks_ = 0;
  std::uint32_t slots_used_ = 0;
  std::size_t bytes_ = 0;
  Slot slots_[kSlots];
  // The slots in use, in the order they were taken, so a flush reads only
  // those: an entry is written before its slot, so it may name a slot a
  // thread that died in note() left half-written (key still 0).
  std::uint16_t used_[kMaxSlotsUsed];
};

// The buffer of the thread state attached to this thread, or nullptr (none
// attached, none taken yet, or none to be had: short of memory).
extern constinit thread_local RemoteFreeBuffer* t_remote_frees __attribute__((tls_model("initial-exec")));

}  // namespace tagheap::internal
