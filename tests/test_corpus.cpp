// Every capture in shared/corpus goes through `pcap(F) -> file(out)` and is compared, record for
// record, with what libpcap's own reader delivers from F; the pcapng files libpcap stops in (at an
// interface unlike the first) with tshark's reading of them.
#include <doctest/doctest.h>
#include <fmt/format.h>
#include <pcap/pcap.h>

#include <algorithm>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "core/report.h"
#include "core/timeline_source.h"
#include "pipeline/engine.h"
#include "testutil.h"

namespace fs = std::filesystem;
using namespace vei;

namespace {

struct LibpcapView {
  bool opened = false;
  std::string error;  // open failure or the error that stopped reading
  int dlt = -1;
  std::vector<test::RawRecord> records;
};

LibpcapView read_with_libpcap(const fs::path& path) {
  LibpcapView v;
  char errbuf[PCAP_ERRBUF_SIZE] = {};
  pcap_t* p = pcap_open_offline_with_tstamp_precision(path.c_str(), PCAP_TSTAMP_PRECISION_NANO, errbuf);
  if (!p) {
    v.error = errbuf;
    return v;
  }
  v.opened = true;
  v.dlt = pcap_datalink(p);
  pcap_pkthdr* h;
  const u_char* data;
  int r;
  while ((r = pcap_next_ex(p, &h, &data)) == 1) {
    test::RawRecord rec;
    // libpcap 1.10 sign-extends 32-bit seconds (2038 dates come back in 1901): the file holds them unsigned.
    rec.sec = static_cast<uint32_t>(h->ts.tv_sec);
    rec.frac = static_cast<uint32_t>(h->ts.tv_usec);
    rec.caplen = h->caplen;
    rec.len = h->len;
    rec.bytes.assign(data, data + h->caplen);
    if (h->ts.tv_sec >= (int64_t{1} << 32)) rec.frac = UINT32_MAX;  // marks what a pcap cannot hold
    v.records.push_back(std::move(rec));
  }
  if (r == PCAP_ERROR) v.error = pcap_geterr(p);
  pcap_close(p);
  return v;
}

std::vector<fs::path> corpus_files() {
  std::vector<fs::path> files;
  for (const auto& e : fs::directory_iterator(VEIPIPE_CORPUS_DIR)) {
    const auto name = e.path().filename().string();
    if (name != "MANIFEST.tsv" && name != "SHA256SUMS") files.push_back(e.path());
  }
  std::sort(files.begin(), files.end());
  return files;
}

}  // namespace

TEST_CASE("every corpus capture: veipipe keeps every record libpcap delivers") {
  const auto files = corpus_files();
  REQUIRE(files.size() >= 40);
  test::TempDir tmp;
  for (const auto& file : files) {
    CAPTURE(file.filename().string());
    const auto lib = read_with_libpcap(file);
    const auto out = tmp / (file.filename().string() + ".out");
    const auto description = fmt::format("pcap({}, disorder=keep) -> file({}, precision=ns)", file.string(), out.string());
    if (!lib.opened) {
      // libpcap cannot open it: neither can we, and the message names the file.
      try {
        (void)Engine::from_description("<test>", description, true);
        FAIL("opened a capture libpcap refuses: " << lib.error);
      } catch (const std::runtime_error& e) {
        CHECK(std::string(e.what()).find(file.string()) != std::string::npos);
      }
      CHECK_FALSE(fs::exists(out));
      continue;
    }
    // libpcap stops at a pcapng interface whose link type or snaplen differs from the first one's;
    // veipipe's reader goes on (the next test case compares those files with tshark). What a pcap
    // output does with several link types is the engine's business, not this test's.
    const bool libpcap_stops = lib.error.starts_with("an interface has a ");
    if (lib.error.starts_with("an interface has a type ")) continue;
    auto engine = Engine::from_description("<test>", description, true);
    engine.start();
    const int status = engine.wait();
    const auto stats = engine.stats();
    const auto ours = test::read_raw(out);

    size_t unrepresentable = 0;
    for (const auto& r : lib.records) unrepresentable += r.frac == UINT32_MAX;
    const bool expect_damage = (!lib.error.empty() && !libpcap_stops) || unrepresentable > 0;
    CHECK(status == (expect_damage ? exit_damaged : exit_ok));
    if (expect_damage) {
      REQUIRE_FALSE(stats.warnings.empty());
      CHECK(stats.warnings.front().find(file.string()) != std::string::npos);
    }
    if (lib.error.empty())
      CHECK(ours.records.size() == lib.records.size() - unrepresentable);
    else if (libpcap_stops)
      CHECK(ours.records.size() > lib.records.size());
    else
      CHECK(ours.records.size() >= lib.records.size());

    size_t i = 0;
    for (const auto& expected : lib.records) {
      if (expected.frac == UINT32_MAX) continue;
      REQUIRE(i < ours.records.size());
      const auto& got = ours.records[i++];
      CAPTURE(i);
      // Timestamps compare as nanoseconds: libpcap leaves an invalid fraction (>= 1 s) unnormalised.
      CHECK(got.ts_ns(ours.nanos) == expected.ts_ns(true));
      CHECK(got.len == expected.len);
      // libpcap silently clips records longer than the file's snaplen; veipipe keeps them whole.
      CHECK(got.caplen >= expected.caplen);
      if (got.caplen != expected.caplen) CHECK(expected.caplen < got.caplen);
      CHECK(std::equal(expected.bytes.begin(), expected.bytes.end(), got.bytes.begin()));
    }

    // The output is a capture libpcap reads to the end, under the input's link type.
    const auto reread = read_with_libpcap(out);
    CHECK(reread.opened);
    CHECK(reread.error.empty());
    CHECK(reread.records.size() == ours.records.size());
    CHECK(reread.dlt == lib.dlt);
  }
}

