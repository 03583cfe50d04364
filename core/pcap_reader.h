// Classic pcap, read with large read()s (or, from a regular file, pread()s in lanes) into the
// batch's arena and parsed in place. Record
// headers are validated where they lie and never rewritten: a consumer that needs other header
// bytes (another precision, a shifted time) writes them from the batch's records.
//
// Why not mmap: on this project's VMs (paravirtualised page tables) first touches of freshly
// mapped pages cost more than read()'s copy: a 2-way merge took 2.3x the CPU time.
#pragma once

#include <vector>

#include "core/input_fd.h"
#include "core/timeline_source.h"

namespace vei {

class PcapReader final : public TimelineSource {
 public:
  // Takes ownership of `fd`, positioned after the `prefix` bytes already read from it (at least
  // the 24-byte file header).
  PcapReader(int fd, std::vector<std::byte> prefix, SourceOptions options);
  ~PcapReader() override;

  void fill(Batch& batch) override;
  // Never splits reading from parsing (splits_reading() stays false): each record header is read
  // just after the kernel copied it, from this core's cache. Parsed on the other core, every header
  // missed it: a 2 GiB pass-through took 0.48 s instead of 0.26 s on a 2-core VM. (The pcapng
  // reader does more per record, which hides the misses; it splits.) A regular file is read in
  // lanes instead, each part parsed by the thread that read it where it can.
  void read_raw(Batch& raw) override;
  void parse_raw(Batch& batch) override;
  void end_reading() override { in_.ended = true; }
  bool reads_in_lanes() const override { return !in_.stream; }
  void plan_raw(Batch& raw) override { in_.plan(raw, options_.name); }
  void read_planned(Batch& raw) const override { in_.read_planned(raw, options_.name); }

 private:
  // Appends the whole records found in [begin, end) of batch's arena; returns the bytes they take.
  // Sets `in_.incomplete` to the size of the record cut off at the end, if any.
  size_t parse(Batch& batch, size_t begin, size_t end);
  template <bool Classic>
  size_t parse_as(Batch& batch, size_t begin, size_t end);
  // The input ended `size` bytes into a record (parse() left its full size in `in_.incomplete`).
  void truncated(size_t size);
  void stop_damaged(std::string message);
  uint64_t records_seen() const { return stats_.packets + stats_.filtered + stats_.dropped; }

  InPlaceInput in_;
  pcap::FileHeader header_;
  uint32_t max_caplen_;
  bool done_ = false;
};

}  // namespace vei
