// The vei.h C API on the engine: `pcap(<background>) -> file(<output>)`, with the events injected
// through Engine::inject as the `api` source.
//
// The caller's FILE*s reach the engine as /dev/fd/N paths. A regular background file is reopened
// that way (from its start); a background that cannot be reopened at its position (a pipe, a FIFO,
// a socket) is copied by a pump thread into a pipe of ours, after its header has been read here
// for the link type. The output is reopened through /dev/fd/M by the file sink at start.
#include "pipeline/vei.h"

#include <fcntl.h>
#include <poll.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <condition_variable>
#include <cstring>
#include <fmt/format.h>
#include <memory>
#include <mutex>
#include <new>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "pipeline/engine.h"
#include "stages/packet_builder.h"

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

constexpr uint32_t unknown_linktype = UINT32_MAX;

void complain(const std::string& message) { fmt::print(stderr, "vei: {}\n", message); }

uint32_t load32(const unsigned char* p, bool big) {
  return big ? uint32_t{p[0]} << 24 | uint32_t{p[1]} << 16 | uint32_t{p[2]} << 8 | p[3]
             : uint32_t{p[3]} << 24 | uint32_t{p[2]} << 16 | uint32_t{p[1]} << 8 | p[0];
}
uint16_t load16(const unsigned char* p, bool big) {
  return static_cast<uint16_t>(big ? p[0] << 8 | p[1] : p[1] << 8 | p[0]);
}

// Reads a capture's header through `get(n)`, which appends the next n bytes of the file to
// `bytes` (false at the end of the file or on an error), and returns its link type: the pcap
// header's, or for pcapng the first interface description block's. nullopt if it is neither.
template <class Get>
std::optional<uint32_t> read_linktype(std::vector<unsigned char>& bytes, Get get) {
  if (!get(4)) return std::nullopt;
  const uint32_t magic = load32(bytes.data(), false);
  if (magic == 0xa1b2c3d4 || magic == 0xa1b23c4d || magic == 0xd4c3b2a1 || magic == 0x4d3cb2a1) {
    if (!get(20)) return std::nullopt;
    const bool big = magic == 0xd4c3b2a1 || magic == 0x4d3cb2a1;
    // The upper bits carry FCS information (pcap-linktype(7)); the engine keeps the field whole.
    return load32(bytes.data() + 20, big);
  }
  if (magic != 0x0a0d0d0a) return std::nullopt;
  if (!get(8)) return std::nullopt;
  const uint32_t bom = load32(bytes.data() + 8, false);
  if (bom != 0x1a2b3c4d && bom != 0x4d3c2b1a) return std::nullopt;
  const bool big = bom == 0x4d3c2b1a;
  size_t block = 0;
  uint32_t length = load32(bytes.data() + 4, big);
  constexpr size_t prefix_limit = size_t{16} << 20;
  for (;;) {
    if (length < 12 || length % 4 || block + length > prefix_limit) return std::nullopt;
    if (!get(block + length - bytes.size())) return std::nullopt;
    if (load32(bytes.data() + block, big) == 1) return load16(bytes.data() + block + 8, big);  // IDB
    block += length;
    if (!get(8)) return std::nullopt;
    length = load32(bytes.data() + block + 4, big);
  }
}

// Copies a non-seekable background (pipe, FIFO, socket) into a pipe the engine reads through
// /dev/fd: first the header bytes already read here, then the rest as it comes.
class Pump {
 public:
  // Reads the header of `fd` (blocking, as reading the background always did). Throws on an
  // error; `linktype` is set, or left unknown when the bytes are not a capture's header (the
  // engine then refuses them with the better message).
  Pump(int fd, uint32_t& linktype) : in_(fd) {
    std::vector<unsigned char> prefix;
    const auto type = read_linktype(prefix, [&](size_t n) {
      const size_t at = prefix.size();
      prefix.resize(at + n);
      size_t got = 0;
      while (got < n) {
        const ssize_t r = ::read(fd, prefix.data() + at + got, n - got);
        if (r < 0 && errno == EINTR) continue;
        if (r <= 0) break;
        got += static_cast<size_t>(r);
      }
      prefix.resize(at + got);
      return got == n;
    });
    linktype = type.value_or(unknown_linktype);
    int p[2];
    if (::pipe2(p, O_CLOEXEC) != 0) throw std::runtime_error(fmt::format("pipe: {}", std::strerror(errno)));
    read_end_ = p[0];
    write_end_ = p[1];
    (void)::fcntl(write_end_, F_SETPIPE_SZ, 1 << 20);  // fewer, larger reads for the engine
    (void)::fcntl(write_end_, F_SETFL, O_NONBLOCK);  // so that stop() is never stuck in a write
    thread_ = std::thread([this, prefix = std::move(prefix)] { run(prefix); });
  }
  Pump(const Pump&) = delete;
  Pump& operator=(const Pump&) = delete;
  ~Pump() {
    stop_ = true;
    if (thread_.joinable()) thread_.join();
    if (write_end_ >= 0) ::close(write_end_);
    ::close(read_end_);
  }
  int read_end() const { return read_end_; }

