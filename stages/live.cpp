#include "stages/live.h"

#include <net/if.h>
#include <pcap/pcap.h>
#include <poll.h>
#include <sys/eventfd.h>
#include <sys/ioctl.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <condition_variable>
#include <cstring>
#include <deque>
#include <mutex>
#include <fmt/format.h>
#include <stdexcept>
#include <utility>

#include "core/bpf_filter.h"
#include "core/option_error.h"
#include "core/pcap_format.h"
#include "core/timeline_source.h"

namespace vei {

namespace {

// The longest a frame waits in a ring block before the kernel hands the block over: latency added
// to flush_ns, and what a stop or a vanished interface may lose.
constexpr int block_timeout_ms = 1;
// Frames per pcap_dispatch: bounds the time between looks at the flush deadline and at stop()
// while frames keep coming.
constexpr int dispatch_count = 64;
// How often the kernel's drop counters are read and the interface is checked: libpcap reads
// /proc/net/dev for every pcap_stats, and says nothing when the interface goes down.
constexpr int64_t check_interval_ns = 100'000'000;
// Waiting for a free batch, stop() is looked at this often (pool.acquire() cannot be interrupted).
constexpr int pool_wait_ms = 1;

int64_t steady_ns() {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(std::chrono::steady_clock::now().time_since_epoch())
      .count();
}

// pcap_datalink gives a DLT_ value; files want the LINKTYPE_ value, which differs for a few types
// only, of which Linux has these two (libpcap's own mapping, dlt_to_linktype, is not exported).
uint32_t linktype_of(int dlt) {
  switch (dlt) {
    case DLT_ATM_RFC1483: return 100;
    case DLT_RAW: return 101;
    default: return static_cast<uint32_t>(dlt);
  }
}

}  // namespace

LiveCapture::LiveCapture(LiveOptions options, uint16_t rank) : options_(std::move(options)), rank_(rank) {
  const std::string& name = options_.interface;
  if (name.empty() || name.size() >= IFNAMSIZ)
    fail(fmt::format("no such interface (invalid name, at most {} characters)", IFNAMSIZ - 1));
  char errbuf[PCAP_ERRBUF_SIZE] = {};
  handle_ = pcap_create(name.c_str(), errbuf);
  if (!handle_) fail(errbuf);
  try {
    // Not immediate mode: there libpcap gives every frame a ring slot sized for the largest frame
    // (64 KiB + on links with offloads), so 32 MiB holds a burst of only 256 frames: of 1000 frames
    // sent back to back on a veth, half were lost. Without it (TPACKET_V3) frames are packed into
    // ring blocks, which the kernel hands over when full or after block_timeout_ms.
    pcap_set_timeout(handle_, block_timeout_ms);
    if (pcap_set_tstamp_precision(handle_, PCAP_TSTAMP_PRECISION_NANO) != 0)
      fail("libpcap cannot give nanosecond timestamps here");
    pcap_set_snaplen(handle_, static_cast<int>(std::min<uint32_t>(options_.snaplen, pcap::max_snaplen)));
    pcap_set_promisc(handle_, options_.promisc ? 1 : 0);
    pcap_set_buffer_size(handle_, options_.buffer_bytes);
    const int status = pcap_activate(handle_);
    if (status < 0) {
      const std::string detail = pcap_geterr(handle_);
      switch (status) {
        case PCAP_ERROR_PERM_DENIED:
        case PCAP_ERROR_PROMISC_PERM_DENIED:
          fail("permission denied: capturing needs CAP_NET_RAW (run as root, or `setcap cap_net_raw+ep` on the binary)");
        case PCAP_ERROR_NO_SUCH_DEVICE: fail("no such interface");
        case PCAP_ERROR_IFACE_NOT_UP: fail("interface is down (bring it up with `ip link set dev ... up`)");
        default: fail(fmt::format("cannot capture: {}", detail.empty() ? pcap_statustostr(status) : detail));
      }
    }
    if (!options_.filter.empty()) {
      bpf_program program{};
      // Named as the `filter` parameter's fault, so that the description shows a caret under it.
      if (pcap_compile(handle_, &program, options_.filter.c_str(), 1, PCAP_NETMASK_UNKNOWN) != 0)
        throw OptionError("filter", fmt::format("live {}: filter '{}': {}", options_.interface, options_.filter,
                                                pcap_geterr(handle_)));
      const int set = pcap_setfilter(handle_, &program);
      pcap_freecode(&program);
      if (set != 0) fail(fmt::format("filter '{}': {}", options_.filter, pcap_geterr(handle_)));
    }
    // The thread waits in poll() (for frames, the flush deadline or stop), never inside libpcap.
    if (pcap_setnonblock(handle_, 1, errbuf) != 0) fail(errbuf);
    stop_fd_ = ::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
    if (stop_fd_ < 0) fail(fmt::format("eventfd: {}", std::strerror(errno)));
  } catch (...) {
    pcap_close(handle_);
    throw;
  }
  linktype_ = linktype_of(pcap_datalink(handle_));
  // Pseudo-interfaces such as "any" have no index, and nothing to check.
  ifindex_ = ::if_nametoindex(name.c_str());
}

LiveCapture::~LiveCapture() {
  stop();
  pcap_close(handle_);
  ::close(stop_fd_);
}

void LiveCapture::fail(const std::string& what) const {
  throw std::runtime_error(fmt::format("live {}: {}", options_.interface, what));
}

void LiveCapture::start(BatchPool& pool, std::function<void(Batch*)> deliver,
                        std::function<void(const std::string&)> on_error) {
  if (pool_) throw std::logic_error(fmt::format("live {}: started twice", options_.interface));
  pool_ = &pool;
  deliver_ = std::move(deliver);
  on_error_ = std::move(on_error);
  thread_ = std::thread([this] {
    std::string error;
    try {
      error = run();
    } catch (const std::exception& e) {
      error = e.what();
    }
    if (!error.empty() && on_error_) on_error_(fmt::format("live {}: {}", options_.interface, error));
  });
}

void LiveCapture::stop() {
  stopping_ = true;
  const uint64_t one = 1;
  // Fails only when the counter is full, and then the thread is awake anyway.
  [[maybe_unused]] const ssize_t woken = ::write(stop_fd_, &one, sizeof one);
  if (thread_.joinable() && thread_.get_id() != std::this_thread::get_id()) thread_.join();
}

LiveStats LiveCapture::stats() const {
  constexpr auto relaxed = std::memory_order_relaxed;
  return {packets_.load(relaxed), bytes_.load(relaxed), batches_.load(relaxed), kernel_dropped_.load(relaxed),
          if_dropped_.load(relaxed)};
}

std::string LiveCapture::run() {
  pollfd fds[2] = {{pcap_get_selectable_fd(handle_), POLLIN, 0}, {stop_fd_, POLLIN, 0}};
  int64_t next_check = steady_ns() + check_interval_ns;
  bool more = false;  // the last dispatch stopped at its count: frames may be waiting
  std::string error;
  while (!stopping_) {
    const int64_t wake = batch_ ? std::min(next_check, flush_at_) : next_check;
    const int64_t wait = more ? 0 : std::max<int64_t>(0, wake - steady_ns());
    const timespec timeout{static_cast<time_t>(wait / pcap::ns_per_s), static_cast<long>(wait % pcap::ns_per_s)};
    if (::ppoll(fds, 2, &timeout, nullptr) < 0 && errno != EINTR) {
      error = fmt::format("poll: {}", std::strerror(errno));
      break;
    }
    if (stopping_) break;
    const int n = pcap_dispatch(handle_, dispatch_count, on_packet, reinterpret_cast<u_char*>(this));
    if (n < 0) {
      // libpcap says "The interface disappeared" when it is deleted; say which and why.
      error = interface_problem();
      if (error.empty()) error = fmt::format("capture failed: {}", pcap_geterr(handle_));
      break;
    }
    more = n == dispatch_count;
    const int64_t now = steady_ns();
    if (batch_ && now >= flush_at_) deliver_batch();
    // The kernel flags the socket (POLLERR) when the interface goes down, but libpcap carries on
    // without a word, waiting for it to come back up: that is an error here.
    if ((fds[0].revents & (POLLERR | POLLHUP | POLLNVAL)) || now >= next_check) {
      next_check = now + check_interval_ns;
      refresh_kernel_stats();
      error = interface_problem();
      if (!error.empty()) break;
    }
  }
  if (batch_) deliver_batch();
  refresh_kernel_stats();
  return error;
}

void LiveCapture::on_packet(unsigned char* self, const pcap_pkthdr* header, const unsigned char* bytes) {
  reinterpret_cast<LiveCapture*>(self)->append(*header, bytes);
}

void LiveCapture::append(const pcap_pkthdr& header, const unsigned char* bytes) {
  const size_t size = record_header_size + header.caplen;
  if (batch_ && batch_->used + size > batch_->capacity()) deliver_batch();
  if (!batch_ && !next_batch()) return;
  Batch& b = *batch_;
  b.reserve_arena(b.used + size);  // grows an empty batch for a frame larger than its arena
  std::byte* at = b.data() + b.used;
  const int64_t ts = int64_t{header.ts.tv_sec} * pcap::ns_per_s + header.ts.tv_usec;  // tv_usec holds ns
  pcap::write_record_header(at, ts, pcap::Precision::ns, header.caplen, header.len);
  std::memcpy(at + record_header_size, bytes, header.caplen);
  b.records.push_back(Record{ts, seq_++, static_cast<uint32_t>(b.used), header.caplen, header.len, rank_, 0});
  b.used += size;
  packets_.fetch_add(1, std::memory_order_relaxed);
  bytes_.fetch_add(header.caplen, std::memory_order_relaxed);
}

bool LiveCapture::next_batch() {
  Batch* b;
  while (!(b = pool_->try_acquire())) {
    if (stopping_) return false;
    pollfd stop{stop_fd_, POLLIN, 0};
    ::poll(&stop, 1, pool_wait_ms);
  }
  b->clear();
  b->source = rank_;
  b->event = true;
  batch_ = b;
  // From when the first frame is read rather than its kernel timestamp: when the thread is behind
  // (after waiting for the pool, say), batches then still fill instead of leaving one per dispatch.
  flush_at_ = steady_ns() + options_.flush_ns;
  return true;
}

void LiveCapture::deliver_batch() {
  batches_.fetch_add(1, std::memory_order_relaxed);
  deliver_(std::exchange(batch_, nullptr));
}

void LiveCapture::refresh_kernel_stats() {
  pcap_stat stat{};
  if (pcap_stats(handle_, &stat) != 0) return;
  kernel_dropped_.store(stat.ps_drop, std::memory_order_relaxed);
  if_dropped_.store(stat.ps_ifdrop, std::memory_order_relaxed);
}

std::string LiveCapture::interface_problem() const {
  if (ifindex_ == 0) return {};
  // By index: a new interface of the same name is not the one captured on.
  ifreq request{};
  request.ifr_ifindex = static_cast<int>(ifindex_);
  const int fd = pcap_fileno(handle_);
  if (::ioctl(fd, SIOCGIFNAME, &request) < 0) return "no such interface (it went away)";
  if (::ioctl(fd, SIOCGIFFLAGS, &request) == 0 && !(request.ifr_flags & IFF_UP)) return "the interface went down";
  return {};
}

// ---- the stage ---------------------------------------------------------------------------------

namespace {

// A live source flushes a batch every millisecond or so: many small batches, enough of them to ride
// out a quarter of a second of output stall at a packet per millisecond.
constexpr size_t live_batches = 256;
constexpr size_t live_arena_size = size_t{64} << 10;

class LiveEvents final : public EventSource {
 public:
  LiveEvents(LiveOptions options, const EventContext& context)
      : capture_(std::move(options), context.rank), pool_(live_batches, live_arena_size), name_(context.name) {}
  void start(EventInjector& engine) override {
    capture_.start(pool_, [&engine](Batch* b) { engine.deliver_captured(b); },
                   [&engine](const std::string& message) { engine.fail(message); });
  }
  void stop() override { capture_.stop(); }
  void add_stats(Stats& stats) const override {
    const auto s = capture_.stats();
    stats.live.push_back({name_, s.packets, s.bytes, s.kernel_dropped, s.if_dropped});
  }
  uint32_t linktype() const { return capture_.linktype(); }

