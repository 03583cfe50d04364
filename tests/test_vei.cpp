// The vei.h C API through its C functions: nech0's transcription, VEI_PING and VEI_POST_JPG packets
// checked byte by byte with an independent checksum, between the hosts of the background, error
// codes for every misuse order, injection from several threads. At top speed (VEI_SPEED), as CI
// needs; tests/vei_events_test.sh checks the default real-time pacing.
//
// Every test case name contains "vei.h", so `veipipe_tests -tc='*vei.h*'` runs them all.

#include <doctest/doctest.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <signal.h>
#include <fmt/format.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <chrono>
#include <condition_variable>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <iterator>
#include <mutex>
#include <optional>
#include <set>
#include <thread>
#include <vector>

#include "pipeline/engine.h"
#include "pipeline/stage.h"
#include "pipeline/vei.h"
#include "inject_util.h"
#include "testutil.h"

using namespace vei;
using test::RawFile;
using test::RawRecord;
using namespace vei::test::inject;


namespace {

const bool top_speed = ::setenv("VEI_SPEED", "topspeed", 1) == 0;

// The hosts of ip_rec backgrounds, and those of a background that cannot be read twice (a pipe).
constexpr uint32_t bg_client = 0xc0000201, bg_server = 0xc0000202;  // 192.0.2.1, 192.0.2.2
constexpr uint32_t pipe_client = 0x0a630001, pipe_server = 0x0a630002;  // 10.99.0.1, 10.99.0.2

// A background record that is an IPv4 packet 192.0.2.1 -> 192.0.2.2 (hosts for the events), its
// tag in its first bytes as rec()'s.
RawRecord ip_rec(uint32_t tag, uint32_t usec) {
  RawRecord r = rec(tag, usec);
  const unsigned char ip[] = {0x08, 0x00, 0x45, 0, 0, 46, 0, 0, 0, 0, 64, 17, 0, 0, 192, 0, 2, 1, 192, 0, 2, 2};
  std::copy(std::begin(ip), std::end(ip), r.bytes.begin() + 12);
  return r;
}

// vei_finish() on every exit path of a test, so that a failed check leaves the library clean.
struct Finish {
  ~Finish() { vei_finish(); }
};

uint16_t be16(const unsigned char* p) { return static_cast<uint16_t>(p[0] << 8 | p[1]); }
uint32_t be32(const unsigned char* p) { return uint32_t{be16(p)} << 16 | be16(p + 2); }

// RFC 1071, independent of stages/: the folded sum; 0xffff over data holding a valid checksum.
uint16_t ones_sum(const unsigned char* p, size_t n, uint32_t sum = 0) {
  for (size_t i = 0; i + 1 < n; i += 2) sum += be16(p + i);
  if (n % 2) sum += uint32_t{p[n - 1]} << 8;
  while (sum >> 16) sum = (sum & 0xffff) + (sum >> 16);
  return static_cast<uint16_t>(sum);
}

struct Ipv4 {
  const unsigned char* ip = nullptr;
  size_t header = 0, total = 0;
  uint8_t protocol = 0;
  uint32_t src = 0, dst = 0;
};

// The IPv4 packet in an Ethernet frame, its header checksum checked; nullopt with a reason.
std::optional<Ipv4> ipv4(const RawRecord& r, std::string& why) {
  const auto& b = r.bytes;
  if (b.size() < 34 || be16(&b[12]) != 0x0800) return why = "not IPv4 over Ethernet", std::nullopt;
  Ipv4 v;
  v.ip = &b[14];
  v.header = size_t{v.ip[0] & 0x0fu} * 4;
  v.total = be16(v.ip + 2);
  if ((v.ip[0] >> 4) != 4 || v.header < 20 || v.total < v.header || 14 + v.total > b.size())
    return why = "bad IPv4 header lengths", std::nullopt;
  if (ones_sum(v.ip, v.header) != 0xffff) return why = "bad IPv4 header checksum", std::nullopt;
  v.protocol = v.ip[9];
  v.src = be32(v.ip + 12);
  v.dst = be32(v.ip + 16);
  return v;
}

// VEI_PING's echo request `client` -> `server` with valid checksums; returns its sequence number.
std::optional<uint16_t> vei_ping(const RawRecord& r, std::string& why, uint32_t client = bg_client, uint32_t server = bg_server) {
  const auto v = ipv4(r, why);
  if (!v) return std::nullopt;
  if (v->protocol != 1 || v->src != client || v->dst != server) return why = "not ICMP from the client to the server", std::nullopt;
  const unsigned char* icmp = v->ip + v->header;
  const size_t n = v->total - v->header;
  if (n < 8 || icmp[0] != 8 || icmp[1] != 0) return why = "not an echo request", std::nullopt;
  if (ones_sum(icmp, n) != 0xffff) return why = "bad ICMP checksum", std::nullopt;
  if (be16(icmp + 4) != 0x7665) return why = "unexpected ICMP identifier", std::nullopt;
  return be16(icmp + 6);
}

// A TCP segment with valid checksums; returns its flags.
std::optional<uint8_t> vei_tcp(const RawRecord& r, std::string& why) {
  const auto v = ipv4(r, why);
  if (!v) return std::nullopt;
  if (v->protocol != 6) return why = "not TCP", std::nullopt;
  const unsigned char* tcp = v->ip + v->header;
  const size_t n = v->total - v->header;
  if (n < 20) return why = "short TCP header", std::nullopt;
  uint32_t pseudo = be16(v->ip + 12) + be16(v->ip + 14) + be16(v->ip + 16) + be16(v->ip + 18) + 6 + static_cast<uint32_t>(n);
  if (ones_sum(tcp, n, pseudo) != 0xffff) return why = "bad TCP checksum", std::nullopt;
  return tcp[13];
}

// Transcribes `bg` to `out` through the C API, injecting `pre` events before the start.
int transcribe(const std::filesystem::path& bg, const std::filesystem::path& out, std::vector<VEI_EVENT_TYPE> pre = {},
               std::vector<int>* results = nullptr) {
  FILE* b = std::fopen(bg.c_str(), "r");
  FILE* o = std::fopen(out.c_str(), "wb");
  REQUIRE(b);
  REQUIRE(o);
  if (const int r = initialize_vei_library(b, o); r != 0) {
    std::fclose(b);
    std::fclose(o);
    return r;
  }
  Finish finish;
  for (auto e : pre) {
    const int r = inject_event(e);
    if (results) results->push_back(r);
  }
  return start_vei_transcription();
}

}  // namespace

