// The `nic` sink on a real link: a veth pair made for the test (and always removed), frames sent
// on one end with NicWriter and captured on the other with libpcap. Every method (inject, mmsg,
// ring) runs the same tests: FOR_EACH_METHOD makes a subcase of each.
#include <doctest/doctest.h>
#include <fmt/format.h>
#include <pcap/pcap.h>
#include <poll.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include "core/batch.h"
#include "stages/nic.h"
#include "testutil.h"

using namespace vei;

namespace {

constexpr unsigned test_ethertype = 0x88b5;  // IEEE local experimental

#define NIC_REQUIRE_ENV()                                      \
  do {                                                         \
    const std::string why_ = test::veth_unavailable();         \
    if (!why_.empty()) {                                       \
      MESSAGE("skipping the NIC test: " << why_);              \
      return;                                                  \
    }                                                          \
  } while (0)

constexpr NicMethod all_methods[] = {NicMethod::inject, NicMethod::mmsg, NicMethod::ring};
#define FOR_EACH_METHOD(method) \
  for (const NicMethod method : all_methods) SUBCASE(fmt::format("method={}", to_string(method)).c_str())

int sh(const std::string& command) { return std::system((command + " >/dev/null 2>&1").c_str()); }

struct Veth : test::Veth {
  explicit Veth(bool up = true) : test::Veth("vp", up) {}
};

// Captures frames of the test ethertype on `interface` in a thread until `expected` have arrived
// or a few seconds have passed.
class Capture {
 public:
  Capture(const std::string& interface, size_t expected) : expected_(expected) {
    char errbuf[PCAP_ERRBUF_SIZE] = {};
    handle_ = pcap_create(interface.c_str(), errbuf);
    if (!handle_) throw std::runtime_error(errbuf);
    // libpcap's immediate mode gives every frame a ring slot of snaplen bytes: a snaplen of 65535
    // would leave a few hundred slots, fewer than a burst of the test, so keep it near the largest frame.
    pcap_set_snaplen(handle_, 4096);
    pcap_set_immediate_mode(handle_, 1);
    pcap_set_timeout(handle_, 20);
    pcap_set_buffer_size(handle_, 32 << 20);
    if (pcap_activate(handle_) < 0) throw std::runtime_error(pcap_geterr(handle_));
    bpf_program program{};
    const std::string filter = fmt::format("ether proto 0x{:04x}", test_ethertype);
    if (pcap_compile(handle_, &program, filter.c_str(), 1, PCAP_NETMASK_UNKNOWN) < 0 ||
        pcap_setfilter(handle_, &program) < 0)
      throw std::runtime_error(pcap_geterr(handle_));
    pcap_freecode(&program);
    thread_ = std::thread([this] { run(); });
  }
  ~Capture() {
    stop_ = true;
    if (thread_.joinable()) thread_.join();
    pcap_close(handle_);
  }
  Capture(const Capture&) = delete;
  Capture& operator=(const Capture&) = delete;

  // Changes the number of frames to wait for (before the capture ends).
  void expect(size_t expected) { expected_ = expected; }
  // Waits for the capture to end; returns the frames seen.
  std::vector<std::vector<unsigned char>> frames() {
    if (thread_.joinable()) thread_.join();
    return std::move(frames_);
  }
  unsigned dropped() const { return dropped_; }

 private:
  // Immediate mode makes libpcap's own waits unbounded: wait with poll() and read without blocking.
  void run() {
    pcap_setnonblock(handle_, 1, nullptr);
    const int fd = pcap_get_selectable_fd(handle_);
    const auto until = [&](std::chrono::steady_clock::time_point deadline, bool stop_when_complete) {
      while (!stop_ && std::chrono::steady_clock::now() < deadline) {
        if (stop_when_complete && frames_.size() >= expected_) return;
        pollfd p{fd, POLLIN, 0};
        ::poll(&p, 1, 10);
        const int r = pcap_dispatch(handle_, -1, [](u_char* user, const pcap_pkthdr* header, const u_char* data) {
          reinterpret_cast<Capture*>(user)->frames_.emplace_back(data, data + header->caplen);
        }, reinterpret_cast<u_char*>(this));
        if (r < 0) return;
      }
    };
    until(std::chrono::steady_clock::now() + std::chrono::seconds(5), true);
    // A little longer, so that extra (unexpected) frames would show up too.
    until(std::chrono::steady_clock::now() + std::chrono::milliseconds(100), false);
    pcap_stat stat{};
    if (pcap_stats(handle_, &stat) == 0) dropped_ = stat.ps_drop;
  }

