#include "stages/file.h"

#include <fcntl.h>
#include <sys/uio.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <climits>
#include <cstring>
#include <iterator>
#include <fmt/format.h>
#include <stdexcept>
#include "core/flow_id.h"
#include "core/output_fd.h"
#include "core/paths.h"
#include "core/timeline_source.h"

namespace vei {

namespace {

std::string csv_field(const std::string& s) {
  if (s.find_first_of(",\"\n") == std::string::npos) return s;
  std::string quoted = "\"";
  for (char c : s) quoted += c == '"' ? std::string("\"\"") : std::string(1, c);
  return quoted + "\"";
}

std::string json_string(const std::string& s) {
  std::string out = "\"";
  for (char c : s) {
    if (c == '"' || c == '\\') out += '\\';
    if (static_cast<unsigned char>(c) < 0x20) out += fmt::format("\\u{:04x}", c);
    else out += c;
  }
  return out + "\"";
}

int write_fully(int fd, const void* data, size_t size, size_t& done) {
  iovec one{const_cast<void*>(data), size};
  return vei::write_fully(fd, std::span(&one, 1), done);
}

}  // namespace

FileWriter::FileWriter(std::string path, pcap::Precision precision, uint32_t snaplen, uint32_t linktype,
                       LabelsOptions labels, bool cut, std::optional<PcapngOptions> pcapng)
    : path_(std::move(path)),
      precision_(precision),
      snaplen_(snaplen),
      linktype_(linktype),
      cut_(cut),
      labels_(std::move(labels)) {
  if (pcapng) {
    encoder_ = std::make_unique<PcapngEncoder>(precision, std::move(pcapng->interfaces), "veipipe " VEIPIPE_VERSION,
                                               std::move(pcapng->late));
    comments_ = pcapng->comments;
  }
  try {
    open(precision, linktype);
  } catch (...) {
    // No destructor runs for a constructor that throws: what was opened is closed here.
    if (owns_fd_ && fd_ >= 0) ::close(fd_);
    if (labels_fd_ >= 0) ::close(labels_fd_);
    throw;
  }
}

void FileWriter::open(pcap::Precision precision, uint32_t linktype) {
  if (!labels_.path.empty()) {
    labels_fd_ = ::open(labels_.path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (labels_fd_ < 0) fail_labels(errno);
    jsonl_ = labels_.path.ends_with(".jsonl");
    if (!jsonl_) write_label_text(fmt::format("index,{},source,origin,record,stage,conversation\n", timestamp_field()));
  }
  if (path_ == "-") {
    fd_ = STDOUT_FILENO;
    owns_fd_ = false;
    path_ = "<stdout>";
  } else {
    fd_ = ::open(path_.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd_ < 0) fail(errno);
  }
  std::byte pcap_header[pcap::file_header_size];
  pcap::write_file_header(pcap_header, precision, snaplen_, linktype);
  const std::span<const std::byte> header = encoder_ ? std::span(encoder_->header()) : std::span(pcap_header);
  iovec iov{const_cast<std::byte*>(header.data()), header.size()};
  size_t kept = 0, kept_bytes = 0;
  if (const int error = write_all({&iov, 1}, header.size(), 0, [](size_t) { return size_t{0}; }, kept, kept_bytes))
    fail(error);
}

FileWriter::~FileWriter() {
  if (owns_fd_ && fd_ >= 0) ::close(fd_);
  if (labels_fd_ >= 0) ::close(labels_fd_);
}

void FileWriter::fail(int error) {
  throw std::runtime_error(fmt::format("{}: {}", path_, std::strerror(error)));
}

void FileWriter::fail_labels(int error) {
  throw std::runtime_error(fmt::format("labels {}: {}", labels_.path, std::strerror(error)));
}

template <typename End>
int FileWriter::write_all(std::span<iovec> iov, size_t size, size_t count, End end, size_t& kept, size_t& kept_bytes) {
  size_t done = 0;
  kept = count;
  kept_bytes = size;
  const int error = write_fully(fd_, iov, done);
  if (!error) {
    offset_ += size;
    return 0;
  }
  // Cut the file back to the last whole record so that it stays a valid capture.
  kept = 0;
  kept_bytes = 0;
  while (kept < count && end(kept) <= done) kept_bytes = end(kept++);
  if (owns_fd_ && done) (void)::ftruncate(fd_, static_cast<off_t>(offset_ + kept_bytes));
  offset_ += kept_bytes;
  return error;
}

void FileWriter::consume(const Batch& batch, size_t first, size_t count) {
  if (count == 0) return;
  std::span<const Record> records(batch.records.data() + first, count);
  const std::byte* arena = batch.data();
  if (cut_ && std::ranges::any_of(records, [&](const Record& r) { return r.caplen > snaplen_; })) {
    records = cut(arena, records);
    arena = cut_bytes_.data();
  }
  if (encoder_) return write_pcapng(arena, records, {batch.annotations_of(first, count), batch.annotation_bytes.data(), first});
  const size_t begin = records.front().offset;
  const size_t end = records.back().offset + record_header_size + records.back().caplen;
  const auto record_end = [&](size_t i) { return records[i].offset - begin + record_header_size + records[i].caplen; };
  size_t kept = 0, kept_bytes = 0;
  iovec iov{const_cast<std::byte*>(arena + begin), end - begin};
  const int error = write_all({&iov, 1}, end - begin, records.size(), record_end, kept, kept_bytes);
  written(arena, records.first(kept), kept_bytes);
  if (error) fail(error);
}

void FileWriter::consume(std::span<const Piece> pieces) {
  if (pieces.size() == 1 || cut_ || encoder_) return Sink::consume(pieces);
  const auto begin_of = [](const Piece& p) { return size_t{p.batch->records[p.first].offset}; };
  const auto end_of = [](const Piece& p, size_t count) {
    const Record& r = p.batch->records[p.first + count - 1];
    return size_t{r.offset} + record_header_size + r.caplen;
  };
  pieces_iov_.clear();
  size_t size = 0, count = 0;
  for (const Piece& p : pieces) {
    const size_t begin = begin_of(p), end = end_of(p, p.count);
    pieces_iov_.push_back({const_cast<std::byte*>(p.batch->data() + begin), end - begin});
    size += end - begin;
    count += p.count;
  }
  // Where record i ends in the write: asked for i = 0, 1, ... in order, and only after a failure.
  size_t piece = 0, piece_first = 0, piece_start = 0;
  const auto record_end = [&](size_t i) {
    for (; i >= piece_first + pieces[piece].count; ++piece) {
      piece_first += pieces[piece].count;
      piece_start += pieces_iov_[piece].iov_len;
    }
    return piece_start + end_of(pieces[piece], i - piece_first + 1) - begin_of(pieces[piece]);
  };
  size_t kept = 0, kept_bytes = 0;
  const int error = write_all(pieces_iov_, size, count, record_end, kept, kept_bytes);
  // Every record the file keeps is counted before any is labelled: labels that fail on the first
  // piece must not leave the later pieces' records in the file but out of the statistics.
  uint64_t index = stats_.packets;
  stats_.packets += kept;
  stats_.bytes += kept_bytes;
  if (labels_fd_ >= 0) {
    for (const Piece& p : pieces) {
      const size_t n = std::min<size_t>(p.count, kept);
      if (n == 0) break;
      write_labels(p.batch->data(), std::span(p.batch->records).subspan(p.first, n), index);
      index += n;
      kept -= n;
    }
  }
  if (error) fail(error);
}

void FileWriter::write_pcapng(const std::byte* arena, std::span<const Record> records, CarriedOptions carried) {
  if (comments_) {
    comment_texts_.resize(records.size());
    for (size_t i = 0; i < records.size(); ++i)
      comment_texts_[i] = records[i].source == 0 ? std::string() : label(arena, records[i]).substr(0, UINT16_MAX);
  }
  const auto blocks =
      encoder_->encode(arena, records, comments_ ? std::span(comment_texts_) : std::span<const std::string>(), carried);
  size_t kept = 0, kept_bytes = 0;
  const int error = write_all(blocks, encoder_->size(), records.size(), [&](size_t i) { return encoder_->end(i); },
                              kept, kept_bytes);
  written(arena, records.first(kept), kept_bytes);
  if (error) fail(error);
}

std::span<const Record> FileWriter::cut(const std::byte* arena, std::span<const Record> records) {
  cut_bytes_.clear();
  cut_records_.clear();
  for (Record r : records) {
    const uint32_t caplen = std::min(r.caplen, snaplen_);
    const size_t at = cut_bytes_.size();
    cut_bytes_.resize(at + record_header_size + caplen);
    // The header as the batch holds it (the output's format), with the shorter captured length.
    pcap::write_record_header(cut_bytes_.data() + at, r.ts_ns, precision_, caplen, r.len);
    std::memcpy(cut_bytes_.data() + at + record_header_size, arena + r.offset + record_header_size, caplen);
    r.offset = static_cast<uint32_t>(at);
    r.caplen = caplen;
    cut_records_.push_back(r);
  }
  return cut_records_;
}

void FileWriter::written(const std::byte* arena, std::span<const Record> records, size_t bytes) {
  if (records.empty()) return;
  const uint64_t first_index = stats_.packets;
  stats_.packets += records.size();
  stats_.bytes += bytes;
  if (labels_fd_ >= 0) write_labels(arena, records, first_index);
}

std::string FileWriter::label(const std::byte* arena, const Record& r) const {
  const std::string flow = flow_id(linktype(r), {arena + r.offset + record_header_size, r.caplen});
  return fmt::format("{},{},{},{},{}", csv_field(labels_.names.at(r.source)), csv_field(labels_.origins.at(r.source)),
                     r.seq, csv_field(labels_.stages.at(r.source)), csv_field(flow));
}

std::string_view FileWriter::timestamp_field() const {
  return precision_ == pcap::Precision::ns ? "timestamp_ns" : "timestamp_us";
}

void FileWriter::write_labels(const std::byte* arena, std::span<const Record> records, uint64_t index) {
  std::string text;
  for (const auto& r : records) {
    const uint64_t i = index++;
    if (r.source == 0) continue;
    // The time the record's header holds, digit for digit.
    uint32_t words[2];
    std::memcpy(words, arena + r.offset, sizeof words);
    const std::string ts = precision_ == pcap::Precision::ns ? fmt::format("{}.{:09}", words[0], words[1])
                                                             : fmt::format("{}.{:06}", words[0], words[1]);
    if (!jsonl_) {
      fmt::format_to(std::back_inserter(text), "{},{},{}\n", i, ts, label(arena, r));
      continue;
    }
    const std::string flow = flow_id(linktype(r), {arena + r.offset + record_header_size, r.caplen});
    fmt::format_to(std::back_inserter(text),
                   "{{\"index\":{},\"{}\":\"{}\",\"source\":{},\"origin\":{},\"record\":{},\"stage\":{},"
                   "\"conversation\":{}}}\n",
                   i, timestamp_field(), ts, json_string(labels_.names.at(r.source)),
                   json_string(labels_.origins.at(r.source)), r.seq, json_string(labels_.stages.at(r.source)),
                   json_string(flow));
  }
  write_label_text(text);
}

void FileWriter::write_label_text(std::string_view text) {
  size_t done = 0;
  const int error = write_fully(labels_fd_, text.data(), text.size(), done);
  if (!error) {
    labels_offset_ += text.size();
    return;
  }
  // Cut back to the last whole line: every line the labels keep is a whole one.
  const size_t line_end = text.substr(0, done).rfind('\n');
  const size_t whole = line_end == std::string_view::npos ? 0 : line_end + 1;
  if (done) (void)::ftruncate(labels_fd_, static_cast<off_t>(labels_offset_ + whole));
  labels_offset_ += whole;
  fail_labels(error);
}

void FileWriter::close() {
  if (labels_fd_ >= 0) {
    const int r = ::close(labels_fd_);
    labels_fd_ = -1;
    if (r != 0) fail_labels(errno);
  }
  if (owns_fd_ && fd_ >= 0) {
    const int r = ::close(fd_);
    fd_ = -1;
    if (r != 0) fail(errno);
  }
}

FileStage::FileStage()
    : SinkStage({"file", StageKind::sink,
                 "Writes a classic pcap file (`-` for standard output), or a pcapng one, one write() per batch (a "
                 "pcapng: writev(), the packets written from where the batch holds them). A "
                 "pcap's link type is the first source's; a pcapng gives each source (each interface of a pcapng "
                 "input) an interface of its own, named as the statistics name the source, so sources of different "
                 "link types merge into it. The file is a valid capture on every exit path.",
                 {
                     {"file", ParamType::output, "", "output file (`-` for standard output)", {}, true, true},
                     {"format", ParamType::choice, "auto",
                      "`pcap`, `pcapng`, or `auto`: pcapng when the name ends in .pcapng or .ntar, else pcap",
                      {"auto", "pcap", "pcapng"}},
                     {"comments", ParamType::boolean, "false",
                      "pcapng only: each packet not from the first source carries its label (source, origin, record, "
                      "stage, conversation: the labels' CSV columns) as its comment, which Wireshark shows"},
                     {"precision", ParamType::choice, "auto",
                      "timestamp precision: `us`, `ns`, or `auto` (ns when the first source is ns pcap or pcapng, else us)",
                      {"auto", "us", "ns"}},
                     {"snaplen", ParamType::size, "",
                      "snapshot length: longer records are cut to it, as `editcap -s` does (the original length stays), "
                      "and the header declares it (default: 262144, libpcap's maximum, or a larger one an input declares; "
                      "nothing is cut)"},
                     {"labels", ParamType::output, "",
                      "ground truth: a line for every packet not from the first source (output index, its time as the file "
                      "holds it: `timestamp_us` or `timestamp_ns`, source, origin file or `event`, record index or event "
                      "id, the source's stage, and the conversation: `tcp A:P B:Q`, `udp ...`, `icmp A B`, `ip A B "
                      "proto N`, the lower endpoint first, empty when not IP); CSV, or JSON lines when the name ends in "
                      ".jsonl"},
                 }}) {}

void FileStage::check(const Node& node) const {
  // The header's field is 32 bits wide.
  if (const Value& snaplen = param(node, "snaplen"); snaplen.given) check_range(snaplen, "snaplen", 1, UINT32_MAX, "bytes");
  if (const Value& comments = param(node, "comments"); comments.boolean && !pcapng(node))
    throw ParamError(comments, "comments need a pcapng output: a classic pcap has no place for them",
                     "write pcapng: `file(out.pcapng, comments=true)` or `format=pcapng`");
}

bool FileStage::pcapng(const Node& node) {
  const std::string& format = param(node, "format").text;
  if (format != "auto") return format == "pcapng";
  const std::string& file = param(node, "file").text;
  return file.ends_with(".pcapng") || file.ends_with(".ntar");
}

void FileStage::verify(const Node& node) const {
  // `file(-)` is standard output, open already; `labels=-` is a file of that name.
  for (const Value* path : paths(node, ParamType::output))
    if (path->text != "-" || path != &param(node, "file")) check_writable(path->text);
}

pcap::Precision FileStage::precision(const Node& node, const SourceInfo& background) const {
  const auto& choice = param(node, "precision").text;
  const bool ns = choice == "ns" || (choice == "auto" && (background.precision == pcap::Precision::ns || background.pcapng));
  return ns ? pcap::Precision::ns : pcap::Precision::us;
}

std::optional<uint32_t> FileStage::snaplen(const Node& node) const {
  if (const Value& v = param(node, "snaplen"); v.given) return static_cast<uint32_t>(v.integer);
  return std::nullopt;
}

std::unique_ptr<Sink> FileStage::open(const Node& node, const SinkContext& context) const {
  LabelsOptions labels{param(node, "labels").text, context.names, context.origins, context.stages};
  const bool cut = param(node, "snaplen").given;
  std::optional<PcapngOptions> pcapng;
  if (FileStage::pcapng(node)) {
    pcapng.emplace();
    pcapng->comments = param(node, "comments").boolean;
    // Named as the statistics name each source, described by its stage; a source of several
    // interfaces names each after the source.
    const auto as_output = [&context, cut](size_t rank, size_t i, bool alone, Interface in) {
      in.name = alone          ? context.names[rank]
                : in.name.empty() ? fmt::format("{}#{}", context.names[rank], i)
                                  : fmt::format("{}:{}", context.names[rank], in.name);
      in.description = context.stages[rank];
      // libpcap clips a record to its interface's snaplen, and veipipe keeps records longer than
      // their file declares (core/pcap_format.h, record_limit): declare what may come.
      in.snaplen = cut ? context.snaplen : std::min(context.snaplen, pcap::record_limit(in.snaplen));
      return in;
    };
    for (size_t rank = 0; rank < context.interfaces.size(); ++rank) {
      const auto& own = context.interfaces[rank];
      auto& out = pcapng->interfaces.emplace_back();
      for (size_t i = 0; i < own.size(); ++i) out.push_back(as_output(rank, i, own.size() == 1, own[i]));
    }
    pcapng->late = [as_output, lists = context.late_interfaces](uint16_t rank, uint16_t iface) {
      // The source added it before passing on the record that names it.
      return as_output(rank, iface, false, lists.at(rank)->at(iface).value());
    };
  }
  return std::make_unique<FileWriter>(param(node, "file").text, context.precision, context.snaplen, context.linktype,
                                      std::move(labels), cut, std::move(pcapng));
}

}  // namespace vei

VEI_STAGE(file, vei::FileStage)
