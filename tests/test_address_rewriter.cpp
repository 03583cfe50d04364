// AddressRewriter on frames of the packet builders and on frames built here: addresses mapped by
// prefix, checksums checked by a plain recomputation of the test's own, and truncated or garbage
// captures, whose bytes past caplen must stay as they were (and, under ASan, are never read).
#include <doctest/doctest.h>

#include <algorithm>
#include <climits>
#include <cstring>
#include <random>
#include <set>
#include <tuple>
#include <vector>

#include "stages/rewrite.h"
#include <fmt/format.h>
#include "core/jpeg.h"
#include "core/packet_builder.h"
#include "core/tcp_conversation.h"
#include "core/pcap_format.h"

using namespace vei;

namespace {

using Frame = std::vector<uint8_t>;

constexpr uint32_t ip(unsigned a, unsigned b, unsigned c, unsigned d) { return a << 24 | b << 16 | c << 8 | d; }

uint16_t be16(const uint8_t* p) { return static_cast<uint16_t>(p[0] << 8 | p[1]); }
uint32_t be32(const uint8_t* p) { return uint32_t{be16(p)} << 16 | be16(p + 2); }
void put16(uint8_t* p, unsigned v) {
  p[0] = static_cast<uint8_t>(v >> 8);
  p[1] = static_cast<uint8_t>(v);
}
void put32(uint8_t* p, uint32_t v) {
  put16(p, v >> 16);
  put16(p + 2, v & 0xffff);
}

// RFC 1071, written plainly: the folded one's complement sum of 16-bit words; 0xffff over data
// that holds its own valid checksum.
uint16_t ones_sum(const uint8_t* p, size_t n, uint32_t sum = 0) {
  for (size_t i = 0; i < n; ++i) sum += i % 2 ? p[i] : p[i] << 8;
  while (sum > 0xffff) sum = (sum & 0xffff) + (sum >> 16);
  return static_cast<uint16_t>(sum);
}

size_t header_size(const uint8_t* ip) { return (ip[0] & 0xfu) * 4; }
bool ip_checksum_ok(const uint8_t* ip) { return ones_sum(ip, header_size(ip)) == 0xffff; }
uint32_t pseudo_header(const uint8_t* ip, size_t l4_size) { return ones_sum(ip + 12, 8) + ip[9] + static_cast<uint32_t>(l4_size); }

// TCP or UDP, over the pseudo-header too.
bool l4_checksum_ok(const uint8_t* ip) {
  const size_t l4_size = be16(ip + 2) - header_size(ip);
  return ones_sum(ip + header_size(ip), l4_size, pseudo_header(ip, l4_size)) == 0xffff;
}

void fix_ip_checksum(uint8_t* ip) {
  put16(ip + 10, 0);
  put16(ip + 10, static_cast<uint16_t>(~ones_sum(ip, header_size(ip))));
}

Frame frame_of(const std::vector<std::byte>& f) {
  const auto* p = reinterpret_cast<const uint8_t*>(f.data());
  return {p, p + f.size()};
}

size_t link_size(uint32_t linktype) { return linktype == 1 ? 14 : linktype == 113 ? 16 : 0; }

const packets::Endpoint client{packets::local_mac(IpAddr::v4(ip(10, 1, 0, 5))), ip(10, 1, 0, 5), 49152};
const packets::Endpoint server{packets::local_mac(IpAddr::v4(ip(192, 0, 2, 80))), ip(192, 0, 2, 80), 80};

// An HTTP POST of a JPEG: several full segments each way of the handshake.
std::vector<Frame> conversation(uint32_t linktype) {
  const auto jpeg = packets::jpeg_image();
  const std::string head = fmt::format("POST /upload HTTP/1.1\r\nContent-Length: {}\r\n\r\n", jpeg.size());
  std::vector<std::byte> request(reinterpret_cast<const std::byte*>(head.data()),
                                 reinterpret_cast<const std::byte*>(head.data()) + head.size());
  request.insert(request.end(), jpeg.begin(), jpeg.end());
  static constexpr std::string_view ok = "HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n";
  const tcp::Message messages[] = {{true, request, 0}, {false, std::as_bytes(std::span(ok)), 0}};
  Conversation c;
  tcp::build(c, linktype, {{client.mac, IpAddr::v4(client.ip)}, client.port}, {{server.mac, IpAddr::v4(server.ip)}, server.port},
             messages, tcp::Options{});
  std::vector<Frame> frames;
  for (size_t i = 0; i < c.frames.size(); ++i) {
    const auto f = c.frame(i);
    frames.push_back(frame_of(std::vector<std::byte>(f.begin(), f.end())));
  }
  return frames;
}

// The first segment of the request: a TCP frame with a payload.
Frame tcp_frame(uint32_t linktype) { return conversation(linktype).at(3); }

Frame icmp_frame(uint32_t src, uint32_t dst) {
  std::vector<std::byte> f;
  packets::add_icmp_echo(f, 1, {packets::local_mac(IpAddr::v4(src)), src, 0}, {packets::local_mac(IpAddr::v4(dst)), dst, 0}, 7,
                         1, 64, 32, false);
  return frame_of(f);
}

// A raw IPv4 UDP packet with valid checksums; `udp_checksum` false leaves the UDP one 0 ("none").
Frame udp_packet(uint32_t src, uint32_t dst, const Frame& payload, bool udp_checksum = true) {
  const size_t udp_size = 8 + payload.size();
  Frame f(20 + udp_size);
  f[0] = 0x45;
  put16(&f[2], static_cast<unsigned>(f.size()));
  f[8] = 64;
  f[9] = 17;
  put32(&f[12], src);
  put32(&f[16], dst);
  fix_ip_checksum(f.data());
  put16(&f[20], 5353);
  put16(&f[22], 53);
  put16(&f[24], static_cast<unsigned>(udp_size));
  std::memcpy(&f[28], payload.data(), payload.size());
  if (udp_checksum) {
    const uint16_t c = static_cast<uint16_t>(~ones_sum(&f[20], udp_size, pseudo_header(f.data(), udp_size)));
    put16(&f[26], c ? c : 0xffff);
  }
  return f;
}

// Frames as the records of a batch of their own, back to back in an arena of exactly their size,
// so that ASan sees a read past the last one. A record captures `caplen` bytes of its frame (all by
// default); the frame's bytes stored after them stand for what follows a record in an arena.
struct Records {
  Batch batch;

  explicit Records(const std::vector<Frame>& frames, uint32_t caplen = UINT32_MAX) {
    size_t total = 0;
    for (const Frame& f : frames) total += record_header_size + f.size();
    batch.reserve_arena(total);
    for (const Frame& f : frames) {
      Record r{};
      r.seq = batch.records.size();
      r.offset = static_cast<uint32_t>(batch.used);
      r.len = static_cast<uint32_t>(f.size());
      r.caplen = std::min(caplen, r.len);
      std::byte* at = batch.data() + batch.used;
      pcap::write_record_header(at, 0, pcap::Precision::ns, r.caplen, r.len);
      if (!f.empty()) std::memcpy(at + record_header_size, f.data(), f.size());
      batch.records.push_back(r);
      batch.used += record_header_size + f.size();
    }
  }

