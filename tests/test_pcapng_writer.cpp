// The file sink's pcapng interfaces (stages/file.cpp): one IDB per (source, interface), named as
// the source for a source of one, SOURCE:IFNAME or SOURCE#n for one of several, and each record
// written against its own. The records' bytes and times are checked by independent readers in
// tests/pcapng_out_test.sh; here, what only a source of several interfaces (a pcapng input) shows.
#include <doctest/doctest.h>

#include <cstring>
#include <fstream>
#include <iterator>
#include <string>

#include "core/batch.h"
#include "core/pcapng_format.h"
#include "core/sink.h"
#include "pipeline/stage.h"
#include "testutil.h"

namespace vei {
namespace {

uint32_t load(const std::string& s, size_t at) {
  uint32_t v;
  std::memcpy(&v, s.data() + at, 4);
  return v;
}

TEST_CASE("pcapng output: a source of several interfaces gets an IDB for each, records on their own") {
  test::TempDir dir;
  const std::string out = (dir / "out.pcapng").string();
  const Pipeline p = parse_pipeline("t", "pcap(a.pcap) -> file(" + out + ")");
  const Node& file = p.nodes.back();
  SinkContext context;
  context.names = {"bg", "multi", "api"};
  context.origins = {"a.pcap", "b.pcapng", "event"};
  context.stages = {"pcap", "pcap", "api"};
  context.interfaces = {{Interface{1, 65535, "", ""}},
                        {Interface{1, 65535, "eth0", "uplink"}, Interface{1, 65535, "", ""}},
                        {Interface{1, 65535, "", ""}}};
  auto sink = static_cast<const SinkStage&>(*file.stage).open(file, context);
  // One record from the second interface of source 1: 4 bytes.
  Batch batch;
  batch.reserve_arena(64);
  pcap::write_record_header(batch.data(), 1'700'000'000'000'000'000, pcap::Precision::us, 4, 4);
  std::memcpy(batch.data() + record_header_size, "abcd", 4);
  batch.used = record_header_size + 4;
  batch.records.push_back(Record{1'700'000'000'000'000'000, 0, 0, 4, 4, 1, 1});
  sink->consume(batch);
  sink->close();
  CHECK(sink->stats().packets == 1);

  std::ifstream in(out, std::ios::binary);
  const std::string bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  // Walk the blocks: the SHB, four IDBs named in order, then the EPB on IDB 2 (source 1's second).
  std::vector<std::string> idbs;
  size_t at = 0, epbs = 0;
  while (at + 12 <= bytes.size()) {
    const uint32_t type = load(bytes, at), length = load(bytes, at + 4);
    REQUIRE(length % 4 == 0);
    REQUIRE(load(bytes, at + length - 4) == length);
    if (type == pcapng::block::interface_description) idbs.push_back(bytes.substr(at + 16, length - 20));
    if (type == pcapng::block::enhanced_packet) {
      ++epbs;
      CHECK(load(bytes, at + 8) == 2);
      CHECK(bytes.substr(at + 28, 4) == "abcd");
      CHECK(sink->stats().bytes == length);
    }
    at += length;
  }
  CHECK(at == bytes.size());
  CHECK(epbs == 1);
  REQUIRE(idbs.size() == 4);
  CHECK(idbs[0].find("bg") != std::string::npos);
  CHECK(idbs[1].find("multi:eth0") != std::string::npos);
  CHECK(idbs[2].find("multi#1") != std::string::npos);
  CHECK(idbs[3].find("api") != std::string::npos);
  CHECK(idbs[1].find("uplink") == std::string::npos);  // described by the source's stage
}

}  // namespace
}  // namespace vei
