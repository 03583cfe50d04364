// The pacer: deadline arithmetic checked exactly on a mock clock (the arithmetic is pure), the
// lateness histogram on known samples, and one real timing check with generous bounds.
#include <doctest/doctest.h>

#include <time.h>

#include <algorithm>
#include <cstdint>
#include <vector>

#include "core/pacer.h"

using namespace vei;

namespace {

constexpr int64_t t0 = 1'700'000'000'000'000'000;  // background time of the first record
constexpr int64_t m0 = 5'000'000'000;              // mock monotonic time at start

// A clock that jumps to each deadline (plus `late` ns) when asked to wait.
struct MockClock {
  int64_t t = m0;
  int64_t late = 0;
  PaceClock clock() {
    return PaceClock{[this] { return t; },
                     [this](int64_t d) {
                       if (d > t) t = d;
                       t += late;
                     }};
  }
};

int64_t mono_ns() {
  timespec t{};
  clock_gettime(CLOCK_MONOTONIC, &t);
  return int64_t{t.tv_sec} * 1'000'000'000 + t.tv_nsec;
}

// Paces `n` records (record i at ts(i), len(i) bytes) and checks each deadline against want(i).
template <typename Ts, typename Len, typename Want>
void check_deadlines(PaceMode mode, uint64_t n, Ts ts, Len len, Want want) {
  MockClock mock;
  Pacer pacer(mode, mock.clock());
  uint64_t bad = 0;
  for (uint64_t i = 0; i < n; ++i) {
    pacer.wait(ts(i), len(i));
    int64_t expect = m0 + want(i);
    if (pacer.last_deadline() != expect || mock.t != expect) {
      if (bad++ == 0) {
        INFO("record " << i);
        CHECK(pacer.last_deadline() == expect);
      }
    }
  }
  CHECK(bad == 0);
  CHECK(pacer.lateness().samples == n);
}

}  // namespace

TEST_CASE("pacer: realtime deadlines are exact, no drift over 10^6 records") {
  // 1 µs apart, and an irregular trace with gaps of i % 7919 ns
  check_deadlines({PaceMode::realtime}, 1'000'000, [](uint64_t i) { return t0 + int64_t(i) * 1000; },
                  [](uint64_t) { return 60u; }, [](uint64_t i) { return int64_t(i) * 1000; });
  check_deadlines({PaceMode::realtime}, 1000,
                  [](uint64_t i) { return t0 + int64_t(i * i * 7919); },
                  [](uint64_t) { return 60u; }, [](uint64_t i) { return int64_t(i * i * 7919); });
}

TEST_CASE("pacer: 2x and 0.5x and 3x multiplier deadlines are exact") {
  auto ts = [](uint64_t i) { return t0 + int64_t(i) * 1001; };
  auto len = [](uint64_t) { return 60u; };
  check_deadlines({PaceMode::multiplier, 2}, 1'000'000, ts, len,
                  [](uint64_t i) { return int64_t(i) * 1001 / 2; });
  check_deadlines({PaceMode::multiplier, 0.5}, 1'000'000, ts, len,
                  [](uint64_t i) { return int64_t(i) * 2002; });
  // 1/3 of a non-multiple of 3: floor, computed from the start each time (sums of rounded
  // deltas would drift by up to 2/3 ns per record)
  check_deadlines({PaceMode::multiplier, 3}, 1'000'000, ts, len,
                  [](uint64_t i) { return int64_t(i) * 1001 / 3; });
  check_deadlines({PaceMode::multiplier, 1000}, 1000, ts, len,
                  [](uint64_t i) { return int64_t(i) * 1001 / 1000; });
  check_deadlines({PaceMode::multiplier, 0.01}, 1000, ts, len,
                  [](uint64_t i) { return int64_t(i) * 100100; });
  CHECK_THROWS(Pacer({PaceMode::multiplier, 0.001}));
  CHECK_THROWS(Pacer({PaceMode::multiplier, 2000}));
  CHECK_THROWS(Pacer({PaceMode::pps, 0}));
  CHECK_THROWS(Pacer({PaceMode::mbps, -1}));
}

