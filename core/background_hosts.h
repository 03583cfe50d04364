// The hosts a background capture shows, so that a generated conversation (a vei.h event, a script
// action) goes between machines the background already has: it fits in.
//
// Threads: a plain value, computed once from the file.
#pragma once

#include <optional>
#include <string>
#include <vector>

#include "core/ip.h"

namespace vei {

struct BackgroundHosts {
  // The server: the address receiving the most TCP SYNs (a listening service; among equals, the
  // most frequent destination), else the most frequent destination. Remaining ties go to the
  // lower address, so the choice is deterministic.
  IpAddr server;
  // Clients, most frequent source first, never the server: then destinations no source is.
  std::vector<IpAddr> clients;
};

// Reads the first packets of `path` (core/ip_scan.h) and picks its hosts among its IPv4 unicast
// addresses, or its IPv6 ones when the IPv4 ones give no client and server. Broadcast, multicast and unspecified
// addresses are never picked. Returns:
//   - nullopt when `path` cannot be read twice (stdin, a FIFO) or libpcap refuses it: unknown;
//   - hosts with an empty `clients` when the file shows no two usable hosts (a link type that
//     carries no IP, no IP packet, one host only).
std::optional<BackgroundHosts> background_hosts(const std::string& path);

}  // namespace vei
