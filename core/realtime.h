// Real-time scheduling for the thread that paces the output (pace(priority=N)): SCHED_FIFO at N,
// the process's memory locked so that no page fault stalls a deadline, and the thread pinned to the
// last CPU it may run on, away from CPU 0 where the kernel's housekeeping and most other work
// lands. Each step needs a privilege (CAP_SYS_NICE, CAP_IPC_LOCK, or root); one that is refused is
// skipped and named in the result, and the thread keeps running either way (not pinned when
// SCHED_FIFO was refused).
//
// Threads: call it on the thread to change (it acts on the calling thread, and on the process's
// memory).
#pragma once

#include <string>

namespace vei {

// The steps that did not take, as one sentence ("" when all did).
std::string make_realtime(int priority);

}  // namespace vei
