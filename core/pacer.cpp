#include "core/pacer.h"

#include <sched.h>
#include <sys/prctl.h>
#include <time.h>

#include <algorithm>
#include <cerrno>
#include <cmath>
#include <numeric>
#include <stdexcept>
#include <string>

#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>
#endif

namespace vei {

namespace {

__extension__ typedef __int128 i128;

constexpr int64_t ns_per_sec = 1'000'000'000;
constexpr int64_t interrupt_slice_ns = 1'000'000;
// A late pacer shortens each gap by max(4 µs, gap / 2): a stall of L is made up within the next
// ~2L of the trace (a 1 ms stall at 10 kpps: 20 records), each shortened gap off by at most half
// its length. The old max(4 µs, gap / 64) left ~250 records late after a 1 ms stall, which alone
// put the pacer's lateness p99 at 1.6-6 ms in benchmarks/wire.sh. tcpreplay sends late packets
// at once (catch-up of the whole gap); half the gap keeps each shortened gap's error half as big.
constexpr int64_t catch_up_min_ns = 4'000;
constexpr int64_t catch_up_gap_divisor = 2;

int64_t monotonic_ns() {
  timespec t{};
  clock_gettime(CLOCK_MONOTONIC, &t);
  return int64_t{t.tv_sec} * ns_per_sec + t.tv_nsec;
}

inline void cpu_relax() {
#if defined(__x86_64__) || defined(__i386__)
  _mm_pause();
#elif defined(__aarch64__)
  asm volatile("yield");
#endif
}

// Sleeps until the spin margin (WakeEstimate::margin) before the deadline, then spins. With
// `interrupt`, sleeps in slices of at most 1 ms and returns false once it is set. Whether the
// thread is real-time is read at its first wait (pipeline/output.cpp sets the priority before).
bool real_wait_until(int64_t deadline, WakeEstimate& wake, const std::atomic<bool>* interrupt) {
  struct ThreadSetup {
    bool realtime;
    ThreadSetup() {
      prctl(PR_SET_TIMERSLACK, 1UL, 0UL, 0UL, 0UL);
      const int policy = sched_getscheduler(0);
      realtime = policy == SCHED_FIFO || policy == SCHED_RR;
    }
  };
  thread_local const ThreadSetup setup;
  const auto interrupted = [interrupt] { return interrupt && interrupt->load(std::memory_order_acquire); };
  for (;;) {
    const int64_t t = monotonic_ns();
    if (t >= deadline) return true;
    if (interrupted()) return false;
    const int64_t margin = wake.margin(setup.realtime);
    if (deadline - t <= margin) break;
    const int64_t until = interrupt ? std::min(deadline - margin, t + interrupt_slice_ns) : deadline - margin;
    timespec ts{};
    ts.tv_sec = static_cast<time_t>(until / ns_per_sec);
    ts.tv_nsec = static_cast<long>(until % ns_per_sec);
    while (clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &ts, nullptr) == EINTR) {
    }
    const int64_t woke = monotonic_ns();
    wake.sample(woke - until, woke);
  }
  while (monotonic_ns() < deadline) {
    if (interrupted()) return false;
    cpu_relax();
  }
  return true;
}

int64_t floor_div(i128 a, i128 b) {  // b > 0
  i128 q = a / b;
  if (a % b != 0 && a < 0) --q;
  return static_cast<int64_t>(q);
}

// A positive rate as an integer count per `scale` units, checked.
int64_t to_fixed(double value, double scale, const char* what) {
  double v = value * scale;
  if (!std::isfinite(value) || !(v >= 1) || v > 9.0e18) {
    throw std::invalid_argument(std::string("pace: ") + what + " out of range: " +
                                std::to_string(value));
  }
  return std::llround(v);
}

}  // namespace

// --- LatencyHistogram -----------------------------------------------------------------------

int LatencyHistogram::bucket_of(int64_t ns) {
  if (ns < sub_count) return ns < 0 ? 0 : static_cast<int>(ns);
  int e = 63 - __builtin_clzll(static_cast<uint64_t>(ns));
  int shift = e - sub_bits;
  int sub = static_cast<int>((ns >> shift) - sub_count);
  return ((shift + 1) << sub_bits) + sub;
}

int64_t LatencyHistogram::bucket_low(int index) {
  if (index < sub_count) return index;
  int shift = (index >> sub_bits) - 1;
  int64_t sub = index & (sub_count - 1);
  return (int64_t{sub_count} + sub) << shift;
}

int64_t LatencyHistogram::bucket_high(int index) {
  if (index < sub_count) return index;
  int shift = (index >> sub_bits) - 1;
  return bucket_low(index) + ((int64_t{1} << shift) - 1);
}

void LatencyHistogram::record(int64_t ns) {
  if (ns < 0) ns = 0;
  auto& c = counts_[static_cast<size_t>(bucket_of(ns))];
  // Single writer: plain load + store keeps the hot path free of locked instructions.
  c.store(c.load(std::memory_order_relaxed) + 1, std::memory_order_relaxed);
  samples_.store(samples_.load(std::memory_order_relaxed) + 1, std::memory_order_relaxed);
  if (ns > max_.load(std::memory_order_relaxed)) max_.store(ns, std::memory_order_relaxed);
}

