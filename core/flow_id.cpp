#include "core/flow_id.h"

#include <fmt/format.h>

#include <algorithm>
#include <optional>
#include <utility>

#include "core/ip.h"

namespace vei {

namespace {

using Bytes = std::span<const std::byte>;

uint8_t u8(Bytes b, size_t at) { return static_cast<uint8_t>(b[at]); }
uint16_t u16(Bytes b, size_t at) { return static_cast<uint16_t>(u8(b, at) << 8 | u8(b, at + 1)); }

constexpr uint16_t ethertype_ipv4 = 0x0800, ethertype_ipv6 = 0x86dd;

// The IP packet a frame carries, or nothing.
std::optional<Bytes> ip_packet(uint32_t linktype, Bytes frame) {
  size_t at = 0;
  uint16_t ethertype = 0;
  switch (linktype) {
    case 101: case 228: case 229: return frame;
    case 1:
      at = 12;
      if (frame.size() < at + 2) return std::nullopt;
      ethertype = u16(frame, at);
      // 802.1Q, 802.1ad and the older QinQ tag: four bytes each before the real type.
      while ((ethertype == 0x8100 || ethertype == 0x88a8 || ethertype == 0x9100) && frame.size() >= at + 6) {
        at += 4;
        ethertype = u16(frame, at);
      }
      at += 2;
      break;
    case 113:
      if (frame.size() < 16) return std::nullopt;
      ethertype = u16(frame, 14);
      at = 16;
      break;
    case 276:
      if (frame.size() < 20) return std::nullopt;
      ethertype = u16(frame, 0);
      at = 20;
      break;
    default: return std::nullopt;
  }
  if (ethertype != ethertype_ipv4 && ethertype != ethertype_ipv6) return std::nullopt;
  return frame.subspan(at);
}

struct Endpoint {
  IpAddr ip;
  uint16_t port = 0;
  auto operator<=>(const Endpoint&) const = default;
};

// What one IP header says: the addresses, the transport protocol and its bytes (none for a
// fragment after the first).
struct IpHeader {
  IpAddr src, dst;
  uint8_t proto = 0;
  Bytes payload;
  bool later_fragment = false;
};

IpAddr address(Bytes b, size_t at, bool v6) {
  IpAddr ip;
  ip.v6 = v6;
  for (size_t i = 0; i < ip.size(); ++i) ip.bytes[i] = u8(b, at + i);
  return ip;
}

std::optional<IpHeader> parse_ipv4(Bytes p) {
  if (p.size() < 20) return std::nullopt;
  const size_t header = size_t{u8(p, 0) & 0x0fu} * 4;
  if (header < 20 || p.size() < header) return std::nullopt;
  IpHeader h{address(p, 12, false), address(p, 16, false), u8(p, 9), p.subspan(header)};
  h.later_fragment = (u16(p, 6) & 0x1fff) != 0;
  return h;
}

std::optional<IpHeader> parse_ipv6(Bytes p) {
  if (p.size() < 40) return std::nullopt;
  IpHeader h{address(p, 8, true), address(p, 24, true), u8(p, 6), {}};
  size_t at = 40;
  for (;;) {
    const uint8_t next = h.proto;
    if (next != 0 && next != 43 && next != 44 && next != 51 && next != 60) break;
    if (p.size() < at + 8) return std::nullopt;
    h.proto = u8(p, at);
    if (next == 44) {
      h.later_fragment = (u16(p, at + 2) & 0xfff8) != 0;
      at += 8;
    } else {
      at += next == 51 ? (size_t{u8(p, at + 1)} + 2) * 4 : (size_t{u8(p, at + 1)} + 1) * 8;
    }
    if (p.size() < at) return std::nullopt;
  }
  h.payload = p.subspan(at);
  return h;
}

std::optional<IpHeader> parse_ip(Bytes p) {
  if (p.empty()) return std::nullopt;
  switch (u8(p, 0) >> 4) {
    case 4: return parse_ipv4(p);
    case 6: return parse_ipv6(p);
    default: return std::nullopt;
  }
}

std::string with_port(const Endpoint& e) {
  return e.ip.v6 ? fmt::format("[{}]:{}", to_string(e.ip), e.port) : fmt::format("{}:{}", to_string(e.ip), e.port);
}

// The ICMP or ICMPv6 messages that quote the packet they report on.
bool quotes_a_packet(const IpHeader& h) {
  if (h.payload.empty()) return false;
  const uint8_t type = u8(h.payload, 0);
  if (h.proto == 1) return type == 3 || type == 4 || type == 5 || type == 11 || type == 12;
  return h.proto == 58 && type >= 1 && type <= 4;
}

std::string flow_of(Bytes packet, bool quoted);

std::string flow_of(const IpHeader& h, bool quoted) {
  const bool ports = (h.proto == 6 || h.proto == 17) && !h.later_fragment && h.payload.size() >= 4;
  if (ports) {
    const auto [a, b] = std::minmax({Endpoint{h.src, u16(h.payload, 0)}, Endpoint{h.dst, u16(h.payload, 2)}});
    return fmt::format("{} {} {}", h.proto == 6 ? "tcp" : "udp", with_port(a), with_port(b));
  }
  const auto [a, b] = std::minmax(h.src, h.dst);
  const bool icmp = (h.proto == 1 && !a.v6) || (h.proto == 58 && a.v6);
  if (icmp && !h.later_fragment) {
    // The 8 bytes of the ICMP header, then the quoted packet; one level deep only.
    if (!quoted && quotes_a_packet(h) && h.payload.size() > 8)
      if (std::string inner = flow_of(h.payload.subspan(8), true); !inner.empty()) return inner;
    return fmt::format("icmp {} {}", to_string(a), to_string(b));
  }
  return fmt::format("ip {} {} proto {}", to_string(a), to_string(b), h.proto);
}

std::string flow_of(Bytes packet, bool quoted) {
  const auto header = parse_ip(packet);
  return header ? flow_of(*header, quoted) : std::string();
}

}  // namespace

std::string flow_id(uint32_t linktype, std::span<const std::byte> frame) {
  const auto packet = ip_packet(linktype, frame);
  return packet ? flow_of(*packet, false) : std::string();
}

}  // namespace vei
