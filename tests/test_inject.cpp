// Injection through Engine::inject: stamping, explicit times, bad frames, the end of the run, and
// the 8-thread stress (accepted == written, nothing lost or duplicated, time order). The vei.h C API
// is tested in tests/test_vei.cpp.
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
#include "inject_util.h"
#include "testutil.h"

using namespace vei;
using test::RawFile;
using test::RawRecord;

using namespace vei::test::inject;

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