TEST_CASE("pacer: pps deadlines are i / pps exactly") {
  auto ts = [](uint64_t i) { return t0 + int64_t(i) * 17; };  // ignored by pps
  auto len = [](uint64_t i) { return uint32_t(60 + i % 1400); };
  check_deadlines({PaceMode::pps, 1e6}, 1'000'000, ts, len,
                  [](uint64_t i) { return int64_t(i) * 1000; });
  check_deadlines({PaceMode::pps, 3}, 1'000'000, ts, len, [](uint64_t i) {
    return int64_t(__extension__(static_cast<__int128>(i) * 1'000'000'000 / 3));
  });
  check_deadlines({PaceMode::pps, 0.5}, 1000, ts, len,
                  [](uint64_t i) { return int64_t(i) * 2'000'000'000; });
}

TEST_CASE("pacer: mbps deadlines are bits before / rate exactly") {
  auto ts = [](uint64_t) { return t0; };  // ignored by mbps
  // 100-byte records at 8 Mbit/s: 100 µs each
  check_deadlines({PaceMode::mbps, 8}, 1'000'000, ts, [](uint64_t) { return 100u; },
                  [](uint64_t i) { return int64_t(i) * 100'000; });
  // varying lengths at 1000 Mbit/s: 1 ns per bit
  check_deadlines({PaceMode::mbps, 1000}, 100'000, ts,
                  [](uint64_t i) { return uint32_t(60 + i % 1400); }, [](uint64_t i) {
                    int64_t bits = 0;  // sum of 8 * (60 + k % 1400) for k < i, closed form
                    uint64_t full = i / 1400, rest = i % 1400;
                    bits += int64_t(full) * 8 * (1400 * 60 + 1399 * 1400 / 2);
                    bits += int64_t(8 * (rest * 60 + rest * (rest - 1) / 2));
                    return bits;
                  });
  // 3 Mbit/s, 125-byte records (1000 bits): 1/3 ms each, floor
  check_deadlines({PaceMode::mbps, 3}, 1'000'000, ts, [](uint64_t) { return 125u; },
                  [](uint64_t i) { return int64_t(i) * 1'000'000 / 3; });
}

TEST_CASE("pacer: topspeed never waits and has no timeline now") {
  MockClock mock;
  bool waited = false;
  PaceClock clock = mock.clock();
  clock.wait_until = [&](int64_t) { waited = true; };
  Pacer pacer({PaceMode::topspeed}, clock);
  for (int i = 0; i < 100; ++i) pacer.wait(t0 + i * 1'000'000'000LL, 60);
  CHECK_FALSE(waited);
  CHECK(mock.t == m0);
  CHECK_FALSE(pacer.timeline_now().has_value());
  CHECK(pacer.lateness().samples == 0);
}

TEST_CASE("pacer: timeline_now maps the wall clock onto the background's time") {
  MockClock mock;
  Pacer rt({PaceMode::realtime}, mock.clock());
  CHECK_FALSE(rt.timeline_now().has_value());  // before the first record
  rt.wait(t0, 60);
  CHECK(*rt.timeline_now() == t0);
  mock.t += 1'234'567;
  CHECK(*rt.timeline_now() == t0 + 1'234'567);

  MockClock mock2;
  Pacer slow({PaceMode::multiplier, 0.5}, mock2.clock());
  slow.wait(t0, 60);
  mock2.t += 1'000'001;
  CHECK(*slow.timeline_now() == t0 + 500'000);

  MockClock mock3;
  Pacer pps({PaceMode::pps, 1000}, mock3.clock());
  pps.wait(t0, 60);
  pps.wait(t0 + 77, 60);
  CHECK(*pps.timeline_now() == t0 + 77);  // the last record released
}

TEST_CASE("pacer: the merge's lateness delays every deadline while timeline_now follows the timeline") {
  MockClock mock;
  Pacer rt({PaceMode::realtime}, mock.clock());
  rt.set_delay(5'000'000);
  rt.wait(t0, 60);
  CHECK(mock.t == m0 + 5'000'000);
  // The timeline started at m0: 5 ms of it have passed, though nothing later was released yet.
  CHECK(*rt.timeline_now() == t0 + 5'000'000);
  rt.wait(t0 + 1'000'000, 60);
  CHECK(mock.t == m0 + 6'000'000);
  rt.wait(t0 + 9'000'000, 60);
  CHECK(mock.t == m0 + 14'000'000);
  // An event stamped now (t0 + 14 ms) is due at m0 + 19 ms: it may take up to 5 ms to arrive.
  CHECK(*rt.timeline_now() == t0 + 14'000'000);
}

TEST_CASE("pacer: lateness histogram percentiles on known samples") {
  LatencyHistogram h;
  CHECK(h.percentile(0.5) == 0);
  // exact below 64 ns: 1..50
  for (int64_t v = 1; v <= 50; ++v) h.record(v);
  CHECK(h.samples() == 50);
  CHECK(h.percentile(0.5) == 25);
  CHECK(h.percentile(0.99) == 50);
  CHECK(h.max() == 50);
  h.record(-5);  // counts as 0
  CHECK(h.percentile(0.0) == 0);

  // 1..1000 µs, one each: p50 ~ 500 µs, p99 ~ 990 µs, within 1/64
  LatencyHistogram u;
  for (int64_t v = 1; v <= 1000; ++v) u.record(v * 1000);
  CHECK(u.samples() == 1000);
  CHECK(u.max() == 1'000'000);
  int64_t p50 = u.percentile(0.5), p99 = u.percentile(0.99);
  CHECK(p50 >= 500'000);
  CHECK(p50 <= 500'000 + 500'000 / 64);
  CHECK(p99 >= 990'000);
  CHECK(p99 <= 990'000 + 990'000 / 64);
  CHECK(u.percentile(1.0) == 1'000'000);

  // bucket bounds tile the range
  for (int i = 1; i < LatencyHistogram::bucket_count; ++i) {
    if (LatencyHistogram::bucket_low(i) != LatencyHistogram::bucket_high(i - 1) + 1) {
      FAIL("gap at bucket " << i);
    }
  }
  for (int64_t v : {int64_t{0}, int64_t{63}, int64_t{64}, int64_t{12345}, int64_t{1} << 40,
                    int64_t{INT64_MAX}}) {
    int b = LatencyHistogram::bucket_of(v);
    CHECK(b < LatencyHistogram::bucket_count);
    CHECK(LatencyHistogram::bucket_low(b) <= v);
    CHECK(LatencyHistogram::bucket_high(b) >= v);
  }

  // through the pacer: a clock that releases every record 3 µs after its deadline, record 100
  // 8 ms after
  MockClock mock;
  Pacer p({PaceMode::pps, 1000}, mock.clock());
  for (int i = 0; i < 1000; ++i) {
    mock.late = i == 100 ? 8'000'000 : 3000;
    p.wait(t0, 60);
  }
  auto l = p.lateness();
  CHECK(l.samples == 1000);
  CHECK(l.max == 8'000'000);
}

TEST_CASE("pacer: a stall is made up by half of each following gap, without drift") {
  // 1 kpps, every record released 3 µs after its deadline, record 100 8 ms after. Each later gap
  // is shortened by max(4 µs, gap / 2) = 500 µs (plus the clock's 3 µs late each time): 101 leaves
  // 7.503 ms late, 102 7.006 ms, ..., back to 3 µs by record 117, never early.
  MockClock mock;
  Pacer p({PaceMode::pps, 1000}, mock.clock());
  int64_t expected_late = 0;
  int last_late_record = 0;
  for (int i = 0; i < 2000; ++i) {
    mock.late = i == 100 ? 8'000'000 : 3000;
    p.wait(t0, 60);
    expected_late = i == 100 ? 8'000'000 : std::max<int64_t>(expected_late - 500'000, 0) + 3000;
    CAPTURE(i);
    CHECK(mock.t - (m0 + int64_t{i} * 1'000'000) == expected_late);
    if (expected_late > 3000) last_late_record = i;
  }
  CHECK(last_late_record == 116);
  // 16 of 2000 records over 100 µs late: p99 within the lateness bar of benchmarks/wire.sh
  CHECK(p.lateness().p99 <= 100'000);

  // Gaps under 8 µs (100 ns here) are skipped whole while late: after a 40 µs stall the records
  // leave back to back (instantly, on the mock clock) until the schedule catches up with them,
  // none before its place on the absolute schedule.
  MockClock fast;
  Pacer q({PaceMode::pps, 1e7}, fast.clock());
  for (int i = 0; i < 2000; ++i) {
    fast.late = i == 10 ? 40'000 : 0;
    q.wait(t0, 60);
    CAPTURE(i);
    CHECK(q.last_deadline() >= m0 + int64_t{i} * 100);
    if (i >= 10) CHECK(fast.t == std::max(m0 + 41'000, m0 + int64_t{i} * 100));
  }
}

TEST_CASE("pacer: the spin margin follows recent wake-up lateness, capped lower for real time") {
  WakeEstimate w;
  CHECK(w.margin(false) == WakeEstimate::min_margin_ns);
  CHECK(w.margin(true) == WakeEstimate::min_margin_ns);
  const int64_t s = 1'000'000'000;  // 1 s, in ns
  // rises by half of any excess
  w.sample(400'000, s);
  CHECK(w.late() == 200'000);
  w.sample(400'000, s + 1000);
  CHECK(w.late() == 300'000);
  CHECK(w.margin(false) == 320'000);
  CHECK(w.margin(true) == WakeEstimate::max_margin_rt_ns);  // 80 µs, whatever the lateness
  // preemption (1 ms and more) and wakes before time are not samples
  w.sample(5'000'000, s + 2000);
  w.sample(-1, s + 3000);
  CHECK(w.late() == 300'000);
  // falls toward smaller samples in proportion to the time since the previous sample: 10 µs
  // samples 1 ms apart take 1/1000 of the difference each; a sample after a second's silence all.
  int64_t t = s + 3000;
  for (int i = 0; i < 1000; ++i) w.sample(10'000, t += 1'000'000);
  CHECK(w.late() > 10'000 + 290'000 / 4);  // (1 - 1/1000)^1000 ~ 1/e of it left
  CHECK(w.late() < 10'000 + 290'000 / 2);
  w.sample(10'000, t += 2 * s);
  CHECK(w.late() == 10'000);
  CHECK(w.margin(false) == WakeEstimate::min_margin_ns);
  // capped for normal priority too
  for (int i = 0; i < 50; ++i) w.sample(900'000, t += 1000);
  CHECK(w.margin(false) == WakeEstimate::max_margin_ns);
}

// A functional check of the real sleeping: never early, and done in a time no pacer that works
// could exceed even on a loaded machine. Precision is measured in benchmarks/, not asserted here.
TEST_CASE("pacer: real timing, 200 records at 1 kpps") {
  Pacer pacer({PaceMode::pps, 1000});
  const int64_t begin = mono_ns();
  for (int i = 0; i < 200; ++i) pacer.wait(t0 + i, 60);
  const int64_t elapsed = mono_ns() - begin;
  const auto l = pacer.lateness();
  MESSAGE("200 @ 1 kpps: " << static_cast<double>(elapsed) / 1e9 << " s, lateness p50 " << l.p50 << " ns, p99 "
                           << l.p99 << " ns, max " << l.max << " ns");
  CHECK(l.samples == 200);
  CHECK(elapsed >= 199'000'000);  // the last deadline is 199 ms after the first: never early
  CHECK(elapsed < 2'000'000'000);
}
