// Soak (issue 5 item 6): a looping real-time background, a live source on a veth pair fed at
// --rate-live, and 100 API injections/s, for --seconds; the process's resident memory is sampled
// every --sample-every seconds and must stay flat, and no packet may be lost.
//
//   veipipe_soak --seconds 600 [--sample-every 10] [--rate-live 1000] [--out FILE] [--smaps]
//
// The pipeline:  pcap(BG) -> m: merge -> pace(realtime, loop=K) -> file(OUT, labels=OUT.csv)
//                live(B, filter=ether proto 0x88b5) -> m
// BG is --bg-seconds (default 10) of 1 kpps 60-byte frames; K passes make the run last --seconds.
// Three tag spaces, told apart by their ethertype (IEEE local experimental): background 0x88b7,
// live 0x88b5 (sent on the veth's other end through a raw packet socket), API injections 0x88b6;
// each frame carries its sequence number in bytes 14..17. At the end, OUT is read back with testutil's
// independent reader and every count and order is checked. Exit 0 when everything holds, 1 on any
// failure, 0 with "skipped" when a veth pair cannot be made (not root).
// Diagnostics: each sample line also gives the load average and the longest scheduling stall the
// process saw in the interval (a thread sleeping 2 ms at a time, measuring its oversleep); with
// --smaps, every mapping whose resident size changed since the previous sample is listed.
#include <fmt/format.h>
#include <linux/if_packet.h>
#include <net/if.h>
#include <pthread.h>
#include <signal.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cctype>
#include <cerrno>
#include <chrono>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <map>
#include <mutex>
#include <optional>
#include <sstream>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include "pipeline/engine.h"
#include "testutil.h"

#if defined(__SANITIZE_ADDRESS__)
#define SOAK_ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define SOAK_ASAN 1
#endif
#endif
#ifndef SOAK_ASAN
#define SOAK_ASAN 0
#endif

using namespace vei;

