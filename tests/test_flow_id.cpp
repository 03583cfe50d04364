// flow_id over frames built here byte by byte (not with core/packet_builder, so that a mistake
// shared by the builders and the decoder cannot hide): every link type, both IP versions, VLAN
// tags, IPv6 extension headers, ICMP errors, fragments and what is too short to say.
#include <doctest/doctest.h>

#include <cstdint>
#include <initializer_list>
#include <string>
#include <vector>

#include "core/flow_id.h"

using vei::flow_id;

namespace {

using Frame = std::vector<uint8_t>;

Frame cat(std::initializer_list<Frame> parts) {
  Frame out;
  for (const auto& p : parts) out.insert(out.end(), p.begin(), p.end());
  return out;
}

std::string flow(uint32_t linktype, const Frame& f) {
  return flow_id(linktype, {reinterpret_cast<const std::byte*>(f.data()), f.size()});
}

// Checksums and lengths are not read: only what names the flow is filled in.
Frame ipv4(uint8_t proto, Frame src, Frame dst, uint16_t fragment = 0) {
  Frame h = {0x45, 0, 0, 0, 0, 0, uint8_t(fragment >> 8), uint8_t(fragment), 64, proto, 0, 0};
  return cat({h, src, dst});
}
Frame ipv6(uint8_t next, uint8_t last_src, uint8_t last_dst) {
  Frame h = {0x60, 0, 0, 0, 0, 0, next, 64};
  Frame src = {0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, last_src};
  Frame dst = src;
  dst[15] = last_dst;
  return cat({h, src, dst});
}
Frame ports(uint16_t sport, uint16_t dport) {
  return {uint8_t(sport >> 8), uint8_t(sport), uint8_t(dport >> 8), uint8_t(dport), 0, 0, 0, 0};
}
Frame ethernet(uint16_t ethertype) {
  Frame f(12, 0x02);
  f.push_back(uint8_t(ethertype >> 8));
  f.push_back(uint8_t(ethertype));
  return f;
}
Frame cooked(uint16_t ethertype) {
  Frame f(14, 0);
  f.push_back(uint8_t(ethertype >> 8));
  f.push_back(uint8_t(ethertype));
  return f;
}

const Frame a = {10, 1, 0, 1}, b = {10, 2, 0, 1};

}  // namespace

TEST_CASE("flow_id: TCP and UDP over IPv4, both directions the same id, lower endpoint first") {
  const Frame out = cat({ethernet(0x0800), ipv4(6, a, b), ports(49152, 80)});
  const Frame back = cat({ethernet(0x0800), ipv4(6, b, a), ports(80, 49152)});
  CHECK(flow(1, out) == "tcp 10.1.0.1:49152 10.2.0.1:80");
  CHECK(flow(1, back) == "tcp 10.1.0.1:49152 10.2.0.1:80");
  // One address, two ports: the port decides.
  CHECK(flow(101, cat({ipv4(17, a, a), ports(5060, 53)})) == "udp 10.1.0.1:53 10.1.0.1:5060");
}

TEST_CASE("flow_id: every link type") {
  const Frame packet = cat({ipv4(17, b, a), ports(53, 40000)});
  const std::string id = "udp 10.1.0.1:40000 10.2.0.1:53";
  CHECK(flow(1, cat({ethernet(0x0800), packet})) == id);
  CHECK(flow(101, packet) == id);
  CHECK(flow(228, packet) == id);
  CHECK(flow(113, cat({cooked(0x0800), packet})) == id);
  Frame sll2(20, 0);
  sll2[0] = 0x08;
  CHECK(flow(276, cat({sll2, packet})) == id);
  // VLAN, then QinQ (802.1ad outside 802.1Q).
  CHECK(flow(1, cat({ethernet(0x8100), {0, 7, 0x08, 0x00}, packet})) == id);
  CHECK(flow(1, cat({ethernet(0x88a8), {0, 1, 0x81, 0x00, 0, 7, 0x08, 0x00}, packet})) == id);
  // A link type without IP, and one not decoded.
  CHECK(flow(1, cat({ethernet(0x0806), packet})) == "");
  CHECK(flow(147, packet) == "");
}

