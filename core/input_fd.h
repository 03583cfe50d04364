// Opening and reading capture inputs that may be streams (a pipe, a FIFO, a socket, a terminal)
// without ever blocking past a stop: a FIFO opens at once, even with no writer yet, and a read from
// a stream waits in poll() beside the run's Interrupt. Regular files keep plain read()s.
#pragma once

#include <atomic>
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

// Whether `fd` is a stream rather than a regular file (a failed fstat counts as a stream).
bool is_stream(int fd);

// The input of a reader that parses it in place in batch arenas (core/pcap_reader.h,
// core/pcapng_reader.h). read() and parse() may run on two threads at once, each in the input's
// order (a batch is parsed while the next one is read: TimelineSource::splits_reading): the
// reading side alone touches fd, stream and eof, the parsing side carry, offset and incomplete.
struct InPlaceInput {
  // The reading side.
  int fd = -1;
  bool stream = false;
  bool eof = false;
  bool interrupted = false;  // the run stopped while waiting for a stream
  // Set by the parsing side once it wants no more (damage, the window closed): read() then ends
  // the input without reading.
  std::atomic<bool> ended{false};
  // The parsing side.
  std::vector<std::byte> carry;  // bytes of a record cut off when the last batch closed
  uint64_t offset = 0;           // of carry's first byte in the input
  size_t incomplete = 0;         // the size of that record, when its header said it

  // Clears `raw` and reads the next bytes into its arena after a headroom (Batch::Raw) where
  // parse() puts the carried bytes: a stream hands over what has arrived (its records flow on
  // without waiting for a full arena), a regular file fills the arena.
  void read(Batch& raw, const Interrupt* interrupt, const std::string& name);

  // Reading a regular file in lanes (TimelineSource::reads_in_lanes), from where read() left it.
  // plan() (the reading side, in order) clears `raw` and gives it the next part of the file, as
  // much as its arena holds after the headroom, or ends the input there: at the file's end as fstat
  // sees it, or once the parsing side wants no more. read_planned() (any thread) reads that part;
  // fewer bytes than wanted end the input.
  void plan(Batch& raw, const std::string& name);
  void read_planned(Batch& raw, const std::string& name) const;
  uint64_t planned = UINT64_MAX;  // the reading side's: where the next part starts (UINT64_MAX: not yet known)

  // Puts the carried bytes in front of what read() brought into `batch` and hands the bytes from
  // `begin` to `end` to `parse(begin, end)`, which returns those its whole records take (setting
  // `incomplete`); what follows them is carried to the next batch. A record longer than a whole
  // arena is carried on until a batch holds all of it.
  template <typename Parse>
  void parse(Batch& batch, Parse parse) {
    size_t begin = batch.raw.begin;
    if (carry.size() <= begin) {
      begin -= carry.size();
    } else {
      // A record longer than the headroom: what was read moves up behind its first bytes.
      const size_t got = batch.used - begin;
      batch.reserve_arena(carry.size() + got);
      std::memmove(batch.data() + carry.size(), batch.data() + begin, got);
      batch.used = carry.size() + got;
      begin = 0;
    }
    std::memcpy(batch.data() + begin, carry.data(), carry.size());
    const size_t end = batch.used;
    batch.raw.pending = false;
    const size_t consumed = parse(begin, end);
    carry.assign(batch.data() + begin + consumed, batch.data() + end);
    offset += consumed;
  }
};

}  // namespace vei
