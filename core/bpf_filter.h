// A BPF program compiled by libpcap for one link type, applied with pcap_offline_filter.
#pragma once

#include <pcap/pcap.h>

#include <cstddef>
#include <cstdint>
#include <string>

namespace vei {

// True when a filter for this link type reads a header field in the byte order of the host that
// wrote the file (the address family of BSD loopback, NULL 0, and of ENC 109: gencode.c).
constexpr bool reads_writer_order(uint32_t linktype) { return linktype == 0 || linktype == 109; }

class BpfFilter {
 public:
  // `linktype` is a LINKTYPE_ value as a capture file's header holds it, `swapped` says that the
  // packets come from a file of the other byte order than this host's, with their bytes as they are
  // in that file. The program is the one tcpdump compiles for that file (see the .cpp).
  // Throws std::runtime_error carrying libpcap's message when the expression does not compile.
  BpfFilter(const std::string& expression, uint32_t linktype, uint32_t snaplen, bool swapped = false);
  ~BpfFilter();
  BpfFilter(const BpfFilter&) = delete;
  BpfFilter& operator=(const BpfFilter&) = delete;

  bool matches(const std::byte* packet, uint32_t caplen, uint32_t len) const {
    pcap_pkthdr header{};
    header.caplen = caplen;
    header.len = len;
    return pcap_offline_filter(&program_, &header, reinterpret_cast<const u_char*>(packet)) != 0;
  }

 private:
  bpf_program program_{};
};

}  // namespace vei