namespace {

// What tshark reads of each packet: time (empty for a Simple Packet Block, which has none), captured
// and original lengths, the link type of its interface (Wireshark's encapsulation, 1 Ethernet, 15
// NULL). Not its interface id or name: tshark 4.0 looks them up by the id within the section in
// the first section's list (test202's second section names its Ethernet interface "silly ethernet
// interface 2"; tshark says "eth0").
struct TsharkPacket {
  std::string time;
  uint32_t caplen = 0, len = 0;
  uint32_t linktype = 0;
};

std::vector<TsharkPacket> read_with_tshark(const fs::path& path) {
  const std::string command = "tshark -r '" + path.string() +
                              "' -T fields -E separator=/t -e frame.time_epoch -e frame.cap_len -e frame.len "
                              "-e frame.interface_id -e frame.encap_type 2>/dev/null";
  FILE* pipe = ::popen(command.c_str(), "r");
  REQUIRE(pipe);
  std::string text;
  char buf[4096];
  for (size_t n; (n = std::fread(buf, 1, sizeof buf, pipe)) > 0;) text.append(buf, n);
  REQUIRE(::pclose(pipe) == 0);
  std::vector<TsharkPacket> packets;
  std::istringstream lines(text);
  for (std::string line; std::getline(lines, line);) {
    std::vector<std::string> f;
    std::istringstream fields(line);
    for (std::string field; std::getline(fields, field, '\t');) f.push_back(field);
    f.resize(5);
    if (f[3].empty()) continue;  // a custom block tshark shows as a frame: no packet, no interface
    REQUIRE((f[4] == "1" || f[4] == "15"));
    packets.push_back({f[0], static_cast<uint32_t>(std::stoul(f[1])), static_cast<uint32_t>(std::stoul(f[2])),
                       f[4] == "1" ? 1u : 0u});
  }
  return packets;
}

}  // namespace

TEST_CASE("pcapng files of interfaces that differ, which libpcap stops in: every packet, as tshark reads them") {
  for (const char* name : {"pcapngtestgen-le-test005.pcapng", "pcapngtestgen-le-test006.pcapng",
                           "pcapngtestgen-le-test202.pcapng"}) {
    CAPTURE(name);
    const auto file = fs::path(VEIPIPE_CORPUS_DIR) / name;
    CHECK(read_with_libpcap(file).error.starts_with("an interface has a "));
    const auto expected = read_with_tshark(file);
    REQUIRE(expected.size() >= 4);
    Report report;
    report.set_quiet(true);
    SourceOptions options;
    options.report = &report;
    options.clamp_disorder = false;
    auto source = open_capture(file.string(), options);
    source->set_mapping(0, pcap::Precision::ns);
    Batch batch;
    batch.reserve_arena(default_arena_size);
    size_t i = 0;
    do {
      source->fill(batch);
      for (const Record& r : batch.records) {
        CAPTURE(i);
        REQUIRE(i < expected.size());
        const auto& want = expected[i++];
        if (!want.time.empty()) CHECK(fmt::format("{}.{:09}", r.ts_ns / pcap::ns_per_s, r.ts_ns % pcap::ns_per_s) == want.time);
        CHECK(r.caplen == want.caplen);
        CHECK(r.len == want.len);
        CHECK(source->options().interfaces->at(r.iface).value().linktype == want.linktype);
      }
    } while (!batch.last);
    CHECK(i == expected.size());
    for (const auto& m : report.messages()) CHECK(m.find("byte offset") == std::string::npos);
  }
}

