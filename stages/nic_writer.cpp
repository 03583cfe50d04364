#include "stages/nic_writer.h"

#include <net/if.h>
#include <pcap/pcap.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstring>
#include <ctime>
#include <span>
#include <fmt/format.h>
#include <stdexcept>
#include <thread>

namespace vei {

namespace {

constexpr size_t ethernet_header_size = 14;
constexpr size_t vlan_tag_size = 4;
constexpr uint32_t linktype_raw = 101;
// The MTU and the interface's state are read again at most this often: two ioctls per frame
// would cost more than the send itself when frames go out one at a time.
constexpr int64_t check_interval_ns = 10'000'000;

int64_t coarse_now_ns() {
  timespec t{};
  clock_gettime(CLOCK_MONOTONIC_COARSE, &t);
  return int64_t{t.tv_sec} * 1'000'000'000 + t.tv_nsec;
}
constexpr auto retry_pause = std::chrono::microseconds(5);

std::string permission_message(const std::string& interface) {
  return fmt::format("nic {}: permission denied: sending raw frames needs CAP_NET_RAW (run as root, "
                     "or `setcap cap_net_raw+ep` on the binary)",
                     interface);
}

// The frame carries an 802.1Q (or 802.1ad) tag right after the MAC addresses.
bool vlan_tagged(const std::byte* frame, size_t size) {
  if (size < ethernet_header_size) return false;
  const unsigned type = std::to_integer<unsigned>(frame[12]) << 8 | std::to_integer<unsigned>(frame[13]);
  return type == 0x8100 || type == 0x88a8;
}

}  // namespace

NicWriter::NicWriter(std::string interface, NicOptions options)
    : interface_(std::move(interface)), options_(options) {
  if (interface_.empty() || interface_.size() >= IFNAMSIZ)
    fail(fmt::format("no such interface (invalid name, at most {} characters)", IFNAMSIZ - 1));
  ioctl_fd_ = ::socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  if (ioctl_fd_ < 0) fail(fmt::format("socket: {}", std::strerror(errno)));
  try {
    check_interface();

    char errbuf[PCAP_ERRBUF_SIZE] = {};
    handle_ = pcap_create(interface_.c_str(), errbuf);
    if (!handle_) fail(errbuf);
    const int status = pcap_activate(handle_);
    if (status < 0) {
      const std::string detail = pcap_geterr(handle_);
      switch (status) {
        case PCAP_ERROR_PERM_DENIED: throw std::runtime_error(permission_message(interface_));
        case PCAP_ERROR_NO_SUCH_DEVICE: fail("no such interface");
        case PCAP_ERROR_IFACE_NOT_UP: fail("interface is down");
        default: fail(fmt::format("cannot open for sending: {}", detail.empty() ? pcap_statustostr(status) : detail));
      }
    }
    const int dlt = pcap_datalink(handle_);
    link_header_ = dlt == DLT_EN10MB ? ethernet_header_size : 0;
    // DLT_ and LINKTYPE_ values agree except for raw IP, whose DLT_ value differs by platform.
    linktype_ = dlt == DLT_RAW ? linktype_raw : static_cast<uint32_t>(dlt);
  } catch (...) {
    close();
    throw;
  }
}

NicWriter::~NicWriter() {
  if (handle_) pcap_close(handle_);
  if (ioctl_fd_ >= 0) ::close(ioctl_fd_);
}

void NicWriter::fail(const std::string& what) const {
  throw std::runtime_error(fmt::format("nic {}: {}", interface_, what));
}

void NicWriter::check_interface() {
  ifreq request{};
  std::memcpy(request.ifr_name, interface_.data(), interface_.size());
  if (::ioctl(ioctl_fd_, SIOCGIFFLAGS, &request) < 0) {
    if (errno == ENODEV || errno == ENXIO) fail("no such interface");
    fail(fmt::format("SIOCGIFFLAGS: {}", std::strerror(errno)));
  }
  if (!(request.ifr_flags & IFF_UP)) fail("interface is down (bring it up with `ip link set dev ... up`)");
  if (::ioctl(ioctl_fd_, SIOCGIFMTU, &request) < 0) {
    if (errno == ENODEV || errno == ENXIO) fail("no such interface");
    fail(fmt::format("SIOCGIFMTU: {}", std::strerror(errno)));
  }
  mtu_ = request.ifr_mtu;
}

void NicWriter::consume(const Batch& batch, size_t first, size_t count) {
  if (count == 0) return;
  if (!handle_) fail("already closed");
  if (const int64_t now = coarse_now_ns(); now >= next_check_ns_) {
    check_interface();
    next_check_ns_ = now + check_interval_ns;
  }
  const size_t mtu = mtu_ > 0 ? static_cast<size_t>(mtu_) : 0;
  for (const Record& record : std::span(batch.records.data() + first, count)) {
    const std::byte* frame = batch.data() + record.offset + record_header_size;
    size_t size = record.caplen;
    const size_t tag = link_header_ && vlan_tagged(frame, size) ? vlan_tag_size : 0;
    const size_t limit = mtu + link_header_ + tag;
    if (size > limit) {
      if (!options_.truncate_to_mtu)
        fail(fmt::format("record {} is {} bytes, over the interface MTU ({} + {} bytes of link header{}); "
                         "truncate it to send it",
                         record.seq, size, mtu, link_header_, tag ? " + 4 of 802.1Q tag" : ""));
      size = limit;
    }
    send_frame(frame, size);
  }
}

void NicWriter::send_frame(const std::byte* frame, size_t size) {
  int retries = 0;
  for (;;) {
    const int sent = pcap_inject(handle_, frame, size);
    if (sent >= 0 && static_cast<size_t>(sent) == size) {
      ++nic_stats_.sent;
      nic_stats_.bytes += size;
      ++stats_.packets;
      stats_.bytes += size;
      return;
    }
    const int error = sent < 0 ? errno : 0;
    switch (error) {
      case ENOBUFS:
      case EAGAIN:
      case EINTR:
        if (error == EINTR || retries < options_.max_retries) {
          if (error != EINTR) {
            ++retries;
            ++nic_stats_.retried;
            std::this_thread::sleep_for(retry_pause);
          }
          continue;
        }
        ++nic_stats_.failed;
        return;
      case ENETDOWN:
      case ENXIO: fail("interface is down");
      case ENODEV: fail("no such interface (it went away)");
      case EPERM:
      case EACCES: throw std::runtime_error(permission_message(interface_));
      default:
        // A short send or a frame the kernel refuses: count it and carry on.
        ++nic_stats_.failed;
        return;
    }
  }
}

void NicWriter::close() {
  if (handle_) {
    pcap_close(handle_);
    handle_ = nullptr;
  }
  if (ioctl_fd_ >= 0) {
    ::close(ioctl_fd_);
    ioctl_fd_ = -1;
  }
}

}  // namespace vei
