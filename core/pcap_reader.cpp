#include "core/pcap_reader.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <fmt/format.h>
#include <stdexcept>

#include "core/pcapng_reader.h"

namespace vei {

namespace {

[[noreturn]] void fail(const std::string& path, std::string_view what) {
  throw std::runtime_error(fmt::format("{}: {}", path, what));
}

// Reads up to `n` bytes, retrying short reads until `min` have come; fewer only at end of input.
size_t read_full(int fd, std::byte* p, size_t n, size_t min, const std::string& path) {
  size_t got = 0;
  while (got < min) {
    const ssize_t r = ::read(fd, p + got, n - got);
    if (r == 0) break;
    if (r < 0) {
      if (errno == EINTR) continue;
      fail(path, std::strerror(errno));
    }
    got += static_cast<size_t>(r);
  }
  return got;
}

}  // namespace

PcapReader::PcapReader(int fd, std::vector<std::byte> prefix, SourceOptions options)
    : TimelineSource(std::move(options)), fd_(fd) {
  if (auto error = pcap::parse_file_header(prefix.data(), header_); !error.empty()) {
    if (fd_ > 0) ::close(fd_);
    fail(options_.name, error);
  }
  info_.linktype = header_.linktype;
  info_.snaplen = header_.snaplen;
  info_.swapped = header_.swapped;
  info_.precision = header_.precision;
  max_caplen_ = pcap::record_limit(header_.snaplen);
  file_offset_ = pcap::file_header_size;
  carry_.assign(prefix.begin() + pcap::file_header_size, prefix.end());

  // Peek the first record's time so that `at=` and `rebase=` are resolved before reading starts.
  const size_t had = carry_.size();
  if (had < record_header_size) {
    carry_.resize(record_header_size);
    const size_t got = read_full(fd_, carry_.data() + had, record_header_size - had, record_header_size - had, options_.name);
    carry_.resize(had + got);
    eof_ = had + got < record_header_size;
  }
  std::byte first[record_header_size];
  const size_t have = std::min(carry_.size(), sizeof first);
  std::memcpy(first, carry_.data(), have);
  if (have == record_header_size)
    info_.first_ts_ns = int64_t{pcap::load32(first, header_.swapped)} * pcap::ns_per_s +
                        pcap::frac_to_ns(pcap::load32(first + 4, header_.swapped), header_.precision);
  struct stat st {};
  streaming_ = ::fstat(fd_, &st) != 0 || !S_ISREG(st.st_mode);
  ::posix_fadvise(fd_, 0, 0, POSIX_FADV_SEQUENTIAL);
}

PcapReader::~PcapReader() {
  if (fd_ > 0) ::close(fd_);
}

void PcapReader::stop_damaged(std::string message) {
  done_ = true;
  options_.report->damaged(fmt::format("{}: {}", options_.name, message));
}

void PcapReader::truncated(const std::byte* rest, size_t size) {
  const uint64_t record = records_seen();
  if (size < record_header_size)
    stop_damaged(fmt::format("truncated: record {} at byte offset {} has only {} of its 16 header bytes; "
                             "the {} whole record(s) before it are kept",
                             record, file_offset_, size, record));
  else
    stop_damaged(fmt::format("truncated: record {} at byte offset {} promises {} captured bytes, only {} "
                             "remain; the {} whole record(s) before it are kept",
                             record, file_offset_, pcap::load32(rest + 8, header_.swapped),
                             size - record_header_size, record));
}

size_t PcapReader::parse(Batch& batch, size_t avail) {
  const bool swapped = header_.swapped;
  const auto precision = header_.precision;
  const uint32_t frac_limit = precision == pcap::Precision::ns ? 1'000'000'000u : 1'000'000u;
  // Headers can go out as they are when nothing about them changes on the way.
  bool time_kept = !swapped && precision == output_precision_ && offset_ == 0;
  size_t parsed = 0;
  size_t pos = 0;
  incomplete_ = 0;
  while (avail - pos >= record_header_size) {
    const std::byte* h = batch.data() + pos;
    const uint32_t caplen = pcap::load32(h + 8, swapped);
    if (caplen > max_caplen_) [[unlikely]] {
      stop_damaged(fmt::format(
          "record {} at byte offset {}: corrupt record header (caplen {} exceeds the limit {}, snaplen {}); "
          "the {} record(s) before it are kept, the rest of the file is ignored",
          records_seen(), file_offset_ + pos, caplen, max_caplen_, header_.snaplen, records_seen()));
      break;
    }
    const size_t size = record_header_size + caplen;
    if (avail - pos < size) {
      incomplete_ = size;
      break;
    }
    const uint32_t frac = pcap::load32(h + 4, swapped);
    time_kept &= frac < frac_limit;
    const int64_t ts = int64_t{pcap::load32(h, swapped)} * pcap::ns_per_s + pcap::frac_to_ns(frac, precision);
    admit(batch, static_cast<uint32_t>(pos), ts, caplen, pcap::load32(h + 12, swapped), time_kept);
    ++parsed;
    pos += size;
  }
  batch.used = pos;
  batch.raw_is_output = time_kept && parsed == batch.records.size();
  return pos;
}

void PcapReader::fill(Batch& batch) {
  batch.clear();
  batch.source = options_.rank;
  if (!done_) read_batch(batch);
  if (done_) {
    batch.last = true;
    finish();
  }
}

void PcapReader::read_batch(Batch& batch) {
  batch.reserve_arena(carry_.size());
  std::memcpy(batch.data(), carry_.data(), carry_.size());
  size_t filled = carry_.size();
  for (;;) {
    if (!eof_ && filled < batch.capacity()) {
      // A pipe hands over what has arrived: its records flow on without waiting for a full arena.
      const size_t want = batch.capacity() - filled;
      const size_t got = read_full(fd_, batch.data() + filled, want, streaming_ ? 1 : want, options_.name);
      eof_ = got == 0 || (!streaming_ && got < want);
      filled += got;
    }
    const size_t consumed = parse(batch, filled);
    if (consumed == 0 && !done_ && !eof_) {
      if (incomplete_ > batch.capacity()) {
        batch.used = filled;
        batch.reserve_arena(incomplete_);  // one record larger than the arena
      }
      continue;
    }
    carry_.assign(batch.data() + consumed, batch.data() + filled);
    file_offset_ += consumed;
    if (eof_ && !done_) {
      if (!carry_.empty()) truncated(carry_.data(), carry_.size());
      done_ = true;
    }
    return;
  }
}

std::unique_ptr<TimelineSource> open_capture(const std::string& path, SourceOptions options) {
  if (options.name.empty()) options.name = path == "-" ? "<stdin>" : path;
  int fd = 0;
  if (path != "-") {
    fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0) fail(path, std::strerror(errno));
    struct stat st {};
    if (::fstat(fd, &st) == 0 && S_ISDIR(st.st_mode)) {
      ::close(fd);
      fail(path, "is a directory, not a capture file");
    }
  }
  std::vector<std::byte> prefix(pcap::file_header_size);
  const size_t got = read_full(fd, prefix.data(), prefix.size(), prefix.size(), options.name);
  uint32_t magic = 0;
  if (got >= 4) std::memcpy(&magic, prefix.data(), 4);
  if (got >= 4 && magic == pcap::magic_pcapng) {
    prefix.resize(got);
    return open_pcapng(fd, std::move(prefix), std::move(options));
  }
  if (got < prefix.size()) {
    if (fd > 0) ::close(fd);
    fail(options.name, got == 0 ? "empty file, not a capture"
                                : fmt::format("truncated file header ({} of 24 bytes)", got));
  }
  return std::make_unique<PcapReader>(fd, std::move(prefix), std::move(options));
}

}  // namespace vei
