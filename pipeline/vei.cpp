// The vei.h C API on the engine: `pcap(/dev/fd/N) -> file(/dev/fd/M)` built from the caller's
// FILE*s, with the events injected through Engine::inject as the `api` source.
//
// Both files reach the engine as /dev/fd paths, which Linux reopens as new open file descriptions
// of the same files: a regular background file is read from its start whatever its FILE position,
// a pipe or FIFO from where it is; the output is reopened (and truncated) by the file sink at the
// start. The caller's FILE*s are only closed, by vei_finish().
#include "pipeline/vei.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <condition_variable>
#include <cstring>
#include <fmt/format.h>
#include <memory>
#include <mutex>
#include <new>
#include <string>
#include <vector>

#include "pipeline/engine.h"
#include "core/packet_builder.h"

namespace {

using vei::packets::Endpoint;

// Addresses of the generated events (documented in vei.h).
constexpr uint32_t client_ip = 0x0a630001;  // 10.99.0.1
constexpr uint32_t server_ip = 0x0a630002;  // 10.99.0.2
constexpr uint16_t ping_ident = 0x7665;     // "ve"
constexpr uint8_t ping_ttl = 64;
constexpr size_t ping_payload = 56;  // as ping(8)
constexpr uint16_t first_client_port = 49152;
constexpr int64_t conversation_gap_ns = 100'000;  // 100 µs between the frames of a conversation

void complain(const std::string& message) { fmt::print(stderr, "vei: {}\n", message); }

// A frame of an event, `offset_ns` after the event's first.
struct EventFrame {
  std::vector<std::byte> bytes;
  int64_t offset_ns = 0;
};

enum class Phase { idle, ready, running, ran };

// The library's one global state. Never destroyed: a client may exit with a transcription
// running in another thread.
struct Library {
  std::mutex mutex;
  std::condition_variable changed;
  Phase phase = Phase::idle;
  bool finishing = false;  // vei_finish() is shutting the library down
  std::shared_ptr<vei::Engine> engine;
  FILE* background = nullptr;
  FILE* output = nullptr;
  std::string background_path, output_path;
  uint32_t linktype = 0;  // the output's
  uint16_t ping_sequence = 0;
  uint32_t conversations = 0;
};

Library& library() {
  static Library* l = new Library;
  return *l;
}

std::vector<EventFrame> event_frames(Library& l, VEI_EVENT_TYPE event) {
  std::vector<EventFrame> out;
  const Endpoint client{vei::packets::local_mac(client_ip), client_ip, 0};
  const Endpoint server{vei::packets::local_mac(server_ip), server_ip, 80};
  if (event == VEI_PING) {
    const uint16_t sequence = ++l.ping_sequence;
    out.push_back({vei::packets::icmp_echo(l.linktype, client, server, ping_ident, sequence, ping_ttl, ping_payload,
                                           false),
                   0});
  } else {
    const uint32_t n = l.conversations++;
    Endpoint c = client;
    c.port = static_cast<uint16_t>(first_client_port + n % 16384);
    const uint32_t client_isn = 0x5eed0000u ^ (n * 2654435761u);
    const uint32_t server_isn = client_isn * 7 + 0x1234567u;
    for (auto& f : vei::packets::http_post_jpg(l.linktype, c, server, client_isn, server_isn, conversation_gap_ns))
      out.push_back({std::move(f.bytes), f.offset_ns});
  }
  return out;
}

bool readable(int fd) {
  const int flags = ::fcntl(fd, F_GETFL);
  return flags >= 0 && ((flags & O_ACCMODE) == O_RDONLY || (flags & O_ACCMODE) == O_RDWR);
}
bool writable(int fd) {
  const int flags = ::fcntl(fd, F_GETFL);
  return flags >= 0 && ((flags & O_ACCMODE) == O_WRONLY || (flags & O_ACCMODE) == O_RDWR);
}

}  // namespace

extern "C" int initialize_vei_library(FILE* background_trace, FILE* output_trace) {
  Library& l = library();
  std::unique_lock lock(l.mutex);
  l.changed.wait(lock, [&] { return !l.finishing; });
  if (l.phase != Phase::idle) {
    complain("initialize_vei_library: already initialised; call vei_finish() first");
    return -BAD_THREAD_INIT;
  }
  const int bfd = background_trace ? ::fileno(background_trace) : -1;
  if (bfd < 0 || !readable(bfd)) {
    complain("initialize_vei_library: the background trace is not a file open for reading");
    return -BAD_BTRACE_FILE;
  }
  const int ofd = output_trace ? ::fileno(output_trace) : -1;
  if (ofd < 0 || !writable(ofd)) {
    complain("initialize_vei_library: the output trace is not a file open for writing");
    return -BAD_OTRACE_FILE;
  }
  struct stat bst {}, ost {};
  if (::fstat(bfd, &bst) != 0 || S_ISDIR(bst.st_mode)) {
    complain("initialize_vei_library: the background trace is not a capture file");
    return -BAD_BTRACE_FILE;
  }
  if (::fstat(ofd, &ost) != 0 || (bst.st_dev == ost.st_dev && bst.st_ino == ost.st_ino)) {
    complain("initialize_vei_library: the output trace is the background trace");
    return -BAD_OTRACE_FILE;
  }
  // The sink reopens the output through /dev/fd at the start: check now that this will work
  // (O_NONBLOCK: a FIFO without a reader fails here instead of blocking).
  const std::string output_path = fmt::format("/dev/fd/{}", ofd);
  if (const int probe = ::open(output_path.c_str(), O_WRONLY | O_NONBLOCK | O_CLOEXEC); probe >= 0) {
    ::close(probe);
  } else {
    complain(fmt::format("initialize_vei_library: the output trace cannot be written: {}", std::strerror(errno)));
    return -BAD_OTRACE_FILE;
  }
  (void)std::fflush(output_trace);  // nothing the caller buffered may land on our header later

  const std::string background_path = fmt::format("/dev/fd/{}", bfd);
  try {
    auto engine = vei::Engine::from_description(
        "<vei>", fmt::format("pcap({}) -> file({})", background_path, output_path), false);
    l.linktype = engine.linktype();
    l.engine = std::make_shared<vei::Engine>(std::move(engine));
  } catch (const std::exception& e) {
    complain(fmt::format("initialize_vei_library: the background trace cannot be read: {}", e.what()));
    return -BAD_BTRACE_FILE;
  }
  l.background = background_trace;
  l.output = output_trace;
  l.background_path = background_path;
  l.output_path = output_path;
  l.ping_sequence = 0;
  l.conversations = 0;
  l.phase = Phase::ready;
  return 0;
}

