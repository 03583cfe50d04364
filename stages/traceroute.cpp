#include "stages/traceroute.h"

#include <algorithm>
#include <array>
#include <memory>
#include <optional>
#include <fmt/format.h>

#include "core/ip.h"
#include "core/random.h"

namespace vei {

namespace {

using packets::put16;

// Linux traceroute's probe: 32 bytes of data ('@', 'A', ...: 0x40 + i), 60 bytes of IPv4 or 80 of IPv6.
constexpr size_t payload_size = 32;
constexpr size_t max_probe = 40 + 8 + payload_size;  // IPv6 header + UDP or ICMPv6 header + data
// Routers send their ICMP with TTL (hop limit) 255, as Cisco's and Juniper's do.
constexpr uint8_t router_ttl = 255;

// ICMP types and codes, [IPv4, IPv6].
struct Kind {
  uint8_t type, code;
};
constexpr Kind echo_request[2] = {{8, 0}, {128, 0}};
constexpr Kind echo_reply[2] = {{0, 0}, {129, 0}};
constexpr Kind time_exceeded[2] = {{11, 0}, {3, 0}};
constexpr Kind port_unreachable[2] = {{3, 3}, {1, 4}};

struct Trace {
  int hops = 0, probes = 0;
  bool icmp = false;
  uint16_t port = 0;
  std::optional<IpRange> routers;
};

Trace trace_of(const Node& node) {
  Trace t;
  const Value& hops = param(node, "hops");
  const Value& probes = param(node, "probes");
  check_range(hops, "hops", 1, 64);
  check_range(probes, "probes", 1, 10);
  t.hops = static_cast<int>(hops.integer);
  t.probes = static_cast<int>(probes.integer);
  t.icmp = param(node, "method").text == "icmp";
  const Value& port = param(node, "port");
  if (t.icmp && port.given)
    throw ParamError(port, "ICMP probes have no port: their sequence numbers count from 1", "port= is for method=udp");
  check_range(port, "port", 1, 65535);
  const int64_t last = port.integer + int64_t{t.hops} * t.probes - 1;
  if (last > 65535)
    throw ParamError(port, fmt::format("{} probes from port {} need ports {}..{}: at most 65535", t.hops * t.probes,
                                       port.integer, port.integer, last));
  t.port = static_cast<uint16_t>(port.integer);
  if (const Value& routers = param(node, "routers"); routers.given) {
    t.routers = parse_ip_range(routers.text, "routers");
    const bool v6 = parse_ip_range(param(node, "src").text, "src").first.v6;
    if (t.routers->first.v6 != v6)
      throw ParamError(routers, fmt::format("routers are {} but src is {}", t.routers->first.v6 ? "IPv6" : "IPv4",
                                            v6 ? "IPv6" : "IPv4"));
    if (t.routers->size() < static_cast<uint64_t>(t.hops - 1))
      throw ParamError(routers, fmt::format("{} addresses for {} routers (hops - 1)", t.routers->size(), t.hops - 1));
  }
  return t;
}

// Router `hop` (from 1) by default: 10.254.hop.1, or fd00:254:hop::1 (hop in hex).
IpAddr default_router(int hop, bool v6) {
  if (!v6) return IpAddr::v4(0x0afe0001u | uint32_t(hop) << 8);
  IpAddr a;
  a.v6 = true;
  a.bytes = {0xfd, 0x00, 0x02, 0x54, 0x00, static_cast<uint8_t>(hop), 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x01};
  return a;
}

// An ICMP (ICMPv6) message: the 4 bytes after the checksum (`word`: id and sequence, or unused),
// then `body`. Returns where the IP packet lies in c.bytes.
packets::FrameAt add_icmp(Conversation& c, const Flow& f, const packets::Host& from, const packets::Host& to,
                          uint8_t ttl, uint16_t ip_id, Kind kind, uint32_t word, std::span<const std::byte> body,
                          int64_t t) {
  const bool v6 = from.ip.v6;
  const packets::FrameAt at = packets::add_ip_frame(
      c.bytes, f.linktype, from, to, {v6 ? packets::proto_icmpv6 : packets::proto_icmp, ttl, ip_id, false, 0},
      8 + body.size());
  std::byte* p = c.bytes.data() + at.l4;
  p[0] = std::byte{kind.type};
  p[1] = std::byte{kind.code};
  packets::put32(p + 4, word);
  std::ranges::copy(body, p + 8);
  packets::seal(c.bytes, at);
  c.add(t, at);
  return at;
}

}  // namespace

TracerouteStage::TracerouteStage()
    : ConversationStage(
          "traceroute",
          "A traceroute from the client to the server as the client captures it: `probes` probes for each TTL (IPv6 "
          "hop limit) from 1 to `hops`, one at a time, each sent when the previous one's answer arrives (Windows "
          "tracert's pace; Linux traceroute -N 1). UDP probes as Linux traceroute's (32 bytes of data, from the "
          "repetition's sport to port 33434 and up, one port per probe) or ICMP echo requests (`traceroute -I`, "
          "tracert; the id is the repetition's sport). Router h (h < hops) answers ICMP Time Exceeded hop h's "
          "share of `rtt` (h x rtt/hops) after its probe, quoting the whole probe as it arrived (TTL 1; RFC 1812 "
          "quotes up to 576 bytes, ICMPv6 up to 1280); the server, `hops` away, answers Port Unreachable (quoting "
          "likewise) or Echo Reply after `rtt`. Every answer comes through the client's gateway: its Ethernet "
          "source is the server's address, as on the client's link.",
          {
              {"hops", ParamType::integer, "8", "the server's distance: routers 1..hops-1 answer, then the server (1..64)"},
              {"probes", ParamType::integer, "3", "probes per TTL (1..10)"},
              {"method", ParamType::choice, "udp", "the probes: `udp` (Linux traceroute) or `icmp` (echo requests)",
               {"udp", "icmp"}},
              {"port", ParamType::integer, "33434",
               "udp: the first probe's destination port, each next probe the next port (traceroute -p)"},
              {"routers", ParamType::string, "",
               "the routers' addresses, router h the h-th: a range `A-B` or `A/len` of src's IP version with at least "
               "hops-1 addresses (default 10.254.h.1, or fd00:254:h::1 with h in hex)"},
          },
          {""}) {}

void TracerouteStage::check_own(const Node& node) const { trace_of(node); }

ConversationStage::Generate TracerouteStage::generator(const Node& node) const {
  auto trace = std::make_shared<const Trace>(trace_of(node));
  return [trace](Conversation& c, const Flow& f) {
    const bool v6 = f.client.ip.v6;
    Rng rng(f.seed);
    std::array<std::byte, payload_size> payload;
    for (size_t i = 0; i < payload_size; ++i) payload[i] = std::byte(0x40 + (i & 0x3f));
    int64_t t = 0;
    uint32_t n = 0;  // probes sent
    for (int hop = 1; hop <= trace->hops; ++hop) {
      const bool last = hop == trace->hops;
      packets::Host from = f.server;
      if (!last) from.ip = trace->routers ? trace->routers->at(static_cast<uint64_t>(hop - 1)) : default_router(hop, v6);
      // An answer travels back hop - 1 hops, losing one TTL at each.
      const auto answer_ttl = static_cast<uint8_t>((last ? f.server_stack->ttl : router_ttl) - (hop - 1));
      // hop x rtt / hops, exactly and without overflow: the server's answer comes `rtt` after.
      const int64_t delay = f.rtt_ns / trace->hops * hop + f.rtt_ns % trace->hops * hop / trace->hops;
      for (int k = 0; k < trace->probes; ++k, ++n, t += delay) {
        const auto id = static_cast<uint16_t>(rng.next());
        const uint32_t echo = uint32_t{f.client_port} << 16 | static_cast<uint16_t>(n + 1);
        const auto probe_ttl = static_cast<uint8_t>(hop);
        const packets::FrameAt at =
            trace->icmp ? add_icmp(c, f, f.client, f.server, probe_ttl, id, echo_request[v6], echo, payload, t)
                        : packets::add_udp_frame(c.bytes, f.linktype, f.client, f.server,
                                                 {packets::proto_udp, probe_ttl, id, false, 0}, f.client_port,
                                                 static_cast<uint16_t>(trace->port + n), payload);
        if (!trace->icmp) c.add(t, at);
        const auto answer_id = static_cast<uint16_t>(rng.next());
        if (last && trace->icmp) {
          add_icmp(c, f, from, f.client, answer_ttl, answer_id, echo_reply[v6], echo, payload, t + delay);
          continue;
        }
        // The probe as the answering hop received it: its TTL down to 1 (the IPv4 header checksum
        // follows). The UDP or ICMP checksum covers no TTL: the quoted one stays valid.
        std::array<std::byte, max_probe> quote;
        const size_t size = at.end - at.l3;
        std::copy_n(c.bytes.begin() + static_cast<std::ptrdiff_t>(at.l3), size, quote.begin());
        quote[v6 ? 7 : 8] = std::byte{1};
        if (!v6) {
          put16(&quote[10], 0);
          uint32_t sum = 0;
          for (size_t i = 0; i < 20; i += 2) sum += packets::get16(&quote[i]);
          put16(&quote[10], packets::fold(sum));
        }
        add_icmp(c, f, from, f.client, answer_ttl, answer_id, last ? port_unreachable[v6] : time_exceeded[v6], 0,
                 {quote.data(), size}, t + delay);
      }
    }
  };
}

}  // namespace vei

VEI_STAGE(traceroute, vei::TracerouteStage)