 private:
  LiveCapture capture_;
  BatchPool pool_;
  std::string name_;
};

// A capture as the only input of a run (`live(eth0) -> file(out.pcap)`, tcpdump -w): its packets
// keep the times they were captured. fill() waits on a TBB worker for the capture thread's next
// batch, as a read of a pipe waits; stop() ends the capture, and what it holds is still delivered.
class LiveTimeline final : public TimelineSource {
 public:
  LiveTimeline(LiveOptions options, SourceOptions source)
      : TimelineSource(std::move(source)),
        snaplen_(options.snaplen),
        capture_(std::move(options), options_.rank),
        pool_(live_batches, live_arena_size) {
    info_.linktype = capture_.linktype();
    info_.snaplen = snaplen_;
    info_.precision = pcap::Precision::ns;
  }
  ~LiveTimeline() override { stop(); }

  bool waits_for_packets() const override { return true; }

  void stop() override {
    // Once: a Ctrl-C and a failure may both stop the run, and the capture takes one stop at a time.
    std::call_once(stopped_, [this] {
      {
        // Not while fill() starts the capture on a worker: a stop from a signal's thread either
        // comes first (and the capture never starts) or joins the thread fill() started.
        std::lock_guard lock(start_mutex_);
        stop_requested_ = true;
        capture_.stop();  // delivers the partial batch, then the thread has ended
      }
      std::lock_guard lock(mutex_);
      ended_ = true;
      ready_.notify_all();
    });
  }

