// counting_new.h: for tests that pin "allocates nothing" (a collector's
// pause, the marking hand-off). A binary that links :counting_new has its
// global operator new and delete replaced by malloc and free, every form
// (plain, array, nothrow, aligned), so none pairs with a sanitizer's own,
// and every operator new call counted.
#pragma once

#include <cstddef>

namespace tagheap::test {

// operator new calls so far, by every thread of the process.
long new_calls() noexcept;
// operator new calls so far by the calling thread (not its helpers).
long new_calls_on_this_thread() noexcept;

}  // namespace tagheap::test