TEST_CASE("records longer than the file's snaplen are kept whole, unlike libpcap") {
  test::TempDir tmp;
  const auto out = tmp / "out.pcap";
  REQUIRE(test::run_pipeline(fmt::format("pcap({}/joincap-very_small_snaplen.pcap) -> file({})", VEIPIPE_CORPUS_DIR,
                                         out.string())) == exit_ok);
  const auto ours = test::read_raw(out);
  const auto original = test::read_raw(fs::path(VEIPIPE_CORPUS_DIR) / "joincap-ok.pcap");
  REQUIRE(ours.records.size() == 851);
  REQUIRE(original.records.size() == 851);
  for (size_t i = 0; i < ours.records.size(); ++i) CHECK(ours.records[i].bytes == original.records[i].bytes);
  CHECK(ours.snaplen == 262144);
}

TEST_CASE("a time going back is clamped by default and reported") {
  test::TempDir tmp;
  const auto out = tmp / "out.pcap";
  auto engine = Engine::from_description(
      "<test>",
      fmt::format("pcap({}/joincap-second_packet_time_is_1970.pcap) -> file({})", VEIPIPE_CORPUS_DIR, out.string()),
      true);
  engine.start();
  CHECK(engine.wait() == exit_ok);
  const auto stats = engine.stats();
  CHECK(stats.sources[0].disordered == 1);
  REQUIRE(stats.warnings.size() == 1);
  CHECK(stats.warnings[0].find("first: record 1") != std::string::npos);
  const auto ours = test::read_raw(out);
  REQUIRE(ours.records.size() == 851);
  for (size_t i = 1; i < ours.records.size(); ++i)
    CHECK(ours.records[i].ts_ns(ours.nanos) >= ours.records[i - 1].ts_ns(ours.nanos));
  CHECK(ours.records[1].ts_ns(false) == ours.records[0].ts_ns(false));
}

TEST_CASE("damaged classic captures are reported with record number and byte offset") {
  struct Case {
    const char* file;
    size_t kept;
    const char* says;
  };
  const Case cases[] = {
      {"joincap-unexpected_eof_on_second_packet.pcap", 1,
       "truncated: record 1 at byte offset 248 promises 78 captured bytes, only 36 remain"},
      {"joincap-partial_first_header.pcap", 0, "truncated: record 0 at byte offset 24 has only 11 of its 16 header bytes"},
      {"joincap-bad_first_header.pcap", 1, "record 1 at byte offset 40: corrupt record header (caplen 2368110654"},
      {"joincap-bad_end.pcap", 851, "record 851 at byte offset 543036: corrupt record header (caplen 3401011463"},
  };
  test::TempDir tmp;
  for (const auto& c : cases) {
    CAPTURE(c.file);
    const auto out = tmp / "out.pcap";
    auto engine = Engine::from_description(
        "<test>", fmt::format("pcap({}/{}) -> file({})", VEIPIPE_CORPUS_DIR, c.file, out.string()), true);
    engine.start();
    CHECK(engine.wait() == exit_damaged);
    const auto warnings = engine.stats().warnings;
    CHECK(std::any_of(warnings.begin(), warnings.end(),
                      [&](const std::string& w) { return w.find(c.says) != std::string::npos; }));
    CHECK(test::read_raw(out).records.size() == c.kept);
  }
}

namespace {

// How an old or unusual writer laid a classic pcap out: its magic and version, its byte order,
// whether records put len before caplen (the order before 2.3), and Kuznetsov's 8 extra header bytes.
struct OldLayout {
  const char* name;
  uint32_t magic;
  uint16_t major, minor;
  bool big_endian;
  bool len_first;
  size_t header_size;
};

void write_old(const fs::path& path, const test::RawFile& f, const OldLayout& layout) {
  std::string bytes;
  const auto put = [&](auto v) {
    if (layout.big_endian) {
      if constexpr (sizeof v == 2) v = __builtin_bswap16(v);
      else v = __builtin_bswap32(v);
    }
    bytes.append(reinterpret_cast<const char*>(&v), sizeof v);
  };
  put(layout.magic);
  put(layout.major);
  put(layout.minor);
  put(uint32_t{0});
  put(uint32_t{0});
  put(f.snaplen);
  put(f.linktype);
  for (const auto& r : f.records) {
    put(r.sec);
    put(r.frac);
    put(layout.len_first ? r.len : r.caplen);
    put(layout.len_first ? r.caplen : r.len);
    bytes.append(layout.header_size - 16, '\x5a');
    bytes.append(r.bytes.begin(), r.bytes.end());
  }
  std::ofstream(path, std::ios::binary) << bytes;
}

}  // namespace

