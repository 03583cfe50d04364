// Injection: Engine::inject (stamping, explicit times, bad frames, the end of the run), the
// 8-thread stress (accepted == written, nothing lost or duplicated, time order), and the vei.h C
// API through its C functions (nech0's transcription, VEI_PING and VEI_POST_JPG packets checked
// byte by byte with an independent checksum, error codes for every misuse order).
//
// Every test case name contains "inject", so `veipipe_tests -tc='*inject*'` runs them all.
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
#include "pipeline/vei.h"
#include "testutil.h"

using namespace vei;
using test::RawFile;
using test::RawRecord;

namespace {

constexpr uint32_t t0 = 1'700'000'000;
constexpr int64_t t0_ns = int64_t{t0} * 1'000'000'000;
constexpr uint32_t injected_mark = 0x80000000;  // set in every injected frame's tag

RawRecord rec(uint32_t tag, uint32_t usec, size_t size = 60) {
  RawRecord r;
  r.sec = t0 + usec / 1'000'000;
  r.frac = usec % 1'000'000;
  r.bytes = test::tagged_frame(tag, size);
  r.caplen = r.len = static_cast<uint32_t>(size);
  return r;
}

RawFile capture(std::vector<RawRecord> records, uint32_t linktype = 1) {
  RawFile f;
  f.snaplen = 262144;
  f.linktype = linktype;
  f.records = std::move(records);
  return f;
}

uint32_t tag_of(const std::vector<unsigned char>& b) {
  return b.size() < 4 ? 0 : uint32_t{b[0]} | uint32_t{b[1]} << 8 | uint32_t{b[2]} << 16 | uint32_t{b[3]} << 24;
}

// The frame injected under `tag`: its size varies with the tag, its bytes encode it.
std::vector<std::byte> injected_frame(uint32_t tag) {
  const auto bytes = test::tagged_frame(tag, 64 + tag % 61);
  std::vector<std::byte> out(bytes.size());
  std::memcpy(out.data(), bytes.data(), bytes.size());
  return out;
}

bool is_injected_frame(const RawRecord& r) {
  const uint32_t tag = tag_of(r.bytes);
  if (!(tag & injected_mark)) return false;
  const auto want = injected_frame(tag);
  return r.caplen == want.size() && r.len == want.size() && std::memcmp(r.bytes.data(), want.data(), want.size()) == 0;
}

bool same_record(const RawRecord& a, const RawRecord& b) {
  return a.sec == b.sec && a.frac == b.frac && a.caplen == b.caplen && a.len == b.len && a.bytes == b.bytes;
}

// Checks `out` is `bg` with injected frames woven in: every background record, unchanged and in
// order; timestamps never decreasing; every other record an injected frame. Returns the injected
// frames' tags in output order (and sets `problem` to the first thing wrong, if anything is).
std::vector<uint32_t> woven_tags(const RawFile& bg, const RawFile& out, std::string& problem) {
  std::vector<uint32_t> tags;
  size_t j = 0;
  int64_t previous = INT64_MIN;
  for (size_t i = 0; i < out.records.size(); ++i) {
    const auto& r = out.records[i];
    const int64_t ts = r.ts_ns(out.nanos);
    if (ts < previous && problem.empty()) problem = fmt::format("record {}: time goes back by {} ns", i, previous - ts);
    previous = ts;
    if (j < bg.records.size() && same_record(r, bg.records[j])) {
      ++j;
    } else if (is_injected_frame(r)) {
      tags.push_back(tag_of(r.bytes));
    } else if (problem.empty()) {
      problem = fmt::format("record {} is neither background record {} nor an injected frame", i, j);
    }
  }
  if (j != bg.records.size() && problem.empty())
    problem = fmt::format("only {} of {} background records were written", j, bg.records.size());
  return tags;
}

std::string slurp(const std::filesystem::path& p) {
  std::ifstream in(p, std::ios::binary);
  return {std::istreambuf_iterator<char>(in), {}};
}

void veigen(const std::filesystem::path& out, const std::string& size, const std::string& extra = "") {
  const auto command = fmt::format("{}/veigen -o '{}' --size {} {} >/dev/null 2>&1", VEIPIPE_BINARY_DIR,
                                   out.string(), size, extra);
  REQUIRE_MESSAGE(std::system(command.c_str()) == 0, command);
}

std::string describe(const std::filesystem::path& bg, const std::filesystem::path& out, const std::string& sink = "") {
  return fmt::format("pcap({}) -> file({}{})", bg.string(), out.string(), sink);
}

// Fails fast instead of hanging the suite: aborts the process, saying what hung, when its scope
// lasts longer than `seconds` (a deadlock cannot be recovered from in-process).
class Watchdog {
 public:
  Watchdog(std::string what, int seconds)
      : thread_([this, what = std::move(what), seconds] {
          std::unique_lock lock(mutex_);
          if (!ended_.wait_for(lock, std::chrono::seconds(seconds), [this] { return done_; })) {
            std::fprintf(stderr, "WATCHDOG: %s did not end within %d s (a deadlock?); aborting\n", what.c_str(),
                         seconds);
            std::abort();
          }
        }) {}
  Watchdog(const Watchdog&) = delete;
  Watchdog& operator=(const Watchdog&) = delete;
  ~Watchdog() {
    {
      std::lock_guard lock(mutex_);
      done_ = true;
    }
    ended_.notify_all();
    thread_.join();
  }

