// The `file` sink: a classic pcap written one write() per batch. The file always ends on a whole
// record: a failed write is cut back to the last record that fully made it.
#pragma once

#include <string>

#include "stages/pcap_format.h"
#include "stages/sink.h"

namespace vei {

class FileWriter final : public Sink {
 public:
  // Creates (or truncates) `path`, `-` meaning standard output, and writes the file header.
  FileWriter(std::string path, pcap::Precision precision, uint32_t snaplen, uint32_t linktype);
  ~FileWriter() override;

  void consume(const Batch& batch) override;
  void close() override;
  const SinkStats& stats() const override { return stats_; }

 private:
  [[noreturn]] void fail(int error);
  void write_all(const std::byte* data, size_t size, const Batch* batch);

  std::string path_;
  int fd_ = -1;
  bool owns_fd_ = true;
  uint64_t offset_ = 0;  // bytes in the file, all of them whole records after the header
  SinkStats stats_;
};

}  // namespace vei
