#include "core/ip_scan.h"

#include <pcap/pcap.h>

#include <cstring>
#include <filesystem>
#include <optional>

namespace vei {

namespace {

// Where the IP header starts in a frame of `dlt`, or none for a frame that carries no IP.
std::optional<size_t> ip_offset(int dlt, const uint8_t* d, uint32_t caplen) {
  auto ethertype_ip = [](uint16_t type) { return type == 0x0800 || type == 0x86dd; };
  switch (dlt) {
    case DLT_EN10MB: {
      size_t at = 12;
      uint16_t type = 0;
      // Past VLAN tags (802.1Q, 802.1ad) to the IP header.
      while (caplen >= at + 2) {
        type = static_cast<uint16_t>(d[at] << 8 | d[at + 1]);
        at += 2;
        if (type != 0x8100 && type != 0x88a8) break;
        at += 2;
      }
      return ethertype_ip(type) ? std::optional<size_t>(at) : std::nullopt;
    }
    case DLT_LINUX_SLL:
      return caplen >= 16 && ethertype_ip(static_cast<uint16_t>(d[14] << 8 | d[15])) ? std::optional<size_t>(16) : std::nullopt;
    case DLT_LINUX_SLL2:
      return caplen >= 20 && ethertype_ip(static_cast<uint16_t>(d[0] << 8 | d[1])) ? std::optional<size_t>(20) : std::nullopt;
    case DLT_RAW:
    case DLT_IPV4:
    case DLT_IPV6:
      return 0;
    case DLT_NULL:
    case DLT_LOOP:
      return 4;  // the address family, in an order that varies: the IP version nibble decides
    default:
      return std::nullopt;
  }
}

}  // namespace

bool scan_ip_packets(const std::string& path, const std::function<void(const ScannedPacket&)>& f) {
  std::error_code ec;
  if (path.empty() || path == "-" || !std::filesystem::is_regular_file(path, ec)) return false;
  char errbuf[PCAP_ERRBUF_SIZE] = {};
  pcap_t* p = pcap_open_offline(path.c_str(), errbuf);
  // A file only veipipe's own reader accepts (a huge snaplen, say) is not scanned.
  if (!p) return false;
  const int dlt = pcap_datalink(p);
  pcap_pkthdr* h;
  const u_char* d;
  for (uint64_t n = 0; n < scan_packets && pcap_next_ex(p, &h, &d) == 1; ++n) {
    const auto at = ip_offset(dlt, d, h->caplen);
    if (!at || h->caplen < *at + 20) continue;
    const uint8_t* ip = d + *at;
    const bool v6 = ip[0] >> 4 == 6;
    if ((!v6 && ip[0] >> 4 != 4) || (v6 && h->caplen < *at + 40)) continue;
    ScannedPacket s;
    auto address = [&](size_t off) {
      IpAddr a;
      a.v6 = v6;
      std::memcpy(a.bytes.data(), ip + off, a.size());
      return a;
    };
    s.src = address(v6 ? 8 : 12);
    s.dst = address(v6 ? 24 : 16);
    s.ethernet = dlt == DLT_EN10MB ? d : nullptr;
    s.protocol = ip[v6 ? 6 : 9];
    const size_t l4 = *at + (v6 ? 40 : size_t{ip[0] & 0x0fu} * 4);
    if (h->caplen > l4) s.l4 = {d + l4, h->caplen - l4};
    f(s);
  }
  pcap_close(p);
  return true;
}

}  // namespace vei