  void fill(Batch& batch) override {
    batch.clear();
    batch.source = options_.rank;
    if (!started_) {
      started_ = true;
      std::lock_guard lock(start_mutex_);
      if (!stop_requested_)
        capture_.start(pool_, [this](Batch* b) { put(b); }, [this](const std::string& message) { end_with(message); });
    }
    Batch* captured = take();
    if (!captured) {
      batch.last = true;
      finish();
      const LiveStats s = capture_.stats();
      if (s.kernel_dropped || s.if_dropped)
        options_.report->warn(fmt::format("{}: {} packet(s) dropped by the kernel (its capture buffer was full), {} by the interface",
                                          options_.name, s.kernel_dropped, s.if_dropped));
      if (!error_.empty()) throw std::runtime_error(error_);
      return;
    }
    batch.reserve_arena(captured->used);
    std::memcpy(batch.data(), captured->data(), captured->used);
    batch.used = captured->used;
    // Headers are written in ns by the capture: the batch goes out as it is unless a time changes.
    bool time_kept = output_precision_ == pcap::Precision::ns && offset_ == 0;
    size_t kept = 0;
    for (const Record& r : captured->records) kept += admit(batch, r.offset, r.ts_ns, r.caplen, r.len, time_kept);
    batch.raw_is_output = time_kept && kept == captured->records.size();
    captured->pool->release(captured);
  }