extern "C" int start_vei_transcription(void) {
  Library& l = library();
  std::shared_ptr<vei::Engine> engine;
  std::string background_path, output_path;
  {
    std::lock_guard lock(l.mutex);
    if (l.phase == Phase::idle || l.finishing) return -LIB_NOT_INITIALIZED;
    if (l.phase != Phase::ready) {
      complain("start_vei_transcription: the transcription has already been started");
      return -THREAD_KICKOFF_FAILED;
    }
    try {
      l.engine->start();
    } catch (const std::exception& e) {
      complain(fmt::format("start_vei_transcription: {}", e.what()));
      l.phase = Phase::ran;
      l.changed.notify_all();
      return -BAD_OTRACE_FILE;
    }
    l.phase = Phase::running;
    engine = l.engine;
    background_path = l.background_path;
    output_path = l.output_path;
  }
  const int status = engine->wait();
  const auto error = engine->stats().error;
  {
    std::lock_guard lock(l.mutex);
    l.phase = Phase::ran;
    l.changed.notify_all();
  }
  switch (status) {
    case vei::exit_ok: return 0;
    case vei::exit_damaged: return -BAD_BTRACE_FILE;
    default: break;
  }
  // The file sink and the reader begin their messages with "<file>: ".
  if (error.find(output_path + ":") != std::string::npos) return -BAD_OTRACE_FILE;
  if (error.find(background_path + ":") != std::string::npos) return -BAD_BTRACE_FILE;
  return -THREAD_KICKOFF_FAILED;
}

extern "C" int inject_event(VEI_EVENT_TYPE event) {
  Library& l = library();
  std::shared_ptr<vei::Engine> engine;
  std::vector<EventFrame> frames;
  {
    std::lock_guard lock(l.mutex);
    if (l.phase == Phase::idle) return -LIB_NOT_INITIALIZED;
    if (l.phase == Phase::ran || l.finishing) return -LIB_NOT_TRANSCRIBING;
    if (event != VEI_PING && event != VEI_POST_JPG) return -BAD_EVENT_TYPE;
    if (!vei::packets::supported_linktype(l.linktype)) return -BAD_EVENT_TYPE;
    try {
      frames = event_frames(l, event);
    } catch (const std::bad_alloc&) {
      return -FAILED_TO_BUFFER;
    } catch (const std::exception& e) {
      complain(fmt::format("inject_event: {}", e.what()));
      return -FAILED_TO_BUFFER;
    }
    engine = l.engine;
  }
  // Outside the lock: inject() is thread-safe, and it may wait a moment for a free batch. Before
  // the start, the engine keeps the frames and writes them at the background's first packet time.
  std::vector<vei::InjectedFrame> spans;
  spans.reserve(frames.size());
  for (const auto& f : frames) spans.push_back({f.bytes, f.offset_ns});
  try {
    return static_cast<int>(engine->inject(spans));
  } catch (const vei::InjectError&) {
    return -LIB_NOT_TRANSCRIBING;  // the run ended meanwhile (the frames themselves always fit)
  } catch (const std::exception&) {
    return -FAILED_TO_BUFFER;
  }
}

extern "C" void vei_finish(void) {
  Library& l = library();
  std::unique_lock lock(l.mutex);
  if (l.finishing) {  // another thread is at it: return once it is done
    l.changed.wait(lock, [&] { return !l.finishing; });
    return;
  }
  if (l.phase == Phase::idle) return;
  l.finishing = true;
  const auto engine = l.engine;
  if (l.phase == Phase::ready) {
    // Never started: write the file header and the events injected so far, none of the background.
    lock.unlock();
    engine->stop();
    try {
      engine->start();
      (void)engine->wait();
    } catch (const std::exception& e) {
      complain(fmt::format("vei_finish: {}", e.what()));
    }
    lock.lock();
  } else if (l.phase == Phase::running) {
    // start_vei_transcription() is running in another thread: stop it; it writes what it merged.
    engine->stop();
    l.changed.wait(lock, [&] { return l.phase == Phase::ran; });
  }
  l.engine.reset();
  if (l.background) std::fclose(l.background);
  if (l.output && l.output != l.background) std::fclose(l.output);
  l.background = l.output = nullptr;
  l.phase = Phase::idle;
  l.finishing = false;
  l.changed.notify_all();
}
