// libFuzzer target: the pcapng writer's round trip (core/pcapng_writer.h). The input describes a
// batch: its first byte the precision, the sources' interface counts and whether packets carry
// comments; then records, each {source, interface, time step, length} and that many bytes. The
// encoded file is read back with libpcap (pcap_fopen_offline reads a pcapng of one link type), which
// must give every record, in order, with its time, lengths and bytes. fuzz/README.md says how to run it.
#include <pcap/pcap.h>

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

#include "core/batch.h"
#include "core/pcap_format.h"
#include "core/pcapng_writer.h"

#define ROUND_TRIP_CHECK(cond)                                                     \
  do {                                                                              \
    if (!(cond)) {                                                                  \
      std::fprintf(stderr, "pcapng round trip: %s failed at line %d\n", #cond, __LINE__); \
      std::abort();                                                                 \
    }                                                                               \
  } while (0)

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size < 1) return 0;
  const uint8_t flags = data[0];
  const auto precision = flags & 1 ? vei::pcap::Precision::ns : vei::pcap::Precision::us;
  const bool commented = flags & 2;
  // Three sources of one to four interfaces each known at the start, all Ethernet (libpcap reads
  // one link type); a record may name up to four, the rest described late, before first use.
  std::vector<std::vector<vei::Interface>> interfaces(3);
  for (size_t s = 0; s < interfaces.size(); ++s)
    interfaces[s].resize(1 + ((flags >> (2 + 2 * s)) & 3), vei::Interface{1, vei::pcap::max_snaplen, "if", "fuzz"});

  vei::Batch batch;
  batch.reserve_arena(size * 5 + 64);  // a record of 5 input bytes takes a 16-byte header
  std::vector<std::string> comments;
  int64_t ts = 1'700'000'000 * vei::pcap::ns_per_s;
  size_t at = 1;
  while (at + 5 <= size) {
    vei::Record r{};
    r.source = static_cast<uint16_t>(data[at] % interfaces.size());
    r.iface = static_cast<uint16_t>(data[at + 1] % 4);
    ts += int64_t{data[at + 2]} * 999'999'937;  // steps that leave nanoseconds to round
    const uint32_t caplen = std::min<uint32_t>(uint32_t{data[at + 3]} | uint32_t{data[at + 4]} << 8,
                                               static_cast<uint32_t>(size - at - 5));
    at += 5;
    r.ts_ns = ts;
    r.caplen = caplen;
    r.len = caplen + (data[at - 1] & 1);
    r.offset = static_cast<uint32_t>(batch.used);
    vei::pcap::write_record_header(batch.data() + batch.used, ts, precision, caplen, r.len);
    std::memcpy(batch.data() + batch.used + vei::record_header_size, data + at, caplen);
    batch.used += vei::record_header_size + caplen;
    at += caplen;
    batch.records.push_back(r);
    comments.push_back(commented && r.source ? std::string(data + at - caplen, data + at) : std::string());
  }

  vei::PcapngEncoder encoder(precision, interfaces, "veipipe fuzz", [](uint16_t, uint16_t) {
    return vei::Interface{1, vei::pcap::max_snaplen, "late", "fuzz"};
  });
  std::vector<std::byte> file = encoder.header();
  const auto blocks = encoder.encode(batch.data(), batch.records, commented ? std::span(comments) : std::span<const std::string>());
  for (const iovec& v : blocks) file.insert(file.end(), static_cast<std::byte*>(v.iov_base), static_cast<std::byte*>(v.iov_base) + v.iov_len);
  ROUND_TRIP_CHECK(file.size() == encoder.header().size() + encoder.size());
  ROUND_TRIP_CHECK(batch.records.empty() || encoder.end(batch.records.size() - 1) == encoder.size());

  FILE* f = fmemopen(file.data(), file.size(), "rb");
  ROUND_TRIP_CHECK(f);
  char error[PCAP_ERRBUF_SIZE];
  pcap_t* p = pcap_fopen_offline_with_tstamp_precision(
      f, precision == vei::pcap::Precision::ns ? PCAP_TSTAMP_PRECISION_NANO : PCAP_TSTAMP_PRECISION_MICRO, error);
  ROUND_TRIP_CHECK(p);
  ROUND_TRIP_CHECK(pcap_datalink(p) == 1);
  for (const auto& r : batch.records) {
    pcap_pkthdr* h = nullptr;
    const u_char* bytes = nullptr;
    ROUND_TRIP_CHECK(pcap_next_ex(p, &h, &bytes) == 1);
    const int64_t frac = precision == vei::pcap::Precision::ns ? r.ts_ns % vei::pcap::ns_per_s
                                                              : r.ts_ns % vei::pcap::ns_per_s / 1000;
    ROUND_TRIP_CHECK(h->ts.tv_sec == r.ts_ns / vei::pcap::ns_per_s && h->ts.tv_usec == frac);
    ROUND_TRIP_CHECK(h->caplen == r.caplen && h->len == r.len);
    ROUND_TRIP_CHECK(std::memcmp(bytes, batch.data() + r.offset + vei::record_header_size, r.caplen) == 0);
  }
  pcap_pkthdr* h = nullptr;
  const u_char* bytes = nullptr;
  ROUND_TRIP_CHECK(pcap_next_ex(p, &h, &bytes) == PCAP_ERROR_BREAK);
  pcap_close(p);  // closes f
  return 0;
}