  pcap_t* handle_ = nullptr;
  std::atomic<size_t> expected_;
  std::atomic<bool> stop_{false};
  std::thread thread_;
  std::vector<std::vector<unsigned char>> frames_;
  unsigned dropped_ = 0;
};

// An Ethernet frame of `size` bytes (at least 18) to the broadcast address, from a locally
// administered MAC, of the test ethertype, whose payload encodes `index`.
std::vector<unsigned char> frame(uint32_t index, size_t size, bool vlan = false) {
  std::vector<unsigned char> f(size);
  for (size_t i = 0; i < 6; ++i) f[i] = 0xff;
  const unsigned char src[6] = {0x02, 0x00, 0x5e, 0x10, 0x00, 0x01};
  std::memcpy(f.data() + 6, src, 6);
  size_t at = 12;
  if (vlan) {
    f[at++] = 0x81, f[at++] = 0x00, f[at++] = 0x00, f[at++] = 0x07;  // VLAN 7
  }
  f[at++] = test_ethertype >> 8;
  f[at++] = test_ethertype & 0xff;
  for (size_t i = 0; i < 4; ++i) f[at + i] = static_cast<unsigned char>(index >> (8 * i));
  for (size_t i = at + 4; i < size; ++i) f[i] = static_cast<unsigned char>(index * 31 + i);
  return f;
}

// Lays the frames out as records in `batch` (record header in native endian, then the bytes).
void fill(Batch& batch, const std::vector<std::vector<unsigned char>>& frames) {
  batch.clear();
  size_t total = 0;
  for (const auto& f : frames) total += record_header_size + f.size();
  batch.reserve_arena(total);
  uint64_t seq = 0;
  for (const auto& f : frames) {
    std::byte* at = batch.data() + batch.used;
    const uint32_t sec = static_cast<uint32_t>(seq), usec = 0, caplen = static_cast<uint32_t>(f.size());
    std::memcpy(at, &sec, 4);
    std::memcpy(at + 4, &usec, 4);
    std::memcpy(at + 8, &caplen, 4);
    std::memcpy(at + 12, &caplen, 4);
    if (!f.empty()) std::memcpy(at + record_header_size, f.data(), f.size());
    Record r{};
    r.ts_ns = static_cast<int64_t>(seq) * 1000;
    r.seq = seq++;
    r.offset = static_cast<uint32_t>(batch.used);
    r.caplen = r.len = caplen;
    batch.records.push_back(r);
    batch.used += record_header_size + f.size();
  }
}

// The interface's received-frames counter: what arrived, even when a capture would drop some.
uint64_t rx_packets(const std::string& interface) {
  std::ifstream in("/sys/class/net/" + interface + "/statistics/rx_packets");
  uint64_t n = 0;
  in >> n;
  return n;
}

}  // namespace