namespace {

constexpr unsigned live_ethertype = 0x88b5;
constexpr unsigned api_ethertype = 0x88b6;
constexpr unsigned bg_ethertype = 0x88b7;
constexpr int64_t ns_per_s = 1'000'000'000;
constexpr int64_t t0_ns = int64_t{1'700'000'000} * ns_per_s;

struct Options {
  int64_t seconds = 600;
  int64_t sample_every = 10;
  int64_t rate_live = 1000;
  int64_t rate_api = 100;
  int64_t bg_seconds = 10;
  int64_t bg_rate = 1000;
  std::string out;
  bool smaps = false;
};

[[noreturn]] void usage(const std::string& why) {
  fmt::print(stderr,
             "veipipe_soak: {}\nusage: veipipe_soak --seconds N [--sample-every S] [--rate-live PPS] [--rate-api PPS]\n"
             "                    [--bg-seconds B] [--out FILE] [--smaps]\n",
             why);
  std::exit(2);
}

Options parse(int argc, char** argv) {
  Options o;
  for (int i = 1; i < argc; ++i) {
    const std::string arg = argv[i];
    auto value = [&]() -> std::string {
      if (i + 1 >= argc) usage(arg + " needs a value");
      return argv[++i];
    };
    auto number = [&]() -> int64_t {
      const std::string v = value();
      char* end = nullptr;
      const long long n = std::strtoll(v.c_str(), &end, 10);
      if (v.empty() || *end || n <= 0) usage(fmt::format("{}: '{}' is not a positive integer", arg, v));
      return n;
    };
    if (arg == "--seconds") o.seconds = number();
    else if (arg == "--sample-every") o.sample_every = number();
    else if (arg == "--rate-live") o.rate_live = number();
    else if (arg == "--rate-api") o.rate_api = number();
    else if (arg == "--bg-seconds") o.bg_seconds = number();
    else if (arg == "--out") o.out = value();
    else if (arg == "--smaps") o.smaps = true;
    else if (arg == "-h" || arg == "--help") usage("a soak run");
    else usage("unknown argument " + arg);
  }
  return o;
}

int64_t mono_ns() {
  timespec ts{};
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return int64_t{ts.tv_sec} * ns_per_s + ts.tv_nsec;
}

void sleep_until(int64_t deadline_ns) {
  const timespec ts{static_cast<time_t>(deadline_ns / ns_per_s), static_cast<long>(deadline_ns % ns_per_s)};
  while (clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &ts, nullptr) == EINTR) {
  }
}

// kB of a "VmRSS:" style line of /proc/self/status.
int64_t status_kib(const char* key) {
  std::ifstream in("/proc/self/status");
  std::string line;
  const size_t n = std::strlen(key);
  while (std::getline(in, line))
    if (line.compare(0, n, key) == 0) return std::strtoll(line.c_str() + n, nullptr, 10);
  return -1;
}

std::string loadavg() {
  std::ifstream in("/proc/loadavg");
  std::string one, five, fifteen;
  in >> one >> five >> fifteen;
  return one + " " + five + " " + fifteen;
}

// Resident KiB of every mapping of /proc/self/smaps, keyed by "start-end name".
std::vector<std::pair<std::string, int64_t>> smaps_rss() {
  std::vector<std::pair<std::string, int64_t>> maps;
  std::ifstream in("/proc/self/smaps");
  std::string line;
  while (std::getline(in, line)) {
    if (line.empty()) continue;
    if (std::isxdigit(static_cast<unsigned char>(line[0])) && line.find(' ') != std::string::npos &&
        line.find('-') < line.find(' ')) {
      // "start-end perms offset dev inode   name"
      std::istringstream fields(line);
      std::string range, perms, offset, dev, inode, name;
      fields >> range >> perms >> offset >> dev >> inode;
      std::getline(fields, name);
      name.erase(0, name.find_first_not_of(' '));
      maps.emplace_back(range + " " + perms + " " + (name.empty() ? "[anon]" : name), 0);
    } else if (line.compare(0, 4, "Rss:") == 0 && !maps.empty()) {
      maps.back().second = std::strtoll(line.c_str() + 4, nullptr, 10);
    }
  }
  return maps;
}

// An Ethernet broadcast frame of `size` bytes whose bytes 14..17 hold `seq`, the rest derived from it.
std::vector<unsigned char> frame(unsigned ethertype, uint32_t seq, size_t size) {
  std::vector<unsigned char> f(size);
  std::fill_n(f.begin(), 6, 0xff);
  const unsigned char src[6] = {0x02, 0x00, 0x5e, 0x50, 0x00, static_cast<unsigned char>(ethertype)};
  std::memcpy(f.data() + 6, src, 6);
  f[12] = static_cast<unsigned char>(ethertype >> 8);
  f[13] = static_cast<unsigned char>(ethertype);
  for (size_t i = 0; i < 4; ++i) f[14 + i] = static_cast<unsigned char>(seq >> (8 * i));
  for (size_t i = 18; i < size; ++i) f[i] = static_cast<unsigned char>(seq * 31 + i);
  return f;
}

unsigned ethertype_of(const test::RawRecord& r) { return r.bytes.size() >= 14 ? (r.bytes[12] << 8) | r.bytes[13] : 0; }
uint32_t seq_of(const test::RawRecord& r) {
  uint32_t seq = 0;
  for (size_t i = 0; i < 4; ++i) seq |= uint32_t{r.bytes[14 + i]} << (8 * i);
  return seq;
}
bool intact(const test::RawRecord& r) {
  if (r.bytes.size() < 18 || r.caplen != r.len) return false;
  const auto expected = frame(ethertype_of(r), seq_of(r), r.bytes.size());
  return std::equal(expected.begin(), expected.end(), r.bytes.begin());
}
// The frame sizes of each tag space: small, varying with the sequence number.
size_t live_size(uint32_t seq) { return 60 + seq % 141; }
size_t api_size(uint32_t seq) { return 64 + (seq * 7) % 200; }
constexpr size_t bg_size = 60;

// Deletes the veth pair on SIGINT/SIGTERM/SIGHUP too: the signals are blocked in every thread and
// taken here, which stops the engine so that the normal path (and the Veth destructor) runs.
class SignalWatch {
 public:
  SignalWatch() {
    sigemptyset(&set_);
    for (int s : {SIGINT, SIGTERM, SIGHUP}) sigaddset(&set_, s);
    pthread_sigmask(SIG_BLOCK, &set_, nullptr);
    thread_ = std::thread([this] {
      const timespec tick{0, 100'000'000};
      while (!done_) {
        const int s = sigtimedwait(&set_, nullptr, &tick);
        if (s > 0) {
          signal_ = s;
          std::lock_guard lock(mutex_);
          if (engine_) engine_->stop();
        }
      }
    });
  }
  ~SignalWatch() {
    done_ = true;
    thread_.join();
  }
  void watch(Engine* engine) {
    std::lock_guard lock(mutex_);
    engine_ = engine;
  }
  int signal() const { return signal_; }