  // Record i's bytes and those stored after them, up to the next record.
  Frame stored(size_t i) const {
    const size_t end = i + 1 < batch.records.size() ? batch.records[i + 1].offset : batch.used;
    const auto* p = reinterpret_cast<const uint8_t*>(batch.data());
    return {p + batch.records[i].offset + record_header_size, p + end};
  }

  TransformStats rewrite(const RewriteOptions& options, uint32_t linktype) {
    return AddressRewriter(options, linktype).apply(batch);
  }
};

// One frame through the rewriter.
Frame rewritten(const Frame& f, const RewriteOptions& options, uint32_t linktype) {
  Records r({f});
  r.rewrite(options, linktype);
  return r.stored(0);
}

std::set<size_t> differences(const Frame& a, const Frame& b) {
  REQUIRE(a.size() == b.size());
  std::set<size_t> at;
  for (size_t i = 0; i < a.size(); ++i)
    if (a[i] != b[i]) at.insert(i);
  return at;
}

// Client and server networks both ways, as a pseudo-NAT of a whole conversation.
const RewriteOptions both_ways = [] {
  const std::vector maps{parse_address_map("10.1.0.0/16:172.16.0.0/16"), parse_address_map("192.0.2.0/24:198.51.100.0/24")};
  return RewriteOptions{.src_ip = maps, .dst_ip = maps, .both_ip = maps};
}();

}  // namespace

TEST_CASE("rewrite: parse_address_map reads networks and addresses") {
  auto check = [](const char* text, const char* from, const char* to, unsigned prefix) {
    CAPTURE(text);
    const AddressMap m = parse_address_map(text);
    CHECK(to_string(m.from) == from);
    CHECK(to_string(m.to) == to);
    CHECK(m.prefix == prefix);
    CHECK(m.from.v6 == m.to.v6);
  };
  check("10.1.0.0/16:172.16.0.0/16", "10.1.0.0", "172.16.0.0", 16);
  check("10.0.0.1:10.9.9.9", "10.0.0.1", "10.9.9.9", 32);
  check("10.0.0.1/32:10.9.9.9", "10.0.0.1", "10.9.9.9", 32);
  check("192.0.2.128/25:198.51.100.0/25", "192.0.2.128", "198.51.100.0", 25);
  check("0.0.0.0/0:0.0.0.0/0", "0.0.0.0", "0.0.0.0", 0);
  // Host bits in a network are dropped, as tcprewrite's --pnat drops them (the README's example).
  check("10.0.0.0/8:172.16.0.0/8", "10.0.0.0", "172.0.0.0", 8);
  check("10.1.2.0/16:172.16.0.1/16", "10.1.0.0", "172.16.0.0", 16);
  // IPv6 as tcprewrite writes it, the brackets around TO optional, and without brackets where
  // only one colon splits the text into two networks.
  check("[2001:db8::/32]:[fd00::/32]", "2001:db8::", "fd00::", 32);
  check("[2001:db8::1]:fd00::9", "2001:db8::1", "fd00::9", 128);
  check("2001:db8::/32:fd00::/32", "2001:db8::", "fd00::", 32);
  check("2001:db8::1:fd00::9", "2001:db8::1", "fd00::9", 128);
  check("[2001:db8:ffff::1/33]:[fd00:1:ffff::/33]", "2001:db8:8000::", "fd00:1:8000::", 33);
  check("[::/0]:[::/0]", "::", "::", 0);
  check("[10.0.0.1]:[10.0.0.2]", "10.0.0.1", "10.0.0.2", 32);

  auto fails = [](const char* text, const char* message) {
    CAPTURE(text);
    CHECK_THROWS_WITH_AS(parse_address_map(text), doctest::Contains(message), std::invalid_argument);
  };
  fails("10.0.0.1", "address map '10.0.0.1': expected FROM:TO");
  fails("", "address map '': expected FROM:TO");
  fails("10.1.0.0/16:172.16.0.0/24", "address map '10.1.0.0/16:172.16.0.0/24': the prefix lengths differ (/16 and /24)");
  fails("10.0.0.1:10.9.0.0/16", "the prefix lengths differ (/32 and /16)");
  fails("10.0.0.256:10.0.0.1", "'10.0.0.256' is not an IP address");
  fails(":10.0.0.1", "'' is not an IP address");
  fails("10.0.0.1:10.0.0.2:10.0.0.3", "no colon splits it into two IP networks; write IPv6 maps as [FROM]:[TO]");
  fails("10.0.0.0/33:10.0.0.0/33", "'/33' is not a prefix length (0 to 32)");
  fails("10.0.0.0/:10.0.0.0/8", "'/' is not a prefix length");
  fails("10.0.0.0/8x:10.0.0.0/8", "'/8x' is not a prefix length");
  fails("10.0.0.0/-8:10.0.0.0/8", "'/-8' is not a prefix length");
  fails("[2001:db8::/129]:[fd00::/129]", "'/129' is not a prefix length (0 to 128)");
  fails("[2001:db8::/32]:[fd00::/48]", "the prefix lengths differ (/32 and /48)");
  fails("[2001:db8::1]:[10.0.0.1]", "maps IPv6 onto IPv4: both sides must be of one version");
  fails("10.0.0.1:fd00::1", "maps IPv4 onto IPv6");
  fails("[2001:db8::1]", "expected [FROM]:[TO]");
  fails("[2001:db8::1]:[fd00::1", "'[fd00::1' lacks its closing ']'");
  fails("[2001:db8::x]:[fd00::1]", "'2001:db8::x' is not an IP address");
  fails("2001:db8::1:2:3::4", "ambiguous: it reads as 2001:db8::1 -> 2:3::4 and as 2001:db8::1:2 -> 3::4; write [FROM]:[TO]");
  fails("2001:db8::/32:fd00::/33", "the prefix lengths differ (/32 and /33)");
}

