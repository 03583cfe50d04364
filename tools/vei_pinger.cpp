// vei_pinger: transcribes a background through vei.h while a second thread injects events, the
// way a libvei client does (initialise, start the injecting thread, transcribe, finish).
//
//   vei_pinger src.pcap dst.pcap [pings-per-second] [post-jpg-every-n]
//
// The injecting thread starts before the transcription (which waits for its first event, so that
// at least one is always kept and written at the start) and stops when inject_event() answers
// -LIB_NOT_TRANSCRIBING. It injects `pings-per-second` events a second (default 1000; 0: as fast
// as it can), each a VEI_PING, except that with n > 0 (default 0) the 1st, (n+1)th, (2n+1)th...
// are VEI_POST_JPGs.
// At the end it prints, on stdout, how many events the library accepted:
//
//   vei_pinger: accepted pings=<P> post_jpgs=<J> packets=<K>
//
// The transcription takes the background's own time unless VEI_SPEED says otherwise (the tests run
// it at `topspeed`).
//
// Exit status: 0 done; 1 usage; 2 a file cannot be opened; 3 initialisation failed; 4 the
// transcription failed; 5 an injection failed with another error than the end of the run.
#include <atomic>
#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <functional>
#include <future>
#include <string>
#include <thread>

#include "pipeline/vei.h"

namespace {

bool parse_count(const char* text, unsigned long& out) {
  char* end = nullptr;
  errno = 0;
  out = std::strtoul(text, &end, 10);
  return errno == 0 && end != text && *end == '\0' && text[0] != '-';
}

struct Counts {
  unsigned long pings = 0, post_jpgs = 0, packets = 0;
  int error = 0;  // the first unexpected code
};

void inject_until_the_end(unsigned long rate, unsigned long jpg_every, Counts& counts, std::promise<void>& first) {
  using clock = std::chrono::steady_clock;
  const auto start = clock::now();
  for (unsigned long i = 1;; ++i) {
    const bool jpg = jpg_every > 0 && i % jpg_every == 1 % jpg_every;
    const int r = inject_event(jpg ? VEI_POST_JPG : VEI_PING);
    if (i == 1) first.set_value();
    if (r == -LIB_NOT_TRANSCRIBING) return;  // the transcription has ended
    if (r < 0) {
      counts.error = r;
      return;
    }
    (jpg ? counts.post_jpgs : counts.pings) += 1;
    counts.packets += static_cast<unsigned long>(r);
    if (rate > 0) {  // absolute deadlines: no drift
      const auto due = start + std::chrono::nanoseconds(static_cast<long long>(i * 1'000'000'000ull / rate));
      std::this_thread::sleep_until(due);
    }
  }
}

}  // namespace

int main(int argc, char* argv[]) {
  unsigned long rate = 1000, jpg_every = 0;
  if (argc < 3 || argc > 5 || (argc > 3 && !parse_count(argv[3], rate)) ||
      (argc > 4 && !parse_count(argv[4], jpg_every))) {
    std::fprintf(stderr, "usage: vei_pinger src.pcap dst.pcap [pings-per-second] [post-jpg-every-n]\n");
    return 1;
  }
  FILE* src = std::fopen(argv[1], "r");
  if (!src) {
    std::fprintf(stderr, "vei_pinger: %s: %s\n", argv[1], std::strerror(errno));
    return 2;
  }
  FILE* dst = std::fopen(argv[2], "wb");
  if (!dst) {
    std::fprintf(stderr, "vei_pinger: %s: %s\n", argv[2], std::strerror(errno));
    std::fclose(src);
    return 2;
  }
  if (const int init = initialize_vei_library(src, dst); init != 0) {
    std::fprintf(stderr, "vei_pinger: initialization failed with code %d\n", init);
    std::fclose(src);
    std::fclose(dst);
    return 3;
  }

  Counts counts;
  std::promise<void> first;
  std::thread injector(inject_until_the_end, rate, jpg_every, std::ref(counts), std::ref(first));
  first.get_future().wait();
  const int run = start_vei_transcription();
  if (run != 0) std::fprintf(stderr, "vei_pinger: transcription failed with code %d\n", run);
  injector.join();
  vei_finish();

  std::printf("vei_pinger: accepted pings=%lu post_jpgs=%lu packets=%lu\n", counts.pings, counts.post_jpgs,
              counts.packets);
  if (counts.error != 0) {
    std::fprintf(stderr, "vei_pinger: inject_event failed with code %d\n", counts.error);
    return 5;
  }
  return run == 0 ? 0 : 4;
}
