// internal/intrusive.h: the one place that chooses Boost.Intrusive's options.
//
// Debug and checked builds use safe-link hooks (a hook knows whether it is
// linked, and unlinking twice or destroying a linked hook is caught); release
// builds use normal hooks. Lists keep their size: O(1) size() is used by the
// retire policy and by statistics.
#pragma once

#include <boost/intrusive/list.hpp>

#include "alloc/internal/config.h"

namespace tagheap::internal {

namespace bi = boost::intrusive;

#if defined(TAGHEAP_CHECKED) || !defined(NDEBUG)
using ListLinkMode = bi::link_mode<bi::safe_link>;
#else
using ListLinkMode = bi::link_mode<bi::normal_link>;
#endif

using ListHook = bi::list_member_hook<ListLinkMode>;

template <class T, ListHook T::*Hook>
using IntrusiveList = bi::list<T, bi::member_hook<T, ListHook, Hook>, bi::constant_time_size<true>>;

}  // namespace tagheap::internal
