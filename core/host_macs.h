// The Ethernet addresses a background capture shows for IP hosts, so that generated packets
// between hosts of the background carry the addresses their real packets do.
//
// Threads: filled once on the configuring thread, then read-only (generators share one).
#pragma once

#include <functional>
#include <map>
#include <string>

#include "core/ip.h"
#include "core/packet_builder.h"

namespace vei {

class HostMacs {
 public:
  // Reads the first packets of `path` (core/ip_scan.h: a regular Ethernet capture; anything else,
  // or a file libpcap cannot open, leaves the book empty) and keeps the addresses of the hosts
  // `wanted` accepts.
  void learn(const std::string& path, const std::function<bool(const IpAddr&)>& wanted);
  // The address `ip`'s own frames carry, else that of frames sent to it (perhaps a router's), else
  // a locally administered one derived from the address (02:00 + its last 4 bytes).
  packets::Mac of(const IpAddr& ip) const;

 private:
  std::map<IpAddr, packets::Mac> as_source_, as_destination_;
};

}  // namespace vei
