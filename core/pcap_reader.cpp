#include "core/pcap_reader.h"

#include <fcntl.h>
#include <unistd.h>

#include <cstring>
#include <fmt/format.h>
#include <stdexcept>

#include "core/decompress.h"
#include "core/input_fd.h"
#include "core/pcapng_reader.h"

namespace vei {

namespace {

[[noreturn]] void fail(const std::string& path, std::string_view what) {
  throw std::runtime_error(fmt::format("{}: {}", path, what));
}

// The first bytes of `fd`, up to a classic file header's 24: fewer only at the end of the input.
// Closes `fd` and throws when the run stops before they come.
std::vector<std::byte> read_prefix(int fd, const SourceOptions& options) {
  std::vector<std::byte> prefix(pcap::file_header_size);
  const auto read = read_input(fd, prefix.data(), prefix.size(), prefix.size(), is_stream(fd), options.interrupt,
                               options.name);
  if (read.interrupted) {
    if (fd > 0) ::close(fd);
    fail(options.name, "stopped before its file header came");
  }
  prefix.resize(read.got);
  return prefix;
}

}  // namespace

PcapReader::PcapReader(int fd, std::vector<std::byte> prefix, SourceOptions options)
    : TimelineSource(std::move(options)) {
  in_.fd = fd;
  in_.stream = is_stream(fd);
  if (auto error = pcap::parse_file_header(prefix.data(), header_); !error.empty()) {
    if (in_.fd > 0) ::close(in_.fd);
    fail(options_.name, error);
  }
  info_.linktype = header_.linktype;
  info_.snaplen = header_.snaplen;
  info_.swapped = header_.swapped;
  info_.precision = header_.precision;
  max_caplen_ = pcap::record_limit(header_.snaplen);
  in_.offset = pcap::file_header_size;
  in_.carry.assign(prefix.begin() + pcap::file_header_size, prefix.end());

  // Peek the first record's time so that `at=` and `rebase=` are resolved before reading starts.
  const size_t had = in_.carry.size();
  if (had < record_header_size) {
    in_.carry.resize(record_header_size);
    const size_t want = record_header_size - had;
    const auto read = read_input(in_.fd, in_.carry.data() + had, want, want, in_.stream, options_.interrupt, options_.name);
    in_.carry.resize(had + read.got);
    in_.eof = had + read.got < record_header_size;
    in_.interrupted = read.interrupted;
  }
  std::byte first[record_header_size];
  const size_t have = std::min(in_.carry.size(), sizeof first);
  std::memcpy(first, in_.carry.data(), have);
  if (have == record_header_size)
    info_.first_ts_ns = int64_t{pcap::load32(first, header_.swapped)} * pcap::ns_per_s +
                        pcap::frac_to_ns(pcap::load32(first + 4, header_.swapped), header_.precision);
  ::posix_fadvise(in_.fd, 0, 0, POSIX_FADV_SEQUENTIAL);
}

PcapReader::~PcapReader() {
  if (in_.fd > 0) ::close(in_.fd);
}

void PcapReader::stop_damaged(std::string message) {
  done_ = true;
  options_.report->damaged(fmt::format("{}: {}", options_.name, message));
}

void PcapReader::truncated(size_t size) {
  const uint64_t record = records_seen();
  const size_t header_size = header_.record_header_size;
  if (size < header_size)
    stop_damaged(fmt::format("truncated: record {} at byte offset {} has only {} of its {} header bytes; "
                             "the {} whole record(s) before it are kept",
                             record, in_.offset, size, header_size, record));
  else
    stop_damaged(fmt::format("truncated: record {} at byte offset {} promises {} captured bytes, only {} "
                             "remain; the {} whole record(s) before it are kept",
                             record, in_.offset, in_.incomplete - header_size, size - header_size, record));
}

size_t PcapReader::parse(Batch& batch, size_t begin, size_t end) {
  // The layout of nearly every file (16-byte record headers, lengths in order) has a loop of its own,
  // without the older layouts' tests in it.
  const bool classic = header_.lengths == pcap::Lengths::in_order && header_.record_header_size == record_header_size;
  return classic ? parse_as<true>(batch, begin, end) : parse_as<false>(batch, begin, end);
}

template <bool Classic>
size_t PcapReader::parse_as(Batch& batch, size_t begin, size_t end) {
  const bool swapped = header_.swapped;
  const auto precision = header_.precision;
  const auto lengths = header_.lengths;
  const size_t header_size = Classic ? record_header_size : header_.record_header_size;
  // A longer header keeps its extra bytes in front of the data: the record starts that much later.
  const size_t skip = header_size - record_header_size;
  const uint32_t frac_limit = precision == pcap::Precision::ns ? 1'000'000'000u : 1'000'000u;
  // Headers can go out as they are when nothing about them changes on the way.
  bool time_kept = Classic && !swapped && precision == output_precision_ && offset_ == 0;
  size_t parsed = 0;
  size_t pos = begin;
  in_.incomplete = 0;
  while (end - pos >= header_size) {
    const std::byte* h = batch.data() + pos;
    uint32_t caplen = pcap::load32(h + 8, swapped);
    uint32_t len = pcap::load32(h + 12, swapped);
    if constexpr (!Classic)
      if (lengths != pcap::Lengths::in_order && (lengths == pcap::Lengths::exchanged || caplen > len)) std::swap(caplen, len);
    if (caplen > max_caplen_) [[unlikely]] {
      stop_damaged(fmt::format(
          "record {} at byte offset {}: corrupt record header (caplen {} exceeds the limit {}, snaplen {}); "
          "the {} record(s) before it are kept, the rest of the file is ignored",
          records_seen(), in_.offset + pos - begin, caplen, max_caplen_, header_.snaplen, records_seen()));
      break;
    }
    const size_t size = header_size + caplen;
    if (end - pos < size) {
      in_.incomplete = size;
      break;
    }
    const uint32_t frac = pcap::load32(h + 4, swapped);
    time_kept &= frac < frac_limit;
    const int64_t ts = int64_t{pcap::load32(h, swapped)} * pcap::ns_per_s + pcap::frac_to_ns(frac, precision);
    admit(batch, static_cast<uint32_t>(pos + skip), ts, caplen, len, time_kept);
    ++parsed;
    pos += size;
    if (window_closed()) [[unlikely]] {
      done_ = true;
      break;
    }
  }
  batch.used = pos;
  batch.raw_is_output = time_kept && parsed == batch.records.size();
  return pos - begin;
}

void PcapReader::fill(Batch& batch) {
  read_raw(batch);
  parse_raw(batch);
}

void PcapReader::read_raw(Batch& raw) { in_.read(raw, options_.interrupt, options_.name); }

void PcapReader::parse_raw(Batch& batch) {
  batch.source = options_.rank;
  if (!done_) in_.parse(batch, [&](size_t begin, size_t end) { return parse(batch, begin, end); });
  if (batch.raw.ended && !done_) {
    // Stopped while a stream was still to deliver: what did not come is not damage.
    if (!in_.carry.empty() && !batch.raw.interrupted) truncated(in_.carry.size());
    done_ = true;
  }
  if (done_) {
    end_reading();
    batch.last = true;
    finish();
  }
}

std::unique_ptr<TimelineSource> open_capture(const std::string& path, SourceOptions options) {
  if (options.name.empty()) options.name = path == "-" ? "<stdin>" : path;
  int fd = open_input(path);
  auto prefix = read_prefix(fd, options);
  // A gzip or zstd capture: the readers read the plain bytes a pump makes (core/decompress.h).
  if (const auto kind = compression_of(prefix); kind != Compression::none) {
    auto pump = std::make_shared<Decompressor>(kind, fd, std::move(prefix), options.name, options.report);
    fd = pump->take_plain_fd();
    options.producer = std::move(pump);
    prefix = read_prefix(fd, options);
  }
  const size_t got = prefix.size();
  uint32_t magic = 0;
  if (got >= 4) std::memcpy(&magic, prefix.data(), 4);
  if (got >= 4 && magic == pcap::magic_pcapng) return open_pcapng(fd, std::move(prefix), std::move(options));
  if (got < pcap::file_header_size) {
    if (fd > 0) ::close(fd);
    fail(options.name, got == 0 ? "empty file, not a capture"
                                : fmt::format("truncated file header ({} of 24 bytes)", got));
  }
  return std::make_unique<PcapReader>(fd, std::move(prefix), std::move(options));
}

}  // namespace vei