 private:
  // Waits until `fd` is ready for `events`; false once stop() was asked.
  bool wait_for(int fd, short events) {
    while (!stop_) {
      pollfd p{fd, events, 0};
      const int r = ::poll(&p, 1, 100);
      if (r > 0) return true;
      if (r < 0 && errno != EINTR) return false;
    }
    return false;
  }
  bool write_all(const unsigned char* data, size_t size) {
    while (size > 0) {
      const ssize_t w = ::write(write_end_, data, size);
      if (w > 0) {
        data += w;
        size -= static_cast<size_t>(w);
      } else if (w < 0 && errno == EINTR) {
        continue;
      } else if (w < 0 && errno == EAGAIN) {
        if (!wait_for(write_end_, POLLOUT)) return false;
      } else {
        return false;
      }
    }
    return true;
  }
  void run(const std::vector<unsigned char>& prefix) {
    std::vector<unsigned char> buffer(size_t{1} << 20);
    bool ok = write_all(prefix.data(), prefix.size());
    while (ok && wait_for(in_, POLLIN)) {
      const ssize_t r = ::read(in_, buffer.data(), buffer.size());
      if (r < 0 && (errno == EINTR || errno == EAGAIN)) continue;
      if (r <= 0) break;  // the end of the background (or an error the engine cannot see: it ends there)
      ok = write_all(buffer.data(), static_cast<size_t>(r));
    }
    ::close(write_end_);  // the engine sees the end of the file
    write_end_ = -1;
  }

  int in_;
  int read_end_ = -1;
  int write_end_ = -1;
  std::atomic<bool> stop_{false};
  std::thread thread_;
};

// Frames of one event, before the transcription starts.
struct PendingFrame {
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
  std::unique_ptr<Pump> pump;
  FILE* background = nullptr;
  FILE* output = nullptr;
  std::string background_path, output_path;
  uint32_t linktype = unknown_linktype;
  // Events injected before the start: handed to the engine in one call just before it starts,
  // so that any number of them can wait (the engine holds each inject() call's batch until the
  // background's first packet is known).
  std::vector<PendingFrame> pending;
  uint16_t ping_sequence = 0;
  uint32_t conversations = 0;
};

Library& library() {
  static Library* l = new Library;
  return *l;
}

// Under the mutex: the pending frames go to the engine in one inject() call, in time order (a
// stable sort by offset: what separate calls at the same "now" would have given).
void flush_pending(Library& l) {
  if (l.pending.empty()) return;
  std::stable_sort(l.pending.begin(), l.pending.end(),
                   [](const PendingFrame& a, const PendingFrame& b) { return a.offset_ns < b.offset_ns; });
  std::vector<vei::InjectedFrame> frames;
  frames.reserve(l.pending.size());
  for (const auto& f : l.pending) frames.push_back({f.bytes, f.offset_ns});
  try {
    l.engine->inject(frames);
  } catch (const std::exception& e) {
    complain(fmt::format("{} event packets injected before the start were lost: {}", frames.size(), e.what()));
  }
  l.pending.clear();
}

std::vector<PendingFrame> event_frames(Library& l, VEI_EVENT_TYPE event) {
  std::vector<PendingFrame> out;
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

  uint32_t linktype = unknown_linktype;
  std::unique_ptr<Pump> pump;
  std::string background_path;
  try {
    if (S_ISREG(bst.st_mode) || S_ISBLK(bst.st_mode)) {
      std::vector<unsigned char> header;
      linktype = read_linktype(header, [&](size_t n) {
                   const size_t at = header.size();
                   header.resize(at + n);
                   const ssize_t r = ::pread(bfd, header.data() + at, n, static_cast<off_t>(at));
                   return r == static_cast<ssize_t>(n);
                 }).value_or(unknown_linktype);
      background_path = fmt::format("/dev/fd/{}", bfd);
    } else {
      pump = std::make_unique<Pump>(bfd, linktype);
      background_path = fmt::format("/dev/fd/{}", pump->read_end());
    }
    auto engine = vei::Engine::from_description(
        "<vei>", fmt::format("pcap({}) -> file({})", background_path, output_path), false);
    l.engine = std::make_shared<vei::Engine>(std::move(engine));
  } catch (const std::exception& e) {
    complain(fmt::format("initialize_vei_library: the background trace cannot be read: {}", e.what()));
    return -BAD_BTRACE_FILE;
  }
  l.pump = std::move(pump);
  l.background = background_trace;
  l.output = output_trace;
  l.background_path = std::move(background_path);
  l.output_path = output_path;
  l.linktype = linktype;
  l.pending.clear();
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
    flush_pending(l);
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
  std::vector<PendingFrame> frames;
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
    const int count = static_cast<int>(frames.size());
    if (l.phase == Phase::ready) {
      try {
        for (auto& f : frames) l.pending.push_back(std::move(f));
      } catch (const std::bad_alloc&) {
        return -FAILED_TO_BUFFER;
      }
      return count;
    }
    engine = l.engine;
  }
  // Outside the lock: inject() is thread-safe, and it may wait a moment for a free batch.
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
    flush_pending(l);
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
  l.pump.reset();  // after the engine's end: nothing more is read
  l.engine.reset();
  if (l.background) std::fclose(l.background);
  if (l.output && l.output != l.background) std::fclose(l.output);
  l.background = l.output = nullptr;
  l.pending.clear();
  l.pending.shrink_to_fit();
  l.phase = Phase::idle;
  l.finishing = false;
  l.changed.notify_all();
}
