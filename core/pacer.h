// Output pacing (docs/architecture.md, "The output thread"): called by the output thread before each record goes to a sink.
// Deadlines are absolute on CLOCK_MONOTONIC, computed from the start in integer nanoseconds, never
// as sums of deltas, so there is no drift:
//   realtime / Nx:  start + (ts + offset - first_ts) / speed
//   pps:            start + i / pps                 (i: records before this one)
//   mbps:           start + bits_before / rate      (bits_before: 8 * wire_len of earlier records)
// Waiting sleeps with clock_nanosleep(TIMER_ABSTIME) (timer slack 1 ns) to shortly before the
// deadline and spins on clock_gettime for the rest (WakeEstimate: the margin follows the observed
// wake-up latency, at most 500 µs, and at most 80 µs for a real-time thread). topspeed never waits.
//
// A record released late does not make the next ones leave at once: the pacer catches up on the
// absolute schedule by max(4 µs, gap / 2) per gap, so a stall of L is made up within ~2L of the
// trace, each shortened gap off by at most half its length, and there is no drift.
//
// Threads: wait() belongs to one thread (the output thread). timeline_now() and
// lateness() may be called from any thread at any time.
#pragma once

#include <array>
#include <atomic>
#include <cstdint>
#include <functional>
#include <optional>

namespace vei {

struct PaceMode {
  enum Kind { topspeed, realtime, multiplier, pps, mbps } kind;
  // multiplier: speed, 0.01..1000 (realtime is 1x); pps: records per second; mbps: bits per
  // second / 1e6 (counted on the records' wire length).
  double value = 1;
};

// The clock the pacer reads and waits on. The default is CLOCK_MONOTONIC with the sleep-then-spin
// wait; tests inject a mock to check the deadline arithmetic exactly.
struct PaceClock {
  std::function<int64_t()> now;                // ns
  std::function<void(int64_t)> wait_until;     // returns once now() >= the given time
};

// Lateness histogram: log-linear buckets (64 sub-buckets per power of two), so a reported
// percentile is within 1/64 (1.6 %) of the true value, exact below 64 ns. Fixed size, any sample
// count. Single writer; readers on other threads see a consistent-enough snapshot.
class LatencyHistogram {
 public:
  static constexpr int sub_bits = 6;
  static constexpr int sub_count = 1 << sub_bits;
  static constexpr int bucket_count = (62 - sub_bits + 2) * sub_count;

  void record(int64_t ns);  // negative values count as 0
  // The smallest value v such that at least fraction q of the samples are <= v (within bucket
  // precision: the upper bound of its bucket, capped at the maximum seen). 0 with no samples.
  int64_t percentile(double q) const;
  int64_t max() const { return max_.load(std::memory_order_relaxed); }
  uint64_t samples() const { return samples_.load(std::memory_order_relaxed); }

  static int bucket_of(int64_t ns);
  static int64_t bucket_low(int index);
  static int64_t bucket_high(int index);

 private:
  std::array<std::atomic<uint64_t>, bucket_count> counts_{};
  std::atomic<uint64_t> samples_{0};
  std::atomic<int64_t> max_{0};
};

// How long before a deadline the real clock stops sleeping and spins: clamp(late + 20 µs, 50 µs,
// 500 µs), with `late` a high percentile of clock_nanosleep's recent wake-up lateness. Measured on
// this 2-CPU VM (random 20-300 µs sleeps, timer slack 1 ns, CPU 0 busy or not): normal priority
// p50 24-29, p99 230-370 µs, p99.9 1.4-1.6 ms; SCHED_FIFO on its own CPU p50 26, p99 62, p99.9
// 106-190 µs. A real-time thread's margin is capped at 80 µs: it spins until the kernel's RT
// throttling (sched_rt_runtime_us, 95 % of each second) stops it for 30-40 ms at a time, and with
// the margin near 500 µs a 10 kpps Poisson replay spun ~99 % of the time; with 80 µs, at most
// 1 - e^-0.8 = 55 % (the gaps shorter than the margin; measured: the output thread at 54 % of a
// CPU, file(/dev/null) output, CPU 0 busy), and ~1 % of its sleeps end past the margin.
// `late` rises by half of any excess and falls toward smaller samples in proportion to the time
// since the last sample (fully after 1 s), so a spike is forgotten within about a second however
// rarely the thread sleeps (decaying per sleep held the margin near 500 µs). Samples of 1 ms or
// more (preemption, which no margin would fix) are ignored. Single thread.
class WakeEstimate {
 public:
  static constexpr int64_t headroom_ns = 20'000;
  static constexpr int64_t min_margin_ns = 50'000;
  static constexpr int64_t max_margin_ns = 500'000;
  static constexpr int64_t max_margin_rt_ns = 80'000;
  static constexpr int64_t forget_ns = 1'000'000'000;
  static constexpr int64_t max_sample_ns = 1'000'000;