 private:
  sigset_t set_{};
  std::thread thread_;
  std::atomic<bool> done_{false};
  std::atomic<int> signal_{0};
  std::mutex mutex_;
  Engine* engine_ = nullptr;
};

struct Failures {
  int count = 0;
  void check(bool ok, const std::string& what) {
    fmt::print("  {} {}\n", ok ? "ok  " : "FAIL", what);
    if (!ok) ++count;
  }
};

int run(const Options& o, SignalWatch& signals) {
  if (const std::string why = test::veth_unavailable(); !why.empty()) {
    fmt::print("veipipe_soak: skipped ({})\n", why);
    return 0;
  }
  test::TempDir dir;
  test::Veth veth("vsk");  // IPv6 off on both ends (sysctl), both up

  // The background: bg_seconds of bg_rate frames, 1/rate apart, ns precision.
  const auto bg_count = static_cast<uint32_t>(o.bg_seconds * o.bg_rate);
  const int64_t gap_ns = ns_per_s / o.bg_rate;
  {
    test::RawFile bg;
    bg.nanos = true;
    bg.snaplen = 262144;
    bg.linktype = 1;
    bg.records.reserve(bg_count);
    for (uint32_t i = 0; i < bg_count; ++i) {
      test::RawRecord r;
      const int64_t ts = t0_ns + i * gap_ns;
      r.sec = static_cast<uint32_t>(ts / ns_per_s);
      r.frac = static_cast<uint32_t>(ts % ns_per_s);
      r.bytes = frame(bg_ethertype, i, bg_size);
      r.caplen = r.len = bg_size;
      bg.records.push_back(std::move(r));
    }
    test::write_raw(dir / "bg.pcap", bg);
  }
  // The engine's loop period: the background's span plus one average gap.
  const int64_t period_ns = (bg_count - 1) * gap_ns + gap_ns;
  const auto passes = static_cast<uint64_t>(std::max<int64_t>(1, (o.seconds * ns_per_s + period_ns - 1) / period_ns));
  const int64_t run_ns = static_cast<int64_t>(passes) * period_ns;
  const std::string out = o.out.empty() ? (dir / "out.pcap").string() : o.out;
  const std::string labels = out + ".csv";
  const std::string description =
      fmt::format("pcap({}) -> m: merge -> pace(realtime, loop={}) -> file({}, precision=ns, labels={})\n"
                  "live({}, filter=ether proto 0x{:x}) -> m",
                  (dir / "bg.pcap").string(), passes, out, labels, veth.b(), live_ethertype);
  fmt::print("veipipe_soak: {} s ({} passes of a {} s background, {} frames at {} pps), live {} pps on {} -> {}, "
             "{} API injections/s, RSS every {} s{}\n",
             static_cast<double>(run_ns) / 1e9, passes, static_cast<double>(period_ns) / 1e9, bg_count, o.bg_rate,
             o.rate_live, veth.a(), veth.b(), o.rate_api, o.sample_every, SOAK_ASAN ? " (ASan build)" : "");
  std::fflush(stdout);

  // The live sender's socket, opened before the run so that its first frame leaves on time: a raw
  // packet socket bound to end A with protocol 0, so it receives nothing (no ring, no copies).
  struct Socket {
    int fd = -1;
    ~Socket() {
      if (fd >= 0) ::close(fd);
    }
  } out_socket;
  out_socket.fd = ::socket(AF_PACKET, SOCK_RAW | SOCK_CLOEXEC, 0);
  if (out_socket.fd < 0) throw std::runtime_error(fmt::format("packet socket: {}", std::strerror(errno)));
  {
    sockaddr_ll where{};
    where.sll_family = AF_PACKET;
    where.sll_protocol = 0;
    where.sll_ifindex = static_cast<int>(::if_nametoindex(veth.a().c_str()));
    if (where.sll_ifindex == 0 || ::bind(out_socket.fd, reinterpret_cast<sockaddr*>(&where), sizeof where) != 0)
      throw std::runtime_error(fmt::format("bind a packet socket to {}: {}", veth.a(), std::strerror(errno)));
  }

  auto engine = Engine::from_description("<soak>", description, true);
  signals.watch(&engine);
  engine.start();
  const int64_t started = mono_ns();
  // Both feeders stop this long before the background ends: what arrives after it is, by design,
  // not written (injection closes with the background), and the check counts everything sent.
  const int64_t feed_until = started + run_ns - std::min<int64_t>(2 * ns_per_s, run_ns / 5);
  std::atomic<bool> abort{false};
  std::string sender_error, injector_error;

  uint64_t live_sent = 0;
  std::thread sender([&] {
    for (uint32_t seq = 0;; ++seq) {
      const int64_t due = started + static_cast<int64_t>(seq) * ns_per_s / o.rate_live;
      if (due >= feed_until || abort) break;
      sleep_until(due);
      const auto f = frame(live_ethertype, seq, live_size(seq));
      while (::send(out_socket.fd, f.data(), f.size(), 0) < 0) {
        if (errno != ENOBUFS && errno != EAGAIN && errno != EINTR) {
          sender_error = fmt::format("send on {}: {}", veth.a(), std::strerror(errno));
          return;
        }
        std::this_thread::sleep_for(std::chrono::microseconds(10));
      }
      ++live_sent;
    }
  });

  uint64_t api_accepted = 0, api_refused = 0;
  std::thread injector([&] {
    for (uint32_t seq = 0;; ++seq) {
      const int64_t due = started + static_cast<int64_t>(seq) * ns_per_s / o.rate_api;
      if (due >= feed_until || abort) break;
      sleep_until(due);
      const auto f = frame(api_ethertype, seq, api_size(seq));
      try {
        api_accepted += engine.inject(std::as_bytes(std::span(f)));
      } catch (const std::exception& e) {
        ++api_refused;
        if (injector_error.empty()) injector_error = fmt::format("injection {}: {}", seq, e.what());
        break;
      }
    }
  });

  std::atomic<bool> finished{false};
  // Scheduling stalls: a thread that sleeps 2 ms at a time and measures how late it wakes.
  std::atomic<int64_t> interval_stall{0};
  std::vector<std::pair<double, int64_t>> stalls;  // (t s, ms) of every stall over 50 ms
  std::thread monitor([&] {
    constexpr int64_t tick = 2'000'000;
    for (int64_t due = mono_ns() + tick; !finished; due += tick) {
      sleep_until(due);
      const int64_t now = mono_ns();
      const int64_t late = now - due;
      if (late > interval_stall.load(std::memory_order_relaxed)) interval_stall.store(late, std::memory_order_relaxed);
      if (late > 50'000'000) stalls.emplace_back(static_cast<double>(due - started) / 1e9, late / 1'000'000);
      if (late > tick) due = now;  // no catching up in a burst
    }
  });

  // RSS: one sample at the start, then every sample_every seconds while the run lasts.
  std::vector<std::pair<double, int64_t>> samples;
  std::thread sampler([&] {
    std::map<std::string, int64_t> previous;
    for (int64_t k = 0;; ++k) {
      const int64_t due = started + k * o.sample_every * ns_per_s;
      while (mono_ns() < due && !finished) std::this_thread::sleep_for(std::chrono::milliseconds(50));
      if (finished) break;
      const int64_t rss = status_kib("VmRSS:");
      samples.emplace_back(static_cast<double>(mono_ns() - started) / 1e9, rss);
      fmt::print("rss t={:6.1f}s {:8} KiB ({:.1f} MiB)  load {}  longest stall {:.1f} ms  {}\n", samples.back().first,
                 rss, static_cast<double>(rss) / 1024, loadavg(),
                 static_cast<double>(interval_stall.exchange(0)) / 1e6, engine.progress());
      if (o.smaps) {
        std::map<std::string, int64_t> now;
        for (auto& [name, kib] : smaps_rss()) now[name] += kib;
        if (!previous.empty()) {
          for (const auto& [name, kib] : now) {
            const auto was = previous.find(name);
            const int64_t before = was == previous.end() ? 0 : was->second;
            if (kib != before) fmt::print("    smaps {:+8} KiB -> {:8} KiB  {}\n", kib - before, kib, name);
          }
          for (const auto& [name, kib] : previous)
            if (kib && !now.contains(name)) fmt::print("    smaps {:+8} KiB (unmapped)  {}\n", -kib, name);
        }
        previous = std::move(now);
      }
      std::fflush(stdout);
    }
  });

  const int status = engine.wait();
  const double took = static_cast<double>(mono_ns() - started) / 1e9;
  finished = true;
  abort = true;
  sampler.join();
  monitor.join();
  sender.join();
  injector.join();
  signals.watch(nullptr);
  const int64_t rss_end = status_kib("VmRSS:");
  const int64_t hwm = status_kib("VmHWM:");
  const Stats stats = engine.stats();

  fmt::print("run: exit {} after {:.1f} s; {} written, events {} accepted {} late {}; pacing lateness p50 {} us, "
             "p99 {} us, max {} us\n",
             status, took, stats.packets, stats.events, stats.accepted_events, stats.late_events,
             stats.pace ? stats.pace->p50 / 1000 : -1, stats.pace ? stats.pace->p99 / 1000 : -1,
             stats.pace ? stats.pace->max / 1000 : -1);
  for (const auto& l : stats.live)
    fmt::print("live {}: {} captured, kernel dropped {}, interface dropped {}\n", l.name, l.packets, l.kernel_dropped,
               l.if_dropped);
  fmt::print("rss after the run {} KiB, peak (VmHWM) {} KiB\n", rss_end, hwm);

  // --- the output, read back independently ---------------------------------------------------
  Failures f;
  f.check(signals.signal() == 0, signals.signal() ? fmt::format("interrupted by signal {}", signals.signal())
                                                  : "not interrupted");
  f.check(status == 0, fmt::format("the run exits 0 (got {}{}{})", status, stats.error.empty() ? "" : ": ", stats.error));
  f.check(sender_error.empty(), "the live sender ran without error " + sender_error);
  f.check(injector_error.empty() && api_refused == 0, "every injection accepted " + injector_error);
  const auto file = test::read_raw(out);
  uint64_t bg_seen = 0, live_seen = 0, api_seen = 0, unknown = 0, damaged = 0, decreasing = 0, bg_misplaced = 0;
  uint64_t live_out_of_order = 0, api_out_of_order = 0;
  std::vector<uint8_t> live_times(live_sent, 0);
  uint64_t live_unexpected = 0;
  int64_t last_ts = INT64_MIN;
  int64_t last_live = -1, last_live_ts = 0;
  std::string first_problem;
  auto note = [&](const std::string& what) {
    if (first_problem.empty()) first_problem = what;
  };
  std::vector<uint8_t> is_bg(file.records.size(), 0);
  for (size_t i = 0; i < file.records.size(); ++i) {
    const auto& r = file.records[i];
    const int64_t ts = r.ts_ns(file.nanos);
    if (ts < last_ts) {
      ++decreasing;
      note(fmt::format("record {}: timestamp {} before the previous {}", i, ts, last_ts));
    }
    last_ts = ts;
    if (!intact(r)) {
      ++damaged;
      note(fmt::format("record {}: bytes are not the frame its tag says", i));
      continue;
    }
    const uint32_t seq = seq_of(r);
    switch (ethertype_of(r)) {
      case bg_ethertype: {
        is_bg[i] = 1;
        const uint64_t pass = bg_seen / bg_count;
        const uint32_t index = static_cast<uint32_t>(bg_seen % bg_count);
        const int64_t expected_ts = t0_ns + static_cast<int64_t>(pass) * period_ns + index * gap_ns;
        if (seq != index || ts != expected_ts) {
          ++bg_misplaced;
          note(fmt::format("record {}: background #{} (pass {}, index {}) expected at {}, got index {} at {}", i, bg_seen,
                           pass, index, expected_ts, seq, ts));
        }
        ++bg_seen;
        break;
      }
      case live_ethertype:
        ++live_seen;
        if (seq >= live_sent || live_times[seq]++ != 0) ++live_unexpected;
        if (static_cast<int64_t>(seq) <= last_live) {
          if (!live_out_of_order++)
            fmt::print("  first live frame out of order: record {} (t {} ns) is live #{}, after live #{} (t {} ns)\n", i,
                       ts, seq, last_live, last_live_ts);
        }
        last_live = seq;
        last_live_ts = ts;
        break;
      case api_ethertype:
        if (seq != api_seen) ++api_out_of_order;
        ++api_seen;
        break;
      default:
        ++unknown;
        note(fmt::format("record {}: unknown ethertype 0x{:04x}", i, ethertype_of(r)));
    }
  }
  const auto live_missing = static_cast<uint64_t>(std::count(live_times.begin(), live_times.end(), 0));
  if (live_missing) {
    std::string which;
    for (size_t s = 0, shown = 0; s < live_times.size() && shown < 20; ++s)
      if (!live_times[s])
        which += fmt::format("{}#{} (sent at {:.3f} s)", shown++ ? ", " : "", s,
                             static_cast<double>(s) / static_cast<double>(o.rate_live));
    fmt::print("  live frames missing: {}\n", which);
  }
  {
    std::string list;
    for (size_t i = 0; i < stalls.size() && i < 40; ++i)
      list += fmt::format("{}{:.3f}s:{}ms", i ? " " : "", stalls[i].first, stalls[i].second);
    fmt::print("scheduling stalls over 50 ms: {}{}\n", stalls.size(), stalls.empty() ? "" : " -- " + list);
  }
  // The labels: one row per packet not from the background, naming its index in the output.
  uint64_t label_rows = 0, label_bad = 0;
  {
    std::ifstream in(labels);
    std::string line;
    std::getline(in, line);  // header
    while (std::getline(in, line)) {
      ++label_rows;
      const uint64_t index = std::strtoull(line.c_str(), nullptr, 10);
      if (index >= is_bg.size() || is_bg[index]) ++label_bad;
    }
  }

  fmt::print("output: {} records: background {} (expected {} x {} = {}), live {} (sent {}), API {} (accepted {}), "
             "unknown {}\n",
             file.records.size(), bg_seen, bg_count, passes, uint64_t{bg_count} * passes, live_seen, live_sent, api_seen,
             api_accepted, unknown);
  f.check(bg_seen == uint64_t{bg_count} * passes && bg_misplaced == 0,
          fmt::format("background: {} records = {} x {}, each pass in order at its exact time ({} misplaced)", bg_seen,
                      bg_count, passes, bg_misplaced));
  f.check(live_seen == live_sent && live_missing == 0 && live_unexpected == 0,
          fmt::format("live: every frame sent appears exactly once ({} sent, {} in the output, {} missing, {} duplicate "
                      "or unknown)",
                      live_sent, live_seen, live_missing, live_unexpected));
  f.check(live_out_of_order == 0, fmt::format("live: in the order sent ({} out of order)", live_out_of_order));
  f.check(api_seen == api_accepted && api_out_of_order == 0 && api_accepted > 0,
          fmt::format("API: every injected frame appears exactly once, in order ({} injected, {} in the output, {} out "
                      "of order)",
                      api_accepted, api_seen, api_out_of_order));
  f.check(decreasing == 0, fmt::format("timestamps never decrease ({} decreases)", decreasing));
  f.check(damaged == 0 && unknown == 0, fmt::format("every record intact ({} damaged, {} unknown)", damaged, unknown));
  f.check(stats.packets == file.records.size(),
          fmt::format("stats: {} written = {} records in the file", stats.packets, file.records.size()));
  f.check(stats.accepted_events == stats.events && stats.events == live_seen + api_seen,
          fmt::format("stats: accepted_events {} == events {} == live + API in the output {}", stats.accepted_events,
                      stats.events, live_seen + api_seen));
  const bool live_stats_ok = stats.live.size() == 1 && stats.live[0].kernel_dropped == 0 &&
                             stats.live[0].packets == live_sent;
  f.check(live_stats_ok, fmt::format("stats: live captured {} = sent {}, kernel dropped {}",
                                     stats.live.empty() ? 0 : stats.live[0].packets, live_sent,
                                     stats.live.empty() ? 0 : stats.live[0].kernel_dropped));
  f.check(label_rows == live_seen + api_seen && label_bad == 0,
          fmt::format("labels: {} rows = live + API ({}), {} pointing at a background record", label_rows,
                      live_seen + api_seen, label_bad));
  if (!first_problem.empty()) fmt::print("  first problem: {}\n", first_problem);

  // RSS: the last sample within +10% (or +4 MiB) of the one taken after the warm-up (the 2nd).
  std::string list;
  for (const auto& [t, kib] : samples) list += fmt::format("{}{:.0f}s:{}", list.empty() ? "" : " ", t, kib);
  fmt::print("rss samples (KiB): {}\n", list);
  if (samples.size() < 3) {
    f.check(false, fmt::format("at least 3 RSS samples (got {}: the run is too short for --sample-every)", samples.size()));
  } else {
    const int64_t warm = samples[1].second, last = samples.back().second;
    const int64_t allowed = std::max<int64_t>(warm / 10, 4 * 1024);
    const int64_t max_sample = std::max_element(samples.begin() + 1, samples.end(),
                                                [](auto& a, auto& b) { return a.second < b.second; })->second;
    const std::string what =
        fmt::format("rss flat: last {} KiB vs warm-up {} KiB: {:+} KiB (allowed +{} KiB; highest after warm-up {} KiB)",
                    last, warm, last - warm, allowed, max_sample);
    if (SOAK_ASAN) {
      // ASan's quarantine holds freed memory (up to 256 MiB) before reusing it: RSS climbs by design.
      fmt::print("  info {} [not checked under ASan]\n", what);
    } else {
      f.check(last - warm <= allowed, what);
    }
  }
  fmt::print("veipipe_soak: {} after {:.1f} s: bg {} live {}/{} api {}/{} written {}; rss warm {} KiB last {} KiB peak {} "
             "KiB; {} failure(s)\n",
             f.count ? "FAIL" : "PASS", took, bg_seen, live_seen, live_sent, api_seen, api_accepted, file.records.size(),
             samples.size() > 1 ? samples[1].second : -1, samples.empty() ? -1 : samples.back().second, hwm, f.count);
  return f.count ? 1 : 0;
}

}  // namespace

int main(int argc, char** argv) {
  const Options options = parse(argc, argv);
  SignalWatch signals;  // before any thread starts, so that every thread blocks the signals
  try {
    return run(options, signals);
  } catch (const std::exception& e) {
    fmt::print(stderr, "veipipe_soak: {}\n", e.what());
    return 1;
  }
}
