#include "stages/file.h"

#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <fmt/format.h>
#include <stdexcept>
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

}  // namespace

FileWriter::FileWriter(std::string path, pcap::Precision precision, uint32_t snaplen, uint32_t linktype,
                       LabelsOptions labels)
    : path_(std::move(path)), labels_(std::move(labels)) {
  if (!labels_.path.empty()) {
    labels_file_ = std::fopen(labels_.path.c_str(), "w");
    if (!labels_file_) throw std::runtime_error(fmt::format("{}: {}", labels_.path, std::strerror(errno)));
    jsonl_ = labels_.path.ends_with(".jsonl");
    if (!jsonl_) fmt::print(labels_file_, "index,timestamp,source,origin,record\n");
  }
  if (path_ == "-") {
    fd_ = STDOUT_FILENO;
    owns_fd_ = false;
    path_ = "<stdout>";
  } else {
    fd_ = ::open(path_.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd_ < 0) fail(errno);
  }
  std::byte header[pcap::file_header_size];
  pcap::write_file_header(header, precision, snaplen, linktype);
  write_all(header, sizeof header);
}

FileWriter::~FileWriter() {
  if (owns_fd_ && fd_ >= 0) ::close(fd_);
  if (labels_file_) std::fclose(labels_file_);
}

void FileWriter::fail(int error) {
  throw std::runtime_error(fmt::format("{}: {}", path_, std::strerror(error)));
}

void FileWriter::write_all(const std::byte* data, size_t size, std::span<const Record> records) {
  size_t done = 0;
  while (done < size) {
    const ssize_t r = ::write(fd_, data + done, size - done);
    if (r < 0 && errno == EINTR) continue;
    if (r <= 0) {
      const int error = r < 0 ? errno : ENOSPC;
      // Cut the file back to the last whole record so that it stays a valid capture.
      size_t whole = 0;
      const uint32_t base = records.empty() ? 0 : records.front().offset;
      for (const auto& rec : records) {
        const size_t end = rec.offset - base + record_header_size + rec.caplen;
        if (end > done) break;
        whole = end;
      }
      if (owns_fd_ && done) (void)::ftruncate(fd_, static_cast<off_t>(offset_ + whole));
      offset_ += whole;
      fail(error);
    }
    done += static_cast<size_t>(r);
  }
  offset_ += size;
}

void FileWriter::consume(const Batch& batch, size_t first, size_t count) {
  if (count == 0) return;
  const std::span records(batch.records.data() + first, count);
  const size_t begin = records.front().offset;
  const size_t end = records.back().offset + record_header_size + records.back().caplen;
  write_all(batch.data() + begin, end - begin, records);
  if (labels_file_) write_labels(records);
  stats_.packets += count;
  stats_.bytes += end - begin;
}

void FileWriter::write_labels(std::span<const Record> records) {
  uint64_t index = stats_.packets;
  for (const auto& r : records) {
    const uint64_t i = index++;
    if (r.source == 0) continue;
    const std::string ts = fmt::format("{}.{:09}", r.ts_ns / pcap::ns_per_s, r.ts_ns % pcap::ns_per_s);
    const std::string& name = labels_.names.at(r.source);
    const std::string& origin = labels_.origins.at(r.source);
    if (jsonl_)
      fmt::print(labels_file_, "{{\"index\":{},\"timestamp\":\"{}\",\"source\":{},\"origin\":{},\"record\":{}}}\n", i, ts,
                 json_string(name), json_string(origin), r.seq);
    else
      fmt::print(labels_file_, "{},{},{},{},{}\n", i, ts, csv_field(name), csv_field(origin), r.seq);
  }
}

void FileWriter::close() {
  if (labels_file_) {
    const bool ok = std::fflush(labels_file_) == 0 && !std::ferror(labels_file_);
    std::fclose(labels_file_);
    labels_file_ = nullptr;
    if (!ok) throw std::runtime_error(fmt::format("{}: {}", labels_.path, std::strerror(errno)));
  }
  if (owns_fd_ && fd_ >= 0) {
    const int r = ::close(fd_);
    fd_ = -1;
    if (r != 0) fail(errno);
  }
}

FileStage::FileStage()
    : SinkStage({"file", StageKind::sink,
                 "Writes a classic pcap file (`-` for standard output), one write() per batch. The link type "
                 "is the first source's; the file is a valid pcap on every exit path.",
                 {
                     {"file", ParamType::output, "", "output file (`-` for standard output)", {}, true, true},
                     {"precision", ParamType::choice, "auto",
                      "timestamp precision: `us`, `ns`, or `auto` (ns when the first source is ns pcap or pcapng, else us)",
                      {"auto", "us", "ns"}},
                     {"snaplen", ParamType::size, "",
                      "snapshot length written in the header (default: 262144, libpcap's maximum, or a larger one an input "
                      "declares)"},
                     {"labels", ParamType::output, "",
                      "ground truth: a line for every packet not from the first source (output index, timestamp, source, "
                      "origin file or `event`, record index or event id); CSV, or JSON lines when the name ends in .jsonl"},
                 }}) {}

void FileStage::check(const Node& node) const {
  // The header's field is 32 bits wide.
  if (const Value& snaplen = param(node, "snaplen"); snaplen.given) check_range(snaplen, "snaplen", 1, UINT32_MAX, "bytes");
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
  LabelsOptions labels{param(node, "labels").text, context.names, context.origins};
  return std::make_unique<FileWriter>(param(node, "file").text, context.precision, context.snaplen, context.linktype,
                                      std::move(labels));
}

}  // namespace vei

VEI_STAGE(file, vei::FileStage)
