// The TCP conversation builder (core/tcp_conversation.h) read back by a decoder of the test's own:
// the SYN options each stack writes, sequence and acknowledgement numbers, windows never
// overflowed, delayed ACKs, both directions reassembled, the close, checksums, IPv6.
#include <doctest/doctest.h>

#include <algorithm>
#include <map>
#include <string>
#include <vector>

#include "core/tcp_conversation.h"

using namespace vei;

namespace {

uint32_t be16(const std::byte* p) { return uint32_t(p[0]) << 8 | uint32_t(p[1]); }
uint32_t be32(const std::byte* p) { return be16(p) << 16 | be16(p + 2); }

uint16_t ones_sum(const std::byte* p, size_t n, uint32_t sum = 0) {
  for (size_t i = 0; i < n; ++i) sum += i % 2 ? uint32_t(p[i]) : uint32_t(p[i]) << 8;
  while (sum > 0xffff) sum = (sum & 0xffff) + (sum >> 16);
  return static_cast<uint16_t>(sum);
}

struct Segment {
  bool from_client = false;
  int64_t time = 0;
  uint8_t ttl = 0, flags = 0;
  uint32_t seq = 0, ack = 0, window = 0;
  std::vector<std::byte> options, payload;
  bool checksum_ok = false;
};

constexpr uint8_t fin = 1, syn = 2, rst = 4, ack = 16;

// Ethernet frames of one connection whose client has port 40000.
std::vector<Segment> decode(const Conversation& c) {
  std::vector<Segment> out;
  for (size_t i = 0; i < c.frames.size(); ++i) {
    const auto f = c.frame(i);
    const std::byte* ip = f.data() + 14;
    const bool v6 = be16(f.data() + 12) == 0x86dd;
    const size_t ip_size = v6 ? 40 : 20;
    const size_t l4_size = v6 ? be16(ip + 4) : be16(ip + 2) - 20;
    const std::byte* t = ip + ip_size;
    Segment s;
    s.time = c.frames[i].offset_ns;
    s.ttl = uint8_t(ip[v6 ? 7 : 8]);
    s.from_client = be16(t) == 40000;
    s.seq = be32(t + 4);
    s.ack = be32(t + 8);
    s.flags = uint8_t(t[13]);
    s.window = be16(t + 14);
    const size_t header = (uint8_t(t[12]) >> 4) * 4u;
    s.options.assign(t + 20, t + header);
    s.payload.assign(t + header, t + l4_size);
    uint32_t pseudo = ones_sum(ip + (v6 ? 8 : 12), v6 ? 32 : 8) + 6 + static_cast<uint32_t>(l4_size);
    s.checksum_ok = ones_sum(t, l4_size, pseudo) == 0xffff && (v6 || ones_sum(ip, 20) == 0xffff);
    out.push_back(std::move(s));
  }
  return out;
}

std::vector<std::byte> bytes(size_t n, int salt) {
  std::vector<std::byte> v(n);
  for (size_t i = 0; i < n; ++i) v[i] = std::byte((i * 7 + static_cast<size_t>(salt)) & 0xff);
  return v;
}

struct Run {
  Conversation conversation;
  std::vector<Segment> segments;
};

Run run(const std::string& client_os, const std::string& server_os, bool v6, std::span<const tcp::Message> messages,
        tcp::Options options = {}) {
  IpAddr a, b;
  REQUIRE(parse_ip(v6 ? "2001:db8::1" : "10.0.0.1", a));
  REQUIRE(parse_ip(v6 ? "2001:db8::2" : "10.0.0.2", b));
  const tcp::Party client{{{2, 0, 0, 0, 0, 1}, a}, 40000, tcp::find_stack(client_os)};
  const tcp::Party server{{{2, 0, 0, 0, 0, 2}, b}, 80, tcp::find_stack(server_os)};
  Run r;
  tcp::build(r.conversation, 1, client, server, messages, options);
  r.segments = decode(r.conversation);
  return r;
}

std::vector<std::byte> option_bytes(std::initializer_list<int> list) {
  std::vector<std::byte> v;
  for (int x : list) v.push_back(std::byte(x));
  return v;
}

}  // namespace

TEST_CASE("tcp: each stack's SYN options, TTL and window, as those systems send them") {
  const auto request = bytes(100, 1);
  const tcp::Message m[] = {{true, request, 0}};
  const auto on_linux = run("linux", "linux", false, m);
  const Segment& s = on_linux.segments[0];
  CHECK(s.flags == syn);
  CHECK(s.ttl == 64);
  CHECK(s.window == 64240);
  REQUIRE(s.options.size() == 20);
  // MSS 1460, SACK permitted, timestamps (TSecr 0), NOP, window scale 7.
  CHECK(std::vector(s.options.begin(), s.options.begin() + 6) == option_bytes({2, 4, 5, 0xb4, 4, 2}));
  CHECK(std::vector(s.options.begin() + 6, s.options.begin() + 8) == option_bytes({8, 10}));
  CHECK(be32(s.options.data() + 12) == 0);
  CHECK(std::vector(s.options.begin() + 16, s.options.end()) == option_bytes({1, 3, 3, 7}));

  const auto windows = run("windows", "linux", false, m);
  CHECK(windows.segments[0].ttl == 128);
  CHECK(windows.segments[0].options == option_bytes({2, 4, 5, 0xb4, 1, 3, 3, 8, 1, 1, 4, 2}));
  // Windows offers no timestamps, so neither side uses them: the SYN/ACK leaves them out.
  const auto& synack = windows.segments[1];
  CHECK(synack.flags == (syn | ack));
  CHECK(synack.options.size() == 12);
  CHECK(windows.segments[2].options.empty());

  const auto macos = run("macos", "linux", true, m);
  CHECK(macos.segments[0].window == 65535);
  REQUIRE(macos.segments[0].options.size() == 24);
  CHECK(std::vector(macos.segments[0].options.begin(), macos.segments[0].options.begin() + 9) ==
        option_bytes({2, 4, 0x05, 0xa0, 1, 3, 3, 6, 1}));  // IPv6: MSS 1440
  CHECK(std::vector(macos.segments[0].options.end() - 4, macos.segments[0].options.end()) == option_bytes({4, 2, 0, 0}));
}