TEST_CASE("rewrite: addresses map by prefix, host bits kept, the first matching map wins") {
  const RewriteOptions options{
      .src_ip = {parse_address_map("10.1.0.0/16:172.16.0.0/16"), parse_address_map("10.0.0.0/8:11.0.0.0/8"),
                 parse_address_map("10.1.2.3:9.9.9.9")},
      .dst_ip = {parse_address_map("192.0.2.0/24:198.51.100.0/24")}};
  struct Case {
    uint32_t src, dst, new_src, new_dst;
  };
  const Case cases[] = {
      {ip(10, 1, 2, 3), ip(192, 0, 2, 7), ip(172, 16, 2, 3), ip(198, 51, 100, 7)},      // both, first src map
      {ip(10, 2, 3, 4), ip(203, 0, 113, 9), ip(11, 2, 3, 4), ip(203, 0, 113, 9)},       // source only
      {ip(198, 51, 100, 1), ip(192, 0, 2, 200), ip(198, 51, 100, 1), ip(198, 51, 100, 200)},  // destination only
      {ip(203, 0, 113, 9), ip(10, 1, 2, 3), ip(203, 0, 113, 9), ip(10, 1, 2, 3)},       // a source map on the destination: no
  };
  std::vector<Frame> frames;
  for (const Case& c : cases) frames.push_back(icmp_frame(c.src, c.dst));
  Records records(frames);
  const TransformStats stats = records.rewrite(options, 1);
  CHECK(stats.changed == 3);
  CHECK(stats.dropped == 0);
  for (size_t i = 0; i < frames.size(); ++i) {
    CAPTURE(i);
    const Frame after = records.stored(i);
    const uint8_t* ip4 = after.data() + 14;
    CHECK(be32(ip4 + 12) == cases[i].new_src);
    CHECK(be32(ip4 + 16) == cases[i].new_dst);
    CHECK(ip_checksum_ok(ip4));
    CHECK(ones_sum(ip4 + 20, after.size() - 34) == 0xffff);  // ICMP: no pseudo-header, nothing to fix
    for (size_t at : differences(frames[i], after)) CHECK((at >= 14 + 10 && at < 14 + 20));
  }
  CHECK(records.stored(3) == frames[3]);

  SUBCASE("a map onto itself changes nothing") {
    const Frame f = icmp_frame(ip(10, 1, 2, 3), ip(192, 0, 2, 7));
    Records same({f});
    CHECK(same.rewrite({.src_ip = {parse_address_map("10.0.0.0/8:10.0.0.0/8")}}, 1).changed == 0);
    CHECK(same.stored(0) == f);
  }
}

TEST_CASE("rewrite: IP and TCP checksums verify over a whole HTTP conversation") {
  for (uint32_t linktype : {1u, 101u, 228u, 113u}) {
    CAPTURE(linktype);
    const auto frames = conversation(linktype);
    Records records(frames);
    CHECK(records.rewrite(both_ways, linktype).changed == frames.size());
    const size_t link = link_size(linktype);
    for (size_t i = 0; i < frames.size(); ++i) {
      CAPTURE(i);
      const uint8_t* before = frames[i].data() + link;
      REQUIRE((ip_checksum_ok(before) && l4_checksum_ok(before)));  // the checker itself
      const Frame after = records.stored(i);
      const uint8_t* ip4 = after.data() + link;
      const bool from_client = be32(before + 12) == client.ip;
      CHECK(be32(ip4 + 12) == (from_client ? ip(172, 16, 0, 5) : ip(198, 51, 100, 80)));
      CHECK(be32(ip4 + 16) == (from_client ? ip(198, 51, 100, 80) : ip(172, 16, 0, 5)));
      CHECK(ip_checksum_ok(ip4));
      CHECK(l4_checksum_ok(ip4));
      const size_t tcp_checksum = link + 20 + 16;
      for (size_t at : differences(frames[i], after))
        CHECK(((at >= link + 10 && at < link + 20) || at == tcp_checksum || at == tcp_checksum + 1));
    }
  }
}

TEST_CASE("rewrite: UDP checksums, 0 kept as none, a computed 0 sent as 0xffff") {
  const Frame payload{'v', 'e', 'i', 'p', 'i', 'p', 'e', '!', 1, 2, 3};
  SUBCASE("a valid checksum stays valid") {
    const Frame after = rewritten(udp_packet(ip(10, 1, 9, 9), ip(192, 0, 2, 53), payload), both_ways, 101);
    CHECK(be32(&after[12]) == ip(172, 16, 9, 9));
    CHECK(be32(&after[16]) == ip(198, 51, 100, 53));
    CHECK(ip_checksum_ok(after.data()));
    CHECK(l4_checksum_ok(after.data()));
  }
  SUBCASE("no checksum stays none") {
    const Frame after = rewritten(udp_packet(ip(10, 1, 9, 9), ip(192, 0, 2, 53), payload, false), both_ways, 101);
    CHECK(be32(&after[12]) == ip(172, 16, 9, 9));
    CHECK(ip_checksum_ok(after.data()));
    CHECK(be16(&after[26]) == 0);
  }
  SUBCASE("a checksum that comes to 0") {
    // A first payload word chosen so that, with the new addresses, the checksum computes to 0.
    Frame tuned = payload;
    put16(tuned.data(), 0);
    const Frame target = udp_packet(ip(172, 16, 9, 9), ip(198, 51, 100, 53), tuned, false);
    const size_t udp_size = target.size() - 20;
    put16(tuned.data(), static_cast<uint16_t>(~ones_sum(&target[20], udp_size, pseudo_header(target.data(), udp_size))));
    const Frame before = udp_packet(ip(10, 1, 9, 9), ip(192, 0, 2, 53), tuned);
    REQUIRE(be16(&before[26]) != 0xffff);
    const Frame after = rewritten(before, both_ways, 101);
    CHECK(be32(&after[12]) == ip(172, 16, 9, 9));
    CHECK(be16(&after[26]) == 0xffff);
    CHECK(l4_checksum_ok(after.data()));
  }
  SUBCASE("a capture holding the UDP header only") {
    const Frame f = udp_packet(ip(10, 1, 9, 9), ip(192, 0, 2, 53), payload);
    const Frame whole = rewritten(f, both_ways, 101);
    Records records({f}, 28);
    records.rewrite(both_ways, 101);
    const Frame after = records.stored(0);
    CHECK(Frame(after.begin(), after.begin() + 28) == Frame(whole.begin(), whole.begin() + 28));
    CHECK(Frame(after.begin() + 28, after.end()) == Frame(f.begin() + 28, f.end()));
  }
}

TEST_CASE("rewrite: VLAN-tagged frames, any number of tags, as tcprewrite") {
  const Frame plain = tcp_frame(1);
  auto tagged = [&](const std::vector<uint16_t>& tpids) {
    Frame f(plain.begin(), plain.begin() + 12);
    for (uint16_t tpid : tpids) f.insert(f.end(), {uint8_t(tpid >> 8), uint8_t(tpid), 0x00, 0x64});
    f.insert(f.end(), plain.begin() + 12, plain.end());
    return f;
  };
  for (const std::vector<uint16_t>& tpids : {std::vector<uint16_t>{0x8100}, {0x88a8, 0x8100}, {0x88a8, 0x8100, 0x9100}}) {
    CAPTURE(tpids.size());
    const Frame after = rewritten(tagged(tpids), both_ways, 1);
    const uint8_t* ip4 = after.data() + 14 + 4 * tpids.size();
    CHECK(be32(ip4 + 12) == ip(172, 16, 0, 5));
    CHECK(be32(ip4 + 16) == ip(198, 51, 100, 80));
    CHECK(ip_checksum_ok(ip4));
    CHECK(l4_checksum_ok(ip4));
  }
  // Cut inside a tag: nothing to find.
  const Frame cut = tagged({0x8100, 0x8100});
  Records records({cut}, 17);
  CHECK(records.rewrite(both_ways, 1).changed == 0);
}

