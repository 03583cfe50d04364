// pcapng encoding for the `file` sink (stages/file.h): the Section Header Block and one Interface
// Description Block per (source, interface) written once at the start, then every record of a
// batch as an Enhanced Packet Block. The file sink owns the descriptor and the guarantees of a
// write (one write() per batch, a failed one cut back to the last whole block); this only lays
// out bytes, so it cannot fail.
//
// Records reach it as the batches hold them: a classic pcap record header in the output's
// precision, then the packet. Each EPB's time is read from that header, so a pcapng output holds
// exactly the times the pcap output of the same run would (`editcap -F pcap` gives it back).
//
// Threads: one object per output, used by the output thread alone.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "core/batch.h"
#include "core/pcap_format.h"
#include "core/timeline_source.h"

namespace vei {

class PcapngEncoder {
 public:
  // `interfaces[rank]` lists source `rank`'s interfaces, indexed by Record::iface; each gets an
  // IDB, numbered in this order. `application` goes in shb_userappl.
  PcapngEncoder(pcap::Precision precision, std::vector<std::vector<Interface>> interfaces,
                std::string_view application);

  // The SHB and every IDB: what the file starts with.
  const std::vector<std::byte>& header() const { return header_; }
  // The link type of a record's interface.
  uint32_t linktype(const Record& r) const { return linktypes_[first_id_[r.source] + r.iface]; }
  // `records` (headers and bytes in `arena`) as EPBs, in a buffer valid until the next call.
  // `comments`: empty, or one per record (an empty one for none), written as opt_comment.
  std::span<const std::byte> encode(const std::byte* arena, std::span<const Record> records,
                                    std::span<const std::string> comments);
  // After encode(): where record i's block ends in what it returned.
  size_t end(size_t i) const { return ends_[i]; }

 private:
  pcap::Precision precision_;
  std::vector<uint32_t> first_id_;  // by rank: the IDB number of its first interface
  std::vector<uint32_t> linktypes_;  // by IDB number
  std::vector<std::byte> header_;
  // The encoded batch: a buffer of its own rather than a vector, which would zero every byte
  // before it is written over.
  std::unique_ptr<std::byte[]> out_;
  size_t capacity_ = 0;
  std::vector<size_t> ends_;
};

}  // namespace vei
