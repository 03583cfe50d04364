// pcapng framing (draft-ietf-opsawg-pcapng): the block types and option codes veipipe reads and
// writes, shared by the reader (core/pcapng_reader.h) and the writer. Every block is
// {type, total length, body padded to 4 bytes, total length again}; options are
// {code, length, value padded to 4 bytes}, ended by opt_endofopt.
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstring>

namespace vei::pcapng {

namespace block {
inline constexpr uint32_t section_header = 0x0a0d0d0a;  // the same bytes in either byte order
inline constexpr uint32_t interface_description = 1;
inline constexpr uint32_t packet = 2;  // obsolete, still read
inline constexpr uint32_t simple_packet = 3;
inline constexpr uint32_t name_resolution = 4;
inline constexpr uint32_t interface_statistics = 5;
inline constexpr uint32_t enhanced_packet = 6;
inline constexpr uint32_t decryption_secrets = 10;
}  // namespace block

// The Section Header Block's byte-order magic, as the writer's byte order stores it.
inline constexpr uint32_t byte_order_magic = 0x1a2b3c4d;
// The version written, 1.0.
inline constexpr uint16_t version_major = 1;
inline constexpr uint16_t version_minor = 0;
// The section length when the writer does not say it (a stream cannot go back to fill it in).
inline constexpr int64_t section_length_unknown = -1;
// if_tsresol's value for nanoseconds (a power of 10); without the option, microseconds.
inline constexpr uint8_t tsresol_ns = 9;

// Fixed parts, before the options: block type and length (8), then the block's own fields.
inline constexpr size_t section_header_fixed = 8 + 4 + 2 + 2 + 8;      // magic, version, section length
inline constexpr size_t interface_description_fixed = 8 + 2 + 2 + 4;   // linktype, reserved, snaplen
inline constexpr size_t enhanced_packet_fixed = 8 + 4 + 4 + 4 + 4 + 4;  // interface, ts high/low, caplen, len
inline constexpr size_t packet_fixed = 8 + 2 + 2 + 4 + 4 + 4 + 4;       // interface, drops, ts high/low, caplen, len
inline constexpr size_t simple_packet_fixed = 8 + 4;                    // original length
inline constexpr size_t block_trailer = 4;                              // the total length, again
inline constexpr size_t block_header = 8;                               // type, total length
inline constexpr size_t smallest_block = block_header + block_trailer;

// The longest block read: an EPB holding 64 MiB of packet (pcap::record_limit's largest) and
// 128 KiB of options, libpcap's MAX_BLOCKSIZE_FOR_SNAPLEN. A longer one is taken for damage, so a
// corrupt length cannot make a reader hold gigabytes.
inline constexpr size_t max_block_size = enhanced_packet_fixed + (size_t{64} << 20) + 128 * 1024 + block_trailer;

// Section Header Block versions libpcap 1.10 reads (1.2 is written by some tools, and is 1.0).
constexpr bool readable_version(uint16_t major, uint16_t minor) {
  return major == version_major && (minor == 0 || minor == 2);
}

namespace option {
inline constexpr uint16_t end = 0;
inline constexpr uint16_t comment = 1;  // in every block
// Section Header Block
inline constexpr uint16_t shb_hardware = 2;
inline constexpr uint16_t shb_os = 3;
inline constexpr uint16_t shb_userappl = 4;
// Interface Description Block
inline constexpr uint16_t if_name = 2;
inline constexpr uint16_t if_description = 3;
inline constexpr uint16_t if_tsresol = 9;
inline constexpr uint16_t if_tsoffset = 14;
// Enhanced Packet Block
inline constexpr uint16_t epb_flags = 2;
inline constexpr uint16_t epb_hash = 3;
inline constexpr uint16_t epb_dropcount = 4;
}  // namespace option

// Bodies and option values are padded to a multiple of 4 bytes.
constexpr size_t pad4(size_t n) { return (n + 3) & ~size_t{3}; }

// Fields in a section's byte order (pcap::load32 for 32 bits).
inline uint16_t load16(const std::byte* p, bool swapped) {
  uint16_t v;
  std::memcpy(&v, p, 2);
  return swapped ? __builtin_bswap16(v) : v;
}
inline uint64_t load64(const std::byte* p, bool swapped) {
  uint64_t v;
  std::memcpy(&v, p, 8);
  return swapped ? __builtin_bswap64(v) : v;
}

}  // namespace vei::pcapng