TEST_CASE("rewrite: IPv4 behind MPLS labels, and Ethernet over MPLS, as tcprewrite") {
  const Frame plain = tcp_frame(1);
  const auto labelled = [&](std::vector<uint32_t> labels, const Frame& inner) {
    Frame f(plain.begin(), plain.begin() + 12);
    f.insert(f.end(), {0x88, 0x47});
    for (uint32_t label : labels) {
      f.resize(f.size() + 4);
      put32(&f[f.size() - 4], label);
    }
    f.insert(f.end(), inner.begin(), inner.end());
    return f;
  };
  const Frame ipv4(plain.begin() + 14, plain.end());
  const Frame expected_ipv4 = [&] {
    const Frame after = rewritten(plain, both_ways, 1);
    return Frame(after.begin() + 14, after.end());
  }();
  REQUIRE(expected_ipv4 != ipv4);
  // Labels 18 and 16, the last with the bottom-of-stack bit.
  const std::vector<uint32_t> two{18u << 12 | 0xff, 16u << 12 | 0x100 | 0xff};
  CHECK(rewritten(labelled(two, ipv4), both_ways, 1) == labelled(two, expected_ipv4));
  // Ethernet over MPLS: a control word of zeros, then an Ethernet frame.
  Frame over = {0, 0, 0, 0};
  over.insert(over.end(), plain.begin(), plain.end());
  Frame expected_over = {0, 0, 0, 0};
  expected_over.insert(expected_over.end(), plain.begin(), plain.begin() + 14);
  expected_over.insert(expected_over.end(), expected_ipv4.begin(), expected_ipv4.end());
  CHECK(rewritten(labelled(two, over), both_ways, 1) == labelled(two, expected_over));
  // A Generic Associated Channel label, and a stack cut before its bottom, are left alone.
  const Frame gach = labelled({13u << 12 | 0x1ff}, ipv4);
  CHECK(rewritten(gach, both_ways, 1) == gach);
  const Frame no_bottom = labelled({18u << 12 | 0xff}, {});
  CHECK(rewritten(no_bottom, both_ways, 1) == no_bottom);
}

TEST_CASE("rewrite: fragments") {
  Frame f = tcp_frame(101);
  SUBCASE("a first fragment has its TCP checksum fixed") {
    put16(&f[6], 0x2000);  // more fragments, offset 0
    fix_ip_checksum(f.data());
    const Frame after = rewritten(f, both_ways, 101);
    CHECK(be32(&after[12]) == ip(172, 16, 0, 5));
    CHECK(ip_checksum_ok(after.data()));
    CHECK(l4_checksum_ok(after.data()));
  }
  SUBCASE("a later fragment has only its IP header fixed") {
    put16(&f[6], 185);  // offset 1480 bytes
    fix_ip_checksum(f.data());
    const Frame after = rewritten(f, both_ways, 101);
    CHECK(be32(&after[12]) == ip(172, 16, 0, 5));
    CHECK(be32(&after[16]) == ip(198, 51, 100, 80));
    CHECK(ip_checksum_ok(after.data()));
    CHECK(Frame(after.begin() + 20, after.end()) == Frame(f.begin() + 20, f.end()));
  }
}

TEST_CASE("rewrite: truncated captures, cut at every length") {
  const packets::Mac new_dst{0x02, 0xaa, 0xbb, 0xcc, 0xdd, 0xee}, new_src{0x02, 0x11, 0x22, 0x33, 0x44, 0x55};
  const Frame canary(16, 0xa5);
  for (uint32_t linktype : {1u, 101u, 113u}) {
    CAPTURE(linktype);
    RewriteOptions options = both_ways;
    if (linktype == 1) {
      options.dst_mac = new_dst;
      options.src_mac = new_src;
    }
    const Frame f = tcp_frame(linktype);
    const Frame whole = rewritten(f, options, linktype);
    const size_t ip4 = link_size(linktype), tcp_checksum = ip4 + 20 + 16;
    for (uint32_t caplen = 0; caplen <= f.size(); ++caplen) {
      CAPTURE(caplen);
      // What may change within the capture: the MACs as far as captured, the IP header once all
      // captured, the TCP checksum once all captured.
      Frame expected = f;
      for (size_t i = 0; i < caplen; ++i) {
        const bool mac = linktype == 1 && i < 12;
        const bool header = caplen >= ip4 + 20 && i >= ip4 && i < ip4 + 20;
        const bool checksum = caplen >= tcp_checksum + 2 && (i == tcp_checksum || i == tcp_checksum + 1);
        if (mac || header || checksum) expected[i] = whole[i];
      }
      expected.resize(caplen);

      // Only the captured bytes in the arena: ASan catches any access beyond.
      Records exact({Frame(f.begin(), f.begin() + caplen)});
      const TransformStats stats = exact.rewrite(options, linktype);
      CHECK(exact.stored(0) == expected);
      CHECK(stats.changed == (expected != Frame(f.begin(), f.begin() + caplen)));

      // The whole frame and a canary after the record: nothing past caplen changes.
      Frame stored = f;
      stored.insert(stored.end(), canary.begin(), canary.end());
      Records cut({stored}, caplen);
      cut.rewrite(options, linktype);
      const Frame after = cut.stored(0);
      CHECK(Frame(after.begin(), after.begin() + caplen) == expected);
      CHECK(Frame(after.begin() + caplen, after.end()) == Frame(stored.begin() + caplen, stored.end()));
    }
  }
}

TEST_CASE("rewrite: garbage changes nothing past caplen") {
  std::mt19937 random(20240611);
  auto byte = [&] { return static_cast<uint8_t>(random()); };
  const RewriteOptions everything{.src_mac = packets::Mac{2, 0, 0, 0, 0, 1}, .dst_mac = packets::Mac{2, 0, 0, 0, 0, 2},
                                  .src_ip = {parse_address_map("0.0.0.0/0:0.0.0.0/0"), parse_address_map("0.0.0.0/1:128.0.0.0/1")},
                                  .dst_ip = {parse_address_map("128.0.0.0/1:0.0.0.0/1")}};
  for (uint32_t linktype : {1u, 101u, 228u, 113u}) {
    CAPTURE(linktype);
    RewriteOptions options = everything;
    if (linktype != 1) options.src_mac = options.dst_mac = std::nullopt;
    for (int n = 0; n < 3000; ++n) {
      Frame f(random() % 100);
      for (uint8_t& b : f) b = byte();
      // Headers plausible enough to reach every branch: IPv4 after 0-3 VLAN tags, an IHL of any
      // value, TCP or UDP, fragment offset 0.
      size_t at = linktype == 1 ? 12 : linktype == 113 ? 14 : 0;
      if (linktype == 1)
        for (unsigned tags = random() % 4; tags > 0 && at + 4 <= f.size(); --tags, at += 4) put16(&f[at], random() % 2 ? 0x8100 : 0x88a8);
      if (at != 0 && at + 2 <= f.size()) put16(&f[at], 0x0800), at += 2;
      if (at + 10 <= f.size()) {
        f[at] = static_cast<uint8_t>(0x40 | (random() % 16));
        put16(&f[at + 6], random() % 4 ? 0 : byte());
        f[at + 9] = random() % 2 ? 6 : 17;
      }
      const uint32_t caplen = static_cast<uint32_t>(random() % (f.size() + 1));
      Records records({f}, caplen);
      records.rewrite(options, linktype);
      const Frame after = records.stored(0);
      CHECK(Frame(after.begin() + caplen, after.end()) == Frame(f.begin() + caplen, f.end()));
    }
  }
}

