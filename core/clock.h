// The clocks the engine reads: CLOCK_MONOTONIC for deadlines (core/pacer.h), CLOCK_REALTIME for
// the kernel's capture stamps, and the offset between them.
#pragma once

#include <cstdint>
#include <ctime>

namespace vei {

int64_t clock_ns(clockid_t clock);

// CLOCK_MONOTONIC - CLOCK_REALTIME, now. Any thread.
int64_t realtime_to_monotonic();

}  // namespace vei