TEST_CASE("every classic pcap version libpcap reads, with its corrections of the length fields") {
  // Records cut to 60 bytes, so that caplen < len tells the two length fields apart.
  auto original = test::read_raw(fs::path(VEIPIPE_CORPUS_DIR) / "tcpreplay-test.pcap");
  for (auto& r : original.records) {
    r.caplen = std::min<uint32_t>(r.caplen, 60);
    r.bytes.resize(r.caplen);
  }
  const OldLayout layouts[] = {
      {"2.0 (len before caplen)", 0xa1b2c3d4, 2, 0, false, true, 16},
      {"2.2 (len before caplen)", 0xa1b2c3d4, 2, 2, false, true, 16},
      {"2.2 big-endian", 0xa1b2c3d4, 2, 2, true, true, 16},
      {"2.3 written in the old order", 0xa1b2c3d4, 2, 3, false, true, 16},
      {"2.3 written in the new order", 0xa1b2c3d4, 2, 3, true, false, 16},
      {"543.0 (DG/UX)", 0xa1b2c3d4, 543, 0, false, true, 16},
      {"Kuznetsov's 24-byte headers", 0xa1b2cd34, 2, 4, false, false, 24},
      {"Kuznetsov's, big-endian", 0xa1b2cd34, 2, 4, true, false, 24},
  };
  test::TempDir tmp;
  for (const auto& layout : layouts) {
    CAPTURE(layout.name);
    const auto in = tmp / "old.pcap";
    const auto out = tmp / "out.pcap";
    write_old(in, original, layout);
    const auto lib = read_with_libpcap(in);
    REQUIRE(lib.error.empty());
    REQUIRE(lib.records.size() == original.records.size());
    REQUIRE(test::run_pipeline(fmt::format("pcap({}) -> file({})", in.string(), out.string())) == exit_ok);
    const auto ours = test::read_raw(out);
    REQUIRE(ours.records.size() == lib.records.size());
    for (size_t i = 0; i < ours.records.size(); ++i) {
      CAPTURE(i);
      const auto& got = ours.records[i];
      const auto& want = lib.records[i];
      CHECK(got.ts_ns(false) == want.ts_ns(true));
      CHECK(got.caplen == want.caplen);
      CHECK(got.len == want.len);
      CHECK(got.bytes == want.bytes);
      CHECK(got.bytes == original.records[i].bytes);
      CHECK(got.len == original.records[i].len);
    }
  }
}

TEST_CASE("pcap(from=, until=, count=): the records of the window, the rest counted as skipped, pcapng too") {
  test::TempDir tmp;
  for (const char* name : {"tcpreplay-test.pcap", "scapy-ikev2_nat_t.pcapng"}) {
    CAPTURE(name);
    const auto file = fs::path(VEIPIPE_CORPUS_DIR) / name;
    const auto lib = read_with_libpcap(file);
    REQUIRE(lib.records.size() > 20);
    const int64_t first = lib.records[0].ts_ns(true);
    // A window from the 4th record's time to the 16th's, then count=5 within it.
    const int64_t from = lib.records[3].ts_ns(true) - first, until = lib.records[15].ts_ns(true) - first;
    std::vector<test::RawRecord> window;
    uint64_t before = 0;
    for (const auto& r : lib.records) {
      const int64_t t = r.ts_ns(true) - first;
      before += t < from;
      if (t >= from && t < until && window.size() < 5) window.push_back(r);
    }
    REQUIRE(window.size() == 5);
    const auto out = tmp / "out.pcap";
    auto engine = Engine::from_description(
        "<test>", fmt::format("pcap({}, from=+{}ns, until=+{}ns, count=5) -> file({}, precision=ns)", file.string(), from,
                              until, out.string()),
        true);
    engine.start();
    CHECK(engine.wait() == exit_ok);
    CHECK(engine.stats().sources[0].packets == 5);
    CHECK(engine.stats().sources[0].skipped == before);
    const auto ours = test::read_raw(out);
    REQUIRE(ours.records.size() == window.size());
    for (size_t i = 0; i < window.size(); ++i) {
      CHECK(ours.records[i].ts_ns(true) == window[i].ts_ns(true));
      CHECK(ours.records[i].bytes == window[i].bytes);
    }
  }
}
