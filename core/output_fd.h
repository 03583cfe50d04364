// Writing a batch's bytes where they lie: the pcapng sink (stages/file.cpp) and the generator
// (tools/veigen.cpp) hand writev() an iovec per packet and per run of block fields between packets.
#pragma once

#include <sys/uio.h>

#include <cstddef>
#include <span>

namespace vei {

// Writes all that `iov` describes to `fd`, IOV_MAX iovecs a call, moving `iov` past what was
// written; returns 0, or the errno of a failure (ENOSPC for a write that took nothing), with `done`
// the bytes that made it.
int write_fully(int fd, std::span<iovec> iov, size_t& done);

}  // namespace vei
