// The IP packets at the start of a background capture, for what generators learn from it: the
// Ethernet addresses of its hosts (core/host_macs.h), which hosts talk (core/background_hosts.h).
//
// Threads: a pure function of the file.
#pragma once

#include <cstdint>
#include <functional>
#include <span>
#include <string>

#include "core/ip.h"

namespace vei {

// How much of the background is searched: enough for any host that talks.
inline constexpr uint64_t scan_packets = 100'000;

struct ScannedPacket {
  IpAddr src, dst;
  const uint8_t* ethernet = nullptr;  // the Ethernet header (destination MAC first); null on other link types
  uint8_t protocol = 0;               // IPv4 protocol, IPv6 next header
  std::span<const uint8_t> l4;        // the captured transport bytes, possibly short
};

// Calls `f` for each IPv4 or IPv6 packet among the first scan_packets records of `path`, on the
// link types that carry IP directly (Ethernet with VLAN tags, raw IP, Linux cooked v1/v2, BSD
// loopback). Returns false without calling `f` when `path` cannot be read a second time (empty,
// `-`, not a regular file: a FIFO or stdin would lose bytes to this reader) or libpcap refuses
// it; a file of another link type is read and yields nothing.
bool scan_ip_packets(const std::string& path, const std::function<void(const ScannedPacket&)>& f);

}  // namespace vei
