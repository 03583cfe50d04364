#include "core/pcap_format.h"

#include <fmt/format.h>
#include <pcap/pcap.h>

namespace vei::pcap {

std::string parse_file_header(const std::byte* p, FileHeader& out) {
  uint32_t magic;
  std::memcpy(&magic, p, 4);
  out = {};
  out.swapped = magic == bswap(magic_us) || magic == bswap(magic_ns) || magic == bswap(magic_kuznetzov);
  if (out.swapped) magic = bswap(magic);
  switch (magic) {
    case magic_us: break;
    case magic_ns: out.precision = Precision::ns; break;
    case magic_kuznetzov: out.record_header_size = 24; break;
    default: return fmt::format("not a pcap or pcapng file (magic 0x{:08x})", magic);
  }
  uint16_t major, minor;
  std::memcpy(&major, p + 4, 2);
  std::memcpy(&minor, p + 6, 2);
  if (out.swapped) {
    major = bswap(major);
    minor = bswap(minor);
  }
  out.version_major = major;
  out.version_minor = minor;
  // The versions libpcap reads (sf-pcap.c): 2.0 to 2.4, and 543.0 from DG/UX's tcpdump, which
  // keeps the lengths in the pre-2.3 order.
  if (major < 2) return fmt::format("archaic pcap version {}.{}, not readable", major, minor);
  if (!((major == 2 && minor <= 4) || (major == 543 && minor == 0)))
    return fmt::format("unsupported pcap version {}.{}", major, minor);
  out.lengths = major == 543 || minor < 3 ? Lengths::exchanged
                : minor == 3              ? Lengths::exchanged_if_caplen_exceeds_len
                                          : Lengths::in_order;
  out.snaplen = load32(p + 16, out.swapped);
  out.linktype = load32(p + 20, out.swapped);
  // Kuznetsov's libpcap added a made-up Ethernet header to cooked captures after clipping them to
  // the snaplen: libpcap allows for those 14 bytes, and so do we.
  if (out.record_header_size == 24 && out.linktype == 1 && out.snaplen <= INT32_MAX - 14) out.snaplen += 14;
  return {};
}

void write_file_header(std::byte* p, Precision precision, uint32_t snaplen, uint32_t linktype) {
  const uint32_t magic = precision == Precision::ns ? magic_ns : magic_us;
  const uint16_t version[2] = {2, 4};
  const uint32_t zone_sigfigs[2] = {0, 0};
  std::memcpy(p, &magic, 4);
  std::memcpy(p + 4, version, 4);
  std::memcpy(p + 8, zone_sigfigs, 8);
  store32(p + 16, snaplen);
  store32(p + 20, linktype);
}

std::string linktype_name(uint32_t linktype) {
  // The upper bits of the field carry FCS information, not the link type (pcap-linktype(7)).
  const auto lt = static_cast<int>(linktype & 0x03FFFFFF);
  // LINKTYPE_RAW (101) is the one common type whose file value differs from its DLT value.
  if (const char* name = pcap_datalink_val_to_name(lt == 101 ? DLT_RAW : lt)) return name;
  return fmt::format("{}", linktype);
}

}  // namespace vei::pcap
