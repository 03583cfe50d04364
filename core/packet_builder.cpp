#include "core/packet_builder.h"

#include <fmt/format.h>

#include <algorithm>
#include <bit>
#include <cmath>
#include <cstring>
#include <numbers>
#include <span>
#include <stdexcept>
#include <string>

#include "core/pcap_format.h"

namespace vei::packets {

namespace {

constexpr uint8_t proto_icmp = 1;
constexpr uint8_t proto_tcp = 6;
constexpr size_t ipv4_header_size = 20;
constexpr uint16_t mss = 1460;

// RFC 1071 sum, not yet folded or complemented, so a pseudo-header can be added first.
uint32_t sum16(std::span<const std::byte> data, uint32_t sum = 0) {
  size_t i = 0;
  for (; i + 1 < data.size(); i += 2) sum += uint32_t(data[i]) << 8 | uint32_t(data[i + 1]);
  if (i < data.size()) sum += uint32_t(data[i]) << 8;
  return sum;
}

size_t link_header_size(uint32_t linktype) {
  switch (linktype) {
    case 1: return 14;
    case 101:
    case 228: return 0;
    case 113: return 16;
  }
  throw std::runtime_error(fmt::format("cannot build packets for link type {} ({}); supported: EN10MB (1), "
                                       "RAW (101), IPV4 (228), LINUX_SLL (113)",
                                       pcap::linktype_name(linktype), linktype));
}

// A frame holding an IPv4 packet of `ip_size` bytes after the link header, which is written;
// `ip` is set to where the IPv4 header goes.
std::vector<std::byte> frame(uint32_t linktype, const Endpoint& from, const Endpoint& to, size_t ip_size,
                             std::byte*& ip) {
  const size_t link = link_header_size(linktype);
  std::vector<std::byte> f(link + ip_size);
  std::byte* p = f.data();
  if (linktype == 1) {
    std::memcpy(p, to.mac.data(), 6);
    std::memcpy(p + 6, from.mac.data(), 6);
    put16(p + 12, 0x0800);
  } else if (linktype == 113) {
    put16(p, 4);  // packet type: sent by this host, the capture's point of view for generated traffic
    put16(p + 2, 1);  // ARPHRD_ETHER
    put16(p + 4, 6);
    std::memcpy(p + 6, from.mac.data(), 6);
    put16(p + 14, 0x0800);
  }
  ip = p + link;
  return f;
}

void ipv4_header(std::byte* p, const Endpoint& from, const Endpoint& to, uint8_t protocol, size_t total,
                 uint16_t id, uint8_t ttl, bool dont_fragment) {
  if (total > 0xffff) throw std::runtime_error(fmt::format("an IPv4 packet of {} bytes exceeds 65535", total));
  p[0] = std::byte{0x45};
  p[1] = std::byte{0};
  put16(p + 2, static_cast<uint16_t>(total));
  put16(p + 4, id);
  put16(p + 6, dont_fragment ? 0x4000 : 0);
  p[8] = std::byte{ttl};
  p[9] = std::byte{protocol};
  put16(p + 10, 0);
  put32(p + 12, from.ip);
  put32(p + 16, to.ip);
  put16(p + 10, fold(sum16({p, ipv4_header_size})));
}

// ---- JPEG ---------------------------------------------------------------------------------------
// A baseline JFIF encoder for one 8-bit grey component, with the example quantisation and Huffman
// tables of ITU-T T.81 Annex K: small, but what any decoder (and tshark's image-jfif) expects.

constexpr uint8_t zigzag[64] = {0,  1,  8,  16, 9,  2,  3,  10, 17, 24, 32, 25, 18, 11, 4,  5,
                                12, 19, 26, 33, 40, 48, 41, 34, 27, 20, 13, 6,  7,  14, 21, 28,
                                35, 42, 49, 56, 57, 50, 43, 36, 29, 22, 15, 23, 30, 37, 44, 51,
                                58, 59, 52, 45, 38, 31, 39, 46, 53, 60, 61, 54, 47, 55, 62, 63};

// Table K.1, natural (row-major) order.
constexpr uint8_t luma_quant[64] = {16, 11, 10, 16, 24,  40,  51,  61,  12, 12, 14, 19, 26,  58,  60,  55,
                                    14, 13, 16, 24, 40,  57,  69,  56,  14, 17, 22, 29, 51,  87,  80,  62,
                                    18, 22, 37, 56, 68,  109, 103, 77,  24, 35, 55, 64, 81,  104, 113, 92,
                                    49, 64, 78, 87, 103, 121, 120, 101, 72, 92, 95, 98, 112, 100, 103, 99};

// Tables K.3 and K.5: code counts per length 1..16, then the symbols in code order.
constexpr uint8_t dc_counts[16] = {0, 1, 5, 1, 1, 1, 1, 1, 1, 0, 0, 0, 0, 0, 0, 0};
constexpr uint8_t dc_symbols[12] = {0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11};
constexpr uint8_t ac_counts[16] = {0, 2, 1, 3, 3, 2, 4, 3, 5, 5, 4, 4, 0, 0, 1, 0x7d};
constexpr uint8_t ac_symbols[162] = {
    0x01, 0x02, 0x03, 0x00, 0x04, 0x11, 0x05, 0x12, 0x21, 0x31, 0x41, 0x06, 0x13, 0x51, 0x61, 0x07, 0x22, 0x71,
    0x14, 0x32, 0x81, 0x91, 0xa1, 0x08, 0x23, 0x42, 0xb1, 0xc1, 0x15, 0x52, 0xd1, 0xf0, 0x24, 0x33, 0x62, 0x72,
    0x82, 0x09, 0x0a, 0x16, 0x17, 0x18, 0x19, 0x1a, 0x25, 0x26, 0x27, 0x28, 0x29, 0x2a, 0x34, 0x35, 0x36, 0x37,
    0x38, 0x39, 0x3a, 0x43, 0x44, 0x45, 0x46, 0x47, 0x48, 0x49, 0x4a, 0x53, 0x54, 0x55, 0x56, 0x57, 0x58, 0x59,
    0x5a, 0x63, 0x64, 0x65, 0x66, 0x67, 0x68, 0x69, 0x6a, 0x73, 0x74, 0x75, 0x76, 0x77, 0x78, 0x79, 0x7a, 0x83,
    0x84, 0x85, 0x86, 0x87, 0x88, 0x89, 0x8a, 0x92, 0x93, 0x94, 0x95, 0x96, 0x97, 0x98, 0x99, 0x9a, 0xa2, 0xa3,
    0xa4, 0xa5, 0xa6, 0xa7, 0xa8, 0xa9, 0xaa, 0xb2, 0xb3, 0xb4, 0xb5, 0xb6, 0xb7, 0xb8, 0xb9, 0xba, 0xc2, 0xc3,
    0xc4, 0xc5, 0xc6, 0xc7, 0xc8, 0xc9, 0xca, 0xd2, 0xd3, 0xd4, 0xd5, 0xd6, 0xd7, 0xd8, 0xd9, 0xda, 0xe1, 0xe2,
    0xe3, 0xe4, 0xe5, 0xe6, 0xe7, 0xe8, 0xe9, 0xea, 0xf1, 0xf2, 0xf3, 0xf4, 0xf5, 0xf6, 0xf7, 0xf8, 0xf9, 0xfa};

struct HuffmanCode {
  uint16_t bits = 0;
  uint8_t length = 0;
};

// Canonical codes (T.81 Annex C) indexed by symbol.
std::array<HuffmanCode, 256> huffman_codes(std::span<const uint8_t, 16> counts, std::span<const uint8_t> symbols) {
  std::array<HuffmanCode, 256> codes{};
  uint16_t code = 0;
  size_t k = 0;
  for (uint8_t length = 1; length <= 16; ++length) {
    for (uint8_t i = 0; i < counts[length - 1]; ++i) codes[symbols[k++]] = {code++, length};
    code = static_cast<uint16_t>(code << 1);
  }
  return codes;
}

class BitWriter {
 public:
  explicit BitWriter(std::vector<std::byte>& out) : out_(out) {}
  void put(uint32_t bits, unsigned length) {
    for (unsigned i = length; i-- > 0;) {
      acc_ = static_cast<uint8_t>(acc_ << 1 | (bits >> i & 1));
      if (++count_ == 8) emit();
    }
  }
  // Pads the last byte with 1 bits, as T.81 F.1.2.3 asks.
  void flush() {
    while (count_) put(1, 1);
  }

