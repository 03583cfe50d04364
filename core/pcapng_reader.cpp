#include "core/pcapng_reader.h"

#include <pcap/pcap.h>
#include <unistd.h>

#include <cerrno>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <fmt/format.h>
#include <stdexcept>

#include "core/input_fd.h"

namespace vei {

namespace {

// A FILE* that replays bytes already read from `fd` before reading on, so that standard input can
// be sniffed and then handed to libpcap.
struct PrefixedFd {
  int fd;
  std::vector<std::byte> prefix;
  const Interrupt* interrupt;
  bool stream;
  size_t pos = 0;
};

ssize_t prefixed_read(void* cookie, char* buf, size_t size) {
  auto* c = static_cast<PrefixedFd*>(cookie);
  if (c->pos < c->prefix.size()) {
    const size_t n = std::min(size, c->prefix.size() - c->pos);
    std::memcpy(buf, c->prefix.data() + c->pos, n);
    c->pos += n;
    return static_cast<ssize_t>(n);
  }
  // libpcap is C: an error goes back as errno. An interrupt reads as the end of the input.
  try {
    return static_cast<ssize_t>(read_input(c->fd, reinterpret_cast<std::byte*>(buf), size, 1, c->stream,
                                           c->interrupt, {}).got);
  } catch (const std::exception&) {
    if (errno == 0) errno = EIO;
    return -1;
  }
}

int prefixed_close(void* cookie) {
  auto* c = static_cast<PrefixedFd*>(cookie);
  if (c->fd > 0) ::close(c->fd);
  delete c;
  return 0;
}

// libpcap hands out DLT_ values; the file header wants LINKTYPE_ values. They differ for a few.
uint32_t dlt_to_linktype(int dlt) {
  switch (dlt) {
    case DLT_RAW: return 101;
    case DLT_ATM_RFC1483: return 100;
    case DLT_SLIP_BSDOS: return 102;
    case DLT_PPP_BSDOS: return 103;
    default: return static_cast<uint32_t>(dlt);
  }
}

class PcapngReader final : public TimelineSource {
 public:
  PcapngReader(pcap_t* handle, SourceOptions options) : TimelineSource(std::move(options)), handle_(handle) {
    info_.linktype = dlt_to_linktype(pcap_datalink(handle_));
    info_.snaplen = static_cast<uint32_t>(pcap_snapshot(handle_));
    info_.swapped = pcap_is_swapped(handle_) == 1;
    info_.precision = pcap::Precision::ns;
    info_.pcapng = true;
    advance();
    // A first time out of range is dropped when read: the source then starts at 0, like an empty one.
    if (pending_ && timestamp() != INT64_MIN && timestamp() != INT64_MAX) info_.first_ts_ns = timestamp();
  }
  ~PcapngReader() override { pcap_close(handle_); }

  void fill(Batch& batch) override {
    batch.clear();
    batch.source = options_.rank;
    while (pending_) {
      const size_t size = record_header_size + header_->caplen;
      if (batch.used + size > batch.capacity()) {
        if (batch.used) break;
        batch.reserve_arena(size);
      }
      std::byte* at = batch.data() + batch.used;
      std::memcpy(at + record_header_size, data_, header_->caplen);
      bool time_kept = true;
      if (admit(batch, static_cast<uint32_t>(batch.used), timestamp(), header_->caplen, header_->len, time_kept)) {
        pcap::write_record_header(at, batch.records.back().ts_ns, output_precision_, header_->caplen, header_->len);
        batch.used += size;
      }
      if (window_closed()) {
        pending_ = false;
        break;
      }
      advance();
    }
    // Headers are written here in the output format, and a dropped record leaves no gap.
    batch.raw_is_output = true;
    if (!pending_) {
      batch.last = true;
      finish();
    }
  }

 private:
  // pcapng times are 64-bit counts of if_tsresol units plus an if_tsoffset: libpcap's seconds can
  // lie far beyond the ±292 years that int64 nanoseconds hold. Those saturate to INT64_MIN or
  // INT64_MAX, which admit() drops as unrepresentable.
  int64_t timestamp() const {
    constexpr int64_t max_sec = INT64_MAX / pcap::ns_per_s - 1;
    const int64_t sec = header_->ts.tv_sec;
    if (sec > max_sec) return INT64_MAX;
    if (sec < -max_sec) return INT64_MIN;
    return sec * pcap::ns_per_s + header_->ts.tv_usec;
  }

  void advance() {
    const int r = pcap_next_ex(handle_, &header_, &data_);
    pending_ = r == 1;
    // Stopped while a stream was still to deliver: what did not come is not damage.
    if (r == PCAP_ERROR && !(options_.interrupt && options_.interrupt->raised()))
      options_.report->damaged(fmt::format("{}: {} (after {} records); the records before it are kept",
                                           options_.name, pcap_geterr(handle_),
                                           stats_.packets + stats_.filtered + stats_.dropped));
  }

  pcap_t* handle_;
  pcap_pkthdr* header_ = nullptr;
  const u_char* data_ = nullptr;
  bool pending_ = false;
};

}  // namespace

std::unique_ptr<TimelineSource> open_pcapng(int fd, std::vector<std::byte> prefix, SourceOptions options) {
  auto* cookie = new PrefixedFd{fd, std::move(prefix), options.interrupt, is_stream(fd)};
  FILE* file = fopencookie(cookie, "r", {prefixed_read, nullptr, nullptr, prefixed_close});
  if (!file) {
    prefixed_close(cookie);
    throw std::runtime_error(fmt::format("{}: {}", options.name, std::strerror(errno)));
  }
  char errbuf[PCAP_ERRBUF_SIZE] = {};
  pcap_t* handle = pcap_fopen_offline_with_tstamp_precision(file, PCAP_TSTAMP_PRECISION_NANO, errbuf);
  if (!handle) {
    std::fclose(file);
    throw std::runtime_error(fmt::format("{}: {}", options.name, errbuf));
  }
  return std::make_unique<PcapngReader>(handle, std::move(options));
}

}  // namespace vei
