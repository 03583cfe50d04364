#include "core/output_fd.h"

#include <climits>
#include <cerrno>
#include <algorithm>

namespace vei {

int write_fully(int fd, std::span<iovec> iov, size_t& done) {
  done = 0;
  size_t i = 0;
  while (true) {
    while (i < iov.size() && iov[i].iov_len == 0) ++i;  // writev() would return 0 for them alone
    if (i == iov.size()) break;
    const ssize_t r = ::writev(fd, iov.data() + i, static_cast<int>(std::min<size_t>(iov.size() - i, IOV_MAX)));
    if (r < 0 && errno == EINTR) continue;
    if (r <= 0) return r < 0 ? errno : ENOSPC;
    done += static_cast<size_t>(r);
    auto left = static_cast<size_t>(r);
    while (i < iov.size() && left >= iov[i].iov_len) left -= iov[i++].iov_len;
    if (left) {  // the write ended inside iov[i]: its rest goes next
      iov[i].iov_base = static_cast<std::byte*>(iov[i].iov_base) + left;
      iov[i].iov_len -= left;
    }
  }
  return 0;
}

}  // namespace vei
