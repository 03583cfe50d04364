// The `nic` sink: every record of a batch goes onto a network interface as one frame (the bytes
// after the 16-byte record header). ENOBUFS/EAGAIN are retried, not dropped; a frame over the
// interface MTU (plus the link header) is an error naming the record, or is cut to fit when asked.
//
// Three ways to hand frames to the kernel, all with the same semantics (order, counting, retries,
// errors); only the cost per frame differs:
//   inject  pcap_inject: one send() per frame (the default).
//   mmsg    an AF_PACKET socket of its own (protocol 0: it receives nothing) and sendmmsg(), up to
//           mmsg_batch frames per system call.
//   ring    the same socket with a PACKET_TX_RING (TPACKET_V2): frames are copied into a ring
//           shared with the kernel and one send() sends all of them. Each ring frame carries a
//           virtio-net header whose hdr_len covers the whole frame, so the kernel copies it into
//           the socket buffer instead of pointing at the ring's pages: a veth (or any device that
//           forwards locally) would otherwise copy every frame into a freshly allocated page.
// Neither batched method bypasses the qdisc: shaping on the interface and captures on it
// (tcpdump -i IFACE) see the frames as with inject.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "core/report.h"
#include "core/sink.h"
#include "pipeline/stage.h"

struct pcap;
struct iovec;
struct mmsghdr;

namespace vei {

enum class NicMethod { inject, mmsg, ring };

// "inject", "mmsg", "ring"; nullopt for anything else.
std::optional<NicMethod> nic_method_from_string(std::string_view text);
std::string_view to_string(NicMethod method);

// What happens to a frame that cannot be sent (over the MTU, shorter than the link header, refused
// by the kernel, or still refused when its retries run out).
enum class NicOnError {
  warn,  // skipped with a warning naming its record, counted failed; the run goes on and exits 1
  stop,  // an error naming its record that ends the run; the frames before it are sent
};

struct NicOptions {
  bool truncate_to_mtu = false;  // cut oversized frames to MTU + link header instead of failing
  int max_retries = 1000;        // per frame, for ENOBUFS/EAGAIN
  NicMethod method = NicMethod::inject;
  NicOnError on_error = NicOnError::warn;
  Report* report = nullptr;        // takes the warnings (none: they are only counted)
  std::vector<std::string> names = {};  // by source rank: how a warning names a record's source
};

struct NicStats {
  uint64_t sent = 0;     // frames handed to the interface
  uint64_t failed = 0;   // frames not sent (see NicOnError)
  uint64_t retried = 0;  // send attempts repeated after ENOBUFS/EAGAIN
  uint64_t bytes = 0;    // frame bytes sent
};

class NicWriter final : public Sink {
 public:
  // Frames per sendmmsg() call (method mmsg).
  static constexpr size_t mmsg_batch = 1024;

  // Opens `interface` for sending. Throws std::runtime_error naming the interface when it does
  // not exist, is down, or the process lacks CAP_NET_RAW.
  explicit NicWriter(std::string interface, NicOptions options = {});
  ~NicWriter() override;
  NicWriter(const NicWriter&) = delete;
  NicWriter& operator=(const NicWriter&) = delete;

  using Sink::consume;
  // Every frame of the call has been handed to the kernel (or counted as failed) when it returns.
  void consume(const Batch& batch, size_t first, size_t count) override;
  void close() override;
  const SinkStats& stats() const override { return stats_; }
  const NicStats& nic_stats() const { return nic_stats_; }
  void add_stats(Stats& stats) const override;

  const std::string& interface() const { return interface_; }
  NicMethod method() const { return options_.method; }
  int mtu() const { return mtu_; }
  size_t link_header_size() const { return link_header_; }
  // The interface's link type as a LINKTYPE_ value (what a pcap file's header says): 1 for Ethernet.
  uint32_t linktype() const { return linktype_; }

 private:
  struct TxRing {
    std::byte* base = nullptr;  // the mmap()ed ring
    size_t length = 0;
    size_t block_size = 0;      // frames never straddle blocks
    size_t per_block = 0;       // slots per block
    size_t slot_size = 0;       // bytes per frame slot, header included
    size_t capacity = 0;        // the largest frame a slot holds
    size_t slots = 0;
    size_t head = 0;            // the slot of the oldest queued frame (where the kernel looks next)
    size_t queued = 0;          // frames written and not yet confirmed
    std::vector<uint32_t> sizes;  // each slot's frame size
    std::vector<Record> records;  // each slot's record
  };

  // Refreshes the MTU and checks that the interface is still there and up.
  void check_interface();
  // Opens socket_ (method ring: with a TX ring whose slots hold frames of up to `largest_frame` bytes).
  void open_packet_socket(size_t largest_frame);
  void open_ring(size_t largest_frame);
  void close_ring();

  // Sends one frame (inject), or queues it for the next flush() (mmsg, ring).
  void queue_frame(const Record& record, const std::byte* frame, size_t size);
  // Sends whatever is queued; afterwards nothing is.
  void flush();
  void send_frame(const Record& record, const std::byte* frame, size_t size);
  void send_messages();
  void send_ring();
  void drop_ring_frame(size_t index);
  // The slot of the index-th queued frame (0: the oldest; ring_.queued: the next free slot).
  std::byte* ring_slot(size_t index) const;

  void count_sent(size_t size);
  // After a send that failed with `error` (0: a short send): throws when the interface is down or
  // gone or the permission is missing; returns true when the frame should be tried again (EINTR,
  // or a full buffer within its retry budget, after a pause), false when it is given up.
  bool retry_after(int error, int& retries);
  [[noreturn]] void fail(const std::string& what) const;
  // The frame of `record` is not sent, because it `why`: a warning or an error, by on_error.
  void not_sent(const Record& record, const std::string& why);

  std::string interface_;
  NicOptions options_;
  ::pcap* handle_ = nullptr;  // method inject
  int socket_ = -1;           // methods mmsg and ring: AF_PACKET, SOCK_RAW, bound to the interface
  int ioctl_fd_ = -1;         // a UDP socket for SIOCGIFMTU / SIOCGIFFLAGS
  int mtu_ = 0;
  size_t link_header_ = 0;  // 14 for Ethernet, 0 for raw IP links
  uint32_t linktype_ = 0;
  int64_t next_check_ns_ = 0;  // CLOCK_MONOTONIC_COARSE time of the next interface check
  // Method mmsg: the frames queued for the next sendmmsg().
  std::vector<::mmsghdr> messages_;
  std::vector<::iovec> iovecs_;
  std::vector<Record> message_records_;
  size_t queued_messages_ = 0;
  TxRing ring_;
  SinkStats stats_;
  NicStats nic_stats_;
};

class NicStage final : public SinkStage {
 public:
  NicStage();
  void check(const Node& node) const override;
  void verify(const Node& node) const override;
  std::unique_ptr<Sink> open(const Node& node, const SinkContext& context) const override;
};

}  // namespace vei