TEST_CASE("rewrite: Ethernet addresses") {
  const packets::Mac dst{0x02, 0xaa, 0xbb, 0xcc, 0xdd, 0xee}, src{0x02, 0x11, 0x22, 0x33, 0x44, 0x55};
  const Frame f = icmp_frame(ip(10, 1, 2, 3), ip(192, 0, 2, 7));
  Records records({f});
  CHECK(records.rewrite({.src_mac = src, .dst_mac = dst}, 1).changed == 1);
  Frame expected = f;
  std::copy(dst.begin(), dst.end(), expected.begin());
  std::copy(src.begin(), src.end(), expected.begin() + 6);
  CHECK(records.stored(0) == expected);
  CHECK(records.rewrite({.src_mac = src, .dst_mac = dst}, 1).changed == 0);  // already set

  Frame arp = f;
  put16(&arp[12], 0x0806);
  CHECK(rewritten(arp, {.dst_mac = dst}, 1) == [&] {
    Frame a = arp;
    std::copy(dst.begin(), dst.end(), a.begin());
    return a;
  }());

  CHECK_THROWS_WITH_AS(AddressRewriter({.src_mac = src}, 101),
                       "rewrite: Ethernet addresses can only be set on EN10MB (1) packets, not on link type RAW (101)",
                       std::invalid_argument);
  CHECK_THROWS_WITH_AS(AddressRewriter({.dst_mac = dst}, 113), doctest::Contains("not on link type LINUX_SLL (113)"),
                       std::invalid_argument);
  CHECK_THROWS_WITH_AS(AddressRewriter(both_ways, 105),
                       doctest::Contains("rewrite: cannot find IPv4 addresses in link type IEEE802_11 (105)"),
                       std::invalid_argument);
  CHECK_NOTHROW(AddressRewriter({}, 105));
}

TEST_CASE("rewrite: IPv4 maps leave IPv6 alone, and a bad IHL") {
  Frame v6(60, 0);
  v6[0] = 0x60;
  put32(&v6[12], ip(10, 1, 0, 5));  // where an IPv4 source would be
  put32(&v6[16], ip(192, 0, 2, 80));
  CHECK(rewritten(v6, both_ways, 101) == v6);

  Frame ethernet_v6 = tcp_frame(1);
  put16(&ethernet_v6[12], 0x86dd);
  CHECK(rewritten(ethernet_v6, both_ways, 1) == ethernet_v6);

  Frame short_ihl = tcp_frame(101);
  short_ihl[0] = 0x44;
  CHECK(rewritten(short_ihl, both_ways, 101) == short_ihl);
}

namespace {

// An ARP request (op 1) or reply (2) for IPv4 over Ethernet, behind `link`.
Frame arp_frame(const Frame& link, uint16_t op, uint32_t sender, uint32_t target) {
  Frame f = link;
  const Frame arp = {0, 1, 8, 0, 6, 4, 0, static_cast<uint8_t>(op), 2, 0, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0};
  f.insert(f.end(), arp.begin(), arp.end());
  put32(&f[link.size() + 14], sender);
  put32(&f[link.size() + 24], target);
  return f;
}

Frame ethernet_header(std::initializer_list<uint16_t> types) {
  Frame f(12, 0xee);
  for (uint16_t type : types) {
    f.push_back(static_cast<uint8_t>(type >> 8));
    f.push_back(static_cast<uint8_t>(type));
  }
  return f;
}

}  // namespace

TEST_CASE("rewrite: ARP sender and target addresses take the maps of both directions, as tcprewrite --pnat") {
  const auto ip_map = [](const char* map) {
    const std::vector maps{parse_address_map(map)};
    return RewriteOptions{.src_ip = maps, .dst_ip = maps, .both_ip = maps};
  };
  const RewriteOptions pnat = ip_map("10.0.0.0/8:172.16.0.0/8");  // 10.x.y.z becomes 172.x.y.z
  for (const auto& [name, link, linktype] :
       {std::tuple{"Ethernet", ethernet_header({0x0806}), 1u}, std::tuple{"802.1Q", ethernet_header({0x8100, 7, 0x0806}), 1u},
        std::tuple{"QinQ", ethernet_header({0x88a8, 7, 0x8100, 8, 0x0806}), 1u},
        std::tuple{"Linux cooked", Frame{0, 0, 0, 1, 0, 6, 1, 2, 3, 4, 5, 6, 0, 0, 0x08, 0x06}, 113u},
        std::tuple{"Linux cooked v2", Frame{0x08, 0x06, 0, 0, 0, 0, 0, 2, 0, 1, 0, 6, 1, 2, 3, 4, 5, 6, 0, 0}, 276u}}) {
    CAPTURE(name);
    for (const uint16_t op : {uint16_t{1}, uint16_t{2}}) {
      CAPTURE(op);
      const Frame f = arp_frame(link, op, ip(10, 1, 2, 3), ip(10, 9, 8, 7));
      CHECK(rewritten(f, pnat, linktype) == arp_frame(link, op, ip(172, 1, 2, 3), ip(172, 9, 8, 7)));
      // Only one of them in the map.
      CHECK(rewritten(arp_frame(link, op, ip(10, 1, 2, 3), ip(192, 0, 2, 1)), pnat, linktype) ==
            arp_frame(link, op, ip(172, 1, 2, 3), ip(192, 0, 2, 1)));
      // tcprewrite's --srcipmap and --dstipmap leave ARP alone.
      const std::vector maps{parse_address_map("10.0.0.0/8:172.16.0.0/8")};
      CHECK(rewritten(f, {.src_ip = maps, .dst_ip = maps}, linktype) == f);
      // Cut inside the target address: the sender's is mapped, the rest left as captured.
      Records cut({f}, static_cast<uint32_t>(f.size() - 2));
      CHECK(cut.rewrite(pnat, linktype).changed == 1);
      Frame expected = f;
      put32(&expected[link.size() + 14], ip(172, 1, 2, 3));
      CHECK(cut.stored(0) == expected);
    }
    // Other operations (RARP's 3, say) and other protocols are not IPv4 requests or replies.
    const Frame rarp = arp_frame(link, 3, ip(10, 1, 2, 3), ip(10, 9, 8, 7));
    CHECK(rewritten(rarp, pnat, linktype) == rarp);
    Frame other = arp_frame(link, 1, ip(10, 1, 2, 3), ip(10, 9, 8, 7));
    other[link.size() + 5] = 16;  // a protocol address of 16 bytes is not IPv4's
    CHECK(rewritten(other, pnat, linktype) == other);
  }
}

