// core/background_hosts: which hosts of a background a vei.h event goes between.
#include <doctest/doctest.h>
#include <sys/stat.h>

#include <vector>

#include "core/background_hosts.h"
#include "core/packet_builder.h"
#include "testutil.h"

using namespace vei;

namespace {

IpAddr ip_of(const char* text) {
  IpAddr ip;
  REQUIRE(parse_ip(text, ip));
  return ip;
}

// An Ethernet frame from `src` to `dst`: a TCP SYN, or a UDP datagram.
test::RawRecord frame(const char* src, const char* dst, bool syn) {
  const packets::Host from{packets::Mac{2, 0, 0, 0, 0, 1}, ip_of(src)}, to{packets::Mac{2, 0, 0, 0, 0, 2}, ip_of(dst)};
  std::vector<std::byte> out;
  if (syn) {
    const auto at = packets::add_ip_frame(out, 1, from, to, {packets::proto_tcp}, 20);
    out[at.l4 + 12] = std::byte{5 << 4};
    out[at.l4 + 13] = std::byte{0x02};
    packets::seal(out, at);
  } else {
    packets::add_udp_frame(out, 1, from, to, {packets::proto_udp}, 5000, 53, {});
  }
  test::RawRecord r;
  r.sec = 1700000000;
  for (auto b : out) r.bytes.push_back(static_cast<unsigned char>(b));
  r.caplen = r.len = static_cast<uint32_t>(r.bytes.size());
  return r;
}

std::optional<BackgroundHosts> hosts_of(const test::TempDir& tmp, std::vector<test::RawRecord> records) {
  test::RawFile f;
  f.snaplen = 262144;
  f.linktype = 1;
  f.records = std::move(records);
  test::write_raw(tmp / "bg.pcap", f);
  return background_hosts((tmp / "bg.pcap").string());
}

}  // namespace

TEST_CASE("background hosts: the server is the most SYNed address, clients the most frequent sources, then destinations") {
  test::TempDir tmp;
  std::vector<test::RawRecord> r;
  for (int i = 0; i < 2; ++i) r.push_back(frame("10.0.0.1", "10.0.0.9", true));
  r.push_back(frame("10.0.0.2", "10.0.0.9", true));
  // The most frequent destination, but it receives no SYN; broadcast and multicast are never hosts.
  for (int i = 0; i < 5; ++i) r.push_back(frame("10.0.0.2", "10.0.0.3", false));
  for (int i = 0; i < 9; ++i) r.push_back(frame("10.0.0.2", "255.255.255.255", false));
  for (int i = 0; i < 9; ++i) r.push_back(frame("10.0.0.4", "224.0.0.251", false));
  const auto h = hosts_of(tmp, r);
  REQUIRE(h);
  CHECK(h->server == ip_of("10.0.0.9"));
  CHECK(h->clients == std::vector<IpAddr>{ip_of("10.0.0.2"), ip_of("10.0.0.4"), ip_of("10.0.0.1"), ip_of("10.0.0.3")});

  // As often SYNed: the busier destination serves, whatever its address.
  const auto busier = hosts_of(tmp, {frame("10.0.0.1", "10.0.0.20", true), frame("10.0.0.1", "10.0.0.30", true),
                                     frame("10.0.0.1", "10.0.0.30", false)});
  REQUIRE(busier);
  CHECK(busier->server == ip_of("10.0.0.30"));
}

TEST_CASE("background hosts: without SYNs the most frequent destination serves; ties go to the lower address") {
  test::TempDir tmp;
  const auto h = hosts_of(tmp, {frame("10.0.0.7", "10.0.0.20", false), frame("10.0.0.5", "10.0.0.10", false)});
  REQUIRE(h);
  CHECK(h->server == ip_of("10.0.0.10"));
  CHECK(h->clients == std::vector<IpAddr>{ip_of("10.0.0.5"), ip_of("10.0.0.7"), ip_of("10.0.0.20")});
}

TEST_CASE("background hosts: IPv6 when IPv4 gives no pair; none without IP; unknown for a FIFO") {
  test::TempDir tmp;
  const auto v6 = hosts_of(tmp, {frame("2001:db8::1", "2001:db8::2", true), frame("10.0.0.1", "255.255.255.255", false)});
  REQUIRE(v6);
  CHECK(v6->server == ip_of("2001:db8::2"));
  CHECK(v6->clients == std::vector<IpAddr>{ip_of("2001:db8::1")});  // 10.0.0.1 alone (to broadcast) makes no pair

  test::RawRecord not_ip;
  not_ip.bytes = test::tagged_frame(1, 60);
  not_ip.caplen = not_ip.len = 60;
  const auto none = hosts_of(tmp, {not_ip});
  REQUIRE(none);
  CHECK(none->clients.empty());

  REQUIRE(::mkfifo((tmp / "fifo").c_str(), 0600) == 0);
  CHECK_FALSE(background_hosts((tmp / "fifo").string()));
  CHECK_FALSE(background_hosts("-"));
}
