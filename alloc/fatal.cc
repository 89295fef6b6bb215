#include <cstdarg>
#include <cstdio>
#include <cstdlib>

#include "alloc/internal/config.h"

namespace tagheap::internal {

void fatal(const char* fmt, ...) noexcept {
  char buf[512];
  va_list ap;
  va_start(ap, fmt);
  std::vsnprintf(buf, sizeof buf, fmt, ap);
  va_end(ap);
  std::fprintf(stderr, "%s\n", buf);
  std::fflush(stderr);
  std::abort();
}

}  // namespace tagheap::internal
