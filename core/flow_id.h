// The flow a captured frame belongs to, as the labels name it (the `conversation` column): one
// string per connection, the same for both of its directions, so that ground truth can be grouped
// by conversation and each repetition of a generator (its own client port) told apart.
//
//   tcp 10.1.0.1:49152 10.2.0.1:80          udp [2001:db8::1]:5060 [2001:db8::2]:5060
//   icmp 10.1.0.1 10.2.0.1                  ip 1.2.3.4 5.6.7.8 proto 47
//
// The endpoints are in canonical order, the lower (address, then port) first, rather than the
// initiator first: a frame alone does not say who initiated. An ICMP error (destination
// unreachable, time exceeded, parameter problem...) is named by the packet it quotes, so a
// traceroute's replies share their probe's id. A fragment after the first has no ports: it is
// named `ip ... proto N`. Empty for what is not IP, or too short to say.
//
// Link types: Ethernet (1, VLAN and QinQ tags skipped), raw IP (101, 228, 229), Linux cooked (113,
// 276). IPv6 extension headers (hop-by-hop, routing, fragment, destination, AH) are skipped.
//
// Threads: a pure function.
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>
#include <string>

namespace vei {

std::string flow_id(uint32_t linktype, std::span<const std::byte> frame);

}  // namespace vei
