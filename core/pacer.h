// Output pacing (docs/architecture.md, "The output thread"): called by the output thread before each record goes to a sink.
// Deadlines are absolute on CLOCK_MONOTONIC, computed from the start in integer nanoseconds, never
// as sums of deltas, so there is no drift:
//   realtime / Nx:  start + (ts + offset - first_ts) / speed
//   pps:            start + i / pps                 (i: records before this one)
//   mbps:           start + bits_before / rate      (bits_before: 8 * wire_len of earlier records)
// Waiting sleeps with clock_nanosleep(TIMER_ABSTIME) to shortly before the deadline (timer slack
// 1 ns; 50 µs, widened up to 500 µs when the machine's observed wake-up latency is larger) and
// spins on clock_gettime for the rest. topspeed never waits.
//
// A record released late does not make the next ones leave at once: the pacer catches up on the
// absolute schedule by at most max(4 µs, gap / 64) per gap (and lag / 32 while over 5 ms behind),
// so a hiccup costs one large gap error (not two: the late gap and a shortened next one), and
// still no drift.
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
  int64_t wake_late_ = 0;  // estimate of clock_nanosleep's wake-up latency (real clock only)
  LatencyHistogram lateness_;
};

}  // namespace vei