TEST_CASE("nic: every frame arrives on the veth peer, byte-identical and in order") {
  NIC_REQUIRE_ENV();
  FOR_EACH_METHOD(method) {
    Veth veth;
    std::vector<std::vector<unsigned char>> sent;
    for (uint32_t i = 0; i < 1000; ++i) sent.push_back(frame(i, 60 + (i * 37) % 1455));  // 60..1514 bytes
    sent.push_back(frame(1000, 1514));
    sent.push_back(frame(1001, 1518, /*vlan=*/true));  // tagged: MTU + 14 + 4 is allowed

    BatchPool pool(2, default_arena_size);
    Batch* batch = pool.acquire();
    fill(*batch, sent);

    Capture capture(veth.b(), sent.size());
    NicWriter writer(veth.a(), {.method = method});
    CHECK(writer.method() == method);
    CHECK(writer.mtu() == 1500);
    CHECK(writer.link_header_size() == 14);
    // One record per call first (as when paced), then the rest in one call.
    for (size_t i = 0; i < 100; ++i) writer.consume(*batch, i, 1);
    writer.consume(*batch, 100, sent.size() - 100);
    writer.close();
    pool.release(batch);

    const auto got = capture.frames();
    CHECK(writer.nic_stats().sent == sent.size());
    CHECK(writer.nic_stats().failed == 0);
    CHECK(writer.stats().packets == sent.size());
    uint64_t bytes = 0;
    for (const auto& f : sent) bytes += f.size();
    CHECK(writer.nic_stats().bytes == bytes);
    MESSAGE(to_string(method) << ": retried: " << writer.nic_stats().retried << ", dropped by the capture: " << capture.dropped());
    REQUIRE(got.size() == sent.size());
    size_t mismatches = 0;
    for (size_t i = 0; i < sent.size(); ++i)
      if (got[i] != sent[i] && mismatches++ < 5) FAIL_CHECK("frame " << i << " differs");
    CHECK(mismatches == 0);
  }
}

