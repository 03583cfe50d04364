// The vei.h C API on the engine: `pcap(/dev/fd/N) -> pace(speed=realtime) -> file(/dev/fd/M)`
// built from the caller's FILE*s (no pace stage at top speed), with each event injected through
// Engine::inject as its stage line (pipeline/vei_events.h), as the `api` source.
//
// Both files reach the engine as /dev/fd paths, which Linux reopens as new open file descriptions
// of the same files: a regular background file is read from its start whatever its FILE position,
// a pipe or FIFO from where it is; the output is reopened (and truncated) by the file sink at the
// start. The caller's FILE*s are only closed, by vei_finish().
#include "pipeline/vei.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <condition_variable>
#include <cstdlib>
#include <cstring>
#include <fmt/format.h>
#include <memory>
#include <mutex>
#include <new>
#include <optional>
#include <stdexcept>
#include <string>

#include "core/background_hosts.h"
#include "core/host_macs.h"
#include "core/packet_builder.h"
#include "pipeline/engine.h"
#include "pipeline/stage.h"
#include "pipeline/vei_events.h"

namespace {

// The hosts of a background that cannot be read twice (a pipe, a FIFO): documented in vei.h.
const vei::BackgroundHosts unknown_background{vei::IpAddr::v4(0x0a630002), {vei::IpAddr::v4(0x0a630001)}};

void complain(const std::string& message) { fmt::print(stderr, "vei: {}\n", message); }

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
  vei::BackgroundHosts hosts;
  std::optional<vei::EventMacs> macs;  // on Ethernet: the hosts' addresses, found once
  uint64_t events = 0;  // injected since the initialisation
};

Library& library() {
  static Library* l = new Library;
  return *l;
}

// The pacer VEI_SPEED asks for, as a stage to put before the output (none at top speed). Throws
// std::invalid_argument for a value that is no speed.
std::string pacer_stage() {
  const char* env = std::getenv("VEI_SPEED");
  const std::string_view text = env && *env ? env : "realtime";
  const auto& params = vei::find_stage("pace")->spec().params;
  const auto spec = std::find_if(params.begin(), params.end(), [](const vei::ParamSpec& p) { return p.name == "speed"; });
  vei::Value speed;
  std::string error;
  // Checked before it goes into the description: text such as `1x) -> file(x` must not.
  if (!vei::parse_value(*spec, text, speed, error))
    throw std::invalid_argument(
        fmt::format("VEI_SPEED={} is not a speed ({}): use realtime, topspeed or a factor such as 4x", text, error));
  return speed.real == 0 ? "" : fmt::format(" -> pace(speed={})", text);
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

  std::string pacer;
  try {
    pacer = pacer_stage();
  } catch (const std::invalid_argument& e) {
    complain(fmt::format("initialize_vei_library: {}", e.what()));
    return -BAD_SPEED;
  }
  const std::string background_path = fmt::format("/dev/fd/{}", bfd);
  try {
    auto engine = vei::Engine::from_description(
        "<vei>", fmt::format("pcap({}){} -> file({})", background_path, pacer, output_path), false);
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
  // Read now, while nothing else reads the file; a background that cannot be read twice is unknown.
  l.hosts = vei::background_hosts(background_path).value_or(unknown_background);
  l.macs.reset();
  if (l.linktype == 1 && !l.hosts.clients.empty()) {
    vei::HostMacs book;
    const vei::IpAddr client = l.hosts.clients.front(), server = l.hosts.server;
    book.learn(background_path, [&](const vei::IpAddr& ip) { return ip == client || ip == server; });
    l.macs = vei::EventMacs{book.of(client), book.of(server)};
  }
  l.events = 0;
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
  std::string line;
  {
    std::lock_guard lock(l.mutex);
    if (l.phase == Phase::idle) return -LIB_NOT_INITIALIZED;
    if (l.phase == Phase::ran || l.finishing) return -LIB_NOT_TRANSCRIBING;
    const vei::VeiEvent* e = vei::find_vei_event(static_cast<int>(event));
    if (!e) return -BAD_EVENT_TYPE;
    if (l.hosts.clients.empty()) {
      complain(fmt::format("inject_event: {}: the background shows no two IP hosts to hold the conversation", e->name));
      return -NO_BACKGROUND_HOSTS;
    }
    if (!vei::packets::supported_linktype(l.linktype, l.hosts.server.v6)) {
      complain(fmt::format("inject_event: {}: {}", e->name, vei::packets::unsupported_linktype(l.linktype, l.hosts.server.v6)));
      return -BAD_EVENT_TYPE;
    }
    try {
      line = vei::vei_event_line(*e, l.hosts.clients.front(), l.hosts.server, l.events, l.macs ? &*l.macs : nullptr);
    } catch (const std::runtime_error& error) {
      complain(fmt::format("inject_event: {}", error.what()));
      return -BAD_EVENT_TYPE;
    }
    ++l.events;
    engine = l.engine;
  }
  // Outside the lock: inject() is thread-safe, and it may wait a moment for a free batch. Before
  // the start, the engine keeps the frames and writes them at the background's first packet time.
  try {
    return static_cast<int>(engine->inject(line));
  } catch (const vei::InjectError&) {
    return -LIB_NOT_TRANSCRIBING;  // the run ended meanwhile (the frames themselves always fit)
  } catch (const std::bad_alloc&) {
    return -FAILED_TO_BUFFER;
  } catch (const vei::DescriptionError& error) {
    complain(fmt::format("inject_event: the stage refused {}: {}", line, error.what()));
    return -BAD_EVENT_TYPE;
  } catch (const std::exception& error) {
    complain(fmt::format("inject_event: {}: {}", line, error.what()));
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
