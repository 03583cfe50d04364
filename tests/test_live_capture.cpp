// The `live` source on a real link: a veth pair made for the test (always removed), frames sent
// with pcap_inject on one end and captured with LiveCapture on the other.
#include <doctest/doctest.h>
#include <fmt/format.h>
#include <linux/capability.h>
#include <pcap/pcap.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <condition_variable>
#include <cstring>
#include <filesystem>
#include <functional>
#include <mutex>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include "core/batch.h"
#include "stages/live.h"
#include "core/pacer.h"
#include "testutil.h"

using namespace vei;
using test::Veth;
using namespace std::chrono_literals;

namespace {

constexpr unsigned test_ethertype = 0x88b5;   // IEEE local experimental 1
constexpr unsigned other_ethertype = 0x88b6;  // IEEE local experimental 2
const std::string test_filter = "ether proto 0x88b5";
constexpr uint16_t rank = 3;

#define LIVE_REQUIRE_ENV()                                                 \
  do {                                                                     \
    if (const std::string why_ = test::veth_unavailable(); !why_.empty()) { \
      MESSAGE("skipping the live capture test: " << why_);                 \
      return;                                                              \
    }                                                                      \
  } while (0)

int64_t realtime_ns() {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(std::chrono::system_clock::now().time_since_epoch())
      .count();
}

// An Ethernet broadcast frame of `size` bytes (at least 18) whose payload encodes `index`.
std::vector<unsigned char> frame(uint32_t index, size_t size, unsigned ethertype = test_ethertype) {
  std::vector<unsigned char> f(size);
  for (size_t i = 0; i < 6; ++i) f[i] = 0xff;
  const unsigned char src[6] = {0x02, 0x00, 0x5e, 0x10, 0x00, 0x02};
  std::memcpy(f.data() + 6, src, 6);
  f[12] = static_cast<unsigned char>(ethertype >> 8);
  f[13] = static_cast<unsigned char>(ethertype);
  for (size_t i = 0; i < 4; ++i) f[14 + i] = static_cast<unsigned char>(index >> (8 * i));
  for (size_t i = 18; i < size; ++i) f[i] = static_cast<unsigned char>(index * 31 + i);
  return f;
}

class Sender {
 public:
  explicit Sender(const std::string& interface) {
    char errbuf[PCAP_ERRBUF_SIZE] = {};
    handle_ = pcap_create(interface.c_str(), errbuf);
    if (!handle_) throw std::runtime_error(errbuf);
    if (pcap_activate(handle_) < 0) throw std::runtime_error(pcap_geterr(handle_));
  }
  ~Sender() { pcap_close(handle_); }
  Sender(const Sender&) = delete;
  Sender& operator=(const Sender&) = delete;

  void send(const std::vector<unsigned char>& f) {
    while (pcap_inject(handle_, f.data(), f.size()) < 0) {
      if (errno != ENOBUFS && errno != EAGAIN) throw std::runtime_error(pcap_geterr(handle_));
      std::this_thread::sleep_for(10us);
    }
  }

 private:
  pcap_t* handle_ = nullptr;
};

struct Captured {
  Record record;
  uint32_t header[4];  // the record header in the arena
  std::vector<unsigned char> bytes;
  int64_t delivered_ns;  // realtime
};

// Takes the batches LiveCapture delivers (on its thread), copies the records out and gives the
// batch back, noting anything wrong with its layout for the test thread to check.
class Collector {
 public:
  explicit Collector(bool keep_batches = false) : keep_batches_(keep_batches) {}
  ~Collector() {
    for (Batch* b : kept_) b->pool->release(b);
  }

