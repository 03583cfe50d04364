// The `file` sink: a classic pcap written one write() per batch. The file always ends on a whole
// record: a failed write is cut back to the last record that fully made it.
#pragma once

#include <cstdio>
#include <span>
#include <string>
#include <vector>

#include "core/pcap_format.h"
#include "core/sink.h"
#include "pipeline/stage.h"

namespace vei {

// Ground truth: a line for every written packet that did not come from the background.
struct LabelsOptions {
  std::string path;  // `.jsonl` for JSON lines, anything else CSV; empty for none
  // By source rank: the source's name and where its packets come from (a file, or "event").
  std::vector<std::string> names;
  std::vector<std::string> origins;
};

class FileWriter final : public Sink {
 public:
  // Creates (or truncates) `path`, `-` meaning standard output, and writes the file header.
  FileWriter(std::string path, pcap::Precision precision, uint32_t snaplen, uint32_t linktype,
             LabelsOptions labels = {});
  ~FileWriter() override;

  using Sink::consume;
  void consume(const Batch& batch, size_t first, size_t count) override;
  void close() override;
  const SinkStats& stats() const override { return stats_; }

 private:
  [[noreturn]] void fail(int error);
  // `records` lie in `data` from its start on: a failed write is cut back to the last whole one.
  void write_all(const std::byte* data, size_t size, std::span<const Record> records = {});
  void write_labels(std::span<const Record> records);

  std::string path_;
  int fd_ = -1;
  bool owns_fd_ = true;
  uint64_t offset_ = 0;  // bytes in the file, all of them whole records after the header
  SinkStats stats_;
  LabelsOptions labels_;
  std::FILE* labels_file_ = nullptr;
  bool jsonl_ = false;
};

class FileStage final : public SinkStage {
 public:
  FileStage();
  void check(const Node& node) const override;
  void verify(const Node& node) const override;
  pcap::Precision precision(const Node& node, const SourceInfo& background) const override;
  std::optional<uint32_t> snaplen(const Node& node) const override;
  std::unique_ptr<Sink> open(const Node& node, const SinkContext& context) const override;
};

}  // namespace vei
