// The `live` source: frames captured on a network interface with libpcap, on a thread of its own
// (not a TBB worker, so that a busy graph cannot delay reading the kernel's ring), laid out as
// batches of classic pcap records with nanosecond timestamps.
#pragma once

#include <atomic>
#include <cstdint>
#include <functional>
#include <string>
#include <thread>

#include "core/batch.h"
#include "pipeline/stage.h"

struct pcap;
struct pcap_pkthdr;

namespace vei {

struct LiveOptions {
  std::string interface;
  std::string filter;  // BPF (tcpdump syntax), empty for none
  uint32_t snaplen = 262144;
  bool promisc = false;
  // A partial batch is delivered at most this long after its first record was read; the kernel
  // hands frames over within 1 ms of their capture.
  int64_t flush_ns = 1'000'000;
  int buffer_bytes = 32 << 20;  // kernel capture buffer (pcap_set_buffer_size) so that bursts are not lost
};

struct LiveStats {
  uint64_t packets = 0;
  uint64_t bytes = 0;  // captured bytes (caplen), record headers excluded
  uint64_t batches = 0;
  uint64_t kernel_dropped = 0;  // the ring was full (pcap_stats ps_drop)
  uint64_t if_dropped = 0;      // dropped by the interface (ps_ifdrop)
};

class LiveCapture {
 public:
  // Opens the interface and sets the filter. Throws std::runtime_error naming the interface when it
  // does not exist, is down, the process lacks CAP_NET_RAW, or the filter does not compile.
  LiveCapture(LiveOptions options, uint16_t rank);
  ~LiveCapture();
  LiveCapture(const LiveCapture&) = delete;
  LiveCapture& operator=(const LiveCapture&) = delete;

  uint32_t linktype() const { return linktype_; }  // LINKTYPE_ value (Ethernet = 1)
  const std::string& interface() const { return options_.interface; }

  // Starts the capture thread (once). Batches come from `pool` (waiting while it is empty is the
  // back-pressure; stop() ends the wait) and go to `deliver` on that thread, which then owns them:
  // source = rank, event = true, records with ts_ns = capture time (CLOCK_REALTIME ns) and seq =
  // index of the frame in the capture. When the interface goes away or down, what was captured is
  // delivered, `on_error` is called once with a message naming the interface, and the thread ends.
  void start(BatchPool& pool, std::function<void(Batch*)> deliver, std::function<void(const std::string&)> on_error);
  // Stops within a few ms, delivers the partial batch, joins the thread; frames the kernel has not
  // handed over yet (the last ms or so) are not captured. Idempotent, one caller at a time; from
  // `deliver` or `on_error` (the capture thread) it only asks the thread to end.
  void stop();
  // Any thread. The kernel's counters are read every 100 ms and when the capture ends.
  LiveStats stats() const;

 private:
  static void on_packet(unsigned char* self, const pcap_pkthdr* header, const unsigned char* bytes);
  std::string run();  // the error that ended the capture, empty when stopped
  void append(const pcap_pkthdr& header, const unsigned char* bytes);
  bool next_batch();  // false when stopped while waiting for one
  void deliver_batch();
  void refresh_kernel_stats();
  std::string interface_problem() const;  // why capturing stopped, when the interface is gone or down
  [[noreturn]] void fail(const std::string& what) const;

  LiveOptions options_;
  uint16_t rank_;
  ::pcap* handle_ = nullptr;
  uint32_t linktype_ = 0;
  unsigned ifindex_ = 0;
  int stop_fd_ = -1;  // eventfd: wakes the capture thread's poll

  // Capture thread only.
  BatchPool* pool_ = nullptr;
  std::function<void(Batch*)> deliver_;
  std::function<void(const std::string&)> on_error_;
  Batch* batch_ = nullptr;
  int64_t flush_at_ = 0;  // steady ns: deadline of the current batch
  uint64_t seq_ = 0;

  std::thread thread_;
  std::atomic<bool> stopping_{false};
  std::atomic<uint64_t> packets_{0}, bytes_{0}, batches_{0}, kernel_dropped_{0}, if_dropped_{0};
};

class LiveStage final : public EventStage {
 public:
  LiveStage();
  void check(const Node& node) const override;
  void verify(const Node& node) const override;
  std::string source_name(const Node& node) const override;
  std::unique_ptr<EventSource> open(const Node& node, const EventContext& context) const override;
  std::unique_ptr<TimelineSource> open_alone(const Node& node, SourceOptions options) const override;
};

}  // namespace vei
