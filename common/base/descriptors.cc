#include "common/base/descriptors.h"

#include <fcntl.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <unistd.h>

namespace nd {

bool SetCloseOnExec(int fd) {
  if (fd < 0) return true;
  const int flags = ::fcntl(fd, F_GETFD);
  if (flags < 0) return false;
  if (flags & FD_CLOEXEC) return true;
  return ::fcntl(fd, F_SETFD, flags | FD_CLOEXEC) == 0;
}

void CloseDescriptorsFrom(int lowest) {
#ifdef SYS_close_range
  if (::syscall(SYS_close_range, static_cast<unsigned>(lowest), ~0U, 0U) == 0) return;
#endif
  // Kernels before 5.9: close up to the soft limit (no allocation, no /proc read needed).
  struct rlimit limit {};
  long highest = 65536;
  if (::getrlimit(RLIMIT_NOFILE, &limit) == 0 && limit.rlim_cur != RLIM_INFINITY) {
    highest = static_cast<long>(limit.rlim_cur);
  }
  for (long fd = lowest; fd < highest; ++fd) ::close(static_cast<int>(fd));
}

}  // namespace nd