int64_t LatencyHistogram::percentile(double q) const {
  uint64_t n = samples();
  if (n == 0) return 0;
  if (q < 0) q = 0;
  if (q > 1) q = 1;
  auto rank = static_cast<uint64_t>(std::ceil(q * static_cast<double>(n)));
  if (rank < 1) rank = 1;
  uint64_t seen = 0;
  for (int i = 0; i < bucket_count; ++i) {
    seen += counts_[static_cast<size_t>(i)].load(std::memory_order_relaxed);
    if (seen >= rank) return std::min(bucket_high(i), max());
  }
  return max();
}

// --- WakeEstimate ---------------------------------------------------------------------------

void WakeEstimate::sample(int64_t late_ns, int64_t now_ns) {
  if (late_ns < 0 || late_ns >= max_sample_ns) return;
  if (late_ns > late_) {
    late_ += (late_ns - late_) / 2;
  } else {
    const int64_t dt = std::min(now_ns - at_, forget_ns);
    late_ -= static_cast<int64_t>(i128{late_ - late_ns} * dt / forget_ns);
  }
  at_ = now_ns;
}

int64_t WakeEstimate::margin(bool realtime) const {
  return std::clamp(late_ + headroom_ns, min_margin_ns, realtime ? max_margin_rt_ns : max_margin_ns);
}

// --- Pacer ----------------------------------------------------------------------------------

Pacer::Pacer(PaceMode mode) : Pacer(mode, PaceClock{}) {}

Pacer::Pacer(PaceMode mode, PaceClock clock) : mode_(mode), clock_(std::move(clock)) {
  switch (mode_.kind) {
    case PaceMode::topspeed:
      break;
    case PaceMode::realtime:
      mode_.value = 1;
      mul_ = div_ = 1;
      break;
    case PaceMode::multiplier:
      if (!(mode_.value >= 0.01 - 1e-12 && mode_.value <= 1000 + 1e-9)) {
        throw std::invalid_argument("pace: speed multiplier must be within 0.01..1000, got " +
                                    std::to_string(mode_.value));
      }
      // delta / speed, speed in millionths
      mul_ = 1'000'000;
      div_ = to_fixed(mode_.value, 1e6, "speed multiplier");
      break;
    case PaceMode::pps:
      // i * 1e9 / pps, pps in millionths
      mul_ = ns_per_sec * 1'000'000;
      div_ = to_fixed(mode_.value, 1e6, "pps");
      break;
    case PaceMode::mbps:
      // bits * 1e9 / (mbps * 1e6), rate in millibits per second
      mul_ = ns_per_sec * 1'000;
      div_ = to_fixed(mode_.value, 1e9, "mbps");
      break;
  }
  int64_t g = std::gcd(mul_, div_);
  mul_ /= g;
  div_ /= g;
}

int64_t Pacer::now() const { return clock_.now ? clock_.now() : monotonic_ns(); }

int64_t Pacer::scaled(int64_t x) const { return floor_div(i128{x} * mul_, div_); }

bool Pacer::wait(int64_t ts_ns, uint32_t wire_len, const std::atomic<bool>* interrupt) {
  if (mode_.kind == PaceMode::topspeed) return true;
  const int64_t ts = ts_ns;
  if (!started_.load(std::memory_order_relaxed)) {
    start_ = now();
    first_ts_ = ts;
    last_ts_.store(ts, std::memory_order_relaxed);
    started_.store(true, std::memory_order_release);
  }
  int64_t deadline = start_ + delay_;
  switch (mode_.kind) {
    case PaceMode::realtime:
    case PaceMode::multiplier:
      deadline += scaled(ts - first_ts_);
      break;
    case PaceMode::pps:
      deadline += scaled(static_cast<int64_t>(index_));
      break;
    case PaceMode::mbps:
      deadline += scaled(static_cast<int64_t>(bits_));
      break;
    case PaceMode::topspeed:
      break;
  }
  const int64_t nominal = deadline;
  if (index_ > 0 && last_release_ > last_nominal_) {
    const int64_t gap = nominal - last_nominal_;
    const int64_t catch_up = std::max(catch_up_min_ns, gap / catch_up_gap_divisor);
    deadline = std::max(nominal, last_release_ + gap - catch_up);
  }
  if (clock_.wait_until) {
    clock_.wait_until(deadline);
  } else if (!real_wait_until(deadline, wake_, interrupt)) {
    return false;
  }
  ++index_;
  bits_ += uint64_t{wire_len} * 8;
  last_deadline_ = deadline;
  last_nominal_ = nominal;
  last_release_ = now();
  lateness_.record(last_release_ - nominal);
  last_ts_.store(ts, std::memory_order_relaxed);
  return true;
}

std::optional<int64_t> Pacer::timeline_now() const { return timeline_at(now()); }

std::optional<int64_t> Pacer::timeline_at(int64_t monotonic_ns) const {
  if (mode_.kind == PaceMode::topspeed || !started_.load(std::memory_order_acquire)) {
    return std::nullopt;
  }
  if (mode_.kind == PaceMode::pps || mode_.kind == PaceMode::mbps) {
    return last_ts_.load(std::memory_order_relaxed);
  }
  // elapsed * speed = elapsed * div_ / mul_
  return first_ts_ + floor_div(i128{monotonic_ns - start_} * div_, mul_);
}

Pacer::Lateness Pacer::lateness() const {
  return {lateness_.percentile(0.50), lateness_.percentile(0.99), lateness_.max(),
          lateness_.samples()};
}

}  // namespace vei
