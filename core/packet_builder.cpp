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

#include "core/jpeg.h"
#include "core/pcap_format.h"

namespace vei::packets {

namespace {

constexpr size_t ipv4_header_size = 20, ipv6_header_size = 40;
constexpr uint16_t mss = 1460;

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

namespace tcp_flag {
constexpr uint8_t fin = 0x01, syn = 0x02, psh = 0x08, ack = 0x10;
}

struct TcpSide {
  Endpoint endpoint;
  uint32_t seq = 0;  // next sequence number to send
  uint32_t ack = 0;  // next sequence number expected from the peer
  uint16_t ip_id = 0;
  uint16_t window = 0;
};

std::vector<std::byte> tcp_segment(uint32_t linktype, TcpSide& from, const TcpSide& to, uint8_t flags,
                                   std::span<const std::byte> payload) {
  const bool syn = flags & tcp_flag::syn;
  const size_t tcp_size = (syn ? 24 : 20) + payload.size();  // a SYN carries the MSS option
  std::vector<std::byte> f;
  const FrameAt at = add_ip_frame(f, linktype, host(from.endpoint), host(to.endpoint),
                                  {proto_tcp, 64, from.ip_id++, true, 0}, tcp_size);
  std::byte* t = f.data() + at.l4;
  put16(t, from.endpoint.port);
  put16(t + 2, to.endpoint.port);
  put32(t + 4, from.seq);
  put32(t + 8, flags & tcp_flag::ack ? from.ack : 0);
  t[12] = std::byte((syn ? 6 : 5) << 4);
  t[13] = std::byte{flags};
  put16(t + 14, from.window);
  if (syn) {
    t[20] = std::byte{2};  // MSS option, kind 2, length 4
    t[21] = std::byte{4};
    put16(t + 22, mss);
  }
  std::ranges::copy(payload, t + tcp_size - payload.size());  // not memcpy: an empty span may hold null
  seal(f, at);
  from.seq += static_cast<uint32_t>(payload.size()) + (syn ? 1 : 0) + (flags & tcp_flag::fin ? 1 : 0);
  return f;
}

std::string dotted(uint32_t ip) { return fmt::format("{}.{}.{}.{}", ip >> 24, ip >> 16 & 0xff, ip >> 8 & 0xff, ip & 0xff); }

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

std::vector<std::byte> icmp_echo(uint32_t linktype, const Endpoint& src, const Endpoint& dst, uint16_t ident,
                                 uint16_t sequence, uint8_t ttl, size_t payload_size, bool reply) {
  std::vector<std::byte> f;
  // The IP id follows the sequence number, as ping's kernel path makes it look.
  const FrameAt at = add_ip_frame(f, linktype, host(src), host(dst), {proto_icmp, ttl, sequence, false, 0}, 8 + payload_size);
  std::byte* icmp = f.data() + at.l4;
  icmp[0] = std::byte{reply ? uint8_t{0} : uint8_t{8}};
  put16(icmp + 4, ident);
  put16(icmp + 6, sequence);
  // ping's pattern: byte i of the payload is i.
  for (size_t i = 0; i < payload_size; ++i) icmp[8 + i] = std::byte(i & 0xff);
  seal(f, at);
  return f;
}

std::vector<TimedFrame> http_post_jpg(uint32_t linktype, const Endpoint& client, const Endpoint& server,
                                      uint32_t client_isn, uint32_t server_isn, int64_t gap_ns) {
  link_header_size(linktype, false);  // rejects an unsupported link type before any work
  // Port 0 cannot carry HTTP: the usual ports stand in for ports left unset.
  TcpSide c{client, client_isn, 0, 1, 64240};
  TcpSide s{server, server_isn, 0, 1, 65160};
  if (!c.endpoint.port) c.endpoint.port = 49152;
  if (!s.endpoint.port) s.endpoint.port = 80;

  const auto jpeg = jpeg_image();
  const std::string host =
      s.endpoint.port == 80 ? dotted(s.endpoint.ip) : fmt::format("{}:{}", dotted(s.endpoint.ip), s.endpoint.port);
  const std::string head = fmt::format(
      "POST /upload HTTP/1.1\r\nHost: {}\r\nUser-Agent: veipipe\r\nContent-Type: image/jpeg\r\n"
      "Content-Length: {}\r\nConnection: close\r\n\r\n",
      host, jpeg.size());
  std::vector<std::byte> request(head.size() + jpeg.size());
  std::memcpy(request.data(), head.data(), head.size());
  std::memcpy(request.data() + head.size(), jpeg.data(), jpeg.size());
  static constexpr std::string_view ok = "HTTP/1.1 200 OK\r\nContent-Length: 0\r\nConnection: close\r\n\r\n";
  const std::span response(reinterpret_cast<const std::byte*>(ok.data()), ok.size());

  std::vector<TimedFrame> frames;
  auto send = [&](TcpSide& from, TcpSide& to, uint8_t flags, std::span<const std::byte> payload = {}) {
    frames.push_back({tcp_segment(linktype, from, to, flags, payload), static_cast<int64_t>(frames.size()) * gap_ns});
    to.ack = from.seq;
  };
  using namespace tcp_flag;
  send(c, s, syn);
  send(s, c, syn | ack);
  send(c, s, ack);
  // The request in MSS-sized segments; the server acknowledges every second one, and the last.
  const size_t segments = (request.size() + mss - 1) / mss;
  for (size_t i = 0; i < segments; ++i) {
    const bool last = i + 1 == segments;
    const auto part = std::span(request).subspan(i * mss, last ? request.size() - i * mss : mss);
    send(c, s, last ? ack | psh : ack, part);
    if (last || i % 2 == 1) send(s, c, ack);
  }
  send(s, c, ack | psh, response);
  send(c, s, ack);
  send(c, s, fin | ack);
  send(s, c, fin | ack);
  send(c, s, ack);
  return frames;
}

Mac local_mac(uint32_t ip) {
  return {0x02, 0x00, uint8_t(ip >> 24), uint8_t(ip >> 16 & 0xff), uint8_t(ip >> 8 & 0xff), uint8_t(ip & 0xff)};
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
