#include "core/packet_builder.h"

#include <fmt/format.h>

#include <algorithm>
#include <bit>
#include <cmath>
#include <cstring>
#include <numbers>
#include <span>
#include <stdexcept>
#include <string>

#include "core/pcap_format.h"

namespace vei::packets {

namespace {

constexpr size_t ipv4_header_size = 20, ipv6_header_size = 40;

// RFC 1071 sum, not yet complemented, so a pseudo-header can be added first. The bulk is summed
// eight bytes at a time in the machine's byte order with end-around carries, then folded to 16
// bits and swapped to network order (RFC 1071 2(B): the sum does not depend on byte order). The
// result is 0 only for all-zero words, like the word-by-word sum, so fold() gives the same checksum.
uint32_t sum16(std::span<const std::byte> data, uint32_t sum = 0) {
  const std::byte* p = data.data();
  size_t n = data.size();
  uint64_t wide = 0;
  for (; n >= 8; p += 8, n -= 8) {
    uint64_t word;
    std::memcpy(&word, p, 8);
    wide += word;
    wide += wide < word;
  }
  wide = (wide & 0xffffffff) + (wide >> 32);
  while (wide >> 16) wide = (wide & 0xffff) + (wide >> 16);
  auto folded = static_cast<uint16_t>(wide);
  if constexpr (std::endian::native == std::endian::little) folded = static_cast<uint16_t>(folded << 8 | folded >> 8);
  sum += folded;
  for (; n >= 2; p += 2, n -= 2) sum += uint32_t(p[0]) << 8 | uint32_t(p[1]);
  if (n) sum += uint32_t(p[0]) << 8;
  return sum;
}

size_t link_header_size(uint32_t linktype, bool v6) {
  if (!supported_linktype(linktype, v6)) throw std::runtime_error(unsupported_linktype(linktype, v6));
  return linktype == 1 ? 14 : linktype == 113 ? 16 : 0;
}

Host host(const Endpoint& e) { return {e.mac, IpAddr::v4(e.ip)}; }

}  // namespace

bool supported_linktype(uint32_t linktype, bool v6) {
  return linktype == 1 || linktype == 101 || linktype == 113 || linktype == (v6 ? 229u : 228u);
}

std::string unsupported_linktype(uint32_t linktype, bool v6) {
  return fmt::format("cannot build {} packets for link type {} ({}); supported: EN10MB (1), RAW (101), {}, LINUX_SLL (113)",
                     v6 ? "IPv6" : "IPv4", pcap::linktype_name(linktype), linktype, v6 ? "IPV6 (229)" : "IPV4 (228)");
}

FrameAt add_ip_frame(std::vector<std::byte>& out, uint32_t linktype, const Host& from, const Host& to,
                     const IpFields& fields, size_t l4_size) {
  const bool v6 = from.ip.v6;
  const size_t link = link_header_size(linktype, v6);
  const size_t ip_header = v6 ? ipv6_header_size : ipv4_header_size;
  if (l4_size + (v6 ? 0 : ip_header) > 0xffff)
    throw std::runtime_error(fmt::format("an IP packet of {} bytes exceeds 65535", l4_size + ip_header));
  FrameAt at;
  at.begin = out.size();
  at.l3 = at.begin + link;
  at.l4 = at.l3 + ip_header;
  at.end = at.l4 + l4_size;
  out.resize(at.end);
  std::byte* p = out.data() + at.begin;
  const uint16_t ethertype = v6 ? 0x86dd : 0x0800;
  if (linktype == 1) {
    std::memcpy(p, to.mac.data(), 6);
    std::memcpy(p + 6, from.mac.data(), 6);
    put16(p + 12, ethertype);
  } else if (linktype == 113) {
    put16(p, 4);  // packet type: sent by this host, the capture's point of view for generated traffic
    put16(p + 2, 1);  // ARPHRD_ETHER
    put16(p + 4, 6);
    std::memcpy(p + 6, from.mac.data(), 6);
    put16(p + 14, ethertype);
  }
  std::byte* ip = out.data() + at.l3;
  if (v6) {
    put32(ip, 6u << 28 | (fields.flow_label & 0xfffff));
    put16(ip + 4, static_cast<uint16_t>(l4_size));
    ip[6] = std::byte{fields.protocol};
    ip[7] = std::byte{fields.ttl};
    std::memcpy(ip + 8, from.ip.data(), 16);
    std::memcpy(ip + 24, to.ip.data(), 16);
  } else {
    ip[0] = std::byte{0x45};
    put16(ip + 2, static_cast<uint16_t>(ip_header + l4_size));
    put16(ip + 4, fields.id);
    put16(ip + 6, fields.dont_fragment ? 0x4000 : 0);
    ip[8] = std::byte{fields.ttl};
    ip[9] = std::byte{fields.protocol};
    std::memcpy(ip + 12, from.ip.data(), 4);
    std::memcpy(ip + 16, to.ip.data(), 4);
    put16(ip + 10, fold(sum16({ip, ipv4_header_size})));
  }
  return at;
}

void seal(std::vector<std::byte>& out, const FrameAt& at) {
  const std::byte* ip = out.data() + at.l3;
  std::byte* l4 = out.data() + at.l4;
  const size_t size = at.end - at.l4;
  const bool v6 = (uint8_t(ip[0]) >> 4) == 6;
  const uint8_t protocol = uint8_t(ip[v6 ? 6 : 9]);
  size_t checksum_at = 0;
  switch (protocol) {
    case proto_tcp: checksum_at = 16; break;
    case proto_udp: checksum_at = 6; break;
    case proto_icmp:
    case proto_icmpv6: checksum_at = 2; break;
    default: return;
  }
  put16(l4 + checksum_at, 0);
  uint32_t pseudo = 0;
  if (protocol != proto_icmp)  // ICMPv4 alone sums no pseudo-header (RFC 792)
    pseudo = sum16({ip + (v6 ? 8 : 12), v6 ? 32u : 8u}) + protocol + static_cast<uint32_t>(size >> 16) +
             static_cast<uint32_t>(size & 0xffff);
  uint16_t sum = fold(sum16({l4, size}, pseudo));
  if (protocol == proto_udp && sum == 0) sum = 0xffff;  // 0 means "no checksum" in UDP (RFC 768)
  put16(l4 + checksum_at, sum);
}

FrameAt add_udp_frame(std::vector<std::byte>& out, uint32_t linktype, const Host& from, const Host& to,
                      const IpFields& ip, uint16_t sport, uint16_t dport, std::span<const std::byte> payload) {
  IpFields fields = ip;
  fields.protocol = proto_udp;
  const FrameAt at = add_ip_frame(out, linktype, from, to, fields, 8 + payload.size());
  std::byte* u = out.data() + at.l4;
  put16(u, sport);
  put16(u + 2, dport);
  put16(u + 4, static_cast<uint16_t>(8 + payload.size()));
  std::ranges::copy(payload, u + 8);
  seal(out, at);
  return at;
}

FrameAt add_icmp_echo(std::vector<std::byte>& f, uint32_t linktype, const Endpoint& src, const Endpoint& dst,
                      uint16_t ident, uint16_t sequence, uint8_t ttl, size_t payload_size, bool reply) {
  // The IP id follows the sequence number, as ping's kernel path makes it look.
  const FrameAt at = add_ip_frame(f, linktype, host(src), host(dst), {proto_icmp, ttl, sequence, false, 0}, 8 + payload_size);
  std::byte* icmp = f.data() + at.l4;
  icmp[0] = std::byte{reply ? uint8_t{0} : uint8_t{8}};
  put16(icmp + 4, ident);
  put16(icmp + 6, sequence);
  // ping's pattern: byte i of the payload is i.
  for (size_t i = 0; i < payload_size; ++i) icmp[8 + i] = std::byte(i & 0xff);
  seal(f, at);
  return at;
}

Mac local_mac(const IpAddr& ip) {
  const uint8_t* b = ip.data() + ip.size() - 4;
  return {0x02, 0x00, b[0], b[1], b[2], b[3]};
}

std::optional<Mac> parse_mac(std::string_view text) {
  const auto hex = [](char c) {
    const int lower = c | 0x20;
    return c >= '0' && c <= '9' ? c - '0' : lower >= 'a' && lower <= 'f' ? lower - 'a' + 10 : -1;
  };
  if (text.size() != 17) return std::nullopt;
  Mac mac{};
  for (size_t i = 0; i < 6; ++i) {
    const int hi = hex(text[3 * i]), lo = hex(text[3 * i + 1]);
    if (hi < 0 || lo < 0 || (i < 5 && text[3 * i + 2] != ':')) return std::nullopt;
    mac[i] = static_cast<uint8_t>(hi << 4 | lo);
  }
  return mac;
}

}  // namespace vei::packets
