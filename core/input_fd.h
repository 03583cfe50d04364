// Opening and reading capture inputs that may be streams (a pipe, a FIFO, a socket, a terminal)
// without ever blocking past a stop: a FIFO opens at once, even with no writer yet, and a read from
// a stream waits in poll() beside the run's Interrupt. Regular files keep plain read()s.
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstring>
#include <string>
#include <vector>

#include "core/batch.h"

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

// The input of a reader that parses it in place in batch arenas (core/pcap_reader.h,
// core/pcapng_reader.h): what it keeps from one batch to the next.
struct InPlaceInput {
  int fd = -1;
  bool stream = false;
  std::vector<std::byte> carry;  // bytes of a record cut off when the last batch closed
  uint64_t offset = 0;           // of carry's first byte in the input
  size_t incomplete = 0;         // the size of that record, when its header said it
  bool eof = false;
  bool interrupted = false;  // the run stopped while waiting for a stream

  // Fills `batch`'s arena with the carried bytes, then with what read_on() brings, and hands the
  // `avail` bytes it holds to `parse(avail)`, which returns those its whole records take (setting
  // `incomplete`). Reads on until parse takes some, `stopped()` says so or the input ends, growing
  // the arena for a record larger than it; what follows the records taken is carried over.
  template <typename Parse, typename Stopped>
  void fill(Batch& batch, const Interrupt* interrupt, const std::string& name, Parse parse, Stopped stopped) {
    batch.reserve_arena(carry.size());
    std::memcpy(batch.data(), carry.data(), carry.size());
    size_t filled = carry.size();
    for (;;) {
      if (!eof && filled < batch.capacity())
        filled = read_on(fd, batch.data(), batch.capacity(), filled, stream, interrupt, name, eof, interrupted);
      const size_t consumed = parse(filled);
      if (consumed == 0 && !stopped() && !eof) {
        if (incomplete > batch.capacity()) {
          batch.used = filled;
          batch.reserve_arena(incomplete);
        }
        continue;
      }
      carry.assign(batch.data() + consumed, batch.data() + filled);
      offset += consumed;
      return;
    }
  }
};

}  // namespace vei