TEST_CASE("tcp: sequence numbers, ACKs and windows stay consistent; both directions reassemble") {
  const auto request = bytes(3000, 1), response = bytes(200'000, 2), second = bytes(1, 3);
  const tcp::Message m[] = {{true, request, 0}, {false, response, 1'000'000}, {true, second, 5'000'000}};
  for (const bool v6 : {false, true}) {
    for (const char* os : {"linux", "windows", "macos"}) {
      CAPTURE(v6);
      CAPTURE(os);
      const auto r = run(os, "linux", v6, m);
      std::map<bool, std::vector<std::byte>> stream;
      std::map<bool, uint32_t> next, acked, window_bytes;
      size_t largest = 0;
      int64_t previous = 0;
      for (const Segment& s : r.segments) {
        CHECK(s.checksum_ok);
        CHECK(s.time >= previous);  // in time order
        previous = s.time;
        const bool me = s.from_client, peer = !s.from_client;
        if (s.flags & syn) {
          next[me] = s.seq + 1;
          acked[me] = s.seq + 1;
          continue;
        }
        // Data goes on where the previous segment ended: nothing lost, nothing repeated.
        CHECK(s.seq == next[me]);
        if (!s.payload.empty()) {
          stream[me].insert(stream[me].end(), s.payload.begin(), s.payload.end());
          largest = std::max(largest, s.payload.size());
          // In flight below the receiver's window (scaled after the handshake).
          const uint32_t in_flight = s.seq + static_cast<uint32_t>(s.payload.size()) - acked[me];
          if (window_bytes[peer]) CHECK(in_flight < window_bytes[peer]);
        }
        next[me] = s.seq + static_cast<uint32_t>(s.payload.size()) + (s.flags & fin ? 1 : 0);
        if (s.flags & ack) {
          // Never acknowledges what the peer has not sent.
          CHECK(static_cast<int32_t>(s.ack - next[peer]) <= 0);
          // Delayed ACKs: one ACK for at most two full segments (FINs and SYNs count one).
          if (acked[peer]) CHECK(s.ack - acked[peer] <= 2 * largest + 1);
          acked[peer] = s.ack;
          const uint32_t scale = s.from_client ? tcp::find_stack(os)->wscale : 7;
          window_bytes[me] = s.window << scale;
        }
      }
      CHECK(stream[true].size() == request.size() + second.size());
      CHECK(std::equal(request.begin(), request.end(), stream[true].begin()));
      CHECK(stream[false] == response);
      // The client closes: FIN/ACK, FIN/ACK, ACK.
      const auto& s = r.segments;
      REQUIRE(s.size() > 3);
      CHECK((s[s.size() - 3].flags & fin));
      CHECK(s[s.size() - 3].from_client);
      CHECK((s[s.size() - 2].flags & fin));
      CHECK(s.back().flags == ack);
    }
  }
}

TEST_CASE("tcp: a lone last segment is acknowledged after the delayed-ACK timeout, or by the reply") {
  const auto one = bytes(500, 1), reply = bytes(100, 2);
  // The server answers 100 ms later: Linux's 40 ms delayed ACK fires first.
  const tcp::Message slow[] = {{true, one, 0}, {false, reply, 100'000'000}};
  const auto r = run("linux", "linux", false, slow);
  REQUIRE(r.segments.size() >= 6);
  const Segment& data = r.segments[3];
  const Segment& pure = r.segments[4];
  CHECK(data.payload.size() == 500);
  CHECK((pure.payload.empty() && !pure.from_client));
  CHECK(pure.time - data.time == 5'000'000 + 40'000'000);  // half the 10 ms rtt, then the timer
  // Answering within the timeout, the reply itself carries the ACK.
  const tcp::Message quick[] = {{true, one, 0}, {false, reply, 1'000'000}};
  const auto q = run("linux", "linux", false, quick);
  CHECK(q.segments[4].payload.size() == 100);
  CHECK(q.segments[4].ack == q.segments[3].seq + 500);
}

TEST_CASE("tcp: a reset closes at once; the same seed gives the same bytes") {
  const auto one = bytes(10, 1);
  const tcp::Message m[] = {{true, one, 0}};
  tcp::Options o;
  o.close = tcp::Close::client_rst;
  o.seed = 7;
  const auto a = run("linux", "linux", false, m, o);
  CHECK(a.segments.back().flags == (rst | ack));
  CHECK(a.segments.back().from_client);
  const auto b = run("linux", "linux", false, m, o);
  CHECK(a.conversation.bytes == b.conversation.bytes);
  o.seed = 8;
  const auto c = run("linux", "linux", false, m, o);
  CHECK(c.segments[0].seq != a.segments[0].seq);
}
