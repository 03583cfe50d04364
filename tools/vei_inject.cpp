// vei_inject: a libvei client like the original's example: it initialises the library, starts a
// thread just before the transcription, and that thread injects the named events, once each, while
// the background is transcribed (at its recorded pace unless VEI_SPEED says otherwise).
//
//   vei_inject [--delay SECONDS] background.pcap output.pcap EVENT...     (EVENT: VEI_PING, VEI_NMAP...)
//
// The thread waits `--delay` seconds (default 0) before its first event, so that a paced
// transcription is under way. For each event it prints, on stdout, its name and what
// inject_event() returned (packets, or a negative code):
//
//   VEI_PING 1
//
// Exit status: 0 every event injected; 1 usage; 2 a file cannot be opened; 3 initialisation
// failed; 4 the transcription failed; 5 an event was refused.
#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include "pipeline/vei.h"
#include "pipeline/vei_events.h"

int main(int argc, char* argv[]) {
  std::vector<std::string_view> args(argv + 1, argv + argc);
  double delay = 0;
  if (args.size() >= 2 && args[0] == "--delay") {
    char* end = nullptr;
    delay = std::strtod(argv[2], &end);
    if (*end != '\0' || !(delay >= 0)) args.clear();
    else args.erase(args.begin(), args.begin() + 2);
  }
  std::vector<VEI_EVENT_TYPE> events;
  for (size_t i = 2; i < args.size(); ++i) {
    const vei::VeiEvent* e = vei::find_vei_event(args[i]);
    if (!e) {
      std::fprintf(stderr, "vei_inject: unknown event %.*s\n", static_cast<int>(args[i].size()), args[i].data());
      return 1;
    }
    events.push_back(static_cast<VEI_EVENT_TYPE>(e->type));
  }
  if (args.size() < 3) {
    std::fprintf(stderr, "usage: vei_inject [--delay SECONDS] background.pcap output.pcap EVENT...\n");
    return 1;
  }
  const std::string bg_path(args[0]), out_path(args[1]);
  FILE* bg = std::fopen(bg_path.c_str(), "r");
  FILE* out = bg ? std::fopen(out_path.c_str(), "wb") : nullptr;
  if (!bg || !out) {
    std::fprintf(stderr, "vei_inject: %s: %s\n", bg ? out_path.c_str() : bg_path.c_str(), std::strerror(errno));
    if (bg) std::fclose(bg);
    return 2;
  }
  if (const int init = initialize_vei_library(bg, out); init != 0) {
    std::fprintf(stderr, "vei_inject: initialization failed with code %d\n", init);
    std::fclose(bg);
    std::fclose(out);
    return 3;
  }
  bool refused = false;
  std::thread injector([&] {
    std::this_thread::sleep_for(std::chrono::duration<double>(delay));
    for (size_t i = 0; i < events.size(); ++i) {
      const int r = inject_event(events[i]);
      refused |= r <= 0;
      std::printf("%.*s %d\n", static_cast<int>(args[i + 2].size()), args[i + 2].data(), r);
    }
  });
  const int run = start_vei_transcription();
  if (run != 0) std::fprintf(stderr, "vei_inject: transcription failed with code %d\n", run);
  injector.join();
  vei_finish();
  return run != 0 ? 4 : refused ? 5 : 0;
}
