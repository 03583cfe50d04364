// IP addresses of either version and the ranges generators draw their hosts from, as the
// description language writes them: `10.0.0.1`, `10.0.0.1-10.0.0.9`, `10.0.0.0/24`, `2001:db8::1`,
// `2001:db8::1-2001:db8::ff`, `2001:db8::/120`.
//
// Threads: plain values, no shared state.
#pragma once

#include <array>
#include <compare>
#include <cstdint>
#include <string>
#include <string_view>

namespace vei {

struct IpAddr {
  std::array<uint8_t, 16> bytes{};  // network order; an IPv4 address uses the first 4
  bool v6 = false;

  static IpAddr v4(uint32_t host_order);
  uint32_t v4() const;  // host order; only for an IPv4 address
  size_t size() const { return v6 ? 16 : 4; }
  const uint8_t* data() const { return bytes.data(); }
  // The address `n` after this one, within the same version (wrapping is the caller's concern).
  IpAddr plus(uint64_t n) const;
  auto operator<=>(const IpAddr&) const = default;
};

// `10.0.0.1` or `2001:db8::1`.
std::string to_string(const IpAddr& ip);
// False when `text` is neither form.
bool parse_ip(std::string_view text, IpAddr& out);

// An inclusive range of addresses of one version. Sizes beyond 2^64 (a /32 of IPv6) count as 2^64:
// generators index into a range with a 64-bit counter.
struct IpRange {
  IpAddr first, last;
  uint64_t size() const;
  IpAddr at(uint64_t i) const { return first.plus(i); }
  bool contains(const IpAddr& ip) const { return ip.v6 == first.v6 && first <= ip && ip <= last; }
};

// `A`, `A-B` or `A/len`. Throws OptionError naming `param` ("'x' is not an IP address",
// "range ... is reversed", "mixes IPv4 and IPv6").
IpRange parse_ip_range(std::string_view text, std::string_view param);

}  // namespace vei