 private:
  void put(Batch* b) {
    std::lock_guard lock(mutex_);
    captured_.push_back(b);
    ready_.notify_all();
  }
  void end_with(const std::string& message) {
    std::lock_guard lock(mutex_);
    error_ = message;
    ended_ = true;
    ready_.notify_all();
  }
  // The next captured batch; nullptr once the capture has ended and every batch was taken.
  Batch* take() {
    std::unique_lock lock(mutex_);
    ready_.wait(lock, [this] { return !captured_.empty() || ended_; });
    if (captured_.empty()) return nullptr;
    Batch* b = captured_.front();
    captured_.pop_front();
    return b;
  }

  const uint32_t snaplen_;
  LiveCapture capture_;
  BatchPool pool_;
  std::mutex mutex_;
  std::condition_variable ready_;
  std::deque<Batch*> captured_;
  bool ended_ = false;
  std::string error_;  // written before ended_ under mutex_, read by fill() after
  bool started_ = false;  // fill()'s own: only the worker that fills reads it
  std::mutex start_mutex_;
  bool stop_requested_ = false;  // under start_mutex_
  std::once_flag stopped_;
};

}  // namespace

LiveStage::LiveStage()
    : EventStage({"live", StageKind::event_source,
                  "Captures from a network interface (libpcap, TPACKET_V3 with a 1 ms timeout, nanosecond timestamps) on "
                  "its own thread. Its packets are events: each is stamped on the output timeline at the moment it was "
                  "captured (while pacing in real time, the background time matching the wall clock; at top speed, "
                  "the time of the last packet written) and merged within the merge's `lateness`. Alone "
                  "(`live(eth0) -> file(out.pcap)`, as tcpdump -w) it is the whole input: its packets keep the times "
                  "they were captured, until the run is stopped (Ctrl-C).",
                  {
                      {"interface", ParamType::string, "", "interface to capture on, e.g. `eth1`", {}, true, true},
                      {"filter", ParamType::string, "", "BPF expression (tcpdump syntax); only matching packets are taken"},
                      {"snaplen", ParamType::size, "262144", "bytes kept of each packet"},
                      {"promisc", ParamType::boolean, "false", "put the interface in promiscuous mode"},
                  }}) {}

void LiveStage::check(const Node& node) const {
  const Value& snaplen = param(node, "snaplen");
  check_range(snaplen, "snaplen", 1, UINT32_MAX, "bytes");
  // The interface's link type is known only once it is open (at the start of the run); an
  // expression libpcap cannot even parse is refused now. What only the link type decides (an
  // Ethernet address on a raw-IP interface, say) is refused at the start, at the same place.
  if (const Value& filter = param(node, "filter"); filter.given) {
    try {
      BpfFilter(filter.text, 1, pcap::max_snaplen);
    } catch (const std::runtime_error& e) {
      if (std::string_view(e.what()).find("syntax error") != std::string_view::npos)
        throw ParamError(filter, e.what(), "filters use tcpdump's syntax: pcap-filter(7)");
    }
  }
}

void LiveStage::verify(const Node& node) const {
  const std::string& name = param(node, "interface").text;
  if (::if_nametoindex(name.c_str()) != 0) return;
  // Pseudo-devices such as `any` or `nflog` are libpcap's, not the kernel's: ask libpcap.
  char errbuf[PCAP_ERRBUF_SIZE] = {};
  pcap_if_t* all = nullptr;
  if (pcap_findalldevs(&all, errbuf) != 0) return;  // cannot tell: opening it at the start will
  bool found = false;
  for (const pcap_if_t* d = all; d && !found; d = d->next) found = name == d->name;
  pcap_freealldevs(all);
  if (!found) throw std::runtime_error(fmt::format("live {}: no such interface", name));
}

std::string LiveStage::source_name(const Node& node) const {
  return !node.label.empty() ? node.label : fmt::format("live {}", param(node, "interface").text);
}

namespace {

LiveOptions live_options(const Node& node, uint32_t snaplen_limit) {
  LiveOptions options;
  options.interface = param(node, "interface").text;
  options.filter = param(node, "filter").text;
  options.snaplen = static_cast<uint32_t>(std::min<int64_t>(param(node, "snaplen").integer, snaplen_limit));
  options.promisc = param(node, "promisc").boolean;
  return options;
}

}  // namespace

std::unique_ptr<TimelineSource> LiveStage::open_alone(const Node& node, SourceOptions options) const {
  options.name = source_name(node);
  return std::make_unique<LiveTimeline>(live_options(node, pcap::max_snaplen), std::move(options));
}

std::unique_ptr<EventSource> LiveStage::open(const Node& node, const EventContext& context) const {
  const LiveOptions options = live_options(node, context.snaplen);
  auto live = std::make_unique<LiveEvents>(options, context);
  if (live->linktype() != context.linktype)
    throw std::runtime_error(fmt::format("live {}: the interface speaks {} ({}), but the output is {} ({})",
                                         options.interface, pcap::linktype_name(live->linktype()), live->linktype(),
                                         pcap::linktype_name(context.linktype), context.linktype));
  return live;
}

}  // namespace vei

VEI_STAGE(live, vei::LiveStage)