TEST_CASE("vei.h without injecting: nech0's transcription gives the input's records byte for byte") {
  test::TempDir tmp;
  std::vector<RawRecord> records;
  for (uint32_t i = 0; i < 5000; ++i) records.push_back(rec(i, i * 7, 60 + i % 1400));
  test::write_raw(tmp / "bg.pcap", capture(records));
  REQUIRE(transcribe(tmp / "bg.pcap", tmp / "out.pcap") == 0);
  const auto in = slurp(tmp / "bg.pcap"), out = slurp(tmp / "out.pcap");
  REQUIRE(out.size() == in.size());
  CHECK(out.substr(0, 4) == in.substr(0, 4));    // magic: µs, same byte order
  CHECK(out.substr(20, 4) == in.substr(20, 4));  // link type
  CHECK(out.substr(24) == in.substr(24));

  // Nanosecond input: nanosecond output, records identical too.
  auto ns = capture(records);
  ns.nanos = true;
  test::write_raw(tmp / "bg-ns.pcap", ns);
  REQUIRE(transcribe(tmp / "bg-ns.pcap", tmp / "out-ns.pcap") == 0);
  CHECK(slurp(tmp / "out-ns.pcap").substr(24) == slurp(tmp / "bg-ns.pcap").substr(24));
}

