// The merger's contract, checked through the engine on small crafted captures: tie rules,
// end policies, timeline mapping, header rewriting, determinism.
#include <doctest/doctest.h>
#include <fmt/format.h>

#include <fstream>
#include <iterator>

#include "pipeline/engine.h"
#include "testutil.h"

using namespace vei;
using test::RawFile;
using test::RawRecord;

namespace {

constexpr uint32_t t0 = 1'700'000'000;

// A record at t0 + `usec` microseconds whose bytes say (source, index).
RawRecord rec(uint32_t source, uint32_t index, uint32_t usec, size_t size = 60) {
  RawRecord r;
  r.sec = t0 + usec / 1'000'000;
  r.frac = usec % 1'000'000;
  r.bytes = test::tagged_frame(source << 16 | index, size);
  r.caplen = r.len = static_cast<uint32_t>(size);
  return r;
}

RawFile capture(std::vector<RawRecord> records, bool nanos = false) {
  RawFile f;
  f.nanos = nanos;
  f.snaplen = 262144;
  f.linktype = 1;
  f.records = std::move(records);
  return f;
}

std::string slurp(const std::filesystem::path& p) {
  std::ifstream in(p, std::ios::binary);
  return {std::istreambuf_iterator<char>(in), {}};
}

// "source.index" of every output record, read back from its bytes.
std::string origins(const RawFile& f) {
  std::string out;
  for (const auto& r : f.records) {
    const uint32_t tag = r.bytes[0] | r.bytes[1] << 8 | r.bytes[2] << 16 | r.bytes[3] << 24;
    out += fmt::format("{}{}.{}", out.empty() ? "" : " ", tag >> 16, tag & 0xffff);
  }
  return out;
}

}  // namespace

TEST_CASE("equal timestamps go by source rank, then by order within the source") {
  test::TempDir tmp;
  test::write_raw(tmp / "a.pcap", capture({rec(0, 0, 10), rec(0, 1, 20), rec(0, 2, 20), rec(0, 3, 30)}));
  test::write_raw(tmp / "b.pcap", capture({rec(1, 0, 20), rec(1, 1, 20), rec(1, 2, 25)}));
  test::write_raw(tmp / "c.pcap", capture({rec(2, 0, 5), rec(2, 1, 20), rec(2, 2, 30)}));
  const auto out = tmp / "out.pcap";
  const auto desc = fmt::format(
      "pcap({0}/a.pcap) -> m: merge -> file({1})\npcap({0}/b.pcap, rebase=none) -> m\npcap({0}/c.pcap, rebase=none) -> m",
      tmp.path().string(), out.string());
  REQUIRE(test::run_pipeline(desc) == exit_ok);
  const auto got = origins(test::read_raw(out));
  CHECK(got == "2.0 0.0 0.1 0.2 1.0 1.1 2.1 1.2 0.3 2.2");

  // Byte-identical on every run, whatever the thread timing.
  const auto first = slurp(out);
  for (int i = 0; i < 5; ++i) {
    REQUIRE(test::run_pipeline(desc) == exit_ok);
    CHECK(slurp(out) == first);
  }
}

TEST_CASE("end=first stops with the background; end=all drains every source") {
  test::TempDir tmp;
  test::write_raw(tmp / "bg.pcap", capture({rec(0, 0, 10), rec(0, 1, 20)}));
  test::write_raw(tmp / "late.pcap", capture({rec(1, 0, 15), rec(1, 1, 25), rec(1, 2, 35)}));
  for (const auto* end : {"first", "all"}) {
    CAPTURE(end);
    const auto out = tmp / "out.pcap";
    REQUIRE(test::run_pipeline(fmt::format("pcap({0}/bg.pcap) -> m: merge(end={2}) -> file({1}); "
                                           "pcap({0}/late.pcap, rebase=none) -> m",
                                           tmp.path().string(), out.string(), end)) == exit_ok);
    const auto got = origins(test::read_raw(out));
    if (std::string(end) == "first")
      CHECK(got == "0.0 1.0 0.1");
    else
      CHECK(got == "0.0 1.0 0.1 1.1 1.2");
  }
}

