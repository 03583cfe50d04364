#include "core/host_macs.h"

#include <pcap/pcap.h>

#include <cstring>
#include <filesystem>

namespace vei {

namespace {

// How much of the background is searched: enough for any host that talks.
constexpr uint64_t scan_packets = 100'000;

}  // namespace

void HostMacs::learn(const std::string& path, const std::function<bool(const IpAddr&)>& wanted) {
  // A second reader of a FIFO (or /dev/stdin) would block, or take bytes from the background's own.
  std::error_code ec;
  if (path.empty() || path == "-" || !std::filesystem::is_regular_file(path, ec)) return;
  char errbuf[PCAP_ERRBUF_SIZE] = {};
  pcap_t* p = pcap_open_offline(path.c_str(), errbuf);
  // The background is already open and readable; a file only the fast reader accepts (a huge
  // snaplen, say) just leaves the locally administered addresses in place.
  if (!p) return;
  if (pcap_datalink(p) != DLT_EN10MB) return pcap_close(p);
  pcap_pkthdr* h;
  const u_char* d;
  for (uint64_t n = 0; n < scan_packets && pcap_next_ex(p, &h, &d) == 1; ++n) {
    size_t at = 12;
    uint16_t type = 0;
    // Past VLAN tags (802.1Q, 802.1ad) to the IP header.
    while (h->caplen >= at + 2) {
      type = static_cast<uint16_t>(d[at] << 8 | d[at + 1]);
      at += 2;
      if (type != 0x8100 && type != 0x88a8) break;
      at += 2;
    }
    const bool v6 = type == 0x86dd;
    if ((type != 0x0800 && !v6) || h->caplen < at + (v6 ? 40 : 20) || d[at] >> 4 != (v6 ? 6 : 4)) continue;
    auto address = [&](size_t off) {
      IpAddr a;
      a.v6 = v6;
      std::memcpy(a.bytes.data(), d + at + off, a.size());
      return a;
    };
    auto mac_at = [&](size_t off) {
      packets::Mac m;
      std::memcpy(m.data(), d + off, 6);
      return m;
    };
    if (const IpAddr src = address(v6 ? 8 : 12); wanted(src)) as_source_.try_emplace(src, mac_at(6));
    if (const IpAddr dst = address(v6 ? 24 : 16); wanted(dst)) as_destination_.try_emplace(dst, mac_at(0));
  }
  pcap_close(p);
}

packets::Mac HostMacs::of(const IpAddr& ip) const {
  if (auto it = as_source_.find(ip); it != as_source_.end()) return it->second;
  if (auto it = as_destination_.find(ip); it != as_destination_.end()) return it->second;
  const uint8_t* b = ip.data() + ip.size() - 4;
  return {0x02, 0x00, b[0], b[1], b[2], b[3]};
}

}  // namespace vei
