// Classic pcap framing: the 24-byte file header and the 16-byte record header, both ways.
#pragma once

#include <cstdint>
#include <cstring>
#include <string>

namespace vei::pcap {

inline constexpr uint32_t magic_us = 0xa1b2c3d4;
inline constexpr uint32_t magic_ns = 0xa1b23c4d;
inline constexpr uint32_t magic_pcapng = 0x0a0d0d0a;
// Alexey Kuznetsov's patched libpcap: microseconds, and 8 more bytes in each record header
// (interface index, protocol, packet type) that readers skip.
inline constexpr uint32_t magic_kuznetzov = 0xa1b2cd34;
inline constexpr size_t file_header_size = 24;
// libpcap's MAXIMUM_SNAPLEN: a record longer than this (and than the file's snaplen) is corrupt.
inline constexpr uint32_t max_snaplen = 262144;
inline constexpr int64_t ns_per_s = 1'000'000'000;

// The longest record accepted from a file declaring `snaplen`: libpcap's maximum, or the file's own
// snaplen when larger but believable (up to 64 MiB; some link types, D-Bus say, need it).
constexpr uint32_t record_limit(uint32_t snaplen) {
  return snaplen <= (64u << 20) && snaplen > max_snaplen ? snaplen : max_snaplen;
}

enum class Precision { us, ns };

// Where a record header keeps its captured length. Before version 2.3 the header said
// {time, len, caplen}; 2.3 interchanged them, yet some writers kept the old order under 2.3, so
// libpcap exchanges a 2.3 record's two lengths when caplen > len (never true of a sound record).
enum class Lengths { in_order, exchanged, exchanged_if_caplen_exceeds_len };

struct FileHeader {
  bool swapped = false;
  Precision precision = Precision::us;
  uint16_t version_major = 2;
  uint16_t version_minor = 4;
  uint32_t snaplen = max_snaplen;
  uint32_t linktype = 1;
  Lengths lengths = Lengths::in_order;
  uint32_t record_header_size = 16;  // 24 in Kuznetsov's format
};

// std::byteswap is C++23.
constexpr uint32_t bswap(uint32_t v) { return __builtin_bswap32(v); }
constexpr uint16_t bswap(uint16_t v) { return __builtin_bswap16(v); }

inline uint32_t load32(const std::byte* p, bool swapped) {
  uint32_t v;
  std::memcpy(&v, p, 4);
  return swapped ? bswap(v) : v;
}

inline void store32(std::byte* p, uint32_t v) { std::memcpy(p, &v, 4); }

// Fills `out` from 24 bytes; returns an error text, empty when the header is usable.
std::string parse_file_header(const std::byte* p, FileHeader& out);

// Writes a native-endian header as libpcap does.
void write_file_header(std::byte* p, Precision precision, uint32_t snaplen, uint32_t linktype);

inline int64_t frac_to_ns(uint32_t frac, Precision p) {
  return p == Precision::ns ? int64_t{frac} : int64_t{frac} * 1000;
}

// A timestamp a classic pcap can hold: unsigned 32-bit seconds.
inline bool representable(int64_t ts_ns) { return ts_ns >= 0 && ts_ns < (int64_t{1} << 32) * ns_per_s; }

inline void write_record_header(std::byte* p, int64_t ts_ns, Precision precision, uint32_t caplen,
                                uint32_t len) {
  const auto sec = static_cast<uint32_t>(ts_ns / ns_per_s);
  const auto sub = ts_ns % ns_per_s;
  const uint32_t words[4] = {sec, static_cast<uint32_t>(precision == Precision::ns ? sub : sub / 1000),
                             caplen, len};
  std::memcpy(p, words, sizeof words);
}

// libpcap's name for a link type (`EN10MB`), or its number when it has none.
std::string linktype_name(uint32_t linktype);

}  // namespace vei::pcap