TEST_CASE("rewrite: IPv4 behind the Linux cooked v2 header (SLL2), whose protocol comes first") {
  const Frame packet = udp_packet(ip(10, 1, 0, 5), ip(192, 0, 2, 80), Frame(16, 0x55));
  const Frame expected = rewritten(packet, both_ways, 101);
  Frame f = {0x08, 0x00, 0, 0, 0, 0, 0, 2, 0, 1, 0, 6, 1, 2, 3, 4, 5, 6, 0, 0};
  Frame want = f;
  f.insert(f.end(), packet.begin(), packet.end());
  want.insert(want.end(), expected.begin(), expected.end());
  CHECK(rewritten(f, both_ways, 276) == want);
  f[0] = 0x86;  // IPv6's protocol, in front of what looks like IPv4
  f[1] = 0xdd;
  CHECK(rewritten(f, both_ways, 276) == f);
}

TEST_CASE("rewrite: BSD loopback (NULL, LOOP) carries IPv4 behind the address family, in either byte order") {
  const Frame packet = udp_packet(ip(10, 1, 0, 5), ip(192, 0, 2, 80), Frame(16, 0x55));
  const Frame expected = rewritten(packet, both_ways, 101);
  REQUIRE(expected != packet);
  for (const Frame& family : {Frame{2, 0, 0, 0}, Frame{0, 0, 0, 2}}) {
    Frame f = family;
    f.insert(f.end(), packet.begin(), packet.end());
    Frame want = family;
    want.insert(want.end(), expected.begin(), expected.end());
    CHECK(rewritten(f, both_ways, 0) == want);
    CHECK(rewritten(f, both_ways, 108) == want);
  }
  Frame ipv6_family = {28, 0, 0, 0};  // AF_INET6 on FreeBSD, in front of what looks like IPv4
  ipv6_family.insert(ipv6_family.end(), packet.begin(), packet.end());
  CHECK(rewritten(ipv6_family, both_ways, 0) == ipv6_family);
}

namespace {

// Only valid texts are written here (some are read before any test runs, where REQUIRE cannot be).
IpAddr address(const char* text) {
  IpAddr a;
  parse_ip(text, a);
  return a;
}

// RFC 8200 8.1's pseudo-header: source, destination, upper-layer length, next header.
uint32_t pseudo_header6(const uint8_t* src, const uint8_t* dst, size_t length, uint8_t protocol) {
  return ones_sum(src, 16) + ones_sum(dst, 16) + static_cast<uint32_t>(length) + protocol;
}

constexpr uint8_t proto_tcp = 6, udp = 17, icmpv6 = 58, mobility = 135, no_next = 59;
constexpr uint8_t hop_by_hop = 0, routing = 43, fragment = 44, esp = 50, ah = 51, destination = 60, ipv6_in_ipv6 = 41;

size_t checksum_field(uint8_t protocol) { return protocol == proto_tcp ? 16 : protocol == udp ? 6 : protocol == icmpv6 ? 2 : 4; }

// An extension header's bytes; the first, its next header, is filled in by ipv6_packet.
struct Extension {
  uint8_t type;
  Frame bytes;
};

// A raw IPv6 packet: the extension headers in order, then `upper` of `protocol` with its checksum
// computed over the pseudo-header, whose destination is `final_dst` when given (a routing header's
// last address), else the packet's. Other protocols' bytes are left as given.
Frame ipv6_packet(const IpAddr& src, const IpAddr& dst, const std::vector<Extension>& chain, uint8_t protocol,
                  Frame upper, const uint8_t* final_dst = nullptr) {
  Frame f(40);
  f[0] = 0x60;
  f[6] = chain.empty() ? protocol : chain[0].type;
  f[7] = 64;
  std::memcpy(&f[8], src.data(), 16);
  std::memcpy(&f[24], dst.data(), 16);
  for (size_t i = 0; i < chain.size(); ++i) {
    Frame b = chain[i].bytes;
    b[0] = i + 1 < chain.size() ? chain[i + 1].type : protocol;
    f.insert(f.end(), b.begin(), b.end());
  }
  put16(&f[4], static_cast<unsigned>(f.size() - 40 + upper.size()));
  const size_t at = f.size();
  f.insert(f.end(), upper.begin(), upper.end());
  if (protocol == proto_tcp || protocol == udp || protocol == icmpv6 || protocol == mobility) {
    const size_t field = at + checksum_field(protocol);
    put16(&f[field], 0);
    const uint8_t* final = final_dst ? final_dst : &f[24];
    const auto c = static_cast<uint16_t>(~ones_sum(&f[at], upper.size(), pseudo_header6(&f[8], final, upper.size(), protocol)));
    put16(&f[field], protocol == udp && c == 0 ? 0xffff : c);
  }
  return f;
}

// The checksum of the upper-layer header at `at` of the IPv6 packet at `ip` verifies.
bool upper_checksum_ok(const Frame& f, size_t ip, size_t at, uint8_t protocol, const uint8_t* final_dst = nullptr) {
  const size_t n = f.size() - at;
  return ones_sum(&f[at], n, pseudo_header6(&f[ip + 8], final_dst ? final_dst : &f[ip + 24], n, protocol)) == 0xffff;
}

Frame upper_bytes(uint8_t protocol, size_t size) {
  Frame b(size);
  for (size_t i = 0; i < size; ++i) b[i] = static_cast<uint8_t>(i * 7 + 1);
  if (protocol == udp) put16(&b[4], static_cast<unsigned>(size));
  if (protocol == mobility) b[0] = no_next, b[1] = static_cast<uint8_t>(size / 8 - 1);
  return b;
}

RewriteOptions v6_maps(const char* map) {
  const std::vector maps{parse_address_map(map)};
  return RewriteOptions{.src_ip = maps, .dst_ip = maps, .both_ip = maps};
}

const RewriteOptions v6_both_ways = v6_maps("[2001:db8::/32]:[fd00:1::/32]");
const IpAddr v6_client = address("2001:db8::5"), v6_server = address("2001:db8:1::80");

// Where two frames differ, as ranges [from, to) that must hold them all.
void check_changes_within(const Frame& before, const Frame& after, std::vector<std::pair<size_t, size_t>> allowed) {
  for (size_t at : differences(before, after)) {
    CAPTURE(at);
    CHECK(std::any_of(allowed.begin(), allowed.end(), [&](const auto& r) { return at >= r.first && at < r.second; }));
  }
}

}  // namespace

