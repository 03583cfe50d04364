// Classic pcap, read with large read()s straight into the batch arena; record headers are
// validated in place and rewritten only where the output needs other bytes.
#pragma once

#include <vector>

#include "stages/timeline_source.h"

namespace vei {

class PcapReader final : public TimelineSource {
 public:
  // Takes ownership of `fd`, positioned after the `prefix` bytes already read from it (at least
  // the 24-byte file header).
  PcapReader(int fd, std::vector<std::byte> prefix, SourceOptions options);
  ~PcapReader() override;

  void fill(Batch& batch) override;

 private:
  // Reads until `batch` holds `want` bytes or the input ends; returns the bytes held.
  size_t read_into(Batch& batch, size_t have, size_t want);
  void stop_damaged(std::string message);

  int fd_;
  pcap::FileHeader header_;
  std::vector<std::byte> carry_;  // bytes of a record not yet complete when the last batch closed
  uint64_t file_offset_;          // of carry_'s first byte
  uint32_t max_caplen_;
  bool eof_ = false;
  bool done_ = false;
};

}  // namespace vei