 private:
  void emit() {
    out_.push_back(std::byte{acc_});
    if (acc_ == 0xff) out_.push_back(std::byte{0});  // byte stuffing: no marker inside entropy data
    acc_ = 0;
    count_ = 0;
  }
  std::vector<std::byte>& out_;
  uint8_t acc_ = 0;
  unsigned count_ = 0;
};

// The magnitude category of a coefficient and its extra bits (T.81 F.1.2.1).
std::pair<unsigned, uint32_t> category(int v) {
  const unsigned magnitude = static_cast<unsigned>(v < 0 ? -v : v);
  const unsigned size = magnitude ? static_cast<unsigned>(std::bit_width(magnitude)) : 0;
  const int extra = v < 0 ? v - 1 : v;
  return {size, static_cast<uint32_t>(extra) & ((1u << size) - 1)};
}

void marker_segment(std::vector<std::byte>& out, uint8_t marker, std::span<const uint8_t> body) {
  out.push_back(std::byte{0xff});
  out.push_back(std::byte{marker});
  out.push_back(std::byte((body.size() + 2) >> 8));
  out.push_back(std::byte((body.size() + 2) & 0xff));
  for (uint8_t b : body) out.push_back(std::byte{b});
}

// A 128×96 grey picture, a light disc on diagonal stripes: a few KiB, so that the request spans
// more than one TCP segment.
std::vector<std::byte> jpeg_image() {
  constexpr int width = 128, height = 96;
  auto pixel = [](int x, int y) {
    const int dx = x - 80, dy = y - 44;
    return dx * dx + dy * dy < 30 * 30 ? 230 : 30 + x / 2 + (x + y) / 6 % 2 * 60;
  };

  std::vector<std::byte> out{std::byte{0xff}, std::byte{0xd8}};  // SOI
  const uint8_t app0[] = {'J', 'F', 'I', 'F', 0, 1, 1, 0, 0, 1, 0, 1, 0, 0};
  marker_segment(out, 0xe0, app0);
  std::vector<uint8_t> dqt{0};
  for (uint8_t z : zigzag) dqt.push_back(luma_quant[z]);
  marker_segment(out, 0xdb, dqt);
  const uint8_t sof0[] = {8, 0, height, 0, width, 1, 1, 0x11, 0};
  marker_segment(out, 0xc0, sof0);
  std::vector<uint8_t> dht{0x00};
  dht.insert(dht.end(), std::begin(dc_counts), std::end(dc_counts));
  dht.insert(dht.end(), std::begin(dc_symbols), std::end(dc_symbols));
  dht.push_back(0x10);
  dht.insert(dht.end(), std::begin(ac_counts), std::end(ac_counts));
  dht.insert(dht.end(), std::begin(ac_symbols), std::end(ac_symbols));
  marker_segment(out, 0xc4, dht);
  const uint8_t sos[] = {1, 1, 0x00, 0, 63, 0};
  marker_segment(out, 0xda, sos);

  const auto dc_codes = huffman_codes(dc_counts, dc_symbols);
  const auto ac_codes = huffman_codes(ac_counts, ac_symbols);
  BitWriter bits(out);
  int previous_dc = 0;
  for (int by = 0; by < height; by += 8) {
    for (int bx = 0; bx < width; bx += 8) {
      int quantised[64];
      for (int v = 0; v < 8; ++v) {
        for (int u = 0; u < 8; ++u) {
          double sum = 0;
          for (int y = 0; y < 8; ++y)
            for (int x = 0; x < 8; ++x)
              sum += (pixel(bx + x, by + y) - 128) * std::cos((2 * x + 1) * u * std::numbers::pi / 16) *
                     std::cos((2 * y + 1) * v * std::numbers::pi / 16);
          const double cu = u ? 1 : std::numbers::sqrt2 / 2, cv = v ? 1 : std::numbers::sqrt2 / 2;
          quantised[v * 8 + u] = static_cast<int>(std::lround(sum * cu * cv / 4 / luma_quant[v * 8 + u]));
        }
      }
      const auto [dc_size, dc_extra] = category(quantised[0] - previous_dc);
      previous_dc = quantised[0];
      bits.put(dc_codes[dc_size].bits, dc_codes[dc_size].length);
      bits.put(dc_extra, dc_size);
      unsigned run = 0;
      for (int k = 1; k < 64; ++k) {
        const int c = quantised[zigzag[k]];
        if (c == 0) {
          ++run;
          continue;
        }
        for (; run >= 16; run -= 16) bits.put(ac_codes[0xf0].bits, ac_codes[0xf0].length);  // ZRL
        const auto [size, extra] = category(c);
        const auto& code = ac_codes[run << 4 | size];
        bits.put(code.bits, code.length);
        bits.put(extra, size);
        run = 0;
      }
      if (run) bits.put(ac_codes[0x00].bits, ac_codes[0x00].length);  // EOB
    }
  }
  bits.flush();
  out.push_back(std::byte{0xff});
  out.push_back(std::byte{0xd9});  // EOI
  return out;
}

// ---- TCP ----------------------------------------------------------------------------------------

namespace tcp_flag {
constexpr uint8_t fin = 0x01, syn = 0x02, psh = 0x08, ack = 0x10;
}

struct TcpSide {
  Endpoint endpoint;
  uint32_t seq = 0;  // next sequence number to send
  uint32_t ack = 0;  // next sequence number expected from the peer
  uint16_t ip_id = 0;
  uint16_t window = 0;
};

std::vector<std::byte> tcp_segment(uint32_t linktype, TcpSide& from, const TcpSide& to, uint8_t flags,
                                   std::span<const std::byte> payload) {
  const bool syn = flags & tcp_flag::syn;
  const size_t tcp_size = (syn ? 24 : 20) + payload.size();  // a SYN carries the MSS option
  std::byte* ip;
  auto f = frame(linktype, from.endpoint, to.endpoint, ipv4_header_size + tcp_size, ip);
  ipv4_header(ip, from.endpoint, to.endpoint, proto_tcp, ipv4_header_size + tcp_size, from.ip_id++, 64, true);
  std::byte* t = ip + ipv4_header_size;
  put16(t, from.endpoint.port);
  put16(t + 2, to.endpoint.port);
  put32(t + 4, from.seq);
  put32(t + 8, flags & tcp_flag::ack ? from.ack : 0);
  t[12] = std::byte((syn ? 6 : 5) << 4);
  t[13] = std::byte{flags};
  put16(t + 14, from.window);
  if (syn) {
    t[20] = std::byte{2};  // MSS option, kind 2, length 4
    t[21] = std::byte{4};
    put16(t + 22, mss);
  }
  std::ranges::copy(payload, t + tcp_size - payload.size());  // not memcpy: an empty span may hold null
  const uint32_t pseudo = sum16({ip + 12, 8}) + proto_tcp + static_cast<uint32_t>(tcp_size);
  put16(t + 16, fold(sum16({t, tcp_size}, pseudo)));
  from.seq += static_cast<uint32_t>(payload.size()) + (syn ? 1 : 0) + (flags & tcp_flag::fin ? 1 : 0);
  return f;
}

std::string dotted(uint32_t ip) { return fmt::format("{}.{}.{}.{}", ip >> 24, ip >> 16 & 0xff, ip >> 8 & 0xff, ip & 0xff); }

}  // namespace

bool supported_linktype(uint32_t linktype) {
  return linktype == 1 || linktype == 101 || linktype == 228 || linktype == 113;
}

std::vector<std::byte> icmp_echo(uint32_t linktype, const Endpoint& src, const Endpoint& dst, uint16_t ident,
                                 uint16_t sequence, uint8_t ttl, size_t payload_size, bool reply) {
  const size_t icmp_size = 8 + payload_size;
  std::byte* ip;
  auto f = frame(linktype, src, dst, ipv4_header_size + icmp_size, ip);
  // The IP id follows the sequence number, as ping's kernel path makes it look.
  ipv4_header(ip, src, dst, proto_icmp, ipv4_header_size + icmp_size, sequence, ttl, false);
  std::byte* icmp = ip + ipv4_header_size;
  icmp[0] = std::byte{reply ? uint8_t{0} : uint8_t{8}};
  icmp[1] = std::byte{0};
  put16(icmp + 4, ident);
  put16(icmp + 6, sequence);
  // ping's pattern: byte i of the payload is i.
  for (size_t i = 0; i < payload_size; ++i) icmp[8 + i] = std::byte(i & 0xff);
  put16(icmp + 2, fold(sum16({icmp, icmp_size})));
  return f;
}

std::vector<TimedFrame> http_post_jpg(uint32_t linktype, const Endpoint& client, const Endpoint& server,
                                      uint32_t client_isn, uint32_t server_isn, int64_t gap_ns) {
  link_header_size(linktype);  // rejects an unsupported link type before any work
  // Port 0 cannot carry HTTP: the usual ports stand in for ports left unset.
  TcpSide c{client, client_isn, 0, 1, 64240};
  TcpSide s{server, server_isn, 0, 1, 65160};
  if (!c.endpoint.port) c.endpoint.port = 49152;
  if (!s.endpoint.port) s.endpoint.port = 80;

  const auto jpeg = jpeg_image();
  const std::string host =
      s.endpoint.port == 80 ? dotted(s.endpoint.ip) : fmt::format("{}:{}", dotted(s.endpoint.ip), s.endpoint.port);
  const std::string head = fmt::format(
      "POST /upload HTTP/1.1\r\nHost: {}\r\nUser-Agent: veipipe\r\nContent-Type: image/jpeg\r\n"
      "Content-Length: {}\r\nConnection: close\r\n\r\n",
      host, jpeg.size());
  std::vector<std::byte> request(head.size() + jpeg.size());
  std::memcpy(request.data(), head.data(), head.size());
  std::memcpy(request.data() + head.size(), jpeg.data(), jpeg.size());
  static constexpr std::string_view ok = "HTTP/1.1 200 OK\r\nContent-Length: 0\r\nConnection: close\r\n\r\n";
  const std::span response(reinterpret_cast<const std::byte*>(ok.data()), ok.size());

  std::vector<TimedFrame> frames;
  auto send = [&](TcpSide& from, TcpSide& to, uint8_t flags, std::span<const std::byte> payload = {}) {
    frames.push_back({tcp_segment(linktype, from, to, flags, payload), static_cast<int64_t>(frames.size()) * gap_ns});
    to.ack = from.seq;
  };
  using namespace tcp_flag;
  send(c, s, syn);
  send(s, c, syn | ack);
  send(c, s, ack);
  // The request in MSS-sized segments; the server acknowledges every second one, and the last.
  const size_t segments = (request.size() + mss - 1) / mss;
  for (size_t i = 0; i < segments; ++i) {
    const bool last = i + 1 == segments;
    const auto part = std::span(request).subspan(i * mss, last ? request.size() - i * mss : mss);
    send(c, s, last ? ack | psh : ack, part);
    if (last || i % 2 == 1) send(s, c, ack);
  }
  send(s, c, ack | psh, response);
  send(c, s, ack);
  send(c, s, fin | ack);
  send(s, c, fin | ack);
  send(c, s, ack);
  return frames;
}

Mac local_mac(uint32_t ip) {
  return {0x02, 0x00, uint8_t(ip >> 24), uint8_t(ip >> 16 & 0xff), uint8_t(ip >> 8 & 0xff), uint8_t(ip & 0xff)};
}

std::optional<Mac> parse_mac(std::string_view text) {
  const auto hex = [](char c) {
    const int lower = c | 0x20;
    return c >= '0' && c <= '9' ? c - '0' : lower >= 'a' && lower <= 'f' ? lower - 'a' + 10 : -1;
  };
  if (text.size() != 17) return std::nullopt;
  Mac mac{};
  for (size_t i = 0; i < 6; ++i) {
    const int hi = hex(text[3 * i]), lo = hex(text[3 * i + 1]);
    if (hi < 0 || lo < 0 || (i < 5 && text[3 * i + 2] != ':')) return std::nullopt;
    mac[i] = static_cast<uint8_t>(hi << 4 | lo);
  }
  return mac;
}

}  // namespace vei::packets