TEST_CASE("nic: a burst of 20,000 frames arrives complete") {
  NIC_REQUIRE_ENV();
  FOR_EACH_METHOD(method) {
    Veth veth;
    std::vector<std::vector<unsigned char>> sent;
    for (uint32_t i = 0; i < 20'000; ++i) sent.push_back(frame(i, i % 100 == 0 ? 1514 : 60));
    BatchPool pool(1, default_arena_size);
    Batch* batch = pool.acquire();
    fill(*batch, sent);

    const uint64_t before = rx_packets(veth.b());
    NicWriter writer(veth.a(), {.method = method});
    writer.consume(*batch);
    writer.close();
    pool.release(batch);
    CHECK(writer.nic_stats().sent == sent.size());
    CHECK(writer.nic_stats().failed == 0);
    // Every frame the writer counts has reached the peer (its counter, not a capture, which drops).
    uint64_t arrived = 0;
    for (int i = 0; i < 100 && (arrived = rx_packets(veth.b()) - before) < sent.size(); ++i)
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    CHECK(arrived == sent.size());
  }
}

TEST_CASE("nic: a full queue: frames are retried, or given up and counted when the retries run out") {
  NIC_REQUIRE_ENV();
  FOR_EACH_METHOD(method) {
    Veth veth;
    // A token bucket at 2 Mbit/s that queues about 20 small frames: the next ones get ENOBUFS until
    // it has sent one (about every 360 us, far slower than any writer, even one under a sanitizer),
    // so given-up and sent frames interleave.
    if (sh(fmt::format("tc qdisc add dev {} root tbf rate 2mbit burst 1600 limit 1600", veth.a())) != 0) {
      MESSAGE("skipping: no tc, or no tbf qdisc");
      return;
    }
    std::vector<std::vector<unsigned char>> sent;
    for (uint32_t i = 0; i < 300; ++i) sent.push_back(frame(i, 60 + i % 7 * 10));
    BatchPool pool(1, default_arena_size);
    Batch* batch = pool.acquire();
    fill(*batch, sent);
    // The order is checked where the frames leave the queue, on the sending end: the token bucket
    // releases frames from a timer on whichever CPU it fires, so the peer's per-CPU receive queues
    // may reorder them, whoever sent them.
    const auto left_in_order = [&](Capture& capture, uint64_t expected) {
      capture.expect(expected);
      const auto got = capture.frames();
      CHECK(got.size() == expected);
      uint32_t last = 0;
      for (size_t i = 0; i < got.size(); ++i) {
        uint32_t index = 0;
        std::memcpy(&index, got[i].data() + 14, 4);
        if (i > 0 && index <= last) FAIL_CHECK("frame " << index << " leaves after " << last);
        if (got[i] != sent[index]) FAIL_CHECK("frame " << index << " differs");
        last = index;
      }
    };

    SUBCASE("retried until sent") {
      Capture capture(veth.a(), sent.size());
      NicWriter writer(veth.a(), {.max_retries = 1'000'000, .method = method});
      writer.consume(*batch);
      CHECK(writer.nic_stats().sent == sent.size());
      CHECK(writer.nic_stats().failed == 0);
      CHECK(writer.nic_stats().retried > 0);
      left_in_order(capture, sent.size());
    }
    SUBCASE("no retries: given up and counted") {
      Capture capture(veth.a(), sent.size());
      NicWriter writer(veth.a(), {.max_retries = 0, .method = method});
      writer.consume(*batch);
      const NicStats stats = writer.nic_stats();
      CHECK(stats.failed > 0);
      CHECK(stats.retried == 0);
      CHECK(stats.sent + stats.failed == sent.size());
      left_in_order(capture, stats.sent);
    }
    pool.release(batch);
  }
}

TEST_CASE("nic: a frame shorter than the link header is a warning naming its record, the others go out") {
  NIC_REQUIRE_ENV();
  FOR_EACH_METHOD(method) {
    Veth veth;
    const std::vector<std::vector<unsigned char>> sent = {frame(0, 100), std::vector<unsigned char>(10, 0xff),
                                                          std::vector<unsigned char>{}, frame(3, 100)};
    BatchPool pool(1, default_arena_size);
    Batch* batch = pool.acquire();
    fill(*batch, sent);
    Report report;
    report.set_quiet(true);
    SUBCASE("warn (the default): skipped, counted, named; the run is marked failed") {
      Capture capture(veth.b(), 2);
      NicWriter writer(veth.a(), {.method = method, .report = &report, .names = {"bg"}});
      writer.consume(*batch);
      writer.close();
      const auto got = capture.frames();
      CHECK(writer.nic_stats().sent == 2);
      CHECK(writer.nic_stats().failed == 2);
      CHECK(writer.stats().packets == 2);
      REQUIRE(got.size() == 2);
      CHECK(got[0] == sent[0]);
      CHECK(got[1] == sent[3]);
      CHECK(report.has_lost());
      REQUIRE(report.messages().size() == 2);
      CHECK(report.messages()[0] ==
            fmt::format("nic {}: record 1 of bg not sent: it is 10 bytes, shorter than the 14-byte link header", veth.a()));
      CHECK(report.messages()[1].find("record 2 of bg not sent: it is 0 bytes") != std::string::npos);
    }
    SUBCASE("stop: an error naming the record, the frames before it sent") {
      Capture capture(veth.b(), 1);
      NicWriter writer(veth.a(), {.method = method, .on_error = NicOnError::stop, .report = &report, .names = {"bg"}});
      const std::string error = test::error_of([&] { writer.consume(*batch); });
      CHECK(error == fmt::format("nic {}: record 1 of bg not sent: it is 10 bytes, shorter than the 14-byte link header",
                                 veth.a()));
      CHECK(writer.nic_stats().sent == 1);
      CHECK(writer.nic_stats().failed == 1);
      CHECK(writer.stats().packets == 1);
      const auto got = capture.frames();
      REQUIRE(got.size() == 1);
      CHECK(got[0] == sent[0]);
      CHECK(!report.has_lost());
    }
    pool.release(batch);
  }
}

TEST_CASE("nic: a frame over the MTU is an error naming its record, or is truncated when asked") {
  NIC_REQUIRE_ENV();
  FOR_EACH_METHOD(method) {
    Veth veth;
    const std::vector<std::vector<unsigned char>> sent = {frame(0, 100), frame(1, 1515), frame(2, 100)};
    BatchPool pool(1, default_arena_size);
    Batch* batch = pool.acquire();
    fill(*batch, sent);

    SUBCASE("error") {
      Capture capture(veth.b(), 1);
      NicWriter writer(veth.a(), {.method = method, .on_error = NicOnError::stop});
      const std::string error = test::error_of([&] { writer.consume(*batch); });
      CHECK(error.find(veth.a()) != std::string::npos);
      CHECK(error.find("record 1 ") != std::string::npos);
      CHECK(error.find("MTU") != std::string::npos);
      CHECK(writer.nic_stats().sent == 1);  // what came before was sent
      const auto got = capture.frames();
      REQUIRE(got.size() == 1);
      CHECK(got[0] == sent[0]);
    }
    SUBCASE("an untagged frame may not use the tag's 4 bytes") {
      fill(*batch, {frame(0, 1518)});
      NicWriter writer(veth.a(), {.method = method, .on_error = NicOnError::stop});
      CHECK(test::error_of([&] { writer.consume(*batch); }).find("record 0 ") != std::string::npos);
    }
    SUBCASE("truncated") {
      Capture capture(veth.b(), sent.size());
      NicWriter writer(veth.a(), {.truncate_to_mtu = true, .method = method});
      writer.consume(*batch);
      writer.close();
      const auto got = capture.frames();
      CHECK(writer.nic_stats().sent == 3);
      REQUIRE(got.size() == 3);
      CHECK(got[0] == sent[0]);
      CHECK(got[1] == std::vector<unsigned char>(sent[1].begin(), sent[1].begin() + 1514));
      CHECK(got[2] == sent[2]);
    }
    SUBCASE("a larger MTU set while sending is honoured") {
      NicWriter writer(veth.a(), {.method = method});
      fill(*batch, {frame(0, 1514)});
      writer.consume(*batch);
      REQUIRE(sh(fmt::format("ip link set dev {} mtu 4000", veth.a())) == 0);
      REQUIRE(sh(fmt::format("ip link set dev {} mtu 4000", veth.b())) == 0);
      std::this_thread::sleep_for(std::chrono::milliseconds(30));  // past the writer's next interface check
      const std::vector<std::vector<unsigned char>> jumbo = {frame(1, 4014), frame(2, 100), frame(3, 4014)};
      fill(*batch, jumbo);
      Capture capture(veth.b(), jumbo.size());
      writer.consume(*batch);
      CHECK(writer.mtu() == 4000);
      CHECK(writer.nic_stats().sent == 4);
      const auto got = capture.frames();
      REQUIRE(got.size() == jumbo.size());
      for (size_t i = 0; i < jumbo.size(); ++i) CHECK(got[i] == jumbo[i]);
    }
    pool.release(batch);
  }
}

TEST_CASE("nic: a missing interface is named in a clear error") {
  NIC_REQUIRE_ENV();
  const std::string name = fmt::format("vpnone{}", ::getpid() % 1000000);
  FOR_EACH_METHOD(method) {
    const std::string error = test::error_of([&] { NicWriter writer(name, {.method = method}); });
    CHECK(error.find(name) != std::string::npos);
    CHECK(error.find("no such interface") != std::string::npos);
  }
}

TEST_CASE("nic: an interface that is down is named in a clear error") {
  NIC_REQUIRE_ENV();
  FOR_EACH_METHOD(method) {
    SUBCASE("down when opened") {
      Veth veth(/*up=*/false);
      const std::string error = test::error_of([&] { NicWriter writer(veth.a(), {.method = method}); });
      CHECK(error.find(veth.a()) != std::string::npos);
      CHECK(error.find("down") != std::string::npos);
    }
    SUBCASE("goes down while sending") {
      Veth veth;
      BatchPool pool(1, default_arena_size);
      Batch* batch = pool.acquire();
      fill(*batch, {frame(0, 100), frame(1, 100)});
      NicWriter writer(veth.a(), {.method = method});
      writer.consume(*batch);
      CHECK(writer.nic_stats().sent == 2);
      REQUIRE(Veth::set_up(veth.a(), false) == 0);
      const std::string error = test::error_of([&] { writer.consume(*batch); });
      CHECK(error.find(veth.a()) != std::string::npos);
      CHECK(error.find("down") != std::string::npos);
      pool.release(batch);
    }
  }
}
