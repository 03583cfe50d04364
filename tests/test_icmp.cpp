// The `icmp` source through the engine (timeline placement, sequence numbers, addresses, replies,
// link types, bad parameters) and the packet builders, checked with a checksum of the test's own.
#include <doctest/doctest.h>
#include <fmt/format.h>

#include <algorithm>
#include <string>

#include "pipeline/engine.h"
#include "core/packet_builder.h"
#include "core/jpeg.h"
#include "testutil.h"

using namespace vei;
using test::RawFile;
using test::RawRecord;

namespace {

const std::string corpus = VEIPIPE_CORPUS_DIR;
const std::string ethernet_bg = corpus + "/tcpreplay-test.pcap";
const std::string raw_ip_bg = corpus + "/zeek-nvt-line-limit-crlf-heap-buffer-overflow.pcap";

uint16_t be16(const unsigned char* p) { return static_cast<uint16_t>(p[0] << 8 | p[1]); }
uint32_t be32(const unsigned char* p) { return uint32_t{be16(p)} << 16 | be16(p + 2); }

// RFC 1071, written plainly: the folded one's complement sum of 16-bit words; 0xffff over data
// that holds its own valid checksum.
uint16_t ones_sum(const unsigned char* p, size_t n, uint32_t sum = 0) {
  for (size_t i = 0; i < n; ++i) sum += i % 2 ? p[i] : p[i] << 8;
  while (sum > 0xffff) sum = (sum & 0xffff) + (sum >> 16);
  return static_cast<uint16_t>(sum);
}

bool ip_checksum_ok(const unsigned char* ip) { return ones_sum(ip, 20) == 0xffff; }

bool l4_checksum_ok(const unsigned char* ip) {
  const size_t total = be16(ip + 2);
  const unsigned char* l4 = ip + 20;
  if (ip[9] == 1) return ones_sum(l4, total - 20) == 0xffff;
  // TCP: over the pseudo-header (addresses, protocol, length) too.
  const uint32_t pseudo = ones_sum(ip + 12, 8) + ip[9] + static_cast<uint32_t>(total - 20);
  return ones_sum(l4, total - 20, pseudo) == 0xffff;
}

// What a test needs to know of an ICMP echo in an output record.
struct Echo {
  int64_t ts = 0;
  uint8_t type = 0;
  uint8_t ttl = 0;
  uint16_t ident = 0, seq = 0;
  uint32_t src = 0, dst = 0;
  std::string src_mac, dst_mac;
  size_t payload = 0;
  bool checksums_ok = false;
};

std::string mac_text(const unsigned char* p) {
  return fmt::format("{:02x}:{:02x}:{:02x}:{:02x}:{:02x}:{:02x}", p[0], p[1], p[2], p[3], p[4], p[5]);
}

// The echoes with the generator's identifier, in output order (a background may hold other pings).
std::vector<Echo> echoes(const RawFile& f, uint16_t ident = 0x7665) {
  const size_t link = f.linktype == 1 ? 14 : f.linktype == 113 ? 16 : 0;
  std::vector<Echo> out;
  for (const auto& r : f.records) {
    const unsigned char* b = r.bytes.data();
    if (r.caplen < link + 28) continue;
    if (f.linktype == 1 && be16(b + 12) != 0x0800) continue;
    const unsigned char* ip = b + link;
    if (ip[0] != 0x45 || ip[9] != 1 || (ip[20] != 8 && ip[20] != 0) || be16(ip + 24) != ident) continue;
    Echo e;
    e.ts = r.ts_ns(f.nanos);
    e.ttl = ip[8];
    e.type = ip[20];
    e.ident = be16(ip + 24);
    e.seq = be16(ip + 26);
    e.src = be32(ip + 12);
    e.dst = be32(ip + 16);
    if (f.linktype == 1) {
      e.dst_mac = mac_text(b);
      e.src_mac = mac_text(b + 6);
    }
    e.payload = be16(ip + 2) - 28u;
    e.checksums_ok = r.caplen == link + be16(ip + 2) && ip_checksum_ok(ip) && l4_checksum_ok(ip) && ip[21] == 0;
    out.push_back(e);
  }
  return out;
}

RawFile run(const test::TempDir& tmp, const std::string& description) {
  const auto out = tmp / "out.pcap";
  REQUIRE(test::run_pipeline(fmt::format(fmt::runtime(description), fmt::arg("out", out.string()))) == exit_ok);
  return test::read_raw(out);
}

int64_t first_ts(const std::string& capture) {
  const auto f = test::read_raw(capture);
  return f.records.at(0).ts_ns(f.nanos);
}

constexpr uint32_t ip(int a, int b, int c, int d) {
  return static_cast<uint32_t>(a << 24 | b << 16 | c << 8 | d);
}

// The message of the error opening the pipeline throws, or "<none>".
std::string open_error(const std::string& description) {
  try {
    Engine::from_description("<test>", description, true);
  } catch (const std::exception& e) {
    return e.what();
  }
  return "<none>";
}

// A bad parameter is a description error on line 2, with a caret under the parameter's value:
// `<test>:2:COL: error: icmp: <parameter>: ...`.
bool names(const std::string& message, const std::string& param) {
  CAPTURE(message);
  return message.starts_with("<test>:2:") && message.find(": error: icmp: " + param + ":") != std::string::npos &&
         message.find('^') != std::string::npos;
}

}  // namespace

