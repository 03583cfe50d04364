// Transforms (snaplen, filter, rewrite) in the plan and the engine: where a chain applies (one
// source, or every packet after the merge, events included, paced or not), compaction of cut and
// filtered batches, and the errors. Byte-for-byte comparisons with editcap, tcpdump and tcprewrite
// are in transform_test.sh; the rewriter's checksums in test_address_rewriter.cpp.
#include <doctest/doctest.h>
#include <fmt/format.h>

#include <chrono>
#include <cstring>
#include <thread>

#include "pipeline/engine.h"
#include "pipeline/plan.h"
#include "core/pcap_format.h"
#include "core/bpf_filter.h"
#include "core/transform.h"
#include "stages/snaplen.h"
#include "testutil.h"

using namespace vei;

namespace {

std::string plan_error(std::string_view text) {
  try {
    make_plan(parse_pipeline("t", text));
  } catch (const DescriptionError& e) {
    return e.what();
  }
  return "<no error>";
}

// Injected frames carry the top bit in their tag, which this BPF expression tests (byte 3 of the
// little-endian tag is the frame's fourth byte).
constexpr uint32_t injected_bit = 0x80000000;
constexpr const char* only_injected = R"(filter("ether[3] & 0x80 != 0"))";

}  // namespace

TEST_CASE("transforms: compact moves cut records back to back and fixes headers ready for output") {
  BatchPool pool(1, 4096);
  Batch* b = pool.acquire();
  for (uint32_t i = 0; i < 3; ++i) {
    const auto frame = test::tagged_frame(i, 100);
    pcap::write_record_header(b->data() + b->used, 1'000'000'000 + i, pcap::Precision::us, 100, 100);
    std::memcpy(b->data() + b->used + record_header_size, frame.data(), frame.size());
    b->records.push_back({1'000'000'000 + i, i, static_cast<uint32_t>(b->used), 100, 100, 0, 0});
    b->used += record_header_size + 100;
  }
  b->raw_is_output = true;
  const TransformStats cut = SnaplenCutter(40).apply(*b);
  CHECK(cut.changed == 3);
  CHECK(b->used == 3 * (record_header_size + 40));
  for (uint32_t i = 0; i < 3; ++i) {
    const Record& r = b->records[i];
    CHECK(r.offset == i * (record_header_size + 40));
    CHECK(r.caplen == 40);
    CHECK(r.len == 100);
    uint32_t header[4];
    std::memcpy(header, b->data() + r.offset, sizeof header);
    CHECK(header[2] == 40);   // incl_len
    CHECK(header[3] == 100);  // orig_len
    uint32_t tag = 0;
    std::memcpy(&tag, b->data() + r.offset + record_header_size, 4);
    CHECK(tag == i);
  }
  CHECK(b->raw_is_output);
  CHECK(SnaplenCutter(40).apply(*b).changed == 0);  // nothing longer left
  pool.release(b);
}

TEST_CASE("transforms: records removed take their annotations; those kept follow them to their new place") {
  Batch b;
  b.reserve_arena(4096);
  for (uint32_t i = 0; i < 5; ++i) {
    pcap::write_record_header(b.data() + b.used, i, pcap::Precision::us, 20, 20);
    b.records.push_back({i, i, static_cast<uint32_t>(b.used), 20, 20, 0, 0});
    b.used += record_header_size + 20;
  }
  const auto note = [](char c) { return std::vector<std::byte>(4, std::byte(c)); };
  b.annotate(0, note('a'));
  b.annotate(1, note('b'));
  b.annotate(3, note('d'));
  CHECK(remove_records(b, [](const Record& r) { return r.seq == 1 || r.seq == 2; }) == 2);
  REQUIRE(b.records.size() == 3);
  REQUIRE(b.annotations.size() == 2);
  const auto text = [&](const Annotation& a) { return std::string(reinterpret_cast<const char*>(b.annotation_bytes.data() + a.at), a.size); };
  CHECK(b.annotations[0].index == 0);
  CHECK(text(b.annotations[0]) == "aaaa");
  CHECK(b.annotations[1].index == 1);  // record 3, now second
  CHECK(b.records[1].seq == 3);
  CHECK(text(b.annotations[1]) == "dddd");
  CHECK(b.annotations_of(1, 2).size() == 1);
  CHECK(b.annotations_of(2, 1).empty());
  CHECK(b.used == 3 * (record_header_size + 20));
}

TEST_CASE("transforms: the plan places each chain: one source's, or after the merge for every packet") {
  const auto pipeline = parse_pipeline("t",
                                       "pcap(a.pcap) -> snaplen(96) -> filter(tcp) -> m: merge -> rewrite(srcmac=02:00:00:00:00:01) -> file(o.pcap)\n"
                                       "pcap(b.pcap) -> m\n"
                                       "live(eth0) -> snaplen(64) -> m");
  const Plan plan = make_plan(pipeline);
  REQUIRE(plan.sources.size() == 2);
  REQUIRE(plan.source_transforms.size() == 2);
  REQUIRE(plan.source_transforms[0].size() == 2);
  CHECK(pipeline.nodes[plan.source_transforms[0][0]].stage->name() == "snaplen");
  CHECK(pipeline.nodes[plan.source_transforms[0][1]].stage->name() == "filter");
  CHECK(plan.source_transforms[1].empty());
  REQUIRE(plan.event_transforms.size() == 1);
  REQUIRE(plan.event_transforms[0].size() == 1);
  REQUIRE(plan.output_transforms.size() == 1);
  CHECK(pipeline.nodes[plan.output_transforms[0]].stage->name() == "rewrite");
  const std::string text = describe_plan(plan, false);
  CHECK(text.find("source 0 (background, output timeline): pcap(disorder=clamp, file=a.pcap, shift=0s) -> "
                  "snaplen(length=96) -> filter(expression=tcp)\n") != std::string::npos);
  CHECK(text.find("event source: live(interface=eth0, promisc=false, snaplen=262144) -> snaplen(length=64)\n") !=
        std::string::npos);
  CHECK(text.find("transform: rewrite(srcmac=02:00:00:00:00:01)\n") != std::string::npos);
}

TEST_CASE("transforms: plan errors") {
  // Each control socket has a path of its own into the engine, so transforms before the merge apply to it.
  CHECK(plan_error("control(/tmp/s) -> snaplen(9) -> m: merge -> file(o.pcap)\npcap(a.pcap) -> m") == "<no error>");
  CHECK(plan_error("snaplen(9) -> file(o.pcap)").find("error: nothing feeds this transform") != std::string::npos);
  // A transform after the pacer: one error, at the pacer, and none for the stages behind it.
  const auto after_pace = plan_error("pcap(a.pcap) -> pace(topspeed) -> snaplen(64) -> file(o.pcap)");
  CHECK(after_pace.find("t:1:17: error: 'pace' goes right before the sink, after every transform") != std::string::npos);
  CHECK(after_pace.find("does not reach the sink") == std::string::npos);
  CHECK(plan_error("pcap(a.pcap) -> snaplen(9)").find("error: the pipeline has no sink") != std::string::npos);
}

TEST_CASE("transforms: engine errors point at the parameter") {
  test::TempDir dir;
  test::write_raw(dir / "bg.pcap", test::tagged_trace(3, 1000, 60));
  const auto bg = (dir / "bg.pcap").string(), out = (dir / "out.pcap").string();
  const auto error = [&](const std::string& transform) {
    try {
      Engine::from_description("t", fmt::format("pcap({}) -> {} -> file({})", bg, transform, out), true);
    } catch (const DescriptionError& e) {
      return std::string(e.what());
    }
    return std::string("<no error>");
  };
  CHECK(error("filter(\"tcp and\")").find("syntax error") != std::string::npos);
  CHECK(error("snaplen(0)").find("snaplen must be 1..4294967295 bytes") != std::string::npos);
  CHECK(error("rewrite(ip=\"10.0.0.0/8:172.16.0.0/12\")").find("prefix") != std::string::npos);
  CHECK(error("rewrite(srcmac=02:00:00:00:00)").find("error:") != std::string::npos);
}

TEST_CASE("transforms: a chain after the merge applies to injected packets too, before a merge") {
  test::TempDir dir;
  test::write_raw(dir / "bg.pcap", test::tagged_trace(100, 1000, 200));
  const auto out = dir / "out.pcap";
  auto engine = Engine::from_description(
      "t", fmt::format("pcap({}) -> m: merge -> {} -> snaplen(20) -> file({}, precision=ns)", (dir / "bg.pcap").string(),
                       only_injected, out.string()),
      true);
  // Given their times before the start: merged in time order among the background.
  for (uint32_t i = 0; i < 10; ++i) {
    const auto frame = test::tagged_frame(injected_bit | i, 100);
    const int64_t at = (int64_t{1'700'000'000} * 1'000'000'000) + i * 5'000'000 + 500;
    CHECK(engine.inject(std::as_bytes(std::span(frame)), at) == 1);
  }
  engine.start();
  REQUIRE(engine.wait() == 0);
  const auto got = test::read_raw(out);
  REQUIRE(got.records.size() == 10);
  for (uint32_t i = 0; i < 10; ++i) {
    CHECK(test::tag_of(got.records[i]) == (injected_bit | i));
    CHECK(got.records[i].caplen == 20);
    CHECK(got.records[i].len == 100);
  }
  const Stats stats = engine.stats();
  REQUIRE(stats.transforms.size() == 2);
  CHECK(stats.transforms[0].name.rfind("filter at 1:", 0) == 0);
  CHECK(stats.transforms[0].dropped == 100);
  CHECK(stats.transforms[1].changed == 10);
}

TEST_CASE("transforms: while pacing, injected packets are cut and filtered on their way to the output") {
  test::TempDir dir;
  // The background's tags have bit 30 set: it keeps the timeline going while frames are injected.
  test::write_raw(dir / "bg.pcap", test::tagged_trace(200, 1000, 200, 0x40000000));  // 0.2 s of timeline at 2x: 0.1 s
  const auto out = dir / "out.pcap";
  auto engine = Engine::from_description(
      "t", fmt::format("pcap({}) -> m: merge -> filter(\"ether[3] & 0xc0 != 0\") -> snaplen(30) -> pace(2x) -> file({}, precision=ns)",
                       (dir / "bg.pcap").string(), out.string()),
      true);
  engine.start();
  for (uint32_t i = 0; i < 20; ++i) {
    // Every other frame has neither bit, and the filter drops it.
    const auto frame = test::tagged_frame((i % 2 ? injected_bit : 0) | i, 90);
    CHECK(engine.inject(std::as_bytes(std::span(frame))) == 1);
    std::this_thread::sleep_for(std::chrono::milliseconds(2));
  }
  REQUIRE(engine.wait() == 0);
  const auto got = test::read_raw(out);
  REQUIRE(got.records.size() == 210);
  int64_t last = 0;
  uint32_t injected = 0, background = 0;
  for (const auto& r : got.records) {
    if (test::tag_of(r) & injected_bit) {
      CHECK(test::tag_of(r) == (injected_bit | (2 * injected++ + 1)));
      CHECK(r.len == 90);
    } else {
      CHECK(test::tag_of(r) == (0x40000000 | background++));
      CHECK(r.len == 200);
    }
    CHECK(r.caplen == 30);
    CHECK(r.ts_ns(true) >= last);
    last = r.ts_ns(true);
  }
  CHECK(injected == 10);
}

TEST_CASE("transforms: a filter is compiled as tcpdump compiles it for a file of that link type and byte order") {
  // An IPv6 header, behind the link-layer header of each case.
  std::vector<std::byte> ipv6(40);
  ipv6[0] = std::byte{0x60};
  const auto after = [&](std::initializer_list<uint8_t> link) {
    std::vector<std::byte> packet;
    for (uint8_t b : link) packet.push_back(std::byte{b});
    packet.insert(packet.end(), ipv6.begin(), ipv6.end());
    return packet;
  };
  const auto matches = [](const BpfFilter& f, const std::vector<std::byte>& p) {
    return f.matches(p.data(), static_cast<uint32_t>(p.size()), static_cast<uint32_t>(p.size()));
  };
  SUBCASE("LINKTYPE_RAW (101) is libpcap's DLT_RAW (12), not a DLT of its own") {
    const BpfFilter ip6("ip6", 101, 65535), ip("ip", 101, 65535);
    CHECK(matches(ip6, ipv6));
    CHECK_FALSE(matches(ip, ipv6));
  }
  SUBCASE("BSD loopback (0): the family in the byte order of the host that wrote the file") {
    // AF_INET6 on FreeBSD is 28; this host is little-endian.
    const auto little = after({28, 0, 0, 0}), big = after({0, 0, 0, 28});
    CHECK(matches(BpfFilter("ip6", 0, 65535), little));
    CHECK_FALSE(matches(BpfFilter("ip6", 0, 65535), big));
    CHECK(matches(BpfFilter("ip6", 0, 65535, true), big));
    CHECK_FALSE(matches(BpfFilter("ip6", 0, 65535, true), little));
    CHECK_FALSE(matches(BpfFilter("ip", 0, 65535, true), big));
  }
  SUBCASE("what libpcap refuses for the link type is refused with its reason") {
    CHECK_THROWS_WITH_AS(BpfFilter("ip", 229, 65535), doctest::Contains("rejects all packets"), std::runtime_error);
    CHECK_THROWS_WITH_AS(BpfFilter("ether host 1:2:3:4:5:6", 101, 65535), doctest::Contains("ether"), std::runtime_error);
  }
}
