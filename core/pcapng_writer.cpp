#include "core/pcapng_writer.h"

#include <cstring>

#include "core/pcapng_format.h"

namespace vei {

namespace {

// Appends blocks in native byte order, as libpcap and Wireshark write them.
class BlockBuilder {
 public:
  explicit BlockBuilder(std::vector<std::byte>& out, uint32_t type) : out_(out), start_(out.size()) {
    u32(type);
    u32(0);  // the total length, known at finish()
  }
  void u16(uint16_t v) { put(&v, 2); }
  void u32(uint32_t v) { put(&v, 4); }
  void u64(uint64_t v) { put(&v, 8); }
  void option(uint16_t code, std::string_view value) {
    if (value.empty()) return;
    u16(code);
    u16(static_cast<uint16_t>(value.size()));
    put(value.data(), value.size());
    out_.resize(start_ + pcapng::pad4(out_.size() - start_));
    has_options_ = true;
  }
  void finish() {
    if (has_options_) u32(pcapng::option::end);  // code and length 0
    const auto total = static_cast<uint32_t>(out_.size() - start_ + pcapng::block_trailer);
    u32(total);
    std::memcpy(out_.data() + start_ + 4, &total, 4);
  }

 private:
  void put(const void* p, size_t n) {
    const auto* b = static_cast<const std::byte*>(p);
    out_.insert(out_.end(), b, b + n);
  }
  std::vector<std::byte>& out_;
  size_t start_;
  bool has_options_ = false;
};

inline std::byte* put32(std::byte* p, uint32_t v) {
  std::memcpy(p, &v, 4);
  return p + 4;
}

inline std::byte* put16(std::byte* p, uint16_t v) {
  std::memcpy(p, &v, 2);
  return p + 2;
}

// An option's size in an EPB: code, length and the value padded; none for an empty value.
size_t option_size(const std::string& value) { return value.empty() ? 0 : 4 + pcapng::pad4(value.size()); }

}  // namespace

PcapngEncoder::PcapngEncoder(pcap::Precision precision, std::vector<std::vector<Interface>> interfaces,
                             std::string_view application, LateInterface late)
    : precision_(precision), late_(std::move(late)) {
  BlockBuilder shb(header_, pcapng::block::section_header);
  shb.u32(pcapng::byte_order_magic);
  shb.u16(pcapng::version_major);
  shb.u16(pcapng::version_minor);
  shb.u64(static_cast<uint64_t>(pcapng::section_length_unknown));
  shb.option(pcapng::option::shb_userappl, application);
  shb.finish();
  for (const auto& source : interfaces) {
    auto& ids = ids_.emplace_back();
    for (const auto& i : source) {
      ids.push_back(static_cast<uint32_t>(linktypes_.size()));
      describe(header_, i);
    }
  }
}

void PcapngEncoder::describe(std::vector<std::byte>& out, const Interface& i) {
  linktypes_.push_back(i.linktype);
  BlockBuilder idb(out, pcapng::block::interface_description);
  idb.u16(static_cast<uint16_t>(i.linktype));
  idb.u16(0);
  idb.u32(i.snaplen);
  idb.option(pcapng::option::if_name, i.name);
  idb.option(pcapng::option::if_description, i.description);
  const char tsresol = static_cast<char>(pcapng::tsresol_ns);
  if (precision_ == pcap::Precision::ns) idb.option(pcapng::option::if_tsresol, {&tsresol, 1});
  idb.finish();
}

uint32_t PcapngEncoder::add_late(const Record& r) {
  auto& ids = ids_[r.source];
  while (ids.size() <= r.iface) {
    ids.push_back(static_cast<uint32_t>(linktypes_.size()));
    describe(pending_, late_(r.source, static_cast<uint16_t>(ids.size() - 1)));
  }
  return ids[r.iface];
}

std::span<iovec> PcapngEncoder::encode(const std::byte* arena, std::span<const Record> records,
                                       std::span<const std::string> comments, CarriedOptions carried) {
  const bool commented = !comments.empty();
  // What lies between the packets: a block's padding, options and trailer, then the next one's
  // fixed part; before them, the IDBs of interfaces met for the first time.
  size_t glue = 0;
  for (size_t i = 0; i < records.size(); ++i) {
    (void)id(records[i]);
    glue += pcapng::enhanced_packet_fixed + 3 + (commented ? option_size(comments[i]) + 4 : 0) + pcapng::block_trailer;
  }
  for (const Annotation& a : carried.list) glue += a.size + 4;
  glue += pending_.size();
  size_t next_carried = 0;
  if (glue > capacity_) {
    capacity_ = std::max(glue, 2 * capacity_);
    glue_ = std::make_unique_for_overwrite<std::byte[]>(capacity_);
  }
  iov_.clear();
  ends_.resize(records.size());
  const uint64_t per_tick = precision_ == pcap::Precision::ns ? 1 : 1000;  // nanoseconds
  std::byte* p = glue_.get();
  std::byte* from = p;  // the glue not yet in an iovec
  if (!pending_.empty()) std::memcpy(p, pending_.data(), pending_.size());
  p += pending_.size();
  size_t end = pending_.size();
  pending_.clear();
  for (size_t i = 0; i < records.size(); ++i) {
    const Record& r = records[i];
    const std::byte* header = arena + r.offset;
    // The time the pcap header holds (written from ts_ns, truncated to the output's precision),
    // taken from the Record: reading it from the arena missed the cache on every record and was
    // half of encode()'s time.
    const auto ts = static_cast<uint64_t>(r.ts_ns) / per_tick;
    const std::string* comment = commented && !comments[i].empty() ? &comments[i] : nullptr;
    std::span<const std::byte> kept;
    if (next_carried < carried.list.size() && carried.list[next_carried].index - carried.first == i) {
      const Annotation& a = carried.list[next_carried++];
      kept = {carried.bytes + a.at, a.size};
    }
    const bool options = comment || !kept.empty();
    const size_t padding = pcapng::pad4(r.caplen) - r.caplen;
    const auto total = static_cast<uint32_t>(pcapng::enhanced_packet_fixed + r.caplen + padding +
                                             (comment ? option_size(*comment) : 0) + kept.size() + (options ? 4 : 0) +
                                             pcapng::block_trailer);
    p = put32(p, pcapng::block::enhanced_packet);
    p = put32(p, total);
    p = put32(p, id(r));
    p = put32(p, static_cast<uint32_t>(ts >> 32));
    p = put32(p, static_cast<uint32_t>(ts));
    p = put32(p, r.caplen);
    p = put32(p, r.len);
    // The packet itself stays where the batch holds it.
    iov_.push_back({from, static_cast<size_t>(p - from)});
    iov_.push_back({const_cast<std::byte*>(header + record_header_size), r.caplen});
    from = p;
    std::memset(p, 0, padding);
    p += padding;
    if (comment) {
      p = put16(p, pcapng::option::comment);
      p = put16(p, static_cast<uint16_t>(comment->size()));
      std::memcpy(p, comment->data(), comment->size());
      std::memset(p + comment->size(), 0, pcapng::pad4(comment->size()) - comment->size());
      p += pcapng::pad4(comment->size());
    }
    if (!kept.empty()) std::memcpy(p, kept.data(), kept.size());
    p += kept.size();
    if (options) p = put32(p, pcapng::option::end);
    p = put32(p, total);
    end += total;
    ends_[i] = end;
  }
  if (p != from) iov_.push_back({from, static_cast<size_t>(p - from)});
  size_ = end;
  return iov_;
}

}  // namespace vei