TEST_CASE("icmp: at=+2s puts the first request 2 s after the background's first packet, then exactly 1/rate apart") {
  test::TempDir tmp;
  const auto f = run(tmp, "pcap(" + ethernet_bg +
                              ") -> m: merge(end=all) -> file({out}, precision=ns)\n"
                              "icmp(dst=10.0.0.9, rate=3pps, count=5, at=+2s) -> m");
  const auto e = echoes(f);
  REQUIRE(e.size() == 5);
  const int64_t start = first_ts(ethernet_bg) + 2'000'000'000;
  // i / 3 s, rounded from the index each time: 333333333, 666666667, never a drifting sum.
  const int64_t expected[] = {0, 333'333'333, 666'666'667, 1'000'000'000, 1'333'333'333};
  for (size_t i = 0; i < e.size(); ++i) {
    CAPTURE(i);
    CHECK(e[i].ts - start == expected[i]);
    CHECK(e[i].type == 8);
    CHECK(e[i].seq == static_cast<uint16_t>(i + 1));
    CHECK(e[i].src == ip(10, 255, 0, 1));
    CHECK(e[i].dst == ip(10, 0, 0, 9));
    CHECK(e[i].payload == 56);
    CHECK(e[i].ttl == 64);
    CHECK(e[i].checksums_ok);
  }
  // The background is all there, and the output's order holds.
  CHECK(f.records.size() == test::read_raw(ethernet_bg).records.size() + 5);
  CHECK(std::ranges::is_sorted(f.records, {}, [&](const RawRecord& r) { return r.ts_ns(f.nanos); }));
}

