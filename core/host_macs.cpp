#include "core/host_macs.h"

#include <cstring>

#include "core/ip_scan.h"

namespace vei {

void HostMacs::learn(const std::string& path, const std::function<bool(const IpAddr&)>& wanted) {
  // Only Ethernet frames carry addresses; any other background leaves the derived ones in place.
  scan_ip_packets(path, [&](const ScannedPacket& p) {
    if (!p.ethernet) return;
    auto mac_at = [&](size_t off) {
      packets::Mac m;
      std::memcpy(m.data(), p.ethernet + off, 6);
      return m;
    };
    if (wanted(p.src)) as_source_.try_emplace(p.src, mac_at(6));
    if (wanted(p.dst)) as_destination_.try_emplace(p.dst, mac_at(0));
  });
}

packets::Mac HostMacs::of(const IpAddr& ip) const {
  if (auto it = as_source_.find(ip); it != as_source_.end()) return it->second;
  if (auto it = as_destination_.find(ip); it != as_destination_.end()) return it->second;
  return packets::local_mac(ip);
}

}  // namespace vei