TEST_CASE("at= places a source's first packet relative to the background's; shift= adds to it") {
  test::TempDir tmp;
  test::write_raw(tmp / "bg.pcap", capture({rec(0, 0, 0), rec(0, 1, 5'000'000)}));
  RawFile attack = capture({rec(1, 0, 0), rec(1, 1, 1500)});
  for (auto& r : attack.records) r.sec -= 1'000'000;  // recorded a long time before
  test::write_raw(tmp / "attack.pcap", attack);
  const auto out = tmp / "out.pcap";
  REQUIRE(test::run_pipeline(fmt::format("pcap({0}/bg.pcap, shift=+1s) -> m: merge -> file({1}); "
                                         "pcap({0}/attack.pcap, at=+2s, shift=250us) -> m",
                                         tmp.path().string(), out.string())) == exit_ok);
  const auto f = test::read_raw(out);
  REQUIRE(f.records.size() == 4);
  const int64_t s = 1'000'000'000;
  CHECK(f.records[0].ts_ns(false) == (t0 + 1) * s);
  CHECK(f.records[1].ts_ns(false) == (t0 + 3) * s + 250'000);
  CHECK(f.records[2].ts_ns(false) == (t0 + 3) * s + 1'750'000);
  CHECK(f.records[3].ts_ns(false) == (t0 + 6) * s);
  CHECK(origins(f) == "0.0 1.0 1.1 0.1");
}

TEST_CASE("headers are rewritten where formats differ: ns into a µs output, big-endian input") {
  test::TempDir tmp;
  test::write_raw(tmp / "bg.pcap", capture({rec(0, 0, 1), rec(0, 1, 3)}));
  RawFile ns = capture({rec(1, 0, 0)}, true);
  ns.records[0].frac = 1'999;      // 1.999 µs after t0
  test::write_raw(tmp / "ns.pcap", ns);
  const auto out = tmp / "out.pcap";
  REQUIRE(test::run_pipeline(fmt::format("pcap({0}/bg.pcap) -> m: merge -> file({1}); pcap({0}/ns.pcap, rebase=none) -> m",
                                         tmp.path().string(), out.string())) == exit_ok);
  auto f = test::read_raw(out);
  CHECK_FALSE(f.nanos);
  REQUIRE(f.records.size() == 3);
  CHECK(f.records[1].frac == 1);  // truncated to the microsecond
  CHECK(origins(f) == "0.0 1.0 0.1");

  // The corpus's big-endian capture comes out little-endian with the same records.
  const auto be = std::string(VEIPIPE_CORPUS_DIR) + "/tcpdump-pptp.pcap";
  REQUIRE(test::run_pipeline(fmt::format("pcap({}) -> file({}, precision=ns)", be, out.string())) == exit_ok);
  f = test::read_raw(out);
  CHECK(f.nanos);
  CHECK(f.records.size() == 23);
}

TEST_CASE("a record larger than a batch arena goes through whole") {
  test::TempDir tmp;
  RawFile big = capture({rec(0, 0, 0), rec(0, 1, 1, 3 << 20), rec(0, 2, 2)});
  big.snaplen = 8 << 20;
  test::write_raw(tmp / "big.pcap", big);
  const auto out = tmp / "out.pcap";
  REQUIRE(test::run_pipeline(fmt::format("pcap({}) -> file({})", (tmp / "big.pcap").string(), out.string())) == exit_ok);
  const auto f = test::read_raw(out);
  REQUIRE(f.records.size() == 3);
  CHECK(f.records[1].bytes == big.records[1].bytes);
  CHECK(f.snaplen == 8u << 20);
}

TEST_CASE("filter= keeps only matching packets, through libpcap's BPF") {
  test::TempDir tmp;
  const auto out = tmp / "out.pcap";
  const auto in = std::string(VEIPIPE_CORPUS_DIR) + "/tcpreplay-test.pcap";
  auto engine = Engine::from_description("<test>", fmt::format("pcap({}, filter=ip6) -> file({})", in, out.string()), true);
  engine.start();
  REQUIRE(engine.wait() == exit_ok);
  const auto f = test::read_raw(out);
  CHECK(engine.stats().sources[0].filtered + f.records.size() == 179);
  CHECK_FALSE(f.records.empty());
  for (const auto& r : f.records) CHECK((r.bytes[12] == 0x86 && r.bytes[13] == 0xdd));  // IPv6 ethertype

  CHECK_THROWS_WITH_AS(Engine::from_description("<test>", fmt::format("pcap({}, filter=tcp prot 80) -> file({})", in, out.string()), true),
                       doctest::Contains("error: bad filter 'tcp prot 80'"), DescriptionError);
}

TEST_CASE("link types must agree") {
  test::TempDir tmp;
  const auto c = std::string(VEIPIPE_CORPUS_DIR);
  CHECK_THROWS_WITH_AS(
      Engine::from_description("<test>",
                               fmt::format("pcap({0}/tcpreplay-test.pcap) -> m: merge -> file({1}/o.pcap)\n"
                                           "pcap({0}/tcpdump-tcp-handshake-nano.pcap) -> m",
                                           c, tmp.path().string()),
                               true),
      doctest::Contains("has link type LINUX_SLL (113), but the output has EN10MB (1)"), DescriptionError);
}
