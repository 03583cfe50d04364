#include "stages/nic.h"

#include <linux/if_packet.h>
#include <net/if.h>
#include <pcap/pcap.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/utsname.h>
#include <unistd.h>

#include <algorithm>
#include <bit>
#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <ctime>
#include <span>
#include <fmt/format.h>
#include <stdexcept>
#include <thread>
#include <utility>

namespace vei {

namespace {

constexpr size_t ethernet_header_size = 14;
constexpr size_t vlan_tag_size = 4;
constexpr uint32_t linktype_raw = 101;
// The MTU and the interface's state are read again at most this often: two ioctls per frame
// would cost more than the send itself when frames go out one at a time.
constexpr int64_t check_interval_ns = 10'000'000;

// The TX ring: about this many bytes, in blocks of at least ring_block_size (a power of two, so
// that the kernel's page-order allocation wastes nothing).
constexpr size_t ring_bytes = size_t{4} << 20;
constexpr size_t ring_block_size = size_t{1} << 20;
// Where a TPACKET_V2 TX frame's data starts within its slot (no PACKET_TX_HAS_OFF).
constexpr size_t ring_data_offset = TPACKET2_HDRLEN - sizeof(sockaddr_ll);
// The timestamp bits the kernel may add to a status it hands back.
constexpr uint32_t ring_timestamp_bits = TP_STATUS_TS_SOFTWARE | TP_STATUS_TS_SYS_HARDWARE | TP_STATUS_TS_RAW_HARDWARE;

// struct virtio_net_hdr (linux/virtio_net.h, which C++ cannot include: a member is named `class`),
// in native byte order as PACKET_VNET_HDR reads it. No offloads: only hdr_len is set.
struct VnetHeader {
  uint8_t flags = 0;
  uint8_t gso_type = 0;  // VIRTIO_NET_HDR_GSO_NONE
  uint16_t hdr_len = 0;  // bytes the kernel copies into the socket buffer's linear part
  uint16_t gso_size = 0;
  uint16_t csum_start = 0;
  uint16_t csum_offset = 0;
};
static_assert(sizeof(VnetHeader) == 10);

int64_t coarse_now_ns() {
  timespec t{};
  clock_gettime(CLOCK_MONOTONIC_COARSE, &t);
  return int64_t{t.tv_sec} * 1'000'000'000 + t.tv_nsec;
}
constexpr auto retry_pause = std::chrono::microseconds(5);
// Frames not sent are each named in a warning up to this many; the statistics count them all.
constexpr uint64_t max_warnings = 10;

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

// The running kernel is at least major.minor.
bool kernel_at_least(int major, int minor) {
  utsname name{};
  int have_major = 0, have_minor = 0;
  if (::uname(&name) != 0 || std::sscanf(name.release, "%d.%d", &have_major, &have_minor) != 2) return true;
  return have_major > major || (have_major == major && have_minor >= minor);
}

// Why a send that failed with `error` (0: a short send) was given up.
std::string refusal(int error, int retries) {
  if (error == ENOBUFS || error == EAGAIN) return fmt::format("the socket buffer stayed full after {} retries", retries);
  if (error == 0) return "the kernel sent it short";
  return fmt::format("the kernel refused it: {}", std::strerror(error));
}

tpacket2_hdr* ring_header(std::byte* slot) { return reinterpret_cast<tpacket2_hdr*>(slot); }
uint32_t ring_status(std::byte* slot) {
  return __atomic_load_n(&ring_header(slot)->tp_status, __ATOMIC_ACQUIRE) & ~ring_timestamp_bits;
}
void set_ring_status(std::byte* slot, uint32_t status) {
  __atomic_store_n(&ring_header(slot)->tp_status, status, __ATOMIC_RELEASE);
}

}  // namespace

std::optional<NicMethod> nic_method_from_string(std::string_view text) {
  if (text == "inject") return NicMethod::inject;
  if (text == "mmsg") return NicMethod::mmsg;
  if (text == "ring") return NicMethod::ring;
  return std::nullopt;
}

std::string_view to_string(NicMethod method) {
  switch (method) {
    case NicMethod::inject: return "inject";
    case NicMethod::mmsg: return "mmsg";
    case NicMethod::ring: return "ring";
  }
  return "?";
}

NicWriter::NicWriter(std::string interface, NicOptions options)
    : interface_(std::move(interface)), options_(options) {
  if (interface_.empty() || interface_.size() >= IFNAMSIZ)
    fail(fmt::format("no such interface (invalid name, at most {} characters)", IFNAMSIZ - 1));
  ioctl_fd_ = ::socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  if (ioctl_fd_ < 0) fail(fmt::format("socket: {}", std::strerror(errno)));
  try {
    check_interface();

    // libpcap opens the interface for every method: its errors and its link type are the ones
    // every method reports.
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

    if (options_.method != NicMethod::inject) {
      // libpcap's socket captures everything on the interface, our own frames included when
      // another socket sends them: the batched methods send on a socket of their own.
      pcap_close(handle_);
      handle_ = nullptr;
      if (options_.method == NicMethod::mmsg) {
        messages_.resize(mmsg_batch);
        iovecs_.resize(mmsg_batch);
        message_records_.resize(mmsg_batch);
        for (size_t i = 0; i < mmsg_batch; ++i) {
          messages_[i] = {};
          messages_[i].msg_hdr.msg_iov = &iovecs_[i];
          messages_[i].msg_hdr.msg_iovlen = 1;
        }
      }
      open_packet_socket(static_cast<size_t>(std::max(mtu_, 0)) + link_header_ + vlan_tag_size);
    }
  } catch (...) {
    close();
    throw;
  }
}

NicWriter::~NicWriter() { close(); }

void NicWriter::fail(const std::string& what) const {
  throw std::runtime_error(fmt::format("nic {}: {}", interface_, what));
}

void NicWriter::not_sent(const Record& record, const std::string& why) {
  const std::string source =
      record.source < options_.names.size() ? options_.names[record.source] : fmt::format("source {}", record.source);
  const std::string message = fmt::format("nic {}: record {} of {} not sent: {}", interface_, record.seq, source, why);
  ++nic_stats_.failed;
  if (options_.on_error == NicOnError::stop) throw std::runtime_error(message);
  if (!options_.report || nic_stats_.failed > max_warnings) return;
  options_.report->lost(nic_stats_.failed < max_warnings
                            ? message
                            : fmt::format("{} (further frames not sent are only counted)", message));
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

void NicWriter::open_packet_socket(size_t largest_frame) {
  // Protocol 0: the socket sends and never receives.
  socket_ = ::socket(AF_PACKET, SOCK_RAW | SOCK_CLOEXEC, 0);
  if (socket_ < 0) {
    if (errno == EPERM || errno == EACCES) throw std::runtime_error(permission_message(interface_));
    fail(fmt::format("socket(AF_PACKET): {}", std::strerror(errno)));
  }
  sockaddr_ll address{};
  address.sll_family = AF_PACKET;
  address.sll_protocol = 0;
  address.sll_ifindex = static_cast<int>(::if_nametoindex(interface_.c_str()));
  if (address.sll_ifindex == 0) fail("no such interface");
  if (::bind(socket_, reinterpret_cast<const sockaddr*>(&address), sizeof address) < 0) {
    if (errno == ENODEV || errno == ENXIO) fail("no such interface");
    fail(fmt::format("bind: {}", std::strerror(errno)));
  }
  if (options_.method == NicMethod::ring) {
    // tpacket_snd honours the virtio-net header since Linux 4.11; an older kernel would send it
    // as the frame's first bytes.
    if (!kernel_at_least(4, 11)) fail("method=ring needs Linux 4.11 or later; use method=mmsg");
    const int version = TPACKET_V2, on = 1;
    if (::setsockopt(socket_, SOL_PACKET, PACKET_VERSION, &version, sizeof version) < 0)
      fail(fmt::format("PACKET_VERSION: {}", std::strerror(errno)));
    if (::setsockopt(socket_, SOL_PACKET, PACKET_VNET_HDR, &on, sizeof on) < 0)
      fail(fmt::format("PACKET_VNET_HDR: {}", std::strerror(errno)));
    open_ring(largest_frame);
  }
}

void NicWriter::open_ring(size_t largest_frame) {
  const size_t slot_size = TPACKET_ALIGN(ring_data_offset + sizeof(VnetHeader) + largest_frame);
  const size_t block_size = std::max(ring_block_size, std::bit_ceil(slot_size));
  const size_t blocks = std::max<size_t>(1, ring_bytes / block_size);
  tpacket_req request{};
  request.tp_block_size = static_cast<unsigned>(block_size);
  request.tp_block_nr = static_cast<unsigned>(blocks);
  request.tp_frame_size = static_cast<unsigned>(slot_size);
  request.tp_frame_nr = static_cast<unsigned>(block_size / slot_size * blocks);
  if (::setsockopt(socket_, SOL_PACKET, PACKET_TX_RING, &request, sizeof request) < 0)
    fail(fmt::format("PACKET_TX_RING ({} frames of {} bytes): {}", request.tp_frame_nr, slot_size, std::strerror(errno)));
  void* base = ::mmap(nullptr, block_size * blocks, PROT_READ | PROT_WRITE, MAP_SHARED, socket_, 0);
  if (base == MAP_FAILED) fail(fmt::format("mmap of the TX ring: {}", std::strerror(errno)));
  ring_.base = static_cast<std::byte*>(base);
  ring_.length = block_size * blocks;
  ring_.block_size = block_size;
  ring_.per_block = block_size / slot_size;
  ring_.slot_size = slot_size;
  ring_.capacity = slot_size - ring_data_offset - sizeof(VnetHeader);
  ring_.slots = request.tp_frame_nr;
  ring_.head = ring_.queued = 0;
  ring_.sizes.assign(ring_.slots, 0);
  ring_.records.assign(ring_.slots, Record{});
}

void NicWriter::close_ring() {
  if (ring_.base) ::munmap(ring_.base, ring_.length);
  ring_ = {};
}

std::byte* NicWriter::ring_slot(size_t index) const {
  const size_t slot = (ring_.head + index) % ring_.slots;
  return ring_.base + slot / ring_.per_block * ring_.block_size + slot % ring_.per_block * ring_.slot_size;
}

void NicWriter::consume(const Batch& batch, size_t first, size_t count) {
  if (count == 0) return;
  if (!handle_ && socket_ < 0) fail("already closed");
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
    if (size > limit && options_.truncate_to_mtu) size = limit;
    // The kernel refuses a frame shorter than the link header (EINVAL); in the ring that would
    // stop every frame after it, so no method hands it over.
    const bool too_long = size > limit, too_short = size == 0 || size < link_header_;
    if (too_long || too_short) {
      if (options_.on_error == NicOnError::stop) flush();  // what came before goes out
      not_sent(record, too_long ? fmt::format("it is {} bytes, over the interface MTU ({} + {} bytes of link header{}); "
                                              "truncate=true cuts such frames to fit",
                                              size, mtu, link_header_, tag ? " + 4 of 802.1Q tag" : "")
                                : fmt::format("it is {} bytes, shorter than the {}-byte link header", size,
                                              std::max<size_t>(link_header_, 1)));
      continue;
    }
    queue_frame(record, frame, size);
  }
  flush();
}

void NicWriter::queue_frame(const Record& record, const std::byte* frame, size_t size) {
  switch (options_.method) {
    case NicMethod::inject: send_frame(record, frame, size); return;
    case NicMethod::mmsg:
      iovecs_[queued_messages_] = {const_cast<std::byte*>(frame), size};
      message_records_[queued_messages_] = record;
      if (++queued_messages_ == mmsg_batch) send_messages();
      return;
    case NicMethod::ring: {
      if (size > ring_.capacity) {  // the MTU grew since the ring was made: a new socket, a larger ring
        send_ring();
        close_ring();
        ::close(std::exchange(socket_, -1));
        open_packet_socket(std::max(size, static_cast<size_t>(std::max(mtu_, 0)) + link_header_ + vlan_tag_size));
      }
      if (ring_.queued == ring_.slots) send_ring();
      std::byte* slot = ring_slot(ring_.queued);
      VnetHeader vnet;
      vnet.hdr_len = static_cast<uint16_t>(std::min<size_t>(size, UINT16_MAX));
      std::memcpy(slot + ring_data_offset, &vnet, sizeof vnet);
      std::memcpy(slot + ring_data_offset + sizeof vnet, frame, size);
      ring_header(slot)->tp_len = static_cast<uint32_t>(sizeof vnet + size);
      ring_.sizes[(ring_.head + ring_.queued) % ring_.slots] = static_cast<uint32_t>(size);
      ring_.records[(ring_.head + ring_.queued) % ring_.slots] = record;
      set_ring_status(slot, TP_STATUS_SEND_REQUEST);
      ++ring_.queued;
      return;
    }
  }
}

void NicWriter::flush() {
  if (options_.method == NicMethod::mmsg) send_messages();
  else if (options_.method == NicMethod::ring) send_ring();
}

void NicWriter::count_sent(size_t size) {
  ++nic_stats_.sent;
  nic_stats_.bytes += size;
  ++stats_.packets;
  stats_.bytes += size;
}

bool NicWriter::retry_after(int error, int& retries) {
  switch (error) {
    case EINTR: return true;
    case ENOBUFS:
    case EAGAIN:
      if (retries >= options_.max_retries) return false;
      ++retries;
      ++nic_stats_.retried;
      std::this_thread::sleep_for(retry_pause);
      return true;
    case ENETDOWN:
    case ENXIO: fail("interface is down");
    case ENODEV: fail("no such interface (it went away)");
    case EPERM:
    case EACCES: throw std::runtime_error(permission_message(interface_));
    default: return false;  // a short send or a frame the kernel refuses: count it and carry on
  }
}

void NicWriter::send_frame(const Record& record, const std::byte* frame, size_t size) {
  int retries = 0;
  for (;;) {
    const int sent = pcap_inject(handle_, frame, size);
    if (sent >= 0 && static_cast<size_t>(sent) == size) {
      count_sent(size);
      return;
    }
    const int error = sent < 0 ? errno : 0;
    if (!retry_after(error, retries)) return not_sent(record, refusal(error, retries));
  }
}

void NicWriter::send_messages() {
  // The messages point into the caller's batch: none stays queued, even when this throws.
  const size_t queued = std::exchange(queued_messages_, 0);
  size_t done = 0;
  int retries = 0;
  while (done < queued) {
    // sendmmsg() stops at the first frame that fails; when frames before it went out it says how
    // many, and the next call meets the failure again.
    const int n = ::sendmmsg(socket_, messages_.data() + done, static_cast<unsigned>(queued - done), 0);
    if (n > 0) {
      for (size_t i = done; i < done + static_cast<size_t>(n); ++i) {
        if (messages_[i].msg_len == iovecs_[i].iov_len) count_sent(iovecs_[i].iov_len);
        else not_sent(message_records_[i], refusal(0, 0));
      }
      done += static_cast<size_t>(n);
      retries = 0;
      continue;
    }
    const int error = n < 0 ? errno : 0;
    if (retry_after(error, retries)) continue;
    not_sent(message_records_[done], refusal(error, retries));
    ++done;
    retries = 0;
  }
}

// The ring's frames go out in order; the kernel hands each slot back (TP_STATUS_AVAILABLE) once
// the frame has left, or marks it TP_STATUS_WRONG_FORMAT and stops there when it refuses it. A
// frame it could not send for now (ENOBUFS) stays TP_STATUS_SEND_REQUEST at the head and goes
// again at the next send(), which (without MSG_DONTWAIT) also waits for the frames in flight.
void NicWriter::send_ring() {
  int retries = 0;
  try {
    while (ring_.queued > 0) {
      const ssize_t result = ::send(socket_, nullptr, 0, 0);
      const int error = result < 0 ? errno : 0;
      bool progress = false;
      while (ring_.queued > 0 && ring_status(ring_slot(0)) == TP_STATUS_AVAILABLE) {
        count_sent(ring_.sizes[ring_.head]);
        ring_.head = (ring_.head + 1) % ring_.slots;
        --ring_.queued;
        progress = true;
      }
      if (progress) retries = 0;
      // The first frame the kernel has not taken, past those still in flight.
      size_t next = 0;
      while (next < ring_.queued) {
        const uint32_t status = ring_status(ring_slot(next));
        if (status != TP_STATUS_AVAILABLE && status != TP_STATUS_SENDING) break;
        ++next;
      }
      if (next == ring_.queued) continue;  // all taken: the next send() waits for them
      if (ring_status(ring_slot(next)) == TP_STATUS_WRONG_FORMAT) {
        not_sent(ring_.records[(ring_.head + next) % ring_.slots], "the kernel refused it (wrong format)");
        drop_ring_frame(next);
        retries = 0;
        continue;
      }
      if (error == 0 && (progress || next > 0)) continue;
      // Refused for now (or, with no error, not taken at all: treated as a full buffer).
      if (retry_after(error ? error : EAGAIN, retries)) continue;
      not_sent(ring_.records[(ring_.head + next) % ring_.slots], refusal(error ? error : EAGAIN, retries));
      drop_ring_frame(next);
      retries = 0;
    }
  } catch (...) {
    // The frames not yet taken are not sent (as inject sends nothing after the failing frame):
    // hand their slots back so that the next frame lands where the kernel looks next.
    size_t next = 0;
    while (next < ring_.queued && ring_status(ring_slot(next)) != TP_STATUS_SEND_REQUEST &&
           ring_status(ring_slot(next)) != TP_STATUS_WRONG_FORMAT)
      ++next;
    for (size_t i = next; i < ring_.queued; ++i) set_ring_status(ring_slot(i), TP_STATUS_AVAILABLE);
    ring_.queued = next;
    throw;
  }
}

// Removes the queued frame `index` (one the kernel has not taken) without sending it: the frames
// after it move up one slot, so that the kernel, which looks at that slot next, finds the next frame.
void NicWriter::drop_ring_frame(size_t index) {
  for (size_t i = index; i + 1 < ring_.queued; ++i) {
    std::byte* to = ring_slot(i);
    std::byte* from = ring_slot(i + 1);
    const uint32_t length = ring_header(from)->tp_len;
    std::memcpy(to + ring_data_offset, from + ring_data_offset, length);
    ring_header(to)->tp_len = length;
    ring_.sizes[(ring_.head + i) % ring_.slots] = ring_.sizes[(ring_.head + i + 1) % ring_.slots];
    ring_.records[(ring_.head + i) % ring_.slots] = ring_.records[(ring_.head + i + 1) % ring_.slots];
    set_ring_status(to, TP_STATUS_SEND_REQUEST);
  }
  set_ring_status(ring_slot(ring_.queued - 1), TP_STATUS_AVAILABLE);
  --ring_.queued;
}

void NicWriter::close() {
  if (handle_) {
    pcap_close(handle_);
    handle_ = nullptr;
  }
  close_ring();
  if (socket_ >= 0) {
    ::close(socket_);
    socket_ = -1;
  }
  if (ioctl_fd_ >= 0) {
    ::close(ioctl_fd_);
    ioctl_fd_ = -1;
  }
}

void NicWriter::add_stats(Stats& stats) const {
  stats.nic = NicSummary{nic_stats_.sent, nic_stats_.failed, nic_stats_.retried};
}

// ---- the stage ---------------------------------------------------------------------------------

NicStage::NicStage()
    : SinkStage({"nic", StageKind::sink,
                 "Sends every packet onto a network interface, one frame per packet, in order (needs "
                 "CAP_NET_RAW). Full socket buffers (ENOBUFS, EAGAIN) are retried, not dropped. A frame that cannot be "
                 "sent (longer than the interface MTU plus its link header unless `truncate=true`, shorter than the "
                 "link header, refused by the kernel) is named in a warning and the run exits 1, or stops the run "
                 "with `on_error=stop`. "
                 "`method=` only changes the cost per frame: `ring` is the fastest at top speed.",
                 {
                     {"interface", ParamType::string, "", "interface to send on, e.g. `eth1`", {}, true, true},
                     {"truncate", ParamType::boolean, "false", "cut frames over the MTU to fit instead of failing"},
                     {"retries", ParamType::integer, "1000", "send attempts per frame while the socket buffer is full"},
                     {"method", ParamType::choice, "inject",
                      "how frames reach the kernel: `inject` (pcap_inject, a system call per frame), `mmsg` "
                      "(sendmmsg on a packet socket, up to 1024 frames per call), `ring` (a PACKET_TX_RING: "
                      "frames are copied into a ring shared with the kernel, one call sends them all). All keep "
                      "the qdisc: shaping and captures on the interface see every frame",
                      {"inject", "mmsg", "ring"}},
                     {"on_error", ParamType::choice, "warn",
                      "a frame that cannot be sent: `warn` (skip it with a warning naming its record; the run goes on "
                      "and exits 1) or `stop` (an error that ends the run)",
                      {"warn", "stop"}},
                 }}) {}

void NicStage::check(const Node& node) const {
  const Value& retries = param(node, "retries");
  check_range(retries, "retries", 0, INT32_MAX);
}

void NicStage::verify(const Node& node) const {
  const std::string& name = param(node, "interface").text;
  if (::if_nametoindex(name.c_str()) == 0) throw std::runtime_error(fmt::format("nic {}: no such interface", name));
}

std::unique_ptr<Sink> NicStage::open(const Node& node, const SinkContext& context) const {
  NicOptions options;
  options.truncate_to_mtu = param(node, "truncate").boolean;
  options.max_retries = static_cast<int>(param(node, "retries").integer);
  options.method = nic_method_from_string(param(node, "method").text).value_or(NicMethod::inject);
  options.on_error = param(node, "on_error").text == "stop" ? NicOnError::stop : NicOnError::warn;
  options.report = context.report;
  options.names = context.names;
  const auto& interface = param(node, "interface").text;
  auto writer = std::make_unique<NicWriter>(interface, options);
  if (writer->linktype() != context.linktype)
    throw std::runtime_error(fmt::format("nic {}: the interface speaks {} ({}), but the output is {} ({})", interface,
                                         pcap::linktype_name(writer->linktype()), writer->linktype(),
                                         pcap::linktype_name(context.linktype), context.linktype));
  return writer;
}

}  // namespace vei

VEI_STAGE(nic, vei::NicStage)
