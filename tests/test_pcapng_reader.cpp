// core/pcapng_reader.h on crafted files: both byte orders, several sections, every time resolution,
// the three packet blocks, skipped blocks, and each kind of damage with what is kept before it.
#include <doctest/doctest.h>
#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <fstream>
#include <optional>

#include "core/pcap_format.h"
#include "core/pcapng_format.h"
#include "core/report.h"
#include "core/timeline_source.h"
#include "testutil.h"

using namespace vei;
namespace block = vei::pcapng::block;
namespace option = vei::pcapng::option;

namespace {

// Writes pcapng blocks in one byte order (a new section may change it).
struct Ng {
  bool big = false;
  std::string bytes;

  template <class T>
  static std::string raw(T v, bool big) {
    if (big) {
      if constexpr (sizeof v == 2) v = __builtin_bswap16(v);
      if constexpr (sizeof v == 4) v = __builtin_bswap32(v);
      if constexpr (sizeof v == 8) v = __builtin_bswap64(v);
    }
    return {reinterpret_cast<const char*>(&v), sizeof v};
  }
  template <class T>
  std::string put(T v) const {
    return raw(v, big);
  }
  std::string opt(uint16_t code, const std::string& value) const {
    std::string o = put(code) + put(static_cast<uint16_t>(value.size())) + value;
    o.resize(pcapng::pad4(o.size()), '\0');
    return o;
  }
  // A block of `type` around `body` (padded), its length in both places unless `trailer` says otherwise.
  Ng& add(uint32_t type, std::string body, std::optional<uint32_t> trailer = {}) {
    body.resize(pcapng::pad4(body.size()), '\0');
    const auto length = static_cast<uint32_t>(body.size() + 12);
    bytes += put(type) + put(length) + body + put(trailer.value_or(length));
    return *this;
  }
  Ng& shb(bool big_endian, uint16_t minor = 0) {
    big = big_endian;
    return add(block::section_header, put(pcapng::byte_order_magic) + put(uint16_t{1}) + put(minor) +
                                          put(~uint64_t{0}));
  }
  Ng& idb(uint16_t linktype, uint32_t snaplen, const std::string& options = {}) {
    return add(block::interface_description, put(linktype) + put(uint16_t{0}) + put(snaplen) + options);
  }
  Ng& epb(uint32_t iface, uint64_t time, const std::string& data, uint32_t len = 0, const std::string& options = {}) {
    std::string padded = data;
    padded.resize(pcapng::pad4(data.size()), '\0');
    return add(block::enhanced_packet, put(iface) + put(static_cast<uint32_t>(time >> 32)) +
                                           put(static_cast<uint32_t>(time)) + put(static_cast<uint32_t>(data.size())) +
                                           put(len ? len : static_cast<uint32_t>(data.size())) + padded + options);
  }
  Ng& spb(uint32_t len, const std::string& data) { return add(block::simple_packet, put(len) + data); }
  Ng& pb(uint16_t iface, uint64_t time, const std::string& data) {
    return add(block::packet, put(iface) + put(uint16_t{0}) + put(static_cast<uint32_t>(time >> 32)) +
                                  put(static_cast<uint32_t>(time)) + put(static_cast<uint32_t>(data.size())) +
                                  put(static_cast<uint32_t>(data.size())) + data);
  }
};

std::string frame(char fill, size_t size) { return std::string(size, fill); }

struct Got {
  int64_t ts;
  uint16_t iface;
  uint32_t caplen, len;
  std::string bytes;
  std::string options;  // carried (Batch::annotations), in this host's byte order
};

struct Read {
  SourceInfo info;
  std::vector<Got> records;
  std::vector<std::string> messages;
  std::shared_ptr<InterfaceList> interfaces;  // every one met, those after the first packet too
};

// Reads `bytes` as a capture from a file, or from a pipe (the reader's stream mode).
Read read(const std::string& bytes, bool pipe = false, const std::string& filter = {}, bool one_linktype = false) {
  test::TempDir tmp;
  std::string path = (tmp / "in.pcapng").string();
  int fds[2] = {-1, -1};
  if (pipe) {
    REQUIRE(::pipe(fds) == 0);
    REQUIRE(::write(fds[1], bytes.data(), bytes.size()) == static_cast<ssize_t>(bytes.size()));
    ::close(fds[1]);
    path = "/proc/self/fd/" + std::to_string(fds[0]);
  } else {
    std::ofstream(path, std::ios::binary) << bytes;
  }
  Report report;
  report.set_quiet(true);
  SourceOptions options;
  options.name = "in.pcapng";
  options.report = &report;
  options.clamp_disorder = false;
  options.filter = filter;
  options.one_linktype = one_linktype;
  std::unique_ptr<TimelineSource> source;
  try {
    source = open_capture(path, options);
  } catch (...) {
    if (pipe) ::close(fds[0]);
    throw;
  }
  if (pipe) ::close(fds[0]);
  source->compile_filter();
  source->set_mapping(0, pcap::Precision::ns);
  Read r{source->info(), {}, {}, source->options().interfaces};
  // As the engine's graph does (TimelineSource::splits_reading): the next batch is read before the
  // one before it is parsed. The small arenas' headroom is shorter than most blocks.
  CHECK(source->splits_reading() == !pipe);  // a stream is read and parsed on one thread, in turn
  Batch batches[2];
  for (Batch& b : batches) b.reserve_arena(4096);
  source->read_raw(batches[0]);
  for (size_t k = 0;; ++k) {
    Batch& batch = batches[k % 2];
    if (!batch.raw.ended) source->read_raw(batches[(k + 1) % 2]);
    source->parse_raw(batch);
    CHECK(batch.raw_is_output);
    const size_t first = r.records.size();  // of the batch's first record
    size_t next = batch.records.empty() ? 0 : batch.records.front().offset;
    for (const Record& rec : batch.records) {
      CHECK(rec.offset == next);  // back to back, headers in the output format
      const std::byte* h = batch.data() + rec.offset;
      CHECK(pcap::load32(h, false) == rec.ts_ns / pcap::ns_per_s);
      CHECK(pcap::load32(h + 4, false) == rec.ts_ns % pcap::ns_per_s);
      CHECK(pcap::load32(h + 8, false) == rec.caplen);
      next = rec.offset + record_header_size + rec.caplen;
      const auto* data = reinterpret_cast<const char*>(h + record_header_size);
      std::string carried;
      for (const Annotation& a : batch.annotations_of(r.records.size() - first, 1))
        carried.assign(reinterpret_cast<const char*>(batch.annotation_bytes.data() + a.at), a.size);
      r.records.push_back({rec.ts_ns, rec.iface, rec.caplen, rec.len, {data, rec.caplen}, carried});
    }
    if (batch.last) break;
  }
  r.messages = report.messages();
  return r;
}

std::string all(const Read& r) {
  std::string text;
  for (const auto& m : r.messages) text += m + "\n";
  return text;
}

bool says(const Read& r, std::string_view what) {
  return std::ranges::any_of(r.messages, [&](const std::string& m) { return m.find(what) != std::string::npos; });
}

constexpr int64_t s = pcap::ns_per_s;

}  // namespace

