// The pace stage in the engine: loop=N continues the timeline, events injected while pacing are
// stamped on the timeline and merged in time order, stop() ends a real-time replay at once with a
// valid file. Timing bounds are functional only (generous); precise figures: benchmarks/wire.sh.
#include <doctest/doctest.h>
#include <fmt/format.h>

#include <algorithm>
#include <chrono>
#include <thread>

#include "pipeline/engine.h"
#include "testutil.h"

using namespace vei;

namespace {

constexpr int64_t t0_ns = int64_t{1'700'000'000} * 1'000'000'000;

}  // namespace

TEST_CASE("pace: loop=3 plays every source three times on one continuing timeline") {
  test::TempDir dir;
  test::write_raw(dir / "bg.pcap", test::tagged_trace(10, 1000));        // 0..9 ms: period 10 ms
  test::write_raw(dir / "probe.pcap", test::tagged_trace(2, 500, 64, 100));  // at +2.25 ms: 2.25, 2.75 ms
  const auto out = dir / "out.pcap";
  REQUIRE(test::run_pipeline(fmt::format("pcap({}) -> m: merge -> pace(topspeed, loop=3) -> file({}, precision=ns)\n"
                                         "pcap({}, at=2250us) -> m",
                                         (dir / "bg.pcap").string(), out.string(), (dir / "probe.pcap").string())) == 0);
  const auto got = test::read_raw(out);
  REQUIRE(got.records.size() == 36);
  std::vector<std::pair<int64_t, uint32_t>> expected;
  for (int pass = 0; pass < 3; ++pass) {
    const int64_t base = t0_ns + pass * 10'000'000;
    for (uint32_t i = 0; i < 10; ++i) expected.emplace_back(base + i * 1'000'000, i);
    expected.emplace_back(base + 2'250'000, 100);
    expected.emplace_back(base + 2'750'000, 101);
  }
  std::stable_sort(expected.begin(), expected.end(), [](auto& a, auto& b) { return a.first < b.first; });
  for (size_t i = 0; i < expected.size(); ++i) {
    CAPTURE(i);
    CHECK(got.records[i].ts_ns(true) == expected[i].first);
    CHECK(test::tag_of(got.records[i]) == expected[i].second);
  }
}

TEST_CASE("pace: a looped source longer than the background overlaps its next pass in time order") {
  test::TempDir dir;
  test::write_raw(dir / "bg.pcap", test::tagged_trace(10, 1000));           // period 10 ms
  test::write_raw(dir / "long.pcap", test::tagged_trace(4, 5000, 64, 100));      // at +1 ms: 1, 6, 11, 16 ms
  const auto out = dir / "out.pcap";
  Stats stats;
  REQUIRE(test::run_pipeline(fmt::format("pcap({}) -> m: merge(end=all) -> pace(topspeed, loop=2) -> file({}, precision=ns)\n"
                                         "pcap({}, at=1ms) -> m",
                                         (dir / "bg.pcap").string(), out.string(), (dir / "long.pcap").string()),
                             &stats) == 0);
  const auto got = test::read_raw(out);
  REQUIRE(got.records.size() == 28);
  for (size_t i = 1; i < got.records.size(); ++i) {
    CAPTURE(i);
    CHECK(got.records[i].ts_ns(true) >= got.records[i - 1].ts_ns(true));
  }
  // Pass 2 of long.pcap starts at 11 ms, before pass 1's last record (16 ms): 11 ms is raised to 16 ms.
  REQUIRE(stats.sources.size() == 2);
  CHECK(stats.sources[1].packets == 8);
  CHECK(stats.sources[1].disordered == 1);
  REQUIRE(stats.warnings.size() == 1);
  CHECK(stats.warnings[0].find("long.pcap (loop pass 2): 1 record(s) older than a record before them") !=
        std::string::npos);
  std::vector<int64_t> long_times;
  for (const auto& r : got.records)
    if (test::tag_of(r) >= 100) long_times.push_back(r.ts_ns(true) - t0_ns);
  CHECK(long_times == std::vector<int64_t>{1'000'000, 6'000'000, 11'000'000, 16'000'000, 16'000'000, 16'000'000,
                                           21'000'000, 26'000'000});
}

TEST_CASE("pace: events injected during a paced replay are merged in time order within its span") {
  test::TempDir dir;
  test::write_raw(dir / "bg.pcap", test::tagged_trace(400, 1000));  // 0.4 s of timeline, played at 2x: 0.2 s
  const auto out = dir / "out.pcap";
  auto engine = Engine::from_description(
      "<test>", fmt::format("pcap({}) -> pace(2x) -> file({}, precision=ns)", (dir / "bg.pcap").string(), out.string()),
      true);
  engine.start();
  size_t accepted = 0;
  for (uint32_t i = 0; i < 50; ++i) {
    const auto frame = test::tagged_frame(0x80000000 | i, 60);
    accepted += engine.inject(std::as_bytes(std::span(frame)));
    std::this_thread::sleep_for(std::chrono::milliseconds(2));
  }
  REQUIRE(engine.wait() == 0);
  const auto stats = engine.stats();
  CHECK(accepted == 50);
  CHECK(stats.events == 50);
  CHECK(stats.late_events == 0);
  REQUIRE(stats.pace);
  CHECK(stats.pace->samples == 450);
  const auto got = test::read_raw(out);
  REQUIRE(got.records.size() == 450);
  int64_t last = 0;
  uint32_t next_injected = 0;
  for (const auto& r : got.records) {
    CHECK(r.ts_ns(true) >= last);
    last = r.ts_ns(true);
    if (test::tag_of(r) & 0x80000000) {
      CHECK(test::tag_of(r) == (0x80000000 | next_injected++));
      // Stamped with the timeline's now: inside the background's span (they all came during it).
      CHECK(r.ts_ns(true) >= t0_ns);
      CHECK(r.ts_ns(true) <= t0_ns + 399'000'000);
    }
  }
  CHECK(next_injected == 50);
}

TEST_CASE("pace: stop() ends a real-time replay at once, writing what was merged") {
  test::TempDir dir;
  test::write_raw(dir / "bg.pcap", test::tagged_trace(600, 100'000));  // 60 s of timeline
  const auto out = dir / "out.pcap";
  auto engine = Engine::from_description(
      "<test>", fmt::format("pcap({}) -> pace(realtime) -> file({})", (dir / "bg.pcap").string(), out.string()), true);
  engine.start();
  std::this_thread::sleep_for(std::chrono::milliseconds(250));
  const auto stopped = std::chrono::steady_clock::now();
  engine.stop();
  CHECK(engine.wait() == 0);
  CHECK(std::chrono::steady_clock::now() - stopped < std::chrono::seconds(5));
  const auto got = test::read_raw(out);
  // Everything merged before the stop is written, in order: a prefix of the input.
  CHECK(got.records.size() >= 3);
  CHECK(got.records.size() <= 600);
  for (size_t i = 0; i < got.records.size(); ++i) CHECK(test::tag_of(got.records[i]) == i);
}
