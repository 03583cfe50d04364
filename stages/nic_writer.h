// The `nic` sink: every record of a batch goes onto a network interface with pcap_inject, one
// frame per record (the bytes after the 16-byte record header). ENOBUFS/EAGAIN are retried, not
// dropped; a frame over the interface MTU (plus the link header) is an error naming the record,
// or is cut to fit when asked.
#pragma once

#include <cstdint>
#include <string>

#include "stages/sink.h"

struct pcap;

namespace vei {

struct NicOptions {
  bool truncate_to_mtu = false;  // cut oversized frames to MTU + link header instead of failing
  int max_retries = 1000;        // per frame, for ENOBUFS/EAGAIN
};

struct NicStats {
  uint64_t sent = 0;     // frames handed to the interface
  uint64_t failed = 0;   // frames given up on (retries exhausted, or refused by the kernel)
  uint64_t retried = 0;  // send attempts repeated after ENOBUFS/EAGAIN
  uint64_t bytes = 0;    // frame bytes sent
};

class NicWriter final : public Sink {
 public:
  // Opens `interface` for sending. Throws std::runtime_error naming the interface when it does
  // not exist, is down, or the process lacks CAP_NET_RAW.
  explicit NicWriter(std::string interface, NicOptions options = {});
  ~NicWriter() override;
  NicWriter(const NicWriter&) = delete;
  NicWriter& operator=(const NicWriter&) = delete;

  using Sink::consume;
  void consume(const Batch& batch, size_t first, size_t count) override;
  void close() override;
  const SinkStats& stats() const override { return stats_; }
  const NicStats& nic_stats() const { return nic_stats_; }

  const std::string& interface() const { return interface_; }
  int mtu() const { return mtu_; }
  size_t link_header_size() const { return link_header_; }
  // The interface's link type as a LINKTYPE_ value (what a pcap file's header says): 1 for Ethernet.
  uint32_t linktype() const { return linktype_; }

 private:
  // Refreshes the MTU and checks that the interface is still there and up.
  void check_interface();
  void send_frame(const std::byte* frame, size_t size);
  [[noreturn]] void fail(const std::string& what) const;

  std::string interface_;
  NicOptions options_;
  ::pcap* handle_ = nullptr;
  int ioctl_fd_ = -1;  // a UDP socket for SIOCGIFMTU / SIOCGIFFLAGS
  int mtu_ = 0;
  size_t link_header_ = 0;  // 14 for Ethernet, 0 for raw IP links
  uint32_t linktype_ = 0;
  int64_t next_check_ns_ = 0;  // CLOCK_MONOTONIC_COARSE time of the next interface check
  SinkStats stats_;
  NicStats nic_stats_;
};

}  // namespace vei