  void deliver(Batch* b) {
    std::vector<Captured> got;
    size_t at = 0;
    bool layout_ok = b->source == rank && b->event && b->used <= b->capacity();
    for (const Record& r : b->records) {
      layout_ok = layout_ok && r.offset == at && r.source == rank;
      Captured c{r, {}, {}, realtime_ns()};
      std::memcpy(c.header, b->data() + r.offset, sizeof c.header);
      const auto* bytes = reinterpret_cast<const unsigned char*>(b->data() + r.offset + record_header_size);
      c.bytes.assign(bytes, bytes + r.caplen);
      got.push_back(std::move(c));
      at += record_header_size + r.caplen;
    }
    layout_ok = layout_ok && at == b->used && !b->records.empty();
    {
      std::lock_guard lock(mutex_);
      for (auto& c : got) frames_.push_back(std::move(c));
      ++batches_;
      bad_batches_ += layout_ok ? 0 : 1;
      if (keep_batches_) kept_.push_back(b);
    }
    changed_.notify_all();
    if (!keep_batches_) b->pool->release(b);
  }
  void error(const std::string& message) {
    {
      std::lock_guard lock(mutex_);
      errors_.push_back(message);
    }
    changed_.notify_all();
  }

  bool wait_frames(size_t count, std::chrono::milliseconds timeout) {
    std::unique_lock lock(mutex_);
    return changed_.wait_for(lock, timeout, [&] { return frames_.size() >= count; });
  }
  bool wait_error(std::chrono::milliseconds timeout) {
    std::unique_lock lock(mutex_);
    return changed_.wait_for(lock, timeout, [&] { return !errors_.empty(); });
  }

  void start(LiveCapture& capture, BatchPool& pool) {
    capture.start(pool, [this](Batch* b) { deliver(b); }, [this](const std::string& e) { error(e); });
  }

  // Read once the capture has stopped.
  const std::vector<Captured>& frames() const { return frames_; }
  const std::vector<std::string>& errors() const { return errors_; }
  size_t batches() const { return batches_; }
  size_t bad_batches() const { return bad_batches_; }

 private:
  bool keep_batches_;
  std::mutex mutex_;
  std::condition_variable changed_;
  std::vector<Captured> frames_;
  std::vector<std::string> errors_;
  std::vector<Batch*> kept_;
  size_t batches_ = 0;
  size_t bad_batches_ = 0;
};

// The frames' tags in capture order: what `frame` wrote into bytes 14..17.
std::vector<uint32_t> tags(const std::vector<Captured>& frames) {
  std::vector<uint32_t> out;
  for (const auto& c : frames) {
    uint32_t tag = 0;
    for (size_t i = 0; i < 4; ++i) tag |= uint32_t{c.bytes.at(14 + i)} << (8 * i);
    out.push_back(tag);
  }
  return out;
}

LiveOptions options(const std::string& interface, std::string filter = test_filter) {
  LiveOptions o;
  o.interface = interface;
  o.filter = std::move(filter);
  return o;
}

}  // namespace