TEST_CASE("icmp: without at the first request is at the background's first packet, and rebase=none keeps the epoch") {
  test::TempDir tmp;
  auto e = echoes(run(tmp, "pcap(" + ethernet_bg +
                               ") -> m: merge(end=all) -> file({out}, precision=ns)\n"
                               "icmp(dst=10.0.0.9, rate=10kpps, count=4) -> m"));
  REQUIRE(e.size() == 4);
  for (size_t i = 0; i < e.size(); ++i) CHECK(e[i].ts == first_ts(ethernet_bg) + static_cast<int64_t>(i) * 100'000);

  e = echoes(run(tmp, "pcap(" + ethernet_bg +
                          ") -> m: merge(end=all) -> file({out}, precision=ns)\n"
                          "icmp(dst=10.0.0.9, count=2, rebase=none, shift=5s) -> m"));
  REQUIRE(e.size() == 2);
  CHECK(e[0].ts == 5'000'000'000);
  CHECK(e[1].ts == 6'000'000'000);
}

TEST_CASE("icmp: ranges cycle through src x dst pairs (dst fastest) and sequence numbers count up") {
  test::TempDir tmp;
  const auto e = echoes(run(tmp, "pcap(" + ethernet_bg +
                                     ") -> m: merge(end=all) -> file({out})\n"
                                     "icmp(src=10.1.0.1-10.1.0.2, dst=10.0.0.1-10.0.0.3, count=8, rate=100pps, "
                                     "ttl=9, id=4660, size=10) -> m"),
                        4660);
  REQUIRE(e.size() == 8);
  for (size_t i = 0; i < e.size(); ++i) {
    CAPTURE(i);
    const auto pair = static_cast<uint32_t>(i % 6);
    CHECK(e[i].src == ip(10, 1, 0, 1) + pair / 3);
    CHECK(e[i].dst == ip(10, 0, 0, 1) + pair % 3);
    CHECK(e[i].seq == static_cast<uint16_t>(i + 1));
    CHECK(e[i].ident == 4660);
    CHECK(e[i].payload == 10);
    CHECK(e[i].ttl == 9);
    CHECK(e[i].checksums_ok);
  }
}

TEST_CASE("icmp: sequence numbers wrap after 65535 like ping's (icmp as the background)") {
  test::TempDir tmp;
  const auto f = run(tmp, "icmp(dst=10.0.0.9, rate=1Mpps, count=65537) -> file({out})");
  CHECK(f.linktype == 1);
  CHECK(f.nanos);  // a generator's own timeline is in nanoseconds
  const auto e = echoes(f);
  REQUIRE(e.size() == 65537);
  CHECK(e[0].ts == 0);
  CHECK(e[65534].seq == 65535);
  CHECK(e[65535].seq == 0);
  CHECK(e[65536].seq == 1);
  CHECK(e[65536].ts == 65'536'000);
  CHECK(std::ranges::all_of(e, &Echo::checksums_ok));
}

TEST_CASE("icmp: Ethernet addresses come from the background when it shows the IP, else 02:00:<ip>") {
  test::TempDir tmp;
  // 172.16.11.12 sends from f8:1e:df:e5:84:3a; 74.125.19.17 is reached through 00:1f:f3:3c:e1:13.
  auto e = echoes(run(tmp, "pcap(" + ethernet_bg +
                               ") -> m: merge(end=all) -> file({out})\n"
                               "icmp(src=172.16.11.12, dst=74.125.19.17, count=1, replies=true) -> m"));
  REQUIRE(e.size() == 2);
  CHECK(e[0].src_mac == "f8:1e:df:e5:84:3a");
  CHECK(e[0].dst_mac == "00:1f:f3:3c:e1:13");
  CHECK(e[1].src_mac == "00:1f:f3:3c:e1:13");
  CHECK(e[1].dst_mac == "f8:1e:df:e5:84:3a");

  e = echoes(run(tmp, "pcap(" + ethernet_bg +
                          ") -> m: merge(end=all) -> file({out})\n"
                          "icmp(src=172.16.11.12, dst=10.0.0.9, count=1) -> m"));
  REQUIRE(e.size() == 1);
  CHECK(e[0].src_mac == "f8:1e:df:e5:84:3a");
  CHECK(e[0].dst_mac == "02:00:0a:00:00:09");

  e = echoes(run(tmp, "pcap(" + ethernet_bg +
                          ") -> m: merge(end=all) -> file({out})\n"
                          "icmp(src=172.16.11.12, dst=10.0.0.9, count=1, srcmac=AA:bb:cc:dd:ee:01, "
                          "dstmac=aa:bb:cc:dd:ee:02) -> m"));
  REQUIRE(e.size() == 1);
  CHECK(e[0].src_mac == "aa:bb:cc:dd:ee:01");
  CHECK(e[0].dst_mac == "aa:bb:cc:dd:ee:02");
}

TEST_CASE("icmp: replies come rtt after their request, from dst back to src, in time order") {
  test::TempDir tmp;
  // rtt longer than the gap: replies interleave with later requests.
  const auto e = echoes(run(tmp, "pcap(" + ethernet_bg +
                                     ") -> m: merge(end=all) -> file({out}, precision=ns)\n"
                                     "icmp(src=10.1.0.1, dst=10.0.0.9, rate=1kpps, count=4, replies=true, "
                                     "rtt=2500us, at=+1s) -> m"));
  REQUIRE(e.size() == 8);
  const int64_t start = first_ts(ethernet_bg) + 1'000'000'000;
  struct Want {
    int64_t offset;
    uint8_t type;
    uint16_t seq;
  };
  const Want want[] = {{0, 8, 1},         {1'000'000, 8, 2}, {2'000'000, 8, 3}, {2'500'000, 0, 1},
                       {3'000'000, 8, 4}, {3'500'000, 0, 2}, {4'500'000, 0, 3}, {5'500'000, 0, 4}};
  for (size_t i = 0; i < e.size(); ++i) {
    CAPTURE(i);
    CHECK(e[i].ts - start == want[i].offset);
    CHECK(e[i].type == want[i].type);
    CHECK(e[i].seq == want[i].seq);
    CHECK(e[i].src == (e[i].type == 8 ? ip(10, 1, 0, 1) : ip(10, 0, 0, 9)));
    CHECK(e[i].dst == (e[i].type == 8 ? ip(10, 0, 0, 9) : ip(10, 1, 0, 1)));
    CHECK(e[i].checksums_ok);
  }
}

TEST_CASE("icmp: frames follow the output's link type: raw IPv4, Linux cooked") {
  test::TempDir tmp;
  auto f = run(tmp, "pcap(" + raw_ip_bg + ") -> m: merge(end=all) -> file({out})\nicmp(dst=10.0.0.9, count=3) -> m");
  CHECK(f.linktype == 228);
  auto e = echoes(f);
  REQUIRE(e.size() == 3);
  CHECK(std::ranges::all_of(e, &Echo::checksums_ok));  // which also checks caplen == IP total length

  // A small Linux cooked (SLL, 113) background of the test's own.
  RawFile sll;
  sll.snaplen = 65535;
  sll.linktype = 113;
  RawRecord r;
  r.sec = 1'700'000'000;
  r.bytes = test::tagged_frame(1, 60);
  r.caplen = r.len = 60;
  sll.records.push_back(r);
  test::write_raw(tmp / "sll.pcap", sll);
  f = run(tmp, fmt::format("pcap({}) -> m: merge(end=all) -> file({{out}})\nicmp(dst=10.0.0.9, count=2) -> m",
                           (tmp / "sll.pcap").string()));
  CHECK(f.linktype == 113);
  e = echoes(f);
  REQUIRE(e.size() == 2);
  CHECK(std::ranges::all_of(e, &Echo::checksums_ok));
  const auto& b = f.records.at(1).bytes;
  CHECK(be16(b.data()) == 4);       // sent by us
  CHECK(be16(b.data() + 2) == 1);   // ARPHRD_ETHER
  CHECK(be16(b.data() + 4) == 6);   // address length
  CHECK(mac_text(b.data() + 6) == "02:00:0a:ff:00:01");
  CHECK(be16(b.data() + 14) == 0x0800);
}

TEST_CASE("icmp: bad parameters and an unsupported link type are errors naming them") {
  const std::string bg = "pcap(" + ethernet_bg + ") -> m: merge -> file(/dev/null)\n";
  CHECK(names(open_error(bg + "icmp(dst=10.0.0.x) -> m"), "dst"));
  CHECK(names(open_error(bg + "icmp(dst=10.0.0.9-10.0.0.1) -> m"), "dst"));
  CHECK(open_error(bg + "icmp(dst=10.0.0.9-10.0.0.1) -> m").find("reversed") != std::string::npos);
  CHECK(names(open_error(bg + "icmp(dst=10.0.0.9, src=1.2.3) -> m"), "src"));
  CHECK(names(open_error(bg + "icmp(dst=10.0.0.9, ttl=0) -> m"), "ttl"));
  CHECK(names(open_error(bg + "icmp(dst=10.0.0.9, ttl=256) -> m"), "ttl"));
  CHECK(names(open_error(bg + "icmp(dst=10.0.0.9, count=0) -> m"), "count"));
  CHECK(names(open_error(bg + "icmp(dst=10.0.0.9, id=65536) -> m"), "id"));
  CHECK(names(open_error(bg + "icmp(dst=10.0.0.9, size=70000) -> m"), "size"));
  CHECK(names(open_error(bg + "icmp(dst=10.0.0.9, rtt=-1ms) -> m"), "rtt"));
  CHECK(names(open_error(bg + "icmp(dst=10.0.0.9, srcmac=aa:bb:cc) -> m"), "srcmac"));
  CHECK(open_error(bg + "icmp(dst=10.0.0.9) -> m") == "<none>");
  const auto sll2 = open_error("pcap(" + corpus + "/zeek-linux_dlt_sll2.pcap) -> m: merge -> file(/dev/null)\n"
                               "icmp(dst=10.0.0.9) -> m");
  CHECK(sll2.find("LINUX_SLL2") != std::string::npos);
}

TEST_CASE("packet builders: add_icmp_echo fields and checksums for every link type") {
  const packets::Endpoint a{{2, 0, 0, 0, 0, 1}, ip(192, 0, 2, 1)}, b{{2, 0, 0, 0, 0, 2}, ip(198, 51, 100, 7)};
  for (uint32_t linktype : {1u, 101u, 228u, 113u}) {
    CAPTURE(linktype);
    CHECK(packets::supported_linktype(linktype));
    // Odd payload sizes exercise the checksum's last half word.
    for (size_t size : {size_t{0}, size_t{1}, size_t{57}, size_t{1472}}) {
      std::vector<std::byte> frame(5);  // added after bytes already there
      const auto at = packets::add_icmp_echo(frame, linktype, a, b, 0xbeef, 0xfffe, 3, size, true);
      REQUIRE(at.begin == 5);
      frame.erase(frame.begin(), frame.begin() + 5);
      const size_t link = linktype == 1 ? 14 : linktype == 113 ? 16 : 0;
      REQUIRE(frame.size() == link + 28 + size);
      const auto* ipb = reinterpret_cast<const unsigned char*>(frame.data()) + link;
      CHECK(ip_checksum_ok(ipb));
      CHECK(l4_checksum_ok(ipb));
      CHECK(ipb[8] == 3);
      CHECK(be16(ipb + 6) == 0);  // DF clear, no fragment
      CHECK(ipb[20] == 0);        // echo reply
      CHECK(be16(ipb + 24) == 0xbeef);
      CHECK(be16(ipb + 26) == 0xfffe);
    }
  }
  CHECK_FALSE(packets::supported_linktype(276));
  std::vector<std::byte> frame;
  CHECK_THROWS_AS(packets::add_icmp_echo(frame, 276, a, b, 1, 1, 64, 0, false), std::runtime_error);
  CHECK(packets::local_mac(IpAddr::v4(ip(10, 0, 0, 9))) == packets::Mac{2, 0, 10, 0, 0, 9});
}

TEST_CASE("packet builders: jpeg_image is a decodable baseline JFIF, several segments long") {
  const auto jpeg = packets::jpeg_image();
  const std::string body(reinterpret_cast<const char*>(jpeg.data()), jpeg.size());
  CHECK(body.size() > 1460);
  // SOI, APP0 "JFIF", a SOF0 frame, EOI at the very end.
  CHECK(body.starts_with("\xff\xd8\xff\xe0"));
  CHECK(body.substr(6, 5) == std::string("JFIF\0", 5));
  CHECK(body.find("\xff\xc0") != std::string::npos);
  CHECK(body.ends_with("\xff\xd9"));
}