  // A sleep that was to end at some time ended `late_ns` after it, at monotonic `now_ns`.
  void sample(int64_t late_ns, int64_t now_ns);
  int64_t margin(bool realtime) const;
  int64_t late() const { return late_; }

 private:
  int64_t late_ = 0;
  int64_t at_ = 0;  // when the last sample came
};

class Pacer {
 public:
  explicit Pacer(PaceMode mode);  // real CLOCK_MONOTONIC
  Pacer(PaceMode mode, PaceClock clock);
  Pacer(const Pacer&) = delete;
  Pacer& operator=(const Pacer&) = delete;

  // Blocks until the deadline of the next record (ts_ns on the output timeline, wire_len bytes on
  // the wire). The first call fixes start (now) and first_ts, and returns at once (after `delay`).
  // With `interrupt`, returns false as soon as it is set before the deadline: the record is then
  // not released (the next call may be for another record); true once released.
  bool wait(int64_t ts_ns, uint32_t wire_len, const std::atomic<bool>* interrupt = nullptr);

  // Every deadline comes this much later than the timeline says, while timeline_now() keeps
  // following the timeline: the merge's watermark, so that an event stamped "now" reaches the
  // output before the records that follow it. Set before the first wait().
  void set_delay(int64_t ns) { delay_ = ns; }

  // The output timeline's "now" (docs/architecture.md, "Ordering"), for stamping event packets.
  // realtime / Nx: first_ts + (monotonic_now - start) * speed; pps / mbps: the (offset) timestamp
  // of the last record released, as the timeline does not follow the wall clock; topspeed, or
  // before the first record: nullopt.
  std::optional<int64_t> timeline_now() const;
  // The same for a past or present moment of CLOCK_MONOTONIC, e.g. when a live packet was captured.
  std::optional<int64_t> timeline_at(int64_t monotonic_ns) const;

  // Lateness of each record's release vs its deadline, ns (no samples at topspeed).
  struct Lateness {
    int64_t p50, p99, max;
    uint64_t samples;
  };
  Lateness lateness() const;

  // The deadline of the last record waited for (monotonic ns, catching up included), for tests
  // and diagnostics.
  int64_t last_deadline() const { return last_deadline_; }
  const PaceMode& mode() const { return mode_; }

 private:
  int64_t scaled(int64_t x) const;  // floor(x * mul_ / div_)
  int64_t now() const;

  PaceMode mode_;
  PaceClock clock_;  // empty: real clock
  // Deadline offset from start = floor(x * mul_ / div_), with x the timeline delta (ns), the
  // record index or the bits sent; the fraction is reduced at construction.
  int64_t mul_ = 1;
  int64_t div_ = 1;

  int64_t start_ = 0;
  int64_t first_ts_ = 0;
  std::atomic<bool> started_{false};
  int64_t delay_ = 0;
  int64_t last_nominal_ = 0;  // the last record's deadline on the absolute schedule
  int64_t last_release_ = 0;
  uint64_t index_ = 0;
  uint64_t bits_ = 0;
  int64_t last_deadline_ = 0;
  std::atomic<int64_t> last_ts_{0};
  WakeEstimate wake_;  // real clock only
  LatencyHistogram lateness_;
};

}  // namespace vei