TEST_CASE("flow_id: IPv6, its extension headers skipped") {
  const Frame tcp = cat({ipv6(6, 9, 1), ports(443, 50000)});
  CHECK(flow(229, tcp) == "tcp [2001:db8::1]:50000 [2001:db8::9]:443");
  CHECK(flow(1, cat({ethernet(0x86dd), tcp})) == "tcp [2001:db8::1]:50000 [2001:db8::9]:443");
  CHECK(flow(113, cat({cooked(0x86dd), tcp})) == "tcp [2001:db8::1]:50000 [2001:db8::9]:443");
  // Hop-by-hop (8 bytes), then destination options (16 bytes), then UDP.
  const Frame hop = {60, 0, 0, 0, 0, 0, 0, 0};
  const Frame dest = {17, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0};
  CHECK(flow(101, cat({ipv6(0, 1, 2), hop, dest, ports(1000, 2000)})) == "udp [2001:db8::1]:1000 [2001:db8::2]:2000");
  // A first fragment has the ports; a later one does not.
  CHECK(flow(101, cat({ipv6(44, 1, 2), {17, 0, 0, 1, 0, 0, 0, 7}, ports(1000, 2000)})) ==
        "udp [2001:db8::1]:1000 [2001:db8::2]:2000");
  CHECK(flow(101, cat({ipv6(44, 1, 2), {17, 0, 0x05, 0xa8, 0, 0, 0, 7}, ports(1000, 2000)})) ==
        "ip 2001:db8::1 2001:db8::2 proto 17");
  // An extension header cut short says nothing.
  CHECK(flow(101, cat({ipv6(0, 1, 2), {60, 0, 0}})) == "");
}

TEST_CASE("flow_id: ICMP, and ICMP errors named by the packet they quote") {
  CHECK(flow(101, cat({ipv4(1, b, a), {0, 0, 0, 0, 0, 1, 0, 1}})) == "icmp 10.1.0.1 10.2.0.1");
  CHECK(flow(101, cat({ipv6(58, 2, 1), {129, 0, 0, 0, 0, 1, 0, 1}})) == "icmp 2001:db8::1 2001:db8::2");
  // Time exceeded from a router 10.9.9.9 about a UDP probe 10.1.0.1:33434 -> 10.2.0.1:33435.
  const Frame router = {10, 9, 9, 9};
  const Frame probe = cat({ipv4(17, a, b), ports(33434, 33435)});
  CHECK(flow(101, cat({ipv4(1, router, a), {11, 0, 0, 0, 0, 0, 0, 0}, probe})) == "udp 10.1.0.1:33434 10.2.0.1:33435");
  // ICMPv6 destination unreachable about TCP.
  CHECK(flow(229, cat({ipv6(58, 7, 1), {1, 4, 0, 0, 0, 0, 0, 0}, ipv6(6, 1, 2), ports(5000, 22)})) ==
        "tcp [2001:db8::1]:5000 [2001:db8::2]:22");
  // A quote too short to read is the ICMP message's own flow.
  CHECK(flow(101, cat({ipv4(1, router, a), {3, 3, 0, 0, 0, 0, 0, 0}, {0x45, 0}})) == "icmp 10.1.0.1 10.9.9.9");
}

TEST_CASE("flow_id: other protocols, fragments, and what is too short") {
  CHECK(flow(101, ipv4(47, b, a)) == "ip 10.1.0.1 10.2.0.1 proto 47");
  // A later IPv4 fragment (offset 185 × 8) of TCP has no ports; the first (More Fragments) does.
  CHECK(flow(101, cat({ipv4(6, a, b, 0x00b9), ports(1, 2)})) == "ip 10.1.0.1 10.2.0.1 proto 6");
  CHECK(flow(101, cat({ipv4(6, a, b, 0x2000), ports(1, 2)})) == "tcp 10.1.0.1:1 10.2.0.1:2");
  // A TCP header shorter than its ports.
  CHECK(flow(101, cat({ipv4(6, a, b), {0, 1}})) == "ip 10.1.0.1 10.2.0.1 proto 6");
  CHECK(flow(101, {0x45, 0, 0}) == "");
  CHECK(flow(101, {}) == "");
  CHECK(flow(101, Frame{0x46, 0, 0, 0, 0, 0, 0, 0, 64, 6, 0, 0, 10, 1, 0, 1, 10, 2, 0, 1}) == "");  // IHL 6, 20 bytes
  CHECK(flow(1, Frame(13, 0)) == "");
  CHECK(flow(113, Frame(15, 0)) == "");
}
