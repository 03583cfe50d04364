#include "core/realtime.h"

#include <pthread.h>
#include <sched.h>
#include <sys/mman.h>

#include <cerrno>
#include <cstring>
#include <fmt/format.h>
#include <vector>

namespace vei {

std::string make_realtime(int priority) {
  std::vector<std::string> refused;
  sched_param param{};
  param.sched_priority = priority;
  const int error = pthread_setschedparam(pthread_self(), SCHED_FIFO, &param);
  if (error) refused.push_back(fmt::format("SCHED_FIFO {} ({})", priority, std::strerror(error)));
  if (::mlockall(MCL_CURRENT | MCL_FUTURE) != 0)
    refused.push_back(fmt::format("locking memory ({})", std::strerror(errno)));
  // Pinned at normal priority, the thread could not move away from a CPU that others keep busy.
  cpu_set_t allowed;
  CPU_ZERO(&allowed);
  if (!error && sched_getaffinity(0, sizeof allowed, &allowed) == 0) {
    int last = -1;
    for (int cpu = 0; cpu < CPU_SETSIZE; ++cpu)
      if (CPU_ISSET(cpu, &allowed)) last = cpu;
    cpu_set_t one;
    CPU_ZERO(&one);
    CPU_SET(last, &one);
    if (const int pin_error = pthread_setaffinity_np(pthread_self(), sizeof one, &one))
      refused.push_back(fmt::format("pinning to CPU {} ({})", last, std::strerror(pin_error)));
  }
  if (refused.empty()) return {};
  return fmt::format("pace(priority={}): not permitted: {}; the output ran without it", priority,
                     fmt::join(refused, ", "));
}

}  // namespace vei
