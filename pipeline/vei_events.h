// The vei.h events, one table: each event's name and the conversation stage line that generates
// it between a client and a server. Used by the C API (pipeline/vei.cpp) and by the `script` stage.
//
// Threads: constant data and pure functions.
#pragma once

#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "core/ip.h"
#include "core/packet_builder.h"

namespace vei {

struct VeiEvent {
  int type;               // the VEI_EVENT_TYPE value
  std::string_view name;  // "VEI_PING"
  std::string_view stage;
  std::string_view params;  // the stage's own, fixed
  // tcp: a connection, each event of a run from its own client port; other: a conversation stage
  // all the same (seeded); icmp: the `icmp` stage, IPv4 only, no seed.
  enum Kind { tcp, other, icmp } kind = other;
};

std::span<const VeiEvent> vei_events();
const VeiEvent* find_vei_event(int type);
const VeiEvent* find_vei_event(std::string_view name);
std::vector<std::string_view> vei_event_names();

// The Ethernet addresses of an event's hosts, when the caller knows them.
struct EventMacs {
  packets::Mac client, server;
};

// The stage line of the `n`-th event of a run (from 0), e.g.
// `http(method=HEAD, path=/, src=10.0.0.1, dst=10.0.0.2, seed=3, sport=49155)`: `n` seeds its
// random choices and picks its client port. With `macs`, `srcmac=` and `dstmac=` too: the stage
// then need not read the background for them, which makes a repeated injection cheap. Throws
// std::runtime_error when this build has no such stage, or the event cannot go between these
// hosts (VEI_PING between IPv6 hosts).
std::string vei_event_line(const VeiEvent& event, const IpAddr& client, const IpAddr& server, uint64_t n,
                           const EventMacs* macs = nullptr);

}  // namespace vei
