#include "core/jpeg.h"

#include <array>
#include <bit>
#include <cmath>
#include <cstdint>
#include <numbers>
#include <span>
#include <utility>

namespace vei::packets {

namespace {

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

}  // namespace

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

}  // namespace vei::packets