TEST_CASE("rewrite: IPv6 TCP conversations, every checksum still good") {
  for (uint32_t linktype : {1u, 101u, 229u, 113u}) {
    CAPTURE(linktype);
    Conversation c;
    const std::string_view hello = "hello over IPv6";
    const tcp::Message messages[] = {{true, std::as_bytes(std::span(hello)), 0}};
    tcp::build(c, linktype, {{{}, v6_client}, 49152}, {{{}, v6_server}, 443}, messages, tcp::Options{});
    const size_t link = link_size(linktype);
    for (size_t i = 0; i < c.frames.size(); ++i) {
      CAPTURE(i);
      const auto bytes = c.frame(i);
      const Frame before = frame_of(std::vector<std::byte>(bytes.begin(), bytes.end()));
      REQUIRE(upper_checksum_ok(before, link, link + 40, proto_tcp));  // the checker itself
      const Frame after = rewritten(before, v6_both_ways, linktype);
      const bool from_client = std::memcmp(&before[link + 8], v6_client.data(), 16) == 0;
      IpAddr src{.v6 = true}, dst{.v6 = true};
      std::memcpy(src.bytes.data(), &after[link + 8], 16);
      std::memcpy(dst.bytes.data(), &after[link + 24], 16);
      CHECK(to_string(src) == (from_client ? "fd00:1::5" : "fd00:1:1::80"));
      CHECK(to_string(dst) == (from_client ? "fd00:1:1::80" : "fd00:1::5"));
      CHECK(upper_checksum_ok(after, link, link + 40, proto_tcp));
      check_changes_within(before, after, {{link + 8, link + 40}, {link + 56, link + 58}});
    }
  }
}

TEST_CASE("rewrite: IPv6 upper-layer checksums past extension headers, as RFC 8200 chains them") {
  const Frame hbh = {0, 0, 1, 4, 0, 0, 0, 0};                                  // PadN
  const Frame options = {0, 1, 1, 12, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0};     // 16 bytes
  const Frame first_fragment = {0, 0, 0x00, 0x01, 0, 0, 0, 7};                   // offset 0, more
  Frame routing_done = {0, 2, 0, 0, 0, 0, 0, 0};                                 // type 0, no segments left
  const IpAddr hop = address("2001:db8:2::1");
  routing_done.insert(routing_done.end(), hop.data(), hop.data() + 16);
  const Frame auth = {0, 4, 0, 0, 0, 0, 1, 0, 0, 0, 0, 9, 0xa, 0xb, 0xc, 0xd, 0xe, 0xf, 1, 2, 3, 4, 5, 6};  // (4 + 2) * 4
  struct Case {
    const char* name;
    std::vector<Extension> chain;
    uint8_t protocol;
  };
  const Case cases[] = {
      {"UDP", {}, udp},
      {"TCP", {}, proto_tcp},
      {"ICMPv6", {}, icmpv6},
      {"Mobility Header", {}, mobility},
      {"hop-by-hop, destination options", {{hop_by_hop, hbh}, {destination, options}}, udp},
      {"routing, no segments left", {{routing, routing_done}}, proto_tcp},
      {"first fragment", {{fragment, first_fragment}}, udp},
      {"AH, its length in 4-byte units", {{hop_by_hop, hbh}, {ah, auth}}, proto_tcp},
      {"every kind", {{hop_by_hop, hbh}, {destination, options}, {routing, routing_done}, {fragment, first_fragment}, {ah, auth}},
       icmpv6},
  };
  for (const Case& c : cases) {
    CAPTURE(c.name);
    const Frame before = ipv6_packet(v6_client, v6_server, c.chain, c.protocol, upper_bytes(c.protocol, 48));
    const size_t upper = before.size() - 48;
    REQUIRE(upper_checksum_ok(before, 0, upper, c.protocol));
    const Frame after = rewritten(before, v6_both_ways, 101);
    CHECK(upper_checksum_ok(after, 0, upper, c.protocol));
    const size_t field = upper + checksum_field(c.protocol);
    CHECK(before[field] != after[field]);
    check_changes_within(before, after, {{8, 40}, {field, field + 2}});
  }

  SUBCASE("nothing past the addresses where no checksum can be reached") {
    const Frame later_fragment = {0, 0, 0x05, 0xc8, 0, 0, 0, 7};  // offset 1480
    const Frame esp_header = {0, 0, 1, 0, 0, 0, 0, 1};
    const Frame inner = ipv6_packet(v6_server, v6_client, {}, udp, upper_bytes(udp, 16));
    for (const auto& [name, chain, protocol, body] :
         {std::tuple{"a later fragment", std::vector<Extension>{{fragment, later_fragment}}, udp, upper_bytes(udp, 48)},
          std::tuple{"ESP", std::vector<Extension>{}, esp, Frame(48, 0x5a)},
          std::tuple{"ESP after hop-by-hop", std::vector<Extension>{{hop_by_hop, hbh}}, esp, Frame(48, 0x5a)},
          std::tuple{"no next header", std::vector<Extension>{{destination, options}}, no_next, Frame(8, 0)},
          std::tuple{"IPv6 in IPv6, whose checksums cover its own addresses", std::vector<Extension>{}, ipv6_in_ipv6, inner}}) {
      CAPTURE(name);
      const Frame before = ipv6_packet(v6_client, v6_server, chain, protocol, body);
      const Frame after = rewritten(before, v6_both_ways, 101);
      CHECK(std::memcmp(&after[8], &before[8], 32) != 0);
      check_changes_within(before, after, {{8, 40}});
    }
  }
}

TEST_CASE("rewrite: an IPv6 routing header with segments left names the destination the checksum covers") {
  // RFC 8200 8.1: the pseudo-header holds the final destination, the routing header's last address.
  Frame rh = {0, 2, 0, 1, 0, 0, 0, 0};  // type 0, one segment left
  const IpAddr final_dst = address("2001:db8:9::9");
  rh.insert(rh.end(), final_dst.data(), final_dst.data() + 16);
  const Frame before = ipv6_packet(v6_client, v6_server, {{routing, rh}}, udp, upper_bytes(udp, 24), final_dst.data());
  const size_t upper = 40 + rh.size();
  REQUIRE(upper_checksum_ok(before, 0, upper, udp, final_dst.data()));
  const Frame after = rewritten(before, v6_both_ways, 101);
  CHECK(upper_checksum_ok(after, 0, upper, udp, final_dst.data()));
  CHECK(std::memcmp(&after[upper - 16], final_dst.data(), 16) == 0);  // as tcprewrite: the route stays
  // The destination alone moved: the checksum stays as it was.
  const Frame dst_only = rewritten(before, {.dst_ip = {parse_address_map("[2001:db8::/32]:[fd00:1::/32]")}}, 101);
  check_changes_within(before, dst_only, {{24, 40}});
}

TEST_CASE("rewrite: ICMPv6 errors: the outer addresses move, the quoted packet stays, as tcprewrite") {
  const Frame quoted = ipv6_packet(v6_server, v6_client, {}, udp, upper_bytes(udp, 16));
  Frame error = {1, 4, 0, 0, 0, 0, 0, 0};  // destination unreachable, port unreachable
  error.insert(error.end(), quoted.begin(), quoted.end());
  const Frame before = ipv6_packet(v6_client, v6_server, {}, icmpv6, error);
  const Frame after = rewritten(before, v6_both_ways, 101);
  CHECK(upper_checksum_ok(after, 0, 40, icmpv6));
  check_changes_within(before, after, {{8, 40}, {42, 44}});
}

