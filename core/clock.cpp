#include "core/clock.h"

#include <climits>

namespace vei {

int64_t clock_ns(clockid_t clock) {
  timespec t{};
  clock_gettime(clock, &t);
  return int64_t{t.tv_sec} * 1'000'000'000 + t.tv_nsec;
}

// From the tightest of three monotonic brackets around a realtime read: a thread preempted between
// two clock reads would otherwise skew it by the preemption (tens of ms on a loaded machine) and
// misplace a whole live batch.
int64_t realtime_to_monotonic() {
  int64_t best_width = INT64_MAX, offset = 0;
  for (int i = 0; i < 3; ++i) {
    const int64_t before = clock_ns(CLOCK_MONOTONIC);
    const int64_t real = clock_ns(CLOCK_REALTIME);
    const int64_t after = clock_ns(CLOCK_MONOTONIC);
    if (after - before < best_width) {
      best_width = after - before;
      offset = before + (after - before) / 2 - real;
    }
  }
  return offset;
}

}  // namespace vei
