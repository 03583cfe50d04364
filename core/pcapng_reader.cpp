#include "core/pcapng_reader.h"

#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <cstring>
#include <fmt/format.h>
#include <stdexcept>

#include "core/input_fd.h"
#include "core/pcapng_format.h"

namespace vei {

namespace {

__extension__ typedef __int128 int128;

using pcap::load32;
using pcapng::load16;
using pcapng::load64;

// How a section's interface turns its 64-bit time stamps into nanoseconds.
struct Clock {
  uint16_t global = 0;        // its index in SourceInfo::interfaces
  uint32_t snaplen = 0;       // as its IDB says (0: no limit)
  uint64_t units = 1'000'000;  // per second: if_tsresol 10^n or 2^n, microseconds without one
  uint64_t ns_per_unit = 1000;  // when a whole number (10^n, n <= 9), else 0
  int64_t offset_s = 0;        // if_tsoffset
};

// What a packet block says, in the section's byte order.
struct Packet {
  uint32_t iface = 0;  // in the section
  uint64_t time = 0;
  uint32_t caplen = 0;
  uint32_t len = 0;
  uint32_t data_at = 0;  // from the block's start
};

// The nanoseconds libpcap gives (seconds and fractions apart, the fraction truncated), without its
// overflows. A time beyond int64 nanoseconds saturates to INT64_MIN or INT64_MAX, which admit() drops.
int64_t to_ns(const Clock& c, uint64_t time) {
  const int128 offset = int128{c.offset_s} * pcap::ns_per_s;
  const int128 ns = c.ns_per_unit ? int128{time} * c.ns_per_unit + offset
                                  : int128{time / c.units} * pcap::ns_per_s + offset +
                                        int128{time % c.units} * pcap::ns_per_s / c.units;
  if (ns >= INT64_MAX) return INT64_MAX;
  if (ns <= INT64_MIN) return INT64_MIN;
  return static_cast<int64_t>(ns);
}

// A packet block's comments and flags (opt_comment, epb_flags) re-encoded in this host's byte
// order into `out`, as a pcapng output writes them; other options are not carried. Stops at an
// option that runs past the block: the packet keeps what came before it.
void carried_options(const std::byte* p, const std::byte* end, bool swapped, std::vector<std::byte>& out) {
  out.clear();
  while (end - p >= 4) {
    const uint16_t code = load16(p, swapped);
    const uint16_t size = load16(p + 2, swapped);
    p += 4;
    if (code == pcapng::option::end || static_cast<size_t>(end - p) < pcapng::pad4(size)) break;
    if (code == pcapng::option::comment || (code == pcapng::option::epb_flags && size == 4)) {
      const size_t at = out.size();
      out.resize(at + 4 + pcapng::pad4(size));
      std::memcpy(out.data() + at, &code, 2);
      std::memcpy(out.data() + at + 2, &size, 2);
      if (code == pcapng::option::comment) {
        std::memcpy(out.data() + at + 4, p, size);
      } else {
        const uint32_t flags = load32(p, swapped);
        std::memcpy(out.data() + at + 4, &flags, 4);
      }
    }
    p += pcapng::pad4(size);
  }
}

bool same(const Interface& a, const Interface& b) {
  return a.linktype == b.linktype && a.snaplen == b.snaplen && a.name == b.name && a.description == b.description;
}

// An option's text up to its first NUL (writers may count a terminator).
std::string option_text(const std::byte* p, size_t n) {
  const auto* c = reinterpret_cast<const char*>(p);
  return {c, static_cast<size_t>(std::find(c, c + n, '\0') - c)};
}

// Reads an IDB's fields and options; returns what is wrong with it, empty when nothing is.
std::string parse_idb(const std::byte* b, uint32_t length, bool swapped, Interface& iface, Clock& clock) {
  if (length < pcapng::interface_description_fixed + pcapng::block_trailer)
    return fmt::format("Interface Description Block of {} bytes, shorter than its fixed fields", length);
  iface.linktype = load16(b + 8, swapped);
  iface.snaplen = clock.snaplen = load32(b + 12, swapped);
  const std::byte* p = b + pcapng::interface_description_fixed;
  const std::byte* end = b + length - pcapng::block_trailer;
  while (end - p >= 4) {
    const uint16_t code = load16(p, swapped);
    const uint16_t size = load16(p + 2, swapped);
    p += 4;
    if (static_cast<size_t>(end - p) < pcapng::pad4(size))
      return fmt::format("Interface Description Block option {} of {} bytes runs past the block", code, size);
    if (code == pcapng::option::end) break;
    switch (code) {
      case pcapng::option::if_name: iface.name = option_text(p, size); break;
      case pcapng::option::if_description: iface.description = option_text(p, size); break;
      case pcapng::option::if_tsresol: {
        if (size != 1) return fmt::format("if_tsresol of {} bytes, not 1", size);
        const auto v = static_cast<uint8_t>(p[0]);
        const unsigned n = v & 0x7fu;
        // libpcap's limits: the unit must fit in 64 bits.
        if (v & 0x80u) {
          if (n > 63) return fmt::format("if_tsresol 2^-{} is finer than 64 bits hold", n);
          clock.units = uint64_t{1} << n;
        } else {
          if (v > 19) return fmt::format("if_tsresol 10^-{} is finer than 64 bits hold", v);
          clock.units = 1;
          for (unsigned i = 0; i < v; ++i) clock.units *= 10;
        }
        break;
      }
      case pcapng::option::if_tsoffset:
        if (size != 8) return fmt::format("if_tsoffset of {} bytes, not 8", size);
        clock.offset_s = static_cast<int64_t>(load64(p, swapped));
        break;
      default: break;
    }
    p += pcapng::pad4(size);
  }
  clock.ns_per_unit = 1'000'000'000u % clock.units == 0 ? 1'000'000'000u / clock.units : 0;
  return {};
}

class PcapngReader final : public TimelineSource {
 public:
  PcapngReader(int fd, std::vector<std::byte> prefix, SourceOptions options);
  ~PcapngReader() override {
    if (in_.fd > 0) ::close(in_.fd);
  }

