#include "core/background_hosts.h"

#include <algorithm>
#include <map>

#include "core/ip_scan.h"

namespace vei {

namespace {

bool usable(const IpAddr& ip) {
  if (ip.v6) return ip.bytes[0] != 0xff && ip != IpAddr{.v6 = true};  // multicast, ::
  const uint32_t a = ip.v4();
  return a != 0 && a != 0xffffffff && (a >> 28) != 0xe;  // 0.0.0.0, broadcast, 224/4
}

using Counts = std::map<IpAddr, uint64_t>;

// The addresses of `counts`, most counted first, then most counted in `ties` (if given), then the
// lower address.
std::vector<IpAddr> by_count(const Counts& counts, const Counts* ties = nullptr) {
  auto tie = [ties](const IpAddr& ip) {
    const auto it = ties ? ties->find(ip) : Counts::const_iterator{};
    return ties && it != ties->end() ? it->second : 0;
  };
  std::vector<std::pair<IpAddr, uint64_t>> v(counts.begin(), counts.end());
  std::stable_sort(v.begin(), v.end(), [&](const auto& a, const auto& b) {
    return a.second != b.second ? a.second > b.second : tie(a.first) > tie(b.first);
  });
  std::vector<IpAddr> out;
  for (const auto& [ip, n] : v) out.push_back(ip);
  return out;
}

}  // namespace

std::optional<BackgroundHosts> background_hosts(const std::string& path) {
  // Per IP version: sources, destinations, destinations of a SYN without ACK.
  Counts sources[2], destinations[2], syns[2];
  const bool read = scan_ip_packets(path, [&](const ScannedPacket& p) {
    const int v = p.src.v6;
    if (usable(p.src)) ++sources[v][p.src];
    if (!usable(p.dst)) return;
    ++destinations[v][p.dst];
    constexpr uint8_t syn = 0x02, ack = 0x10;
    if (p.protocol == 6 && p.l4.size() > 13 && (p.l4[13] & (syn | ack)) == syn) ++syns[v][p.dst];
  });
  if (!read) return std::nullopt;
  auto pick = [&](int v) {
    BackgroundHosts hosts;
    const auto servers = syns[v].empty() ? by_count(destinations[v]) : by_count(syns[v], &destinations[v]);
    if (servers.empty()) return hosts;
    hosts.server = servers.front();
    for (const Counts* counts : {&sources[v], &destinations[v]})
      for (const IpAddr& ip : by_count(*counts))
        if (ip != hosts.server && std::find(hosts.clients.begin(), hosts.clients.end(), ip) == hosts.clients.end())
          hosts.clients.push_back(ip);
    return hosts;
  };
  BackgroundHosts ipv4 = pick(0);
  return ipv4.clients.empty() ? pick(1) : ipv4;
}

}  // namespace vei
