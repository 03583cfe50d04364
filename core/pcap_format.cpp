#include "core/pcap_format.h"

#include <fmt/format.h>
#include <pcap/pcap.h>

namespace vei::pcap {

std::string parse_file_header(const std::byte* p, FileHeader& out) {
  uint32_t magic;
  std::memcpy(&magic, p, 4);
  switch (magic) {
    case magic_us: out = {false, Precision::us}; break;
    case magic_ns: out = {false, Precision::ns}; break;
    case bswap(magic_us): out = {true, Precision::us}; break;
    case bswap(magic_ns): out = {true, Precision::ns}; break;
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
  // Same rule as libpcap: version 2.x, where x may be anything up to 4 (older minors share the layout).
  if (major != 2 || minor > 4) return fmt::format("unsupported pcap version {}.{}", major, minor);
  out.snaplen = load32(p + 16, out.swapped);
  out.linktype = load32(p + 20, out.swapped);
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