  void fill(Batch& batch) override;
  // Not a stream: a read ahead could wait there for bytes the run no longer wants.
  bool splits_reading() const override { return !in_.stream; }
  void read_raw(Batch& raw) override { in_.read(raw, options_.interrupt, options_.name); }
  void parse_raw(Batch& batch) override;
  void end_reading() override { in_.ended = true; }

 private:
  // What a walk through the blocks does: list the interfaces described before the first packet
  // (and stop there), or deliver packets.
  enum class Pass { interfaces, read };

  void list_interfaces(std::vector<std::byte> prefix);
  // Parses what read_raw() brought into `batch`; at the end of the input, or of what may be read,
  // sets done_ (and damage_ when the input is cut short).
  void parse_batch(Batch& batch, Pass pass);
  // Walks the whole blocks in [begin, end) of batch's arena (in_.offset is begin's place in the
  // input); returns the bytes they take. Stops at damage (damage_ set, naming the block), at a
  // packet in Pass::interfaces, or once the window closes. Sets `in_.incomplete` to the size of
  // the block cut off at the end, when its header says it.
  size_t parse(Batch& batch, size_t begin, size_t end, Pass pass);
  std::string section_header(const std::byte* b, uint32_t length, bool swapped);
  std::string interface_description(const std::byte* b, uint32_t length, Pass pass);
  // Why a new interface cannot join those before it, or nothing.
  std::string refused(const Interface& iface, Pass pass) const;
  std::string packet_fields(uint32_t type, const std::byte* b, uint32_t length, Packet& p) const;
  std::string damage_at(uint64_t offset, std::string_view what) const;
  std::string truncated() const;