TEST_CASE("pcapng reader: both byte orders give the same records, interfaces named and described") {
  for (const bool big : {false, true}) {
    CAPTURE(big);
    Ng ng;
    ng.shb(big).idb(1, 65535, ng.opt(option::if_name, "eth0") + ng.opt(option::if_description, "uplink") +
                                  ng.opt(option::end, ""));
    ng.epb(0, 1'700'000'000'123'456, frame('a', 60), 0, ng.opt(option::comment, "a comment") + ng.opt(0, ""));
    ng.epb(0, 1'700'000'001'000'001, frame('b', 61), 1514);
    const Read r = read(ng.bytes);
    CHECK_MESSAGE(r.messages.empty(), all(r));
    CHECK(r.info.pcapng);
    CHECK(r.info.linktype == 1);
    CHECK(r.info.snaplen == 65535);
    CHECK(r.info.swapped == big);
    CHECK(r.info.first_ts_ns == 1'700'000'000'123'456'000);
    REQUIRE(r.info.interfaces.size() == 1);
    CHECK(r.info.interfaces[0].name == "eth0");
    CHECK(r.info.interfaces[0].description == "uplink");
    REQUIRE(r.records.size() == 2);
    CHECK(r.records[0].ts == 1'700'000'000'123'456'000);
    CHECK(r.records[0].bytes == frame('a', 60));
    CHECK(r.records[1].ts == 1'700'000'001'000'001'000);
    CHECK(r.records[1].caplen == 61);
    CHECK(r.records[1].len == 1514);
    CHECK(r.records[1].bytes == frame('b', 61));
  }
}

TEST_CASE("pcapng reader: sections of either byte order, their interfaces listed in file order") {
  Ng ng;
  ng.shb(false).idb(1, 0).idb(1, 96).epb(1, 5'000'000, frame('x', 40)).epb(0, 6'000'000, frame('y', 50));
  ng.shb(true).idb(0, 65535).epb(0, 7'000'000, frame('z', 30));
  ng.shb(false).idb(1, 0).idb(1, 0).epb(1, 8'000'000, frame('w', 20));
  const Read r = read(ng.bytes);
  CHECK_MESSAGE(r.messages.empty(), all(r));
  // Those before the first packet when it opens; then each as it comes. The last section's first
  // interface is the first section's again, its second (alike, but in the same section) a new one.
  CHECK(r.info.interfaces.size() == 2);
  CHECK(r.info.interfaces[1].snaplen == 96);
  REQUIRE(r.interfaces->at(3).has_value());
  CHECK_FALSE(r.interfaces->at(4).has_value());
  CHECK(r.interfaces->at(2)->linktype == 0);
  CHECK(r.interfaces->at(3)->snaplen == 0);
  REQUIRE(r.records.size() == 4);
  const uint16_t ifaces[] = {1, 0, 2, 3};
  const std::string bytes[] = {frame('x', 40), frame('y', 50), frame('z', 30), frame('w', 20)};
  for (size_t i = 0; i < 4; ++i) {
    CHECK(r.records[i].iface == ifaces[i]);
    CHECK(r.records[i].ts == static_cast<int64_t>(i + 5) * s);
    CHECK(r.records[i].bytes == bytes[i]);
  }
}

TEST_CASE("pcapng reader: a later section's interface equal to one met before is that one") {
  Ng ng;
  ng.shb(false).idb(1, 0, ng.opt(option::if_name, "eth0")).epb(0, 1'000'000, frame('a', 60));
  ng.shb(true).idb(1, 0, ng.opt(option::if_name, "eth0")).epb(0, 2'000'000, frame('b', 60));
  for (const bool pipe : {false, true}) {
    CAPTURE(pipe);
    const Read r = read(ng.bytes, pipe);
    CHECK_MESSAGE(r.messages.empty(), all(r));
    CHECK(r.info.interfaces.size() == 1);
    CHECK_FALSE(r.interfaces->at(1).has_value());
    REQUIRE(r.records.size() == 2);
    CHECK(r.records[1].iface == 0);
    CHECK(r.records[1].ts == 2 * s);
    CHECK(r.records[1].bytes == frame('b', 60));
  }
}

TEST_CASE("pcapng reader: an interface of another link type after the first packet, in a file or a stream") {
  Ng ng;
  ng.shb(false).idb(1, 0).epb(0, 1'000'000, frame('a', 60));
  ng.shb(true).idb(0, 65535).epb(0, 2'000'000, frame('b', 60));
  for (const bool pipe : {false, true}) {
    CAPTURE(pipe);
    const Read r = read(ng.bytes, pipe);
    CHECK_MESSAGE(r.messages.empty(), all(r));
    REQUIRE(r.records.size() == 2);
    CHECK(r.records[1].iface == 1);
    CHECK(r.interfaces->at(1)->linktype == 0);
    // A run that reads one link type from it (a pcap output) stops there, keeping the first.
    const Read one = read(ng.bytes, pipe, {}, true);
    CHECK(one.records.size() == 1);
    CHECK(says(one, "in.pcapng: block 4 (record 1) at byte offset 168: an interface of link type NULL (0) described "
                    "after the first packet, unlike the first interface's EN10MB: the run reads one link type"));
    CHECK(says(one, "write pcapng (`file(out.pcapng)`)"));
    const Read filtered = read(ng.bytes, pipe, "ip or not ip");
    CHECK(filtered.records.size() == 1);
    CHECK(says(filtered, "block 4 (record 1) at byte offset 168: an interface of link type NULL (0)"));
    CHECK(says(filtered, "filter= reads one link type"));
  }
}

TEST_CASE("pcapng reader: a packet's comments and flags are carried in this host's byte order, nothing else") {
  for (const bool big : {false, true}) {
    CAPTURE(big);
    Ng ng;
    ng.shb(big).idb(1, 0);
    const std::string end = ng.put(uint16_t{0}) + ng.put(uint16_t{0});
    ng.epb(0, 1'000'000, frame('a', 61), 0,
           ng.opt(option::comment, "one") + ng.opt(option::epb_hash, std::string(17, 'h')) +
               ng.opt(option::epb_flags, ng.put(uint32_t{0x81})) + ng.opt(option::comment, "two") + end);
    ng.epb(0, 2'000'000, frame('b', 60));
    ng.epb(0, 3'000'000, frame('c', 60), 0, ng.opt(option::epb_dropcount, ng.put(uint64_t{7})) + end);
    const Read r = read(ng.bytes);
    CHECK_MESSAGE(r.messages.empty(), all(r));
    REQUIRE(r.records.size() == 3);
    Ng native;  // this host's order (little-endian)
    CHECK(r.records[0].options == native.opt(option::comment, "one") + native.opt(option::epb_flags, native.put(uint32_t{0x81})) +
                                      native.opt(option::comment, "two"));
    CHECK(r.records[0].bytes == frame('a', 61));
    CHECK(r.records[1].options.empty());
    CHECK(r.records[2].options.empty());
  }
}

TEST_CASE("pcapng reader: if_tsresol in powers of 10 and of 2, if_tsoffset in seconds") {
  Ng ng;
  ng.shb(true);
  const auto resol = [&](uint8_t v) { return ng.opt(option::if_tsresol, std::string(1, static_cast<char>(v))); };
  const auto offset = [&](int64_t v) { return ng.opt(option::if_tsoffset, ng.put(v)); };
  ng.idb(1, 0, resol(3)).idb(1, 0, resol(9) + offset(1000)).idb(1, 0, resol(0x80 | 10)).idb(1, 0, resol(12));
  ng.idb(1, 0, offset(-5)).idb(1, 0, resol(0x80 | 3));
  ng.epb(0, 1'234'567, "a").epb(1, 2'000'000'001, "b").epb(2, 3 * 1024 + 1, "c").epb(3, 4'000'000'000'007, "d");
  ng.epb(4, 7'000'001, "e").epb(5, 9, "f");
  const Read r = read(ng.bytes);
  CHECK_FALSE(says(r, "byte offset"));
  REQUIRE(r.records.size() == 6);
  CHECK(r.records[0].ts == 1234 * s + 567'000'000);
  CHECK(r.records[1].ts == 1002 * s + 1);
  CHECK(r.records[2].ts == 3 * s + 976'562);  // 1/1024 s, truncated as libpcap does
  CHECK(r.records[3].ts == 4 * s + 7 / 1000);
  CHECK(r.records[4].ts == 2 * s + 1000);
  CHECK(r.records[5].ts == s + 125'000'000);  // 9/8 s
}

TEST_CASE("pcapng reader: Simple Packet Blocks, the obsolete Packet Block, skipped blocks") {
  Ng ng;
  ng.shb(false).add(block::name_resolution, std::string(20, 'n'));
  ng.idb(113, 64, ng.opt(option::if_tsoffset, ng.put(int64_t{10}))).idb(113, 0);
  ng.add(0x0bad, "unknown").add(0x40000bad, std::string(9, 'c')).add(block::decryption_secrets, "k");
  ng.spb(100, frame('s', 68));   // caplen: the snaplen, 64
  ng.spb(30, frame('t', 32));    // the packet's length
  ng.spb(200, frame('u', 48));   // what the block holds
  ng.pb(1, 3'000'000, frame('p', 24));
  ng.add(block::interface_statistics, std::string(24, 'i'));
  const Read r = read(ng.bytes);
  CHECK_FALSE(says(r, "byte offset"));
  REQUIRE(r.records.size() == 4);
  for (size_t i = 0; i < 3; ++i) {
    CHECK(r.records[i].ts == 10 * s);  // no time of its own: 0, plus the interface's offset, as libpcap
    CHECK(r.records[i].iface == 0);
  }
  CHECK(r.records[0].caplen == 64);
  CHECK(r.records[0].len == 100);
  CHECK(r.records[1].caplen == 30);
  CHECK(r.records[1].bytes == frame('t', 30));
  CHECK(r.records[2].caplen == 48);
  CHECK(r.records[2].len == 200);
  CHECK(r.records[3].iface == 1);
  CHECK(r.records[3].ts == 3 * s);
  CHECK(r.records[3].bytes == frame('p', 24));
}

TEST_CASE("pcapng reader: damage ends the input where it is, naming block, record and offset") {
  Ng good;
  good.shb(false).idb(1, 0).epb(0, 1'000'000, frame('a', 60)).epb(0, 2'000'000, frame('b', 60));
  // SHB 28 + IDB 20 + 2 EPBs of 92 bytes: the third packet block starts at 232.
  struct Case {
    const char* what;
    std::string bytes;
    const char* says;
  };
  const auto with = [&](auto&& more) {
    Ng ng = good;
    more(ng);
    return ng.bytes;
  };
  const Case cases[] = {
      {"trailer", with([](Ng& n) { n.add(block::enhanced_packet, std::string(20, '\0'), 99u); }),
       "block 4 (record 2) at byte offset 232: block length 32 in its header, 99 in its trailer"},
      {"length past the end", with([](Ng& n) { n.bytes += n.put(block::enhanced_packet) + n.put(uint32_t{4096}) + std::string(100, 'x'); }),
       "truncated: block 4 (record 2) at byte offset 232 promises 4096 bytes, only 108 remain"},
      {"header cut", with([](Ng& n) { n.bytes += n.put(block::enhanced_packet) + "ab"; }),
       "truncated: block 4 (record 2) at byte offset 232 has only 6 of its block header bytes"},
      {"length not a multiple of 4", with([](Ng& n) { n.bytes += n.put(block::enhanced_packet) + n.put(uint32_t{33}); }),
       "block 4 (record 2) at byte offset 232: corrupt block length 33"},
      {"caplen beyond the block", with([](Ng& n) {
         n.add(block::enhanced_packet, n.put(uint32_t{0}) + n.put(uint64_t{0}) + n.put(uint32_t{61}) +
                                           n.put(uint32_t{61}) + frame('c', 60));
       }),
       "block 4 (record 2) at byte offset 232: caplen 61 exceeds the 60 bytes its block holds"},
      {"interface without IDB", with([](Ng& n) { n.epb(1, 0, "x"); }),
       "block 4 (record 2) at byte offset 232: a packet of interface 1, but its section describes 1 interface(s)"},
      {"version", with([](Ng& n) { n.shb(false, 1); }),
       "block 4 (record 2) at byte offset 232: unsupported pcapng version 1.1"},
      {"byte-order magic", with([](Ng& n) { n.add(block::section_header, std::string(16, 'm')); }),
       "block 4 (record 2) at byte offset 232: Section Header Block with byte-order magic 0x6d6d6d6d"},
  };
  for (const auto& c : cases) {
    CAPTURE(c.what);
    for (const bool pipe : {false, true}) {
      const Read r = read(c.bytes, pipe);
      CHECK(r.records.size() == 2);
      CHECK(says(r, c.says));
      CHECK(says(r, "the 2 "));
    }
  }
}

TEST_CASE("pcapng reader: no interface to read is an error at open, as with libpcap") {
  Ng none;
  none.shb(false).add(0x0bad, "custom");
  CHECK(test::error_of([&] { read(none.bytes); }) ==
        "in.pcapng: no Interface Description Block: no packet can be read");
  Ng packet_first;
  packet_first.shb(false).epb(0, 0, "x").idb(1, 0);
  for (const bool pipe : {false, true})
    CHECK(test::error_of([&] { read(packet_first.bytes, pipe); })
              .starts_with("in.pcapng: block 1 (record 0) at byte offset 28: a packet of interface 0, but its section"));
  Ng version;
  version.shb(false, 1).idb(1, 0);
  CHECK(test::error_of([&] { read(version.bytes); }).find("unsupported pcapng version 1.1") != std::string::npos);
}

TEST_CASE("pcapng reader: a filter reads one link type: refused on a capture of several") {
  Ng ng;
  ng.shb(false).idb(1, 0).idb(0, 0).epb(0, 0, frame('a', 60)).epb(0, 0, frame('b', 100));
  CHECK(test::error_of([&] { read(ng.bytes, false, "len >= 100"); })
            .starts_with("in.pcapng: filter= cannot apply to a capture of several link types (EN10MB and NULL)"));
  Ng one;
  one.shb(false).idb(1, 0).idb(1, 0).epb(0, 0, frame('a', 60)).epb(1, 0, frame('b', 100));
  const Read r = read(one.bytes, false, "len >= 100");
  REQUIRE(r.records.size() == 1);
  CHECK(r.records[0].iface == 1);
  CHECK(r.records[0].bytes == frame('b', 100));
}