TEST_CASE("vei.h inject_event(VEI_PING) adds exactly one ICMP echo request with valid checksums") {
  test::TempDir tmp;
  test::write_raw(tmp / "bg.pcap", capture({ip_rec(0, 10), ip_rec(1, 20), ip_rec(2, 30)}));
  std::vector<int> results;
  REQUIRE(transcribe(tmp / "bg.pcap", tmp / "out.pcap", {VEI_PING}, &results) == 0);
  CHECK(results == std::vector<int>{1});
  const auto out = test::read_raw(tmp / "out.pcap");
  REQUIRE(out.records.size() == 4);
  CHECK(out.linktype == 1);
  const auto& ping = out.records[1];  // at the background's first packet time, after it (rank)
  CHECK(ping.ts_ns(false) == t0_ns + 10'000);
  std::string why;
  const auto seq = vei_ping(ping, why);
  CHECK_MESSAGE(seq.has_value(), why);
  CHECK(seq == uint16_t{1});
  CHECK(tag_of(out.records[0].bytes) == 0);
  CHECK(tag_of(out.records[2].bytes) == 1);
  CHECK(tag_of(out.records[3].bytes) == 2);
}

TEST_CASE("vei.h inject_event(VEI_POST_JPG) injects a whole TCP conversation with valid checksums") {
  test::TempDir tmp;
  // The background lasts longer than the conversations (tens of ms at the default 10 ms rtt), so
  // that its last record is the output's last.
  test::write_raw(tmp / "bg.pcap", capture({ip_rec(0, 10), ip_rec(1, 900'000)}));
  std::vector<int> results;
  if (!find_stage("http")) {  // the http stage lands with the other conversation stages
    REQUIRE(transcribe(tmp / "bg.pcap", tmp / "out.pcap", {VEI_POST_JPG}, &results) == 0);
    CHECK(results == std::vector<int>{-BAD_EVENT_TYPE});
    return;
  }
  REQUIRE(transcribe(tmp / "bg.pcap", tmp / "out.pcap", {VEI_POST_JPG, VEI_PING, VEI_POST_JPG}, &results) == 0);
  REQUIRE(results.size() == 3);
  CHECK(results[0] > 5);  // handshake, request segments, response, teardown
  CHECK(results[1] == 1);
  CHECK(results[2] == results[0]);
  const auto out = test::read_raw(tmp / "out.pcap");
  REQUIRE(out.records.size() == static_cast<size_t>(2 + results[0] + results[1] + results[2]));
  int syn = 0, fin = 0, pings = 0;
  std::string http;
  int64_t previous = 0;
  for (size_t i = 1; i + 1 < out.records.size(); ++i) {
    const auto& r = out.records[i];
    CHECK(r.ts_ns(false) >= previous);
    previous = r.ts_ns(false);
    std::string why;
    if (const auto flags = vei_tcp(r, why)) {
      syn += (*flags & 0x02) != 0;
      fin += (*flags & 0x01) != 0;
      http.append(r.bytes.begin(), r.bytes.end());
    } else if (vei_ping(r, why)) {
      ++pings;
    } else {
      FAIL_CHECK("record ", i, ": ", why);
    }
  }
  CHECK(syn == 4);  // SYN and SYN/ACK, twice
  CHECK(fin == 4);
  CHECK(pings == 1);
  CHECK(http.find("POST ") != std::string::npos);
  CHECK(http.find("image/jpeg") != std::string::npos);
  CHECK(http.find("\xff\xd8\xff") != std::string::npos);  // the JPEG's start of image
}

TEST_CASE("vei.h error codes for every misuse order (inject_event after vei_finish is -LIB_NOT_INITIALIZED)") {
  test::TempDir tmp;
  test::write_raw(tmp / "bg.pcap", capture({ip_rec(0, 10), ip_rec(1, 20)}));
  vei_finish();  // before anything: nothing to do
  CHECK(inject_event(VEI_PING) == -LIB_NOT_INITIALIZED);
  CHECK(inject_event(static_cast<VEI_EVENT_TYPE>(7903)) == -LIB_NOT_INITIALIZED);  // state first
  CHECK(start_vei_transcription() == -LIB_NOT_INITIALIZED);
  CHECK(initialize_vei_library(nullptr, nullptr) == -BAD_BTRACE_FILE);

  {  // a text file as the background: refused, the library stays uninitialised, nothing is closed
    std::ofstream(tmp / "text.txt") << "this is not a capture file\nat all\n";
    FILE* b = std::fopen((tmp / "text.txt").c_str(), "r");
    FILE* o = std::fopen((tmp / "out.pcap").c_str(), "wb");
    REQUIRE(b);
    REQUIRE(o);
    CHECK(initialize_vei_library(b, o) == -BAD_BTRACE_FILE);
    CHECK(inject_event(VEI_PING) == -LIB_NOT_INITIALIZED);
    CHECK(initialize_vei_library(b, nullptr) == -BAD_OTRACE_FILE);
    FILE* read_only = std::fopen((tmp / "bg.pcap").c_str(), "r");
    FILE* bg = std::fopen((tmp / "bg.pcap").c_str(), "r");
    CHECK(initialize_vei_library(bg, read_only) == -BAD_OTRACE_FILE);  // output not open for writing
    FILE* same = std::fopen((tmp / "bg.pcap").c_str(), "r+");
    CHECK(initialize_vei_library(bg, same) == -BAD_OTRACE_FILE);  // output is the background
    CHECK(std::fclose(b) == 0);  // still ours
    CHECK(std::fclose(o) == 0);
    CHECK(std::fclose(read_only) == 0);
    CHECK(std::fclose(bg) == 0);
    CHECK(std::fclose(same) == 0);
  }

  FILE* b = std::fopen((tmp / "bg.pcap").c_str(), "r");
  FILE* o = std::fopen((tmp / "out.pcap").c_str(), "wb");
  REQUIRE(initialize_vei_library(b, o) == 0);
  {
    Finish finish;
    CHECK(initialize_vei_library(b, o) == -BAD_THREAD_INIT);  // twice
    CHECK(inject_event(static_cast<VEI_EVENT_TYPE>(7903)) == -BAD_EVENT_TYPE);  // past the last
    CHECK(inject_event(static_cast<VEI_EVENT_TYPE>(0)) == -BAD_EVENT_TYPE);
    CHECK(inject_event(VEI_PING) == 1);
    CHECK(start_vei_transcription() == 0);
    CHECK(start_vei_transcription() == -THREAD_KICKOFF_FAILED);  // once per initialisation
    CHECK(inject_event(VEI_PING) == -LIB_NOT_TRANSCRIBING);      // ran, not yet finished
    CHECK(inject_event(VEI_SMTP) == -LIB_NOT_TRANSCRIBING);
    vei_finish();
    CHECK(inject_event(VEI_PING) == -LIB_NOT_INITIALIZED);  // finished: uninitialised again
    CHECK(start_vei_transcription() == -LIB_NOT_INITIALIZED);
  }  // and vei_finish() a second time, by `finish`
  vei_finish();
  CHECK(test::read_raw(tmp / "out.pcap").records.size() == 3);

  // Initialised again after vei_finish(): works as the first time.
  std::vector<int> results;
  CHECK(transcribe(tmp / "bg.pcap", tmp / "out2.pcap", {VEI_PING, VEI_PING}, &results) == 0);
  CHECK(results == std::vector<int>{1, 1});
  CHECK(test::read_raw(tmp / "out2.pcap").records.size() == 4);
}

TEST_CASE("vei.h vei_finish without a start writes the header and the injected packets, and many injected before the start are kept") {
  test::TempDir tmp;
  test::write_raw(tmp / "bg.pcap", capture({ip_rec(0, 10), ip_rec(1, 20)}));
  {
    FILE* b = std::fopen((tmp / "bg.pcap").c_str(), "r");
    FILE* o = std::fopen((tmp / "out.pcap").c_str(), "wb");
    REQUIRE(initialize_vei_library(b, o) == 0);
    CHECK(inject_event(VEI_PING) == 1);
    vei_finish();
    const auto out = test::read_raw(tmp / "out.pcap");
    CHECK(out.linktype == 1);
    REQUIRE(out.records.size() == 1);
    std::string why;
    CHECK_MESSAGE(vei_ping(out.records[0], why).has_value(), why);
  }
  {  // 300 events before the start: all kept, all at the background's first packet time
    std::vector<VEI_EVENT_TYPE> pings(300, VEI_PING);
    std::vector<int> results;
    REQUIRE(transcribe(tmp / "bg.pcap", tmp / "out2.pcap", pings, &results) == 0);
    CHECK(std::count(results.begin(), results.end(), 1) == 300);
    const auto out = test::read_raw(tmp / "out2.pcap");
    REQUIRE(out.records.size() == 302);
    size_t ours = 0;
    for (size_t i = 1; i <= 300; ++i) {
      CHECK(out.records[i].ts_ns(false) == t0_ns + 10'000);
      std::string why;
      ours += vei_ping(out.records[i], why).has_value();
    }
    CHECK(ours == 300);
  }
}

TEST_CASE("vei.h inject_event from 4 threads during the transcription, background through a pipe") {
  test::TempDir tmp;
  veigen(tmp / "bg.pcap", "16MiB");
  ::signal(SIGPIPE, SIG_IGN);  // should the run end early, the writer gets EPIPE instead
  int p[2];
  REQUIRE(::pipe(p) == 0);
  std::thread writer([&] {  // the background arrives through a pipe, as from `cat bg.pcap |`
    const auto bytes = slurp(tmp / "bg.pcap");
    size_t done = 0;
    while (done < bytes.size()) {
      const ssize_t w = ::write(p[1], bytes.data() + done, bytes.size() - done);
      if (w <= 0) break;
      done += static_cast<size_t>(w);
    }
    ::close(p[1]);
  });
  FILE* b = ::fdopen(p[0], "r");
  FILE* o = std::fopen((tmp / "out.pcap").c_str(), "wb");
  REQUIRE(initialize_vei_library(b, o) == 0);
  std::optional<Watchdog> watchdog(std::in_place, "a vei.h transcription with 4 threads injecting", 60);
  std::atomic<long> packets{0}, pings{0}, jpgs{0}, errors{0};
  const bool http = find_stage("http") != nullptr;
  std::vector<std::thread> injectors;
  for (int t = 0; t < 4; ++t)
    injectors.emplace_back([&, t] {
      for (int i = 0;; ++i) {
        const bool jpg = http && t == 0 && i % 50 == 49;
        const int r = inject_event(jpg ? VEI_POST_JPG : VEI_PING);
        if (r == -LIB_NOT_TRANSCRIBING) return;
        if (r <= 0) {
          errors.fetch_add(1);
          return;
        }
        packets.fetch_add(r);
        (jpg ? jpgs : pings).fetch_add(1);
      }
    });
  const int run = start_vei_transcription();
  for (auto& t : injectors) t.join();
  vei_finish();
  writer.join();
  watchdog.reset();
  CHECK(run == 0);
  CHECK(errors == 0);
  CHECK(pings > 0);

  const auto bg = test::read_raw(tmp / "bg.pcap");
  const auto out = test::read_raw(tmp / "out.pcap");
  CHECK(out.records.size() == bg.records.size() + static_cast<size_t>(packets.load()));
  // The background in order and unchanged, time never going back, every other record ours and valid.
  size_t j = 0, icmp = 0;
  int64_t previous = INT64_MIN;
  std::string problem;
  for (size_t i = 0; i < out.records.size() && problem.empty(); ++i) {
    const auto& r = out.records[i];
    if (r.ts_ns(false) < previous) problem = fmt::format("record {}: time goes back", i);
    previous = r.ts_ns(false);
    std::string why;
    if (j < bg.records.size() && same_record(r, bg.records[j])) {
      ++j;
    } else if (vei_ping(r, why, pipe_client, pipe_server)) {
      ++icmp;
    } else if (!vei_tcp(r, why)) {
      problem = fmt::format("record {}: {}", i, why);
    }
  }
  CHECK_MESSAGE(problem.empty(), problem);
  CHECK(j == bg.records.size());
  CHECK(icmp == static_cast<size_t>(pings.load()));
  MESSAGE(fmt::format("{} pings and {} POST_JPGs ({} packets) during {} background records", pings.load(), jpgs.load(),
                      packets.load(), bg.records.size()));
}

TEST_CASE("vei.h a background without IP hosts refuses events with -NO_BACKGROUND_HOSTS; a bad VEI_SPEED fails the init with -BAD_SPEED") {
  test::TempDir tmp;
  test::write_raw(tmp / "bg.pcap", capture({rec(0, 10), rec(1, 20)}));  // Ethernet frames, none IP
  std::vector<int> results;
  REQUIRE(transcribe(tmp / "bg.pcap", tmp / "out.pcap", {VEI_PING, VEI_SMTP}, &results) == 0);
  CHECK(results == std::vector<int>{-NO_BACKGROUND_HOSTS, -NO_BACKGROUND_HOSTS});
  CHECK(test::read_raw(tmp / "out.pcap").records.size() == 2);

  for (const char* speed : {"fast", "0x", "1x) -> file(/tmp/x"}) {
    CAPTURE(speed);
    REQUIRE(::setenv("VEI_SPEED", speed, 1) == 0);
    CHECK(transcribe(tmp / "bg.pcap", tmp / "out.pcap") == -BAD_SPEED);
  }
  REQUIRE(::setenv("VEI_SPEED", "4x", 1) == 0);
  CHECK(transcribe(tmp / "bg.pcap", tmp / "out.pcap") == 0);
  REQUIRE(::setenv("VEI_SPEED", "topspeed", 1) == 0);
  CHECK(top_speed);
}