  InPlaceInput in_;
  bool swapped_ = false;       // the current section's byte order is not this host's
  std::vector<Clock> section_;  // the current section's interfaces
  std::vector<Interface> known_;  // every interface met so far, by Record::iface
  std::vector<std::byte> options_buffer_;  // a packet's carried options (carried_options)
  uint64_t block_ = 0;          // blocks walked: the index of the next
  uint64_t packets_ = 0;        // packet blocks walked: the next one's record number
  std::string damage_;  // why reading stops before the input's end
  bool at_packet_ = false;  // Pass::interfaces reached the first packet
  bool done_ = false;
};

PcapngReader::PcapngReader(int fd, std::vector<std::byte> prefix, SourceOptions options)
    : TimelineSource(std::move(options)) {
  in_.fd = fd;
  in_.stream = is_stream(fd);
  info_.precision = pcap::Precision::ns;
  info_.pcapng = true;
  if (!options_.interfaces) options_.interfaces = std::make_shared<InterfaceList>();
  try {
    list_interfaces(std::move(prefix));
  } catch (...) {
    if (in_.fd > 0) ::close(in_.fd);
    in_.fd = -1;
    throw;
  }
  ::posix_fadvise(in_.fd, 0, 0, POSIX_FADV_SEQUENTIAL);
}

// Reading a whole file first to list every interface cost as much as reading its packets: those
// described later are added as they come (Pass::read), and the output learns of them through
// options_.interfaces. What was read up to the first packet stays in in_.carry.
void PcapngReader::list_interfaces(std::vector<std::byte> prefix) {
  in_.carry = std::move(prefix);
  Batch scratch;
  scratch.reserve_arena(std::min<size_t>(default_arena_size, 64 * 1024));
  while (!done_ && !at_packet_) {
    read_raw(scratch);
    parse_batch(scratch, Pass::interfaces);
  }
  at_packet_ = false;
  if (info_.interfaces.empty()) {
    const std::string why = damage_.empty() ? "no Interface Description Block: no packet can be read" : damage_;
    throw std::runtime_error(fmt::format("{}: {}", options_.name, why));
  }
  const Interface& first = info_.interfaces.front();
  info_.linktype = first.linktype;
  info_.snaplen = first.snaplen == 0 ? pcap::max_snaplen : first.snaplen;
  for (const Interface& i : info_.interfaces)
    if (i.linktype != first.linktype && !options_.filter.empty())
      throw std::runtime_error(fmt::format(
          "{}: filter= cannot apply to a capture of several link types ({} and {}): a BPF program reads one; "
          "filter after converting, or with a filter stage on each part",
          options_.name, pcap::linktype_name(first.linktype), pcap::linktype_name(i.linktype)));
}

std::string PcapngReader::damage_at(uint64_t offset, std::string_view what) const {
  return fmt::format("block {} (record {}) at byte offset {}: {}; the {} record(s) before it are kept, the rest of "
                     "the input is ignored",
                     block_, packets_, offset, what, packets_);
}

std::string PcapngReader::truncated() const {
  const std::string where = fmt::format("truncated: block {} (record {}) at byte offset {}", block_, packets_,
                                        in_.offset);
  const std::string what = in_.incomplete == 0
                               ? fmt::format("has only {} of its block header bytes", in_.carry.size())
                               : fmt::format("promises {} bytes, only {} remain", in_.incomplete, in_.carry.size());
  return fmt::format("{} {}; the {} whole record(s) before it are kept", where, what, packets_);
}

std::string PcapngReader::section_header(const std::byte* b, uint32_t length, bool swapped) {
  if (length < pcapng::section_header_fixed + pcapng::block_trailer)
    return fmt::format("Section Header Block of {} bytes, shorter than its fixed fields", length);
  const uint16_t major = load16(b + 12, swapped);
  const uint16_t minor = load16(b + 14, swapped);
  if (!pcapng::readable_version(major, minor))
    return fmt::format("unsupported pcapng version {}.{} (1.0 is read, and 1.2 as libpcap does)", major, minor);
  swapped_ = swapped;
  section_.clear();
  return {};
}

std::string PcapngReader::interface_description(const std::byte* b, uint32_t length, Pass pass) {
  Interface iface;
  Clock clock;
  if (auto error = parse_idb(b, length, swapped_, iface, clock); !error.empty()) return error;
  // A later section describing an interface again (a capture appended to another) names the one
  // already met; within a section, each IDB is an interface of its own.
  const auto taken = [&](size_t k) {
    return std::ranges::any_of(section_, [&](const Clock& c) { return c.global == k; });
  };
  size_t k = 0;
  while (k < known_.size() && (!same(known_[k], iface) || taken(k))) ++k;
  if (k == known_.size()) {
    if (auto why = refused(iface, pass); !why.empty()) return why;
    if (known_.empty()) info_.swapped = swapped_;
    known_.push_back(iface);
    if (pass == Pass::interfaces) info_.interfaces.push_back(iface);
    options_.interfaces->add(k, iface);
  }
  clock.global = static_cast<uint16_t>(k);
  section_.push_back(clock);
  return {};
}

std::string PcapngReader::refused(const Interface& iface, Pass pass) const {
  if (known_.size() > UINT16_MAX) return fmt::format("more than {} interfaces", UINT16_MAX + 1);
  if (pass == Pass::interfaces || iface.linktype == info_.linktype) return {};
  const auto what = fmt::format("an interface of link type {} ({}) described after the first packet, unlike the first "
                                "interface's {}",
                                pcap::linktype_name(iface.linktype), iface.linktype, pcap::linktype_name(info_.linktype));
  if (!options_.filter.empty()) return what + ": filter= reads one link type; filter after converting";
  if (options_.one_linktype)
    return what + ": the run reads one link type from this source; write pcapng (`file(out.pcapng)`), where each "
                  "interface keeps its own, with no transform after the merge";
  return {};
}

std::string PcapngReader::packet_fields(uint32_t type, const std::byte* b, uint32_t length, Packet& p) const {
  if (type == pcapng::block::simple_packet) {
    if (length < pcapng::simple_packet_fixed + pcapng::block_trailer)
      return fmt::format("Simple Packet Block of {} bytes, shorter than its fixed fields", length);
    // No time and no captured length: the section's first interface, time 0 as libpcap gives it,
    // and as many bytes as the packet, the snaplen and the block allow.
    p.len = load32(b + 8, swapped_);
    p.data_at = pcapng::simple_packet_fixed;
    if (section_.empty()) return "a Simple Packet Block in a section without Interface Description Block";
    const uint32_t snaplen = section_[0].snaplen == 0 ? UINT32_MAX : section_[0].snaplen;
    p.caplen = std::min({p.len, snaplen, static_cast<uint32_t>(length - p.data_at - pcapng::block_trailer)});
    return {};
  }
  static_assert(pcapng::packet_fixed == pcapng::enhanced_packet_fixed);
  if (length < pcapng::enhanced_packet_fixed + pcapng::block_trailer)
    return fmt::format("packet block of {} bytes, shorter than its fixed fields", length);
  p.iface = type == pcapng::block::packet ? load16(b + 8, swapped_) : load32(b + 8, swapped_);
  p.time = uint64_t{load32(b + 12, swapped_)} << 32 | load32(b + 16, swapped_);
  p.caplen = load32(b + 20, swapped_);
  p.len = load32(b + 24, swapped_);
  p.data_at = pcapng::enhanced_packet_fixed;
  const size_t room = length - p.data_at - pcapng::block_trailer;
  if (p.caplen > room) return fmt::format("caplen {} exceeds the {} bytes its block holds", p.caplen, room);
  if (p.iface >= section_.size())
    return fmt::format("a packet of interface {}, but its section describes {} interface(s)", p.iface,
                       section_.size());
  return {};
}

size_t PcapngReader::parse(Batch& batch, size_t begin, size_t end, Pass pass) {
  std::byte* data = batch.data();
  size_t pos = begin;
  size_t out = begin;  // where the next delivered record goes: at or before `pos`, so never over unread bytes
  in_.incomplete = 0;
  while (end - pos >= pcapng::block_header) {
    std::byte* b = data + pos;
    const uint64_t offset = in_.offset + (pos - begin);
    const uint32_t raw_type = load32(b, false);
    bool swapped = swapped_;
    if (raw_type == pcapng::block::section_header) {
      // The section's byte order decides how its own length reads.
      if (end - pos < 12) break;
      const uint32_t magic = load32(b + 8, false);
      if (magic != pcapng::byte_order_magic && magic != pcap::bswap(pcapng::byte_order_magic)) {
        damage_ = damage_at(offset, fmt::format("Section Header Block with byte-order magic {:#010x}", magic));
        break;
      }
      swapped = magic != pcapng::byte_order_magic;
    }
    const uint32_t type = swapped ? pcap::bswap(raw_type) : raw_type;
    const uint32_t length = load32(b + 4, swapped);
    if (length < pcapng::smallest_block || length % 4 != 0 || length > pcapng::max_block_size) {
      damage_ = damage_at(offset, fmt::format("corrupt block length {} (type {:#x}): a multiple of 4 from {} to {}",
                                              length, type, pcapng::smallest_block, pcapng::max_block_size));
      break;
    }
    if (end - pos < length) {
      in_.incomplete = length;
      break;
    }
    if (const uint32_t trailer = load32(b + length - pcapng::block_trailer, swapped); trailer != length) {
      damage_ = damage_at(offset, fmt::format("block length {} in its header, {} in its trailer", length, trailer));
      break;
    }
    std::string error;
    if (type == pcapng::block::section_header) {
      error = section_header(b, length, swapped);
    } else if (type == pcapng::block::interface_description) {
      error = interface_description(b, length, pass);
    } else if (type == pcapng::block::enhanced_packet || type == pcapng::block::simple_packet ||
               type == pcapng::block::packet) {
      Packet p;
      error = packet_fields(type, b, length, p);
      if (error.empty()) {
        const Clock& clock = section_[p.iface];
        const int64_t ts = to_ns(clock, p.time);
        if (pass == Pass::interfaces) {
          if (ts != INT64_MIN && ts != INT64_MAX) info_.first_ts_ns = ts;
          at_packet_ = true;
          break;
        } else {
          // The packet moves down behind a record header: the batch's records lie back to back.
          std::byte* at = data + out;
          std::memmove(at + record_header_size, b + p.data_at, p.caplen);
          bool time_kept = true;
          // Its options lie past the packet's old place, which the move above never reaches.
          const std::byte* options = b + p.data_at + pcapng::pad4(p.caplen);
          const std::byte* options_end = b + length - pcapng::block_trailer;
          if (admit(batch, static_cast<uint32_t>(out), ts, p.caplen, p.len, time_kept)) {
            Record& r = batch.records.back();
            r.iface = clock.global;
            if (options < options_end && type != pcapng::block::simple_packet) {
              carried_options(options, options_end, swapped_, options_buffer_);
              if (!options_buffer_.empty()) batch.annotate(batch.records.size() - 1, options_buffer_);
            }
            pcap::write_record_header(at, r.ts_ns, output_precision_, p.caplen, p.len);
            out += record_header_size + p.caplen;
          }
        }
      }
      if (error.empty()) ++packets_;
    }
    if (!error.empty()) {
      damage_ = damage_at(offset, error);
      break;
    }
    ++block_;
    pos += length;
    if (pass == Pass::read && window_closed()) [[unlikely]] {
      done_ = true;
      break;
    }
  }
  if (pass == Pass::read) batch.used = out;
  return pos - begin;
}

void PcapngReader::parse_batch(Batch& batch, Pass pass) {
  if (!done_) in_.parse(batch, [&](size_t begin, size_t end) { return parse(batch, begin, end, pass); });
  if (!damage_.empty()) {
    done_ = true;
  } else if (batch.raw.ended && !done_ && !at_packet_) {
    // Stopped while a stream was still to deliver: what did not come is not damage.
    if (!in_.carry.empty() && !batch.raw.interrupted) damage_ = truncated();
    done_ = true;
  }
}

void PcapngReader::fill(Batch& batch) {
  read_raw(batch);
  parse_raw(batch);
}

void PcapngReader::parse_raw(Batch& batch) {
  batch.source = options_.rank;
  parse_batch(batch, Pass::read);
  batch.raw_is_output = true;
  if (done_) {
    if (!damage_.empty()) options_.report->damaged(fmt::format("{}: {}", options_.name, damage_));
    damage_.clear();
    end_reading();
    batch.last = true;
    finish();
  }
}

}  // namespace

std::unique_ptr<TimelineSource> open_pcapng(int fd, std::vector<std::byte> prefix, SourceOptions options) {
  return std::make_unique<PcapngReader>(fd, std::move(prefix), std::move(options));
}

}  // namespace vei
