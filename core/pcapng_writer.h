// pcapng encoding for the `file` sink (stages/file.h): the Section Header Block and one Interface
// Description Block per (source, interface) known when the run starts, then every record of a
// batch as an Enhanced Packet Block. An interface a pcapng input describes after its first packet
// gets its IDB just before the batch whose record first names it (pcapng allows an IDB anywhere
// before its first use). The file sink owns the descriptor and the guarantees of a
// write (one writev() per batch where the system takes that many iovecs, a failed one cut back to
// the last whole block); this only lays out bytes, so it cannot fail.
//
// Zero copy: the packets are not copied. An EPB is {fixed fields, packet, padding, options,
// trailer}, so a batch is an iovec per packet in the batch's arena and one per run of fields
// between two packets. Measured on a 4 GiB IMIX trace (veigen --mix imix, 11.5 M packets) to
// /dev/null beside the pcap output of the same run, on a shared 2-core machine: copying every
// packet into one buffer gave 0.64x the pcap output's speed; these iovecs 0.88x-0.94x (medians of
// 5-7 runs each, the remaining cost being the iovecs themselves, in and out of the kernel).
//
// Records reach it as the batches hold them: a classic pcap record header in the output's
// precision, then the packet. Each EPB's time is the Record's, cut to the output's precision as
// that header is, so a pcapng output holds exactly the times the pcap output of the same run would
// (`editcap -F pcap` gives it back).
//
// Threads: one object per output, used by the output thread alone.
#pragma once

#include <sys/uio.h>

#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "core/batch.h"
#include "core/pcap_format.h"
#include "core/timeline_source.h"

namespace vei {

// Options a pcapng input gave some of the records (Batch::annotations): `list[k].index - first` is
// the record's place in what PcapngEncoder::encode() gets, its options in `bytes`.
struct CarriedOptions {
  std::span<const Annotation> list;
  const std::byte* bytes = nullptr;
  size_t first = 0;
};

class PcapngEncoder {
 public:
  // Interface `iface` of source `rank`, met in a record after those it was built with.
  using LateInterface = std::function<Interface(uint16_t rank, uint16_t iface)>;

  // `interfaces[rank]` lists source `rank`'s interfaces, indexed by Record::iface; each gets an
  // IDB, numbered in this order, and those `late` gives after them. `application` goes in
  // shb_userappl.
  PcapngEncoder(pcap::Precision precision, std::vector<std::vector<Interface>> interfaces,
                std::string_view application, LateInterface late = {});

  // The SHB and the first IDBs: what the file starts with.
  const std::vector<std::byte>& header() const { return header_; }
  // The link type of a record's interface.
  uint32_t linktype(const Record& r) { return linktypes_[id(r)]; }
  // `records` (headers and bytes in `arena`) as EPBs: iovecs pointing at the packets in the
  // arena, between them the blocks' own fields in a buffer of the encoder's, valid until the next
  // call. `comments`: empty, or one per record (an empty one for none), written as opt_comment,
  // before what `carried` gives the record.
  std::span<iovec> encode(const std::byte* arena, std::span<const Record> records,
                          std::span<const std::string> comments, CarriedOptions carried = {});
  // After encode(): the bytes it describes, and where record i's block ends in them.
  size_t size() const { return size_; }
  size_t end(size_t i) const { return ends_[i]; }

 private:
  // A record's IDB number.
  uint32_t id(const Record& r) {
    const auto& ids = ids_[r.source];
    return r.iface < ids.size() ? ids[r.iface] : add_late(r);
  }
  uint32_t add_late(const Record& r);
  void describe(std::vector<std::byte>& out, const Interface& i);

  pcap::Precision precision_;
  std::vector<std::vector<uint32_t>> ids_;  // by rank and Record::iface: the IDB number
  std::vector<uint32_t> linktypes_;  // by IDB number
  std::vector<std::byte> header_;
  LateInterface late_;
  std::vector<std::byte> pending_;  // IDBs of late interfaces, written before the next batch
  // Each block's fields: a buffer of its own rather than a vector, which would zero every byte
  // before it is written over.
  std::unique_ptr<std::byte[]> glue_;
  size_t capacity_ = 0;
  std::vector<iovec> iov_;
  size_t size_ = 0;
  std::vector<size_t> ends_;
};

}  // namespace vei