TEST_CASE("live capture: frames sent on the veth peer arrive byte-identical, in order, with ns timestamps") {
  LIVE_REQUIRE_ENV();
  Veth veth("vl");
  std::vector<std::vector<unsigned char>> sent;
  for (uint32_t i = 0; i < 1000; ++i) sent.push_back(frame(i, 60 + (i * 37) % 1455));  // 60..1514 bytes
  sent.push_back(frame(1000, 1514));

  // Small arenas: batches are delivered when full, and a frame over 1008 bytes needs a grown one.
  BatchPool pool(4, 1024);
  Collector collector;
  LiveCapture capture(options(veth.b()), rank);
  CHECK(capture.linktype() == 1);
  CHECK(capture.interface() == veth.b());
  collector.start(capture, pool);

  Sender sender(veth.a());
  const int64_t before = realtime_ns();
  // Back to back: a burst the kernel's ring must hold while the capture thread catches up.
  for (const auto& f : sent) sender.send(f);
  CHECK(collector.wait_frames(sent.size(), 5s));
  std::this_thread::sleep_for(50ms);  // room for frames that should not be there
  const int64_t after = realtime_ns();
  capture.stop();
  capture.stop();

  const auto& got = collector.frames();
  REQUIRE(got.size() == sent.size());
  CHECK(collector.bad_batches() == 0);
  CHECK(collector.batches() > 1);
  size_t mismatches = 0;
  uint64_t bytes = 0;
  int64_t previous = 0;
  for (size_t i = 0; i < got.size(); ++i) {
    const Captured& c = got[i];
    const Record& r = c.record;
    bytes += r.caplen;
    const bool ok = c.bytes == sent[i] && r.seq == i && r.caplen == sent[i].size() && r.len == sent[i].size() &&
                    c.header[0] == r.ts_ns / 1'000'000'000 && c.header[1] == r.ts_ns % 1'000'000'000 &&
                    c.header[2] == r.caplen && c.header[3] == r.len && r.ts_ns >= previous &&
                    r.ts_ns >= before && r.ts_ns <= after;
    if (!ok && mismatches++ < 5)
      FAIL_CHECK("frame " << i << ": seq " << r.seq << ", caplen " << r.caplen << ", ts " << r.ts_ns << " (sent from "
                          << before << " to " << after << ", previous " << previous << ")");
    previous = r.ts_ns;
  }
  CHECK(mismatches == 0);
  const LiveStats stats = capture.stats();
  CHECK(stats.packets == sent.size());
  CHECK(stats.bytes == bytes);
  CHECK(stats.batches == collector.batches());
  CHECK(stats.kernel_dropped == 0);
  CHECK(collector.errors().empty());
}

