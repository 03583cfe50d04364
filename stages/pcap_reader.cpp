#include "stages/pcap_reader.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <fmt/format.h>
#include <stdexcept>

#include "stages/pcapng_reader.h"

namespace vei {

namespace {

[[noreturn]] void fail(const std::string& path, std::string_view what) {
  throw std::runtime_error(fmt::format("{}: {}", path, what));
}

// Reads up to `n` bytes, retrying short reads; returns fewer only at end of input.
size_t read_full(int fd, std::byte* p, size_t n, const std::string& path) {
  size_t got = 0;
  while (got < n) {
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
    ::close(fd_);
    fail(options_.name, error);
  }
  info_.linktype = header_.linktype;
  info_.snaplen = header_.snaplen;
  info_.precision = header_.precision;
  max_caplen_ = pcap::record_limit(header_.snaplen);
  carry_.assign(prefix.begin() + pcap::file_header_size, prefix.end());
  file_offset_ = pcap::file_header_size;
  // Peek the first record's time so that `at=` and `rebase=` can be resolved before reading starts.
  const size_t have = carry_.size();
  if (have < record_header_size) {
    carry_.resize(record_header_size);
    const size_t got = read_full(fd_, carry_.data() + have, record_header_size - have, options_.name);
    carry_.resize(have + got);
    eof_ = have + got < record_header_size;
  }
  if (carry_.size() >= record_header_size)
    info_.first_ts_ns = int64_t{pcap::load32(carry_.data(), header_.swapped)} * pcap::ns_per_s +
                        pcap::frac_to_ns(pcap::load32(carry_.data() + 4, header_.swapped), header_.precision);
  ::posix_fadvise(fd_, 0, 0, POSIX_FADV_SEQUENTIAL);
}

PcapReader::~PcapReader() {
  if (fd_ > 0) ::close(fd_);
}

size_t PcapReader::read_into(Batch& batch, size_t have, size_t want) {
  if (eof_) return have;
  const size_t got = read_full(fd_, batch.data() + have, want - have, options_.name);
  if (have + got < want) eof_ = true;
  return have + got;
}

void PcapReader::stop_damaged(std::string message) {
  done_ = true;
  options_.report->damaged(fmt::format("{}: {}", options_.name, message));
}

void PcapReader::fill(Batch& batch) {
  batch.clear();
  batch.source = options_.rank;
  if (done_) {
    batch.last = true;
    finish();
    return;
  }
  std::memcpy(batch.data(), carry_.data(), carry_.size());
  size_t filled = read_into(batch, carry_.size(), batch.capacity);
  carry_.clear();

  const bool same_format = !header_.swapped && header_.precision == output_precision_ && offset_ == 0;
  const uint32_t frac_limit = header_.precision == pcap::Precision::ns ? 1'000'000'000u : 1'000'000u;
  const bool swapped = header_.swapped;
  size_t pos = 0;
  size_t parsed = 0;
  for (;;) {
    if (filled - pos < record_header_size) break;
    std::byte* h = batch.data() + pos;
    const uint32_t sec = pcap::load32(h, swapped);
    const uint32_t frac = pcap::load32(h + 4, swapped);
    const uint32_t caplen = pcap::load32(h + 8, swapped);
    const uint32_t len = pcap::load32(h + 12, swapped);
    if (caplen > max_caplen_) {
      stop_damaged(fmt::format(
          "record {} at byte offset {}: corrupt record header (caplen {} exceeds the limit {}, snaplen {}); "
          "the {} record(s) before it are kept, the rest of the file is ignored",
          stats_.packets + stats_.filtered + stats_.dropped, file_offset_ + pos, caplen, max_caplen_,
          header_.snaplen, stats_.packets + stats_.filtered + stats_.dropped));
      filled = pos;
      break;
    }
    const size_t size = record_header_size + caplen;
    if (filled - pos < size) {
      if (pos == 0 && size > batch.capacity) {
        // One record larger than the arena: give this batch room for it alone.
        batch.reserve_arena(size);
        filled = read_into(batch, filled, size);
        if (filled - pos >= size) continue;
      }
      break;
    }
    const int64_t ts = int64_t{sec} * pcap::ns_per_s + pcap::frac_to_ns(frac, header_.precision);
    admit(batch, static_cast<uint32_t>(pos), ts, caplen, len, same_format && frac < frac_limit);
    ++parsed;
    pos += size;
  }
  batch.used = pos;
  batch.raw_is_output = parsed == batch.records.size();
  carry_.assign(batch.data() + pos, batch.data() + filled);
  file_offset_ += pos;
  if (eof_ && !done_) {
    if (!carry_.empty()) {
      const uint64_t record = stats_.packets + stats_.filtered + stats_.dropped;
      if (carry_.size() < record_header_size)
        stop_damaged(fmt::format("truncated: record {} at byte offset {} has only {} of its 16 header bytes; "
                                 "the {} whole record(s) before it are kept",
                                 record, file_offset_, carry_.size(), record));
      else
        stop_damaged(fmt::format("truncated: record {} at byte offset {} promises {} captured bytes, only {} "
                                 "remain; the {} whole record(s) before it are kept",
                                 record, file_offset_, pcap::load32(carry_.data() + 8, swapped),
                                 carry_.size() - record_header_size, record));
    }
    done_ = true;
  }
  if (done_) {
    batch.last = true;
    finish();
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
  const size_t got = read_full(fd, prefix.data(), prefix.size(), options.name);
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