TEST_CASE("rewrite: IPv6 prefixes of any length, host bits kept") {
  auto mapped = [](const char* map, const char* from) {
    const Frame after = rewritten(ipv6_packet(address(from), address("::1"), {}, udp, upper_bytes(udp, 8)), v6_maps(map), 101);
    IpAddr a{.v6 = true};
    std::memcpy(a.bytes.data(), &after[8], 16);
    CHECK(upper_checksum_ok(after, 0, 40, udp));
    return to_string(a);
  };
  CHECK(mapped("[2001:db8:8000::/33]:[fd00:1::/33]", "2001:db8:8123::5") == "fd00:1:123::5");
  CHECK(mapped("[2001:db8:8000::/33]:[fd00:1::/33]", "2001:db8:123::5") == "2001:db8:123::5");
  CHECK(mapped("[2001:db8::/96]:[fd00::a:0:0/96]", "2001:db8::1.2.3.4") == "fd00::a:102:304");
  CHECK(mapped("[2001:db8::1]:[fd00::9]", "2001:db8::1") == "fd00::9");
  CHECK(mapped("[::/1]:[8000::/1]", "2001:db8::7") == "a001:db8::7");
  // A map of the other version changes nothing.
  CHECK(mapped("10.0.0.0/8:11.0.0.0/8", "::10.0.0.1") == "::10.0.0.1");
}

TEST_CASE("rewrite: IPv6 behind every link layer the IPv4 path reads") {
  const Frame packet = ipv6_packet(v6_client, v6_server, {}, udp, upper_bytes(udp, 16));
  const Frame expected = rewritten(packet, v6_both_ways, 229);
  REQUIRE(expected != packet);
  REQUIRE(rewritten(packet, v6_both_ways, 101) == expected);
  for (const auto& [name, link, linktype] :
       {std::tuple{"Ethernet", ethernet_header({0x86dd}), 1u}, std::tuple{"802.1Q", ethernet_header({0x8100, 7, 0x86dd}), 1u},
        std::tuple{"QinQ", ethernet_header({0x88a8, 7, 0x8100, 8, 0x86dd}), 1u},
        std::tuple{"Linux cooked", Frame{0, 0, 0, 1, 0, 6, 1, 2, 3, 4, 5, 6, 0, 0, 0x86, 0xdd}, 113u},
        std::tuple{"Linux cooked v2", Frame{0x86, 0xdd, 0, 0, 0, 0, 0, 2, 0, 1, 0, 6, 1, 2, 3, 4, 5, 6, 0, 0}, 276u},
        std::tuple{"NULL, NetBSD's AF_INET6", Frame{24, 0, 0, 0}, 0u}, std::tuple{"NULL, FreeBSD's", Frame{28, 0, 0, 0}, 0u},
        std::tuple{"NULL, macOS's", Frame{30, 0, 0, 0}, 0u}, std::tuple{"LOOP, network order", Frame{0, 0, 0, 28}, 108u}}) {
    CAPTURE(name);
    Frame f = link, want = link;
    f.insert(f.end(), packet.begin(), packet.end());
    want.insert(want.end(), expected.begin(), expected.end());
    CHECK(rewritten(f, v6_both_ways, linktype) == want);
  }
  // An unknown family, and IPv4's EtherType in front of IPv6: left alone.
  Frame other_family = {7, 0, 0, 0};
  other_family.insert(other_family.end(), packet.begin(), packet.end());
  CHECK(rewritten(other_family, v6_both_ways, 0) == other_family);
  Frame mislabelled = ethernet_header({0x0800});
  mislabelled.insert(mislabelled.end(), packet.begin(), packet.end());
  CHECK(rewritten(mislabelled, v6_both_ways, 1) == mislabelled);

  CHECK_THROWS_WITH_AS(AddressRewriter(v6_both_ways, 228),
                       "rewrite: cannot find IPv6 addresses in link type IPV4 (228); supported: EN10MB (1), RAW (101), "
                       "IPV6 (229), LINUX_SLL (113), LINUX_SLL2 (276), NULL (0), LOOP (108)",
                       std::invalid_argument);
  CHECK_THROWS_WITH_AS(AddressRewriter(both_ways, 229), doctest::Contains("cannot find IPv4 addresses in link type IPV6 (229)"),
                       std::invalid_argument);
}

TEST_CASE("rewrite: IPv6 captures cut at every length, and garbage, change nothing past caplen") {
  const Frame hbh = {0, 0, 1, 4, 0, 0, 0, 0};
  const Frame f = ipv6_packet(v6_client, v6_server, {{hop_by_hop, hbh}}, proto_tcp, upper_bytes(proto_tcp, 40));
  const Frame whole = rewritten(f, v6_both_ways, 101);
  const size_t checksum = 48 + 16;
  const Frame canary(16, 0xa5);
  for (uint32_t caplen = 0; caplen <= f.size(); ++caplen) {
    CAPTURE(caplen);
    Frame expected(f.begin(), f.begin() + caplen);
    for (size_t i = 0; i < caplen; ++i)
      if ((caplen >= 40 && i >= 8 && i < 40) || (caplen >= checksum + 2 && i >= checksum && i < checksum + 2)) expected[i] = whole[i];
    Records exact({Frame(f.begin(), f.begin() + caplen)});
    exact.rewrite(v6_both_ways, 101);
    CHECK(exact.stored(0) == expected);
    Frame stored = f;
    stored.insert(stored.end(), canary.begin(), canary.end());
    Records cut({stored}, caplen);
    cut.rewrite(v6_both_ways, 101);
    const Frame after = cut.stored(0);
    CHECK(Frame(after.begin(), after.begin() + caplen) == expected);
    CHECK(Frame(after.begin() + caplen, after.end()) == Frame(stored.begin() + caplen, stored.end()));
  }

  std::mt19937 random(20261203);
  const uint8_t nexts[] = {hop_by_hop, routing, fragment, ah, destination, esp, proto_tcp, udp, icmpv6, mobility, no_next};
  RewriteOptions flip = v6_maps("[::/1]:[8000::/1]");
  flip.src_ip.push_back(parse_address_map("[8000::/1]:[::/1]"));
  flip.dst_ip = flip.src_ip;
  for (int n = 0; n < 3000; ++n) {
    Frame g(random() % 160);
    for (uint8_t& b : g) b = static_cast<uint8_t>(random());
    // A version of 6 and a chain of known headers with small lengths, to reach every branch.
    if (!g.empty()) g[0] = static_cast<uint8_t>(0x60 | (g[0] & 0xf));
    if (g.size() > 6) g[6] = nexts[random() % std::size(nexts)];
    for (size_t at = 40; at + 2 <= g.size(); at += 8) {
      g[at] = nexts[random() % std::size(nexts)];
      g[at + 1] = static_cast<uint8_t>(random() % 3);
    }
    const uint32_t caplen = static_cast<uint32_t>(random() % (g.size() + 1));
    Records records({g}, caplen);
    records.rewrite(flip, 101);
    const Frame after = records.stored(0);
    CHECK(Frame(after.begin() + caplen, after.end()) == Frame(g.begin() + caplen, g.end()));
  }
}
