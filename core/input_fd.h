// Opening and reading capture inputs that may be streams (a pipe, a FIFO, a socket, a terminal)
// without ever blocking past a stop: a FIFO opens at once, even with no writer yet, and a read from
// a stream waits in poll() beside the run's Interrupt. Regular files keep plain read()s.
#pragma once

#include <cstddef>
#include <string>

namespace vei {

// Raised once, by Engine::stop() (any thread): every wait on a stream input returns.
class Interrupt {
 public:
  Interrupt();
  ~Interrupt();
  Interrupt(const Interrupt&) = delete;
  Interrupt& operator=(const Interrupt&) = delete;

  void raise();
  bool raised() const;
  int fd() const { return fd_; }

 private:
  int fd_;
};

// Opens `path` for reading (`-` is standard input, not reopened); throws naming the path on
// failure or for a directory. A FIFO is opened without waiting for its writer.
int open_input(const std::string& path);

// Why `path` cannot be read a second time (it is a stream: a FIFO, pipe, socket or character
// device, standard input included), found by stat() without opening it; empty for a file that can.
std::string why_not_rereadable(const std::string& path);

struct ReadResult {
  size_t got = 0;
  bool interrupted = false;  // `interrupt` was raised while waiting for a stream
};

// Reads up to `n` bytes, retrying short reads until `min` have come; fewer only at end of input
// or on an interrupt. With `stream` set, each read first waits in poll() for data or `interrupt`.
// Throws naming `name` on a read error.
ReadResult read_input(int fd, std::byte* p, size_t n, size_t min, bool stream, const Interrupt* interrupt,
                      const std::string& name);

// Reads on into an arena of `capacity` bytes whose first `filled` are taken, for a reader that
// parses what it holds in place: a stream hands over what has arrived (its records flow on without
// waiting for a full arena), a regular file fills the arena. Returns the bytes now held; sets `eof`
// once the input has no more, and `interrupted` as read_input does.
size_t read_on(int fd, std::byte* arena, size_t capacity, size_t filled, bool stream, const Interrupt* interrupt,
               const std::string& name, bool& eof, bool& interrupted);

// Whether `fd` is a stream rather than a regular file (a failed fstat counts as a stream).
bool is_stream(int fd);

}  // namespace vei