TEST_CASE("live capture: 20,000 frames at 20 kpps, none lost") {
  LIVE_REQUIRE_ENV();
  Veth veth("vl");
  BatchPool pool(8, default_arena_size);
  Collector collector;
  LiveCapture capture(options(veth.b()), rank);
  collector.start(capture, pool);

  constexpr uint32_t count = 20'000;
  Sender sender(veth.a());
  Pacer pacer({PaceMode::pps, 20'000});
  const auto begin = std::chrono::steady_clock::now();
  for (uint32_t i = 0; i < count; ++i) {
    const auto f = frame(i, 64 + i % 200);
    pacer.wait(0, static_cast<uint32_t>(f.size()));
    sender.send(f);
  }
  const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - begin).count();
  CHECK(collector.wait_frames(count, 5s));
  capture.stop();

  const LiveStats stats = capture.stats();
  MESSAGE("sent " << count << " frames in " << seconds << " s; captured " << stats.packets << " in " << stats.batches
                  << " batches, kernel dropped " << stats.kernel_dropped << ", interface dropped " << stats.if_dropped);
  CHECK(seconds > 0.9);
  CHECK(stats.packets == count);
  CHECK(stats.kernel_dropped == 0);
  const auto got = tags(collector.frames());
  REQUIRE(got.size() == count);
  size_t out_of_order = 0;
  for (uint32_t i = 0; i < count; ++i) out_of_order += got[i] != i;
  CHECK(out_of_order == 0);
}

TEST_CASE("live capture: the filter keeps only matching frames") {
  LIVE_REQUIRE_ENV();
  Veth veth("vl");
  BatchPool pool(4, default_arena_size);
  Collector collector;
  LiveCapture capture(options(veth.b(), fmt::format("ether proto 0x{:04x}", other_ethertype)), rank);
  collector.start(capture, pool);

  Sender sender(veth.a());
  for (uint32_t i = 0; i < 200; ++i) sender.send(frame(i, 100, i % 3 == 0 ? other_ethertype : test_ethertype));
  CHECK(collector.wait_frames(67, 5s));
  std::this_thread::sleep_for(100ms);
  capture.stop();

  std::vector<uint32_t> expected;
  for (uint32_t i = 0; i < 200; i += 3) expected.push_back(i);
  CHECK(tags(collector.frames()) == expected);
  for (size_t i = 0; i < collector.frames().size(); ++i) CHECK(collector.frames()[i].record.seq == i);
  CHECK(capture.stats().packets == expected.size());
}

TEST_CASE("live capture: opening errors name the interface") {
  LIVE_REQUIRE_ENV();
  SUBCASE("missing") {
    const std::string name = fmt::format("vlnone{}", ::getpid() % 1000000);
    const std::string error = test::error_of([&] { LiveCapture capture(options(name), rank); });
    CHECK(error == fmt::format("live {}: no such interface", name));
  }
  SUBCASE("name too long") {
    const std::string error = test::error_of([&] { LiveCapture capture(options("a-name-far-too-long"), rank); });
    CHECK(error.find("live a-name-far-too-long: no such interface") == 0);
  }
  SUBCASE("down") {
    Veth veth("vl", /*up=*/false);
    const std::string error = test::error_of([&] { LiveCapture capture(options(veth.b()), rank); });
    CHECK(error.find(fmt::format("live {}: interface is down", veth.b())) == 0);
  }
  SUBCASE("bad filter") {
    Veth veth("vl");
    const std::string error = test::error_of([&] { LiveCapture capture(options(veth.b(), "ether proto nonsense"), rank); });
    CHECK(error.find(fmt::format("live {}: filter 'ether proto nonsense': ", veth.b())) == 0);
    MESSAGE(error);
  }
  SUBCASE("without CAP_NET_RAW") {
    // Capabilities belong to a thread: drop CAP_NET_RAW in a thread of its own.
    std::string error;
    std::thread([&] {
      __user_cap_header_struct header{_LINUX_CAPABILITY_VERSION_3, 0};
      __user_cap_data_struct data[2] = {};
      if (::syscall(SYS_capget, &header, data) != 0) return;
      data[0].effective &= ~(1u << CAP_NET_RAW);
      if (::syscall(SYS_capset, &header, data) != 0) return;
      error = test::error_of([&] { LiveCapture capture(options("lo", ""), rank); });
    }).join();
    CHECK(error.find("live lo: permission denied: capturing needs CAP_NET_RAW") == 0);
  }
}

TEST_CASE("live capture: the interface going away or down ends the capture with an error") {
  LIVE_REQUIRE_ENV();
  Veth veth("vl");
  BatchPool pool(4, default_arena_size);
  Collector collector;
  // A flush far away: the frames must come out because of the error, not the deadline.
  LiveOptions o = options(veth.b());
  o.flush_ns = 60'000'000'000;
  LiveCapture capture(o, rank);
  collector.start(capture, pool);
  Sender sender(veth.a());
  for (uint32_t i = 0; i < 10; ++i) sender.send(frame(i, 100));
  std::this_thread::sleep_for(50ms);  // captured, not delivered

  std::string expected;
  const auto begin = std::chrono::steady_clock::now();
  SUBCASE("deleted") {
    veth.remove();
    expected = "no such interface (it went away)";
  }
  SUBCASE("down") {
    REQUIRE(Veth::set_up(veth.b(), false) == 0);
    expected = "the interface went down";
  }
  CHECK(collector.wait_error(1s));
  capture.stop();
  const auto elapsed = std::chrono::steady_clock::now() - begin;
  MESSAGE("error and stop after " << std::chrono::duration<double, std::milli>(elapsed).count() << " ms");
  CHECK(elapsed < 1s);
  REQUIRE(collector.errors().size() == 1);
  CHECK(collector.errors()[0] == fmt::format("live {}: {}", veth.b(), expected));
  CHECK(collector.frames().size() == 10);
}

TEST_CASE("live capture: a lone frame is delivered after flush_ns, not held until the batch fills") {
  LIVE_REQUIRE_ENV();
  Veth veth("vl");
  BatchPool pool(2, default_arena_size);
  Collector collector;
  LiveCapture capture(options(veth.b()), rank);
  collector.start(capture, pool);
  Sender sender(veth.a());
  for (uint32_t i = 0; i < 3; ++i) {
    const int64_t sent = realtime_ns();
    sender.send(frame(i, 100));
    REQUIRE(collector.wait_frames(i + 1, 1s));
    const Captured& c = collector.frames().back();
    const double ms = static_cast<double>(c.delivered_ns - sent) / 1e6;
    MESSAGE("frame " << i << " delivered after " << ms << " ms");
    CHECK(ms < 50);
    std::this_thread::sleep_for(20ms);
  }
  capture.stop();
  CHECK(collector.batches() == 3);
}

TEST_CASE("live capture: stop() returns while every batch of the pool is held downstream") {
  LIVE_REQUIRE_ENV();
  Veth veth("vl");
  BatchPool pool(1, default_arena_size);
  Collector collector(/*keep_batches=*/true);
  LiveCapture capture(options(veth.b()), rank);
  collector.start(capture, pool);
  Sender sender(veth.a());
  sender.send(frame(0, 100));
  REQUIRE(collector.wait_frames(1, 1s));
  sender.send(frame(1, 100));  // waits for a batch that does not come
  std::this_thread::sleep_for(20ms);
  const auto begin = std::chrono::steady_clock::now();
  capture.stop();
  CHECK(std::chrono::steady_clock::now() - begin < 100ms);
  CHECK(collector.frames().size() == 1);
  CHECK(collector.errors().empty());
}

TEST_CASE("live capture: live(x) -> file(o) writes what was captured, byte for byte, with its capture times, until stop()") {
  LIVE_REQUIRE_ENV();
  Veth veth("vl");
  test::TempDir dir;
  const auto out = dir / "out.pcap";
  auto engine = Engine::from_description(
      "<test>", fmt::format("live({}, filter=\"{}\") -> file({})", veth.b(), test_filter, out.string()), true);
  CHECK(engine.linktype() == 1);
  engine.start();
  std::vector<std::vector<unsigned char>> sent;
  for (uint32_t i = 0; i < 300; ++i) sent.push_back(frame(i, 60 + (i * 53) % 1455));
  Sender sender(veth.a());
  sender.send(frame(0, 60, other_ethertype));  // not taken: the filter applies
  const int64_t before = realtime_ns();
  for (const auto& f : sent) sender.send(f);
  const auto deadline = std::chrono::steady_clock::now() + 5s;
  while (engine.stats().packets < sent.size() && std::chrono::steady_clock::now() < deadline) std::this_thread::sleep_for(5ms);
  const int64_t after = realtime_ns();
  engine.stop();
  REQUIRE(engine.wait() == 0);

  const auto got = test::read_raw(out);
  CHECK(got.nanos);
  CHECK(got.linktype == 1);
  REQUIRE(got.records.size() == sent.size());
  int64_t previous = before;
  for (size_t i = 0; i < sent.size(); ++i) {
    const auto& r = got.records[i];
    CHECK(r.bytes == sent[i]);
    CHECK(r.len == sent[i].size());
    // The times it was captured, in order, within the sending.
    CHECK(r.ts_ns(true) >= previous);
    CHECK(r.ts_ns(true) <= after);
    previous = r.ts_ns(true);
  }
  CHECK(engine.stats().sources.at(0).packets == sent.size());
}

TEST_CASE("live capture: a control socket cannot feed the output alone: a description error at the stage") {
  test::TempDir dir;
  const auto text = fmt::format("control({}) -> file({})", (dir / "s.sock").string(), (dir / "out.pcap").string());
  try {
    Engine::from_description("<test>", text, true);
    FAIL("accepted");
  } catch (const DescriptionError& e) {
    REQUIRE(e.diagnostics().size() == 1);
    CHECK(e.diagnostics()[0].span.col == 1);
    CHECK(e.diagnostics()[0].message == "'control' cannot feed the output alone: it brings no packets of its own");
  }
  CHECK_FALSE(std::filesystem::exists(dir / "out.pcap"));
}
