#include "core/input_fd.h"

#include <fcntl.h>
#include <poll.h>
#include <sys/eventfd.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdint>
#include <cstring>
#include <fmt/format.h>
#include <stdexcept>
#include <system_error>

namespace vei {

namespace {

[[noreturn]] void fail(const std::string& name, std::string_view what) {
  throw std::runtime_error(fmt::format("{}: {}", name, what));
}

}  // namespace

Interrupt::Interrupt() : fd_(::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK)) {
  if (fd_ < 0) throw std::system_error(errno, std::generic_category(), "eventfd");
}

Interrupt::~Interrupt() { ::close(fd_); }

void Interrupt::raise() {
  const uint64_t one = 1;
  // The counter only grows and nothing reads it, so the fd stays readable for good.
  [[maybe_unused]] const auto r = ::write(fd_, &one, sizeof one);
}

bool Interrupt::raised() const {
  pollfd p{fd_, POLLIN, 0};
  return ::poll(&p, 1, 0) == 1;
}

int open_input(const std::string& path) {
  if (path == "-") return STDIN_FILENO;
  struct stat st {};
  // A FIFO's open() waits for a writer and ignores signals meanwhile: open it without waiting, then
  // make reads blocking again (poll() still waits for the writer: no POLLHUP before one came).
  const bool fifo = ::stat(path.c_str(), &st) == 0 && S_ISFIFO(st.st_mode);
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC | (fifo ? O_NONBLOCK : 0));
  if (fd < 0) fail(path, std::strerror(errno));
  if (fifo) ::fcntl(fd, F_SETFL, ::fcntl(fd, F_GETFL) & ~O_NONBLOCK);
  if (::fstat(fd, &st) == 0 && S_ISDIR(st.st_mode)) {
    ::close(fd);
    fail(path, "is a directory, not a capture file");
  }
  return fd;
}

std::string why_not_rereadable(const std::string& path) {
  // `-` is the descriptor this process was given, never reopened: one pass, whatever lies behind it.
  if (path == "-") return "standard input (`-`) can be read only once";
  struct stat st {};
  // stat() follows /dev/stdin and /proc/self/fd/N to what they stand for, a pipe included.
  // A missing file or a directory is reported when it is opened.
  if (::stat(path.c_str(), &st) != 0 || S_ISREG(st.st_mode) || S_ISDIR(st.st_mode)) return {};
  const char* what = S_ISFIFO(st.st_mode)   ? "a pipe or FIFO"
                     : S_ISSOCK(st.st_mode) ? "a socket"
                     : S_ISCHR(st.st_mode)  ? "a character device"
                                            : "not a regular file";
  return fmt::format("{} is {}: what it delivers can be read only once", path, what);
}

namespace {

// Reads on into an arena of `capacity` bytes whose first `filled` are taken, for a reader that
// parses what it holds in place: a stream hands over what has arrived (its records flow on without
// waiting for a full arena), a regular file fills the arena. Returns the bytes now held; sets `eof`
// once the input has no more, and `interrupted` as read_input does.
size_t read_on(int fd, std::byte* arena, size_t capacity, size_t filled, bool stream, const Interrupt* interrupt,
               const std::string& name, bool& eof, bool& interrupted) {
  const size_t want = capacity - filled;
  const auto read = read_input(fd, arena + filled, want, stream ? 1 : want, stream, interrupt, name);
  interrupted = read.interrupted;
  eof = read.got == 0 || (!stream && read.got < want);
  return filled + read.got;
}

// Clears `raw` for bytes to be read after its headroom: an eighth of the arena, at most 64 KiB,
// room for the part of a record that the batch before left over, for all but the longest records
// (InPlaceInput::parse moves the bytes read for those).
void clear_for_reading(Batch& raw) {
  raw.clear();
  const size_t headroom = std::min<size_t>(size_t{64} << 10, raw.capacity() / 8) / 64 * 64;
  raw.raw = {.pending = true, .begin = headroom};
  raw.used = headroom;
}

}  // namespace

void InPlaceInput::plan(Batch& raw, const std::string& name) {
  clear_for_reading(raw);
  if (planned == UINT64_MAX) {
    const off_t at = ::lseek(fd, 0, SEEK_CUR);
    if (at < 0) fail(name, std::strerror(errno));
    planned = static_cast<uint64_t>(at);
  }
  struct stat st {};
  if (::fstat(fd, &st) != 0) fail(name, std::strerror(errno));
  if (eof || ended.load(std::memory_order_relaxed) || planned >= static_cast<uint64_t>(st.st_size)) {
    eof = true;
    raw.raw.ended = true;
    return;
  }
  raw.raw.at = planned;
  planned += raw.capacity() - raw.used;
}

void InPlaceInput::read_planned(Batch& raw, const std::string& name) const {
  const size_t want = raw.capacity() - raw.used;
  size_t got = 0;
  while (!raw.raw.ended && got < want) {
    const ssize_t r = ::pread(fd, raw.data() + raw.used + got, want - got, static_cast<off_t>(raw.raw.at + got));
    if (r < 0 && errno == EINTR) continue;
    if (r < 0) fail(name, std::strerror(errno));
    if (r == 0) raw.raw.ended = true;
    got += static_cast<size_t>(r);
  }
  raw.used += got;
}

void InPlaceInput::read(Batch& raw, const Interrupt* interrupt, const std::string& name) {
  clear_for_reading(raw);
  const size_t headroom = raw.used;
  if (!eof && !ended.load(std::memory_order_relaxed))
    raw.used = read_on(fd, raw.data(), raw.capacity(), headroom, stream, interrupt, name, eof, interrupted);
  raw.raw.ended = eof || ended.load(std::memory_order_relaxed);
  raw.raw.interrupted = interrupted;
}

bool is_stream(int fd) {
  struct stat st {};
  return ::fstat(fd, &st) != 0 || !S_ISREG(st.st_mode);
}

ReadResult read_input(int fd, std::byte* p, size_t n, size_t min, bool stream, const Interrupt* interrupt,
                      const std::string& name) {
  ReadResult result;
  while (result.got < min) {
    if (stream && interrupt) {
      pollfd fds[2] = {{fd, POLLIN, 0}, {interrupt->fd(), POLLIN, 0}};
      if (::poll(fds, 2, -1) < 0) {
        if (errno == EINTR) continue;
        fail(name, std::strerror(errno));
      }
      if (fds[1].revents) {
        result.interrupted = true;
        break;
      }
    }
    const ssize_t r = ::read(fd, p + result.got, n - result.got);
    if (r == 0) break;
    if (r < 0) {
      if (errno == EINTR) continue;
      fail(name, std::strerror(errno));
    }
    result.got += static_cast<size_t>(r);
  }
  return result;
}


}  // namespace vei
