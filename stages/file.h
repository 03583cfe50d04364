// The `file` sink: a classic pcap, or a pcapng (core/pcapng_writer.h). A pcap takes a sheet's
// pieces where they lie, in one writev() per IOV_MAX ranges; a pcapng one writev() per batch of
// blocks. The file always ends on a whole record: a failed write is cut back to the last record
// that fully made it, and the statistics and labels count exactly the records the file keeps.
#pragma once

#include <sys/uio.h>

#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "core/pcap_format.h"
#include "core/pcapng_writer.h"
#include "core/sink.h"
#include "pipeline/stage.h"

namespace vei {

// Ground truth: a line for every written packet that did not come from the background, its time
// exactly as the file holds it (the field `timestamp_us` or `timestamp_ns` says which), its source
// and the conversation it belongs to (core/flow_id.h), read from its bytes.
struct LabelsOptions {
  std::string path;  // `.jsonl` for JSON lines, anything else CSV; empty for none
  // By source rank: the source's name, where its packets come from (a file, or "event") and its stage.
  std::vector<std::string> names;
  std::vector<std::string> origins;
  std::vector<std::string> stages;
};

// What a pcapng output adds to the pcap one.
struct PcapngOptions {
  std::vector<std::vector<Interface>> interfaces;  // by rank, as PcapngEncoder takes them
  PcapngEncoder::LateInterface late;
  bool comments = false;  // each labelled packet's label in its opt_comment
};

class FileWriter final : public Sink {
 public:
  // Creates (or truncates) `path`, `-` meaning standard output, and writes the file header. With
  // `cut`, records longer than `snaplen` are cut to it as `editcap -s` does (the original length
  // stays), so that the header never declares less than a record holds. With `pcapng`, the file
  // is a pcapng whose interfaces it lists; `linktype` is then unused.
  FileWriter(std::string path, pcap::Precision precision, uint32_t snaplen, uint32_t linktype,
             LabelsOptions labels = {}, bool cut = false, std::optional<PcapngOptions> pcapng = {});
  ~FileWriter() override;

  void consume(const Batch& batch, size_t first, size_t count) override;
  // A classic pcap file takes all the pieces in one writev (IOV_MAX ranges a call).
  void consume(std::span<const Piece> pieces) override;
  void close() override;
  const SinkStats& stats() const override { return stats_; }

 private:
  // Opens the labels and the output and writes the file header.
  void open(pcap::Precision precision, uint32_t linktype);
  [[noreturn]] void fail(int error);
  // `iov` holds `size` bytes of `count` records, record i ending at `end(i)`. Returns 0, or the
  // errno of a failed write, after which the file was cut back to its last whole record; `kept`
  // gets how many of the records it holds, `kept_bytes` their size.
  template <typename End>
  int write_all(std::span<iovec> iov, size_t size, size_t count, End end, size_t& kept, size_t& kept_bytes);
  // Writes `records` (in `arena`, pcap headers) as EPBs, with the options they carry.
  void write_pcapng(const std::byte* arena, std::span<const Record> records, CarriedOptions carried);
  // Copies `records` of `arena` into cut_bytes_ with their captured length at most snaplen_.
  std::span<const Record> cut(const std::byte* arena, std::span<const Record> records);
  // The records (in `arena`, `bytes` in the file) are what the file now holds: counted, and labelled.
  void written(const std::byte* arena, std::span<const Record> records, size_t bytes);
  uint32_t linktype(const Record& r) const { return encoder_ ? encoder_->linktype(r) : linktype_; }
  // A labelled record's source, origin, index in its source, stage and conversation: the labels'
  // CSV columns after the time, and a pcapng comment.
  std::string label(const std::byte* arena, const Record& r) const;
  // `index`: the first record's in the output.
  void write_labels(const std::byte* arena, std::span<const Record> records, uint64_t index);
  void write_label_text(std::string_view text);
  [[noreturn]] void fail_labels(int error);
  std::string_view timestamp_field() const;

  std::string path_;
  pcap::Precision precision_;
  uint32_t snaplen_;
  uint32_t linktype_;
  bool cut_;
  std::vector<iovec> pieces_iov_;  // reused by consume(pieces)
  std::vector<std::byte> cut_bytes_;
  std::vector<Record> cut_records_;
  int fd_ = -1;
  bool owns_fd_ = true;
  uint64_t offset_ = 0;  // bytes in the file, all of them whole records after the header
  SinkStats stats_;
  LabelsOptions labels_;
  int labels_fd_ = -1;
  uint64_t labels_offset_ = 0;  // bytes in the labels, all of them whole lines
  bool jsonl_ = false;
  std::unique_ptr<PcapngEncoder> encoder_;
  bool comments_ = false;
  std::vector<std::string> comment_texts_;  // reused, one per record of a batch
};

class FileStage final : public SinkStage {
 public:
  FileStage();
  void check(const Node& node) const override;
  void verify(const Node& node) const override;
  pcap::Precision precision(const Node& node, const SourceInfo& background) const override;
  std::optional<uint32_t> snaplen(const Node& node) const override;
  bool mixed_linktypes(const Node& node) const override { return pcapng(node); }
  // Whether the node writes pcapng: `format=pcapng`, or a `.pcapng`/`.ntar` name with format=auto.
  static bool pcapng(const Node& node);
  std::unique_ptr<Sink> open(const Node& node, const SinkContext& context) const override;
};

}  // namespace vei
