// Builds whole frames with valid checksums, framed for the output's link type: Ethernet (1), raw
// IP (101; 228 for IPv4, 229 for IPv6) or Linux cooked (113). Used by the generators (`icmp`, the
// conversations of core/tcp_conversation.h).
//
// Threads: pure functions.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <span>
#include <string_view>
#include <vector>

#include "core/ip.h"

namespace vei::packets {

using Mac = std::array<uint8_t, 6>;

struct Endpoint {
  Mac mac{};
  uint32_t ip = 0;  // host byte order: 10.0.0.1 is 0x0a000001
  uint16_t port = 0;
};

// Network byte order, and the one's complement checksum's last step (RFC 1071): shared by the
// builders and the rewriter that edits their fields.
inline void put16(std::byte* p, uint16_t v) {
  p[0] = std::byte(v >> 8);
  p[1] = std::byte(v & 0xff);
}
inline void put32(std::byte* p, uint32_t v) {
  put16(p, static_cast<uint16_t>(v >> 16));
  put16(p + 2, static_cast<uint16_t>(v));
}
inline uint16_t get16(const std::byte* p) { return static_cast<uint16_t>(uint32_t(p[0]) << 8 | uint32_t(p[1])); }
inline uint32_t get32(const std::byte* p) { return uint32_t{get16(p)} << 16 | get16(p + 2); }
// Folds a 32-bit sum of 16-bit words and complements it.
inline uint16_t fold(uint32_t sum) {
  while (sum >> 16) sum = (sum & 0xffff) + (sum >> 16);
  return static_cast<uint16_t>(~sum);
}

// True for the link types these builders can frame (for IPv6 when `v6`).
bool supported_linktype(uint32_t linktype, bool v6 = false);
// Why `linktype` cannot carry packets of that IP version: names it and the supported ones.
std::string unsupported_linktype(uint32_t linktype, bool v6);

// ---- any IP version -------------------------------------------------------------------------------

struct Host {
  Mac mac{};
  IpAddr ip;
};

inline constexpr uint8_t proto_icmp = 1, proto_tcp = 6, proto_udp = 17, proto_icmpv6 = 58;

struct IpFields {
  uint8_t protocol = proto_tcp;
  uint8_t ttl = 64;        // IPv4 TTL, IPv6 hop limit
  uint16_t id = 0;         // IPv4 only
  bool dont_fragment = true;  // IPv4 only
  uint32_t flow_label = 0;    // IPv6 only, 20 bits
};

// Where a frame added by add_ip_frame lies in its buffer (offsets, so that the buffer may grow).
struct FrameAt {
  size_t begin = 0;  // the link header
  size_t l3 = 0;     // the IP header
  size_t l4 = 0;     // the transport header
  size_t end = 0;
};

// Appends a frame from `from` to `to` (both of one IP version) whose transport part is `l4_size`
// bytes, left zero for the caller to write; then seal(). Throws std::runtime_error when the link
// type cannot carry that IP version, or when the packet exceeds 65535 bytes of IP payload.
FrameAt add_ip_frame(std::vector<std::byte>& out, uint32_t linktype, const Host& from, const Host& to,
                     const IpFields& ip, size_t l4_size);
// A whole UDP datagram carrying `payload`, sealed.
FrameAt add_udp_frame(std::vector<std::byte>& out, uint32_t linktype, const Host& from, const Host& to,
                      const IpFields& ip, uint16_t sport, uint16_t dport, std::span<const std::byte> payload);
// Writes the transport checksum (TCP, UDP, ICMP or ICMPv6, with the pseudo-header where the
// protocol has one) once the transport bytes are in place.
void seal(std::vector<std::byte>& out, const FrameAt& at);

// Appends an ICMP echo request (or reply) from `src` to `dst`, sealed: IPv4 header (DF clear, the
// given TTL, the sequence number as IP id), ICMP id/sequence, `payload_size` bytes of payload (a
// recognisable pattern). Throws std::runtime_error as add_ip_frame does.
FrameAt add_icmp_echo(std::vector<std::byte>& out, uint32_t linktype, const Endpoint& src, const Endpoint& dst,
                      uint16_t ident, uint16_t sequence, uint8_t ttl, size_t payload_size, bool reply);

// A locally administered MAC address derived from an IP address: 02:00 + its last 4 bytes (the
// address of a host the background does not show).
Mac local_mac(const IpAddr& ip);

// `aa:bb:cc:dd:ee:ff`, hex digits in either case; none when the text is anything else.
std::optional<Mac> parse_mac(std::string_view text);

}  // namespace vei::packets