 private:
  std::mutex mutex_;
  std::condition_variable ended_;
  bool done_ = false;
  std::thread thread_;  // last: starts once the members it uses exist
};

}  // namespace

// ---------------------------------------------------------------------------------------------
// Engine::inject

TEST_CASE("inject before the start: written at the background's first packet time, offsets and at_ns kept") {
  test::TempDir tmp;
  test::write_raw(tmp / "bg.pcap", capture({rec(0, 10), rec(1, 20), rec(2, 30), rec(3, 40)}));
  auto engine = Engine::from_description("<test>", describe(tmp / "bg.pcap", tmp / "out.pcap"), true);

  const auto a = injected_frame(injected_mark | 1), b = injected_frame(injected_mark | 2);
  const auto c = injected_frame(injected_mark | 3), d = injected_frame(injected_mark | 4);
  CHECK(engine.inject(a) == 1);  // now = the background's first packet (10 µs)
  const InjectedFrame pair[] = {{b, 0}, {c, 15'000}};
  CHECK(engine.inject(pair) == 2);                    // at 10 µs and 25 µs
  CHECK(engine.inject(d, t0_ns + 35'000) == 1);        // an explicit time in the future: 35 µs
  engine.start();
  REQUIRE(engine.wait() == exit_ok);

  const auto out = test::read_raw(tmp / "out.pcap");
  std::vector<std::pair<uint32_t, uint32_t>> got;  // (tag, µs)
  for (const auto& r : out.records) got.emplace_back(tag_of(r.bytes), r.frac);
  const std::vector<std::pair<uint32_t, uint32_t>> want = {
      {0, 10}, {injected_mark | 1, 10}, {injected_mark | 2, 10}, {1, 20}, {injected_mark | 3, 25},
      {2, 30}, {injected_mark | 4, 35}, {3, 40}};
  CHECK(got == want);
  const auto s = engine.stats();
  CHECK(s.accepted_events == 4);
  CHECK(s.events == 4);
  CHECK(s.late_events == 0);
  CHECK(s.packets == 8);
}

// stop() before start(): no background packet is merged, but the frames injected before must
// still be written at the background's first packet time (what "now" is before the run).
TEST_CASE("inject before a run stopped at once: written at the background's first packet time") {
  test::TempDir tmp;
  test::write_raw(tmp / "bg.pcap", capture({rec(0, 10), rec(1, 20)}));
  auto engine = Engine::from_description("<test>", describe(tmp / "bg.pcap", tmp / "out.pcap"), true);
  CHECK(engine.inject(injected_frame(injected_mark | 1)) == 1);
  engine.stop();
  engine.start();
  REQUIRE(engine.wait() == exit_ok);
  const auto out = test::read_raw(tmp / "out.pcap");
  REQUIRE(out.records.size() == 1);  // the injected frame, none of the background
  CHECK(tag_of(out.records[0].bytes) == (injected_mark | 1));
  CHECK(out.records[0].ts_ns(false) == t0_ns + 10'000);
}

TEST_CASE("inject with an explicit time already past: counted late and written at now") {
  test::TempDir tmp;
  test::write_raw(tmp / "bg.pcap", capture({rec(0, 10), rec(1, 20)}));
  auto engine = Engine::from_description("<test>", describe(tmp / "bg.pcap", tmp / "out.pcap"), true);
  const auto f = injected_frame(injected_mark | 7);
  CHECK(engine.inject(f, t0_ns - 5'000'000'000) == 1);  // 5 s before the background's first packet
  engine.start();
  REQUIRE(engine.wait() == exit_ok);
  const auto out = test::read_raw(tmp / "out.pcap");
  REQUIRE(out.records.size() == 3);
  CHECK(tag_of(out.records[1].bytes) == (injected_mark | 7));
  CHECK(out.records[1].ts_ns(false) == t0_ns + 10'000);
  CHECK(engine.stats().late_events == 1);
}

TEST_CASE("inject refuses empty frames, frames longer than the snaplen, decreasing offsets, and a finished run") {
  test::TempDir tmp;
  test::write_raw(tmp / "bg.pcap", capture({rec(0, 10), rec(1, 20)}));
  auto engine =
      Engine::from_description("<test>", describe(tmp / "bg.pcap", tmp / "out.pcap", ", snaplen=1000"), true);
  const std::vector<std::byte> empty, longest(1000, std::byte{0x45}), too_long(1001, std::byte{0x45});
  CHECK_THROWS_AS(engine.inject(std::span<const std::byte>(empty)), InjectError);
  CHECK_THROWS_AS(engine.inject(std::span<const std::byte>(too_long)), InjectError);
  const auto f = injected_frame(injected_mark | 1);
  const InjectedFrame backwards[] = {{f, 10}, {f, 5}};
  CHECK_THROWS_AS(engine.inject(backwards), InjectError);
  // A refused call injects nothing, not even the valid frames in it.
  const InjectedFrame mixed[] = {{f, 0}, {empty, 0}};
  CHECK_THROWS_AS(engine.inject(mixed), InjectError);
  CHECK(engine.inject(std::span<const std::byte>(longest)) == 1);
  CHECK(engine.stats().accepted_events == 1);

  engine.start();
  REQUIRE(engine.wait() == exit_ok);
  CHECK_THROWS_AS(engine.inject(std::span<const std::byte>(f)), InjectError);
  CHECK(engine.stats().accepted_events == 1);
  const auto out = test::read_raw(tmp / "out.pcap");
  REQUIRE(out.records.size() == 3);
  CHECK(out.records[1].caplen == 1000);
}

TEST_CASE("inject while the run goes: every accepted frame written once, in time order") {
  test::TempDir tmp;
  veigen(tmp / "bg.pcap", "24MiB");
  auto engine = Engine::from_description("<test>", describe(tmp / "bg.pcap", tmp / "out.pcap"), true);
  std::optional<Watchdog> watchdog(std::in_place, "a run with one thread injecting", 60);
  engine.start();
  std::vector<uint32_t> accepted;
  for (uint32_t i = 0;; ++i) {
    const uint32_t tag = injected_mark | i;
    size_t n = 0;
    try {
      n = engine.inject(injected_frame(tag));
    } catch (const InjectError&) {
      break;  // the run has ended
    }
    REQUIRE(n == 1);
    accepted.push_back(tag);
  }
  REQUIRE(engine.wait() == exit_ok);
  watchdog.reset();
  CHECK(accepted.size() > 0);

  const auto bg = test::read_raw(tmp / "bg.pcap");
  const auto out = test::read_raw(tmp / "out.pcap");
  std::string problem;
  const auto tags = woven_tags(bg, out, problem);
  CHECK_MESSAGE(problem.empty(), problem);
  CHECK(tags == accepted);  // one thread: in the order injected
  const auto s = engine.stats();
  CHECK(s.accepted_events == accepted.size());
  CHECK(s.events == accepted.size());
  CHECK(s.packets == out.records.size());
  MESSAGE(fmt::format("{} frames injected during a run of {} background records", accepted.size(), bg.records.size()));
}

// Each pre-start inject() call's batch is held until the background's first packet is merged: more
// calls than the event pool holds must grow it, not block the caller before start() can run.
TEST_CASE("inject: more than 64 calls before the start") {
  test::TempDir tmp;
  test::write_raw(tmp / "bg.pcap", capture({rec(0, 10), rec(1, 20)}));
  auto engine = Engine::from_description("<test>", describe(tmp / "bg.pcap", tmp / "out.pcap"), true);
  for (uint32_t i = 0; i < 200; ++i) REQUIRE(engine.inject(injected_frame(injected_mark | i)) == 1);
  engine.start();
  REQUIRE(engine.wait() == exit_ok);
  CHECK(test::read_raw(tmp / "out.pcap").records.size() == 202);
}

// Copies the FIFO `from` to the file `to` at about 128 MB/s, like a slow disk: the run then
// lasts long enough for every thread to inject all its frames while the background flows, and
// the engine's back-pressure path (a full output queue) is exercised too.
std::thread slow_reader(std::filesystem::path from, std::filesystem::path to) {
  return std::thread([from = std::move(from), to = std::move(to)] {
    const int in = ::open(from.c_str(), O_RDONLY | O_CLOEXEC);  // waits for the engine's sink
    if (in < 0) return;
    std::ofstream out(to, std::ios::binary);
    std::vector<char> buffer(size_t{256} << 10);
    for (;;) {
      const ssize_t r = ::read(in, buffer.data(), buffer.size());
      if (r < 0 && errno == EINTR) continue;
      if (r <= 0) break;
      out.write(buffer.data(), r);
      std::this_thread::sleep_for(std::chrono::milliseconds(2));
    }
    ::close(in);
  });
}

TEST_CASE("inject stress: 8 threads x 10,000 frames during a 64 MiB transcription, accepted == written") {
  test::TempDir tmp;
  veigen(tmp / "bg.pcap", "64MiB");
  const auto bg = test::read_raw(tmp / "bg.pcap");
  REQUIRE(::mkfifo((tmp / "out.fifo").c_str(), 0600) == 0);
  constexpr uint32_t threads = 8, per_thread = 10'000;

  // Even runs write through a slow reader and inject 50 frames per call: every frame must go in
  // while the background flows. Odd runs write straight to a file at full speed and inject one
  // frame per call: the run usually ends while the threads still inject (refused calls are
  // counted, and nothing refused may appear in the output).
  for (int run = 0; run < 4; ++run) {
    CAPTURE(run);
    const bool slow = run % 2 == 0;
    const uint32_t per_call = slow ? 50 : 1;
    std::thread reader;
    if (slow) reader = slow_reader(tmp / "out.fifo", tmp / "out.pcap");
    auto engine = Engine::from_description(
        "<test>", describe(tmp / "bg.pcap", slow ? tmp / "out.fifo" : tmp / "out.pcap"), true);
    std::optional<Watchdog> watchdog(std::in_place, fmt::format("stress run {}", run), 60);
    std::vector<std::vector<uint32_t>> accepted(threads);
    std::atomic<uint32_t> refused{0}, partial{0};
    std::atomic<bool> go{false};
    std::vector<std::thread> workers;
    for (uint32_t t = 0; t < threads; ++t)
      workers.emplace_back([&, t] {
        while (!go.load()) std::this_thread::yield();
        std::vector<std::vector<std::byte>> frames(per_call);
        std::vector<InjectedFrame> call(per_call);
        for (uint32_t i = 0; i < per_thread; i += per_call) {
          for (uint32_t k = 0; k < per_call; ++k) {
            frames[k] = injected_frame(injected_mark | t << 20 | (i + k));
            call[k] = {frames[k], 0};
          }
          size_t n = 0;
          try {
            n = engine.inject(call);
          } catch (const InjectError&) {
            refused.fetch_add(per_thread - i);  // the run has ended: so will every later call
            return;
          }
          if (n != per_call) partial.fetch_add(1);  // no doctest assertion outside the test's thread
          for (uint32_t k = 0; k < per_call; ++k) accepted[t].push_back(injected_mark | t << 20 | (i + k));
        }
      });
    engine.start();
    go = true;
    for (auto& w : workers) w.join();
    REQUIRE(engine.wait() == exit_ok);
    if (reader.joinable()) reader.join();
    watchdog.reset();

    size_t total = 0;
    for (const auto& a : accepted) total += a.size();
    CHECK(partial == 0);
    CHECK(total + refused == threads * per_thread);
    if (slow) CHECK(total == threads * per_thread);
    const auto out = test::read_raw(tmp / "out.pcap");
    std::string problem;
    const auto tags = woven_tags(bg, out, problem);
    CHECK_MESSAGE(problem.empty(), problem);
    CHECK(out.records.size() == bg.records.size() + total);
    // Every accepted tag exactly once, nothing else; each thread's frames in the order it injected.
    std::vector<std::vector<uint32_t>> per(threads);
    for (uint32_t tag : tags) per[(tag >> 20) & 0x7ff].push_back(tag);
    for (uint32_t t = 0; t < threads; ++t) CHECK(per[t] == accepted[t]);
    const auto s = engine.stats();
    CHECK(s.accepted_events == total);
    CHECK(s.events == total);
    CHECK(s.packets == out.records.size());
    MESSAGE(fmt::format("run {} ({}, {} frame(s) per call): {} of {} frames accepted during {} background records, "
                        "{:.3f} s",
                        run, slow ? "slow output" : "full speed", per_call, total, threads * per_thread,
                        bg.records.size(), s.seconds));
  }
}

// ---------------------------------------------------------------------------------------------
// vei.h

namespace {

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

// An ICMP echo request 10.99.0.1 -> 10.99.0.2 with valid checksums; returns its sequence number.
std::optional<uint16_t> vei_ping(const RawRecord& r, std::string& why) {
  const auto v = ipv4(r, why);
  if (!v) return std::nullopt;
  if (v->protocol != 1 || v->src != 0x0a630001 || v->dst != 0x0a630002) return why = "not ICMP 10.99.0.1 -> 10.99.0.2", std::nullopt;
  const unsigned char* icmp = v->ip + v->header;
  const size_t n = v->total - v->header;
  if (n < 8 || icmp[0] != 8 || icmp[1] != 0) return why = "not an echo request", std::nullopt;
  if (ones_sum(icmp, n) != 0xffff) return why = "bad ICMP checksum", std::nullopt;
  if (be16(icmp + 4) != 0x7665) return why = "unexpected ICMP identifier", std::nullopt;
  return be16(icmp + 6);
}

// A TCP segment between 10.99.0.1 and 10.99.0.2 with valid checksums; returns its flags.
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
  test::write_raw(tmp / "bg.pcap", capture({rec(0, 10), rec(1, 20), rec(2, 30)}));
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
  test::write_raw(tmp / "bg.pcap", capture({rec(0, 10), rec(1, 20'000)}));
  std::vector<int> results;
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
  test::write_raw(tmp / "bg.pcap", capture({rec(0, 10), rec(1, 20)}));
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
    CHECK(inject_event(VEI_SMTP) == -BAD_EVENT_TYPE);
    CHECK(inject_event(VEI_HTTP_HEAD) == -BAD_EVENT_TYPE);
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
  test::write_raw(tmp / "bg.pcap", capture({rec(0, 10), rec(1, 20)}));
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
    std::set<uint16_t> sequences;
    for (size_t i = 1; i <= 300; ++i) {
      CHECK(out.records[i].ts_ns(false) == t0_ns + 10'000);
      std::string why;
      if (const auto seq = vei_ping(out.records[i], why)) sequences.insert(*seq);
    }
    CHECK(sequences.size() == 300);
    CHECK(*sequences.begin() == 1);
    CHECK(*sequences.rbegin() == 300);
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
  std::vector<std::thread> injectors;
  for (int t = 0; t < 4; ++t)
    injectors.emplace_back([&, t] {
      for (int i = 0;; ++i) {
        const bool jpg = t == 0 && i % 50 == 49;
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
  std::set<uint16_t> sequences;
  int64_t previous = INT64_MIN;
  std::string problem;
  for (size_t i = 0; i < out.records.size() && problem.empty(); ++i) {
    const auto& r = out.records[i];
    if (r.ts_ns(false) < previous) problem = fmt::format("record {}: time goes back", i);
    previous = r.ts_ns(false);
    std::string why;
    if (j < bg.records.size() && same_record(r, bg.records[j])) {
      ++j;
    } else if (const auto seq = vei_ping(r, why)) {
      ++icmp;
      sequences.insert(*seq);
    } else if (!vei_tcp(r, why)) {
      problem = fmt::format("record {}: {}", i, why);
    }
  }
  CHECK_MESSAGE(problem.empty(), problem);
  CHECK(j == bg.records.size());
  CHECK(icmp == static_cast<size_t>(pings.load()));
  CHECK(sequences.size() == icmp);  // every sequence number once
  MESSAGE(fmt::format("{} pings and {} POST_JPGs ({} packets) during {} background records", pings.load(), jpgs.load(),
                      packets.load(), bg.records.size()));
}
