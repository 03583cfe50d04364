// ThreadSanitizer cannot see the synchronisation inside an uninstrumented oneTBB (Debian's): a
// batch handed from one task to the next, or a serial node's body running on another worker than
// its previous call, would look like races. These mark the happens-before edges the flow graph
// guarantees, on the object handed over; without TSan they compile to nothing.
#pragma once

#if defined(__SANITIZE_THREAD__)
#define VEIPIPE_TSAN 1
#elif defined(__has_feature)
#if __has_feature(thread_sanitizer)
#define VEIPIPE_TSAN 1
#endif
#endif

#ifdef VEIPIPE_TSAN
extern "C" void __tsan_acquire(void* addr);
extern "C" void __tsan_release(void* addr);
#endif

namespace vei {

inline void handoff_release([[maybe_unused]] const void* object) {
#ifdef VEIPIPE_TSAN
  __tsan_release(const_cast<void*>(object));
#endif
}

inline void handoff_acquire([[maybe_unused]] const void* object) {
#ifdef VEIPIPE_TSAN
  __tsan_acquire(const_cast<void*>(object));
#endif
}

}  // namespace vei
