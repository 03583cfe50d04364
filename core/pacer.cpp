#include "core/pacer.h"

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
constexpr int64_t min_spin_ns = 50'000;  // sleep until at least this long before the deadline
constexpr int64_t max_spin_ns = 500'000;
constexpr int64_t interrupt_slice_ns = 1'000'000;
// A late pacer shortens each gap by at most max(4 µs, gap / 64): gap errors no larger than the
// jitter of a send. A lag over 5 ms (frequent sleeps that wake late on a busy VM would otherwise
// pile up) also shrinks by lag / 32 per gap, geometrically.
constexpr int64_t catch_up_min_ns = 4'000;
constexpr int64_t catch_up_gap_divisor = 64;
constexpr int64_t standing_lag_ns = 5'000'000;
constexpr int64_t catch_up_lag_divisor = 32;

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

// Sleeps until `margin` before the deadline, then spins. The margin adapts to the wake-up
// latency of clock_nanosleep seen on this machine (on a VM it is often 50-150 µs even with 1 ns
// timer slack): `wake_late` tracks its ~99.9th percentile (up by half the excess, down by 1/1024
// of the gap), ignoring outliers over 1 ms (preemption, which no margin would fix), and the margin
// is clamp(wake_late + 20 µs, 50 µs, 500 µs), so that the spin, not the sleep, ends the wait.
// A p99 margin left 1 % of packets ~50 µs late on this VM: spinning longer is the cheaper fix.
// With `interrupt`, sleeps in slices of at most 1 ms and returns false once it is set.
bool real_wait_until(int64_t deadline, int64_t& wake_late, const std::atomic<bool>* interrupt) {
  thread_local bool slack_set = false;
  if (!slack_set) {
    prctl(PR_SET_TIMERSLACK, 1UL, 0UL, 0UL, 0UL);
    slack_set = true;
  }
  const auto interrupted = [interrupt] { return interrupt && interrupt->load(std::memory_order_acquire); };
  for (;;) {
    const int64_t t = monotonic_ns();
    if (t >= deadline) return true;
    if (interrupted()) return false;
    const int64_t margin = std::clamp(wake_late + 20'000, min_spin_ns, max_spin_ns);
    if (deadline - t <= margin) break;
    const int64_t wake = deadline - margin;
    const int64_t until = interrupt ? std::min(wake, t + interrupt_slice_ns) : wake;
    timespec ts{};
    ts.tv_sec = static_cast<time_t>(until / ns_per_sec);
    ts.tv_nsec = static_cast<long>(until % ns_per_sec);
    while (clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &ts, nullptr) == EINTR) {
    }
    if (until != wake) continue;
    const int64_t late = monotonic_ns() - wake;
    if (late >= 0 && late < 1'000'000) {
      if (late > wake_late) {
        wake_late += (late - wake_late) / 2;
      } else {
        wake_late -= (wake_late - late) / 1024;
      }
    }
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
    const int64_t lag = last_release_ - last_nominal_;
    int64_t catch_up = std::max(catch_up_min_ns, gap / catch_up_gap_divisor);
    if (lag > standing_lag_ns) catch_up = std::max(catch_up, lag / catch_up_lag_divisor);
    deadline = std::max(nominal, last_release_ + gap - catch_up);
  }
  if (clock_.wait_until) {
    clock_.wait_until(deadline);
  } else if (!real_wait_until(deadline, wake_late_, interrupt)) {
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
