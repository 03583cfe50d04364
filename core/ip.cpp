#include "core/ip.h"

#include <arpa/inet.h>
#include <charconv>
#include <fmt/format.h>

#include "core/option_error.h"

namespace vei {

IpAddr IpAddr::v4(uint32_t host_order) {
  IpAddr a;
  for (int i = 0; i < 4; ++i) a.bytes[i] = static_cast<uint8_t>(host_order >> (24 - 8 * i));
  return a;
}

uint32_t IpAddr::v4() const {
  return uint32_t{bytes[0]} << 24 | uint32_t{bytes[1]} << 16 | uint32_t{bytes[2]} << 8 | bytes[3];
}

IpAddr IpAddr::plus(uint64_t n) const {
  IpAddr r = *this;
  unsigned carry = 0;
  for (size_t i = size(); i-- > 0;) {
    const unsigned sum = r.bytes[i] + static_cast<unsigned>(n & 0xff) + carry;
    r.bytes[i] = static_cast<uint8_t>(sum);
    carry = sum >> 8;
    n >>= 8;
  }
  return r;
}

std::string to_string(const IpAddr& ip) {
  char text[INET6_ADDRSTRLEN] = {};
  inet_ntop(ip.v6 ? AF_INET6 : AF_INET, ip.bytes.data(), text, sizeof text);
  return text;
}

bool parse_ip(std::string_view text, IpAddr& out) {
  while (!text.empty() && text.front() == ' ') text.remove_prefix(1);
  while (!text.empty() && text.back() == ' ') text.remove_suffix(1);
  const std::string s(text);
  IpAddr a;
  if (inet_pton(AF_INET, s.c_str(), a.bytes.data()) == 1) {
    out = a;
    return true;
  }
  a.v6 = true;
  if (inet_pton(AF_INET6, s.c_str(), a.bytes.data()) == 1) {
    out = a;
    return true;
  }
  return false;
}

uint64_t IpRange::size() const {
  // The difference last - first over the low 8 bytes; a difference in the bytes above is 2^64+.
  const size_t n = first.size();
  for (size_t i = 0; i + 8 < n; ++i)
    if (first.bytes[i] != last.bytes[i]) return UINT64_MAX;
  uint64_t a = 0, b = 0;
  for (size_t i = n >= 8 ? n - 8 : 0; i < n; ++i) {
    a = a << 8 | first.bytes[i];
    b = b << 8 | last.bytes[i];
  }
  return b - a == UINT64_MAX ? UINT64_MAX : b - a + 1;
}

IpRange parse_ip_range(std::string_view text, std::string_view param) {
  auto address = [&](std::string_view t) {
    IpAddr a;
    if (!parse_ip(t, a)) throw OptionError(param, fmt::format("{}: '{}' is not an IP address", param, t));
    return a;
  };
  if (const auto slash = text.find('/'); slash != std::string_view::npos) {
    IpRange r{address(text.substr(0, slash)), {}};
    const std::string_view len_text = text.substr(slash + 1);
    unsigned len = 0;
    const auto* end = len_text.data() + len_text.size();
    const auto [ptr, ec] = std::from_chars(len_text.data(), end, len);
    const unsigned bits = static_cast<unsigned>(r.first.size() * 8);
    if (ec != std::errc{} || ptr != end || len > bits)
      throw OptionError(param, fmt::format("{}: '{}' is not a prefix length (0..{})", param, len_text, bits));
    r.last = r.first;
    for (unsigned bit = 0; bit < bits; ++bit) {
      const auto mask = static_cast<uint8_t>(0x80 >> (bit % 8));
      if (bit < len) continue;
      r.first.bytes[bit / 8] &= static_cast<uint8_t>(~mask);
      r.last.bytes[bit / 8] |= mask;
    }
    return r;
  }
  const auto dash = text.find('-');
  if (dash == std::string_view::npos) {
    const IpAddr a = address(text);
    return {a, a};
  }
  const IpRange r{address(text.substr(0, dash)), address(text.substr(dash + 1))};
  if (r.first.v6 != r.last.v6) throw OptionError(param, fmt::format("{}: range '{}' mixes IPv4 and IPv6", param, text));
  if (r.last < r.first)
    throw OptionError(param, fmt::format("{}: range {}-{} is reversed (its first address must not be above its last)",
                                         param, to_string(r.first), to_string(r.last)));
  return r;
}

}  // namespace vei
