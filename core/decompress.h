// Compressed captures (gzip, zstd), read as mergecap and tshark read them: recognised by their
// content's magic, never by name, and decompressed below the capture readers, so that the classic
// pcap reader and the pcapng reader both get plain bytes without knowing.
//
// A pump thread reads the compressed input, decompresses it in fixed-size chunks (zlib for gzip,
// libzstd for zstd: constant memory whatever the capture's size) and writes the plain bytes into a
// Unix socket pair. The readers take the other end as a stream input (core/input_fd.h): a read
// waits in poll() beside the run's Interrupt, so a stop ends it at once whatever the pump is doing.
//
// Damage: what decompresses before a damaged or truncated stretch is passed on, so the readers keep
// every whole record in it; the pump then reports the damage (file name, byte offset in the
// compressed file) to the run's Report, before it ends the plain stream, and the run exits 3 as it
// does for a truncated pcap. Concatenated gzip members and consecutive zstd frames are read on, as
// gzip -d and zstd -d do.
//
// Threads and ownership: a Decompressor owns its thread, the compressed input's descriptor (except
// standard input, which is never closed, as the readers do) and its own end of the socket pair. The
// plain end belongs to whoever took it (the reader closes it). The destructor tells the thread to
// stop (its own Interrupt, polled beside every wait on the input and on the socket) and joins it,
// so a reader that stops early (`count=`, a stopped run, an error while opening) leaves no thread
// behind. Writes never raise SIGPIPE: a reader that closed its end makes the pump end quietly.
#pragma once

#include <cstddef>
#include <span>
#include <string>
#include <thread>
#include <vector>

#include "core/input_fd.h"

namespace vei {

class Report;

enum class Compression { none, gzip, zstd };

// What the first bytes of an input say: gzip (1f 8b), zstd (28 b5 2f fd), or neither.
Compression compression_of(std::span<const std::byte> prefix);

class Decompressor {
 public:
  // Takes ownership of `fd`, from which the `prefix` bytes were already read, and starts the pump.
  // `name` names the input in messages; damage goes to `report`, which must outlive this object.
  // Throws naming the input when the socket pair or the thread cannot be had.
  Decompressor(Compression kind, int fd, std::vector<std::byte> prefix, std::string name, Report* report);
  ~Decompressor();
  Decompressor(const Decompressor&) = delete;
  Decompressor& operator=(const Decompressor&) = delete;

  // The plain bytes' end, a stream: the caller takes it over, and closes it.
  int take_plain_fd();

 private:
  void pump() noexcept;
  // Decompresses until the input ends, the stream is damaged, or the pump is stopped.
  void decompress();
  // Reads the next chunk of compressed input into `in_`; false at its end or on a stop.
  bool refill();
  // Sends `n` plain bytes to the reader; false once the reader is gone or the pump is stopped.
  bool deliver(const std::byte* p, size_t n);
  void damaged(const std::string& what);

  Compression kind_;
  int in_fd_;
  int out_fd_ = -1;    // the pump's end of the socket pair
  int plain_fd_ = -1;  // the reader's, until taken
  bool in_stream_;
  std::string name_;
  Report* report_;
  Interrupt stop_;
  std::vector<std::byte> in_;  // compressed bytes read and not yet decompressed: [in_pos_, in_.size())
  size_t in_pos_ = 0;
  uint64_t in_offset_ = 0;  // of in_[in_pos_] in the compressed file
  uint64_t plain_bytes_ = 0;  // delivered
  std::thread thread_;
};

}  // namespace vei
