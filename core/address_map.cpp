#include "core/address_map.h"

#include <fmt/format.h>

#include <algorithm>
#include <charconv>
#include <stdexcept>
#include <string>

namespace vei {

namespace {

[[noreturn]] void bad_map(std::string_view text, std::string_view what) {
  throw std::invalid_argument(fmt::format("address map '{}': {}", text, what));
}

struct Network {
  IpAddr net;
  unsigned prefix;
};

// One side of a map, `address` or `address/len`, its host bits cleared; nothing, with `why` set,
// when it is neither.
std::optional<Network> parse_network(std::string_view side, std::string& why) {
  const auto slash = side.find('/');
  const std::string_view address = side.substr(0, slash);
  Network n{};
  // parse_ip forgives spaces around an address; a map has none (they separate maps).
  if (address.find(' ') != std::string_view::npos || !parse_ip(address, n.net)) {
    why = fmt::format("'{}' is not an IP address", address);
    return std::nullopt;
  }
  const unsigned bits = static_cast<unsigned>(n.net.size()) * 8;
  n.prefix = bits;
  if (slash != std::string_view::npos) {
    const auto digits = side.substr(slash + 1);
    const char* end = digits.data() + digits.size();
    const auto [stop, ec] = std::from_chars(digits.data(), end, n.prefix);
    if (digits.empty() || ec != std::errc{} || stop != end || n.prefix > bits) {
      why = fmt::format("'/{}' is not a prefix length (0 to {})", digits, bits);
      return std::nullopt;
    }
  }
  for (unsigned bit = n.prefix; bit < bits; ++bit) n.net.bytes[bit / 8] &= static_cast<uint8_t>(~(0x80u >> (bit % 8)));
  return n;
}

AddressMap checked(std::string_view text, const Network& from, const Network& to) {
  if (from.net.v6 != to.net.v6)
    bad_map(text, fmt::format("maps IPv{} onto IPv{}: both sides must be of one version", from.net.v6 ? 6 : 4,
                              to.net.v6 ? 6 : 4));
  if (from.prefix != to.prefix)
    bad_map(text, fmt::format("the prefix lengths differ (/{} and /{}): a network maps onto one of the same size",
                              from.prefix, to.prefix));
  return {from.net, to.net, from.prefix};
}

Network side(std::string_view text, std::string_view side_text) {
  std::string why;
  const auto n = parse_network(side_text, why);
  if (!n) bad_map(text, why);
  return *n;
}

// `[FROM]:[TO]`, as tcprewrite writes IPv6 maps; the brackets around TO are optional.
AddressMap bracketed(std::string_view text) {
  const auto close = text.find("]:");
  if (close == std::string_view::npos) bad_map(text, "expected [FROM]:[TO], e.g. [2001:db8::/32]:[fd00::/32]");
  std::string_view to = text.substr(close + 2);
  if (to.starts_with('[')) {
    if (!to.ends_with(']')) bad_map(text, fmt::format("'{}' lacks its closing ']'", to));
    to = to.substr(1, to.size() - 2);
  }
  return checked(text, side(text, text.substr(1, close - 1)), side(text, to));
}

uint64_t load64(const std::byte* p) {
  uint64_t v = 0;
  for (int i = 0; i < 8; ++i) v = v << 8 | std::to_integer<uint64_t>(p[i]);
  return v;
}

void store64(std::byte* p, uint64_t v) {
  for (int i = 7; i >= 0; --i, v >>= 8) p[i] = std::byte(v & 0xff);
}

// ~old + new over the four 16-bit words of a half address.
uint32_t word_delta(uint64_t old, uint64_t now) {
  uint32_t sum = 0;
  for (int shift = 0; shift < 64; shift += 16)
    sum += static_cast<uint32_t>(((~old >> shift) & 0xffff) + ((now >> shift) & 0xffff));
  return sum;
}

uint64_t half(const IpAddr& a, int h) { return load64(reinterpret_cast<const std::byte*>(a.data()) + 8 * h); }

}  // namespace

AddressMap parse_address_map(std::string_view text) {
  if (text.starts_with('[')) return bracketed(text);
  const auto colon = text.find(':');
  if (colon == std::string_view::npos)
    bad_map(text, "expected FROM:TO, e.g. 10.1.0.0/16:172.16.0.0/16, 10.0.0.1:10.9.9.9 or [2001:db8::/32]:[fd00::/32]");
  if (text.find(':', colon + 1) == std::string_view::npos)
    return checked(text, side(text, text.substr(0, colon)), side(text, text.substr(colon + 1)));
  // IPv6 without brackets: the colon that splits the text into two networks, if only one does.
  std::vector<std::pair<Network, Network>> splits;
  std::string why;
  for (size_t at = colon; at != std::string_view::npos; at = text.find(':', at + 1)) {
    const auto from = parse_network(text.substr(0, at), why);
    const auto to = from ? parse_network(text.substr(at + 1), why) : std::nullopt;
    if (to) splits.emplace_back(*from, *to);
  }
  if (splits.empty())
    bad_map(text, "no colon splits it into two IP networks; write IPv6 maps as [FROM]:[TO], e.g. [2001:db8::/32]:[fd00::/32]");
  if (splits.size() > 1) {
    const auto& [a, b] = splits[0];
    const auto& [c, d] = splits[1];
    bad_map(text, fmt::format("ambiguous: it reads as {} -> {} and as {} -> {}; write [FROM]:[TO]", to_string(a.net),
                              to_string(b.net), to_string(c.net), to_string(d.net)));
  }
  return checked(text, splits[0].first, splits[0].second);
}

AddressMaps::AddressMaps(const std::vector<AddressMap>& maps) {
  for (const AddressMap& m : maps) {
    if (!m.from.v6) {
      const uint32_t mask = m.prefix ? ~uint32_t{0} << (32 - m.prefix) : 0;
      v4_.push_back({m.from.v4(), m.to.v4(), mask});
      continue;
    }
    V6 v{};
    for (int h = 0; h < 2; ++h) {
      const unsigned bits = m.prefix > 64u * h ? std::min(m.prefix - 64u * h, 64u) : 0;
      v.mask[h] = bits ? ~uint64_t{0} << (64 - bits) : 0;
      v.net[h] = half(m.from, h);
      v.to[h] = half(m.to, h);
    }
    v6_.push_back(v);
  }
}

bool AddressMaps::map_v6(std::byte* address, uint32_t& delta) const {
  const uint64_t a[2] = {load64(address), load64(address + 8)};
  for (const V6& m : v6_) {
    if ((a[0] & m.mask[0]) != m.net[0] || (a[1] & m.mask[1]) != m.net[1]) continue;
    bool changed = false;
    for (int h = 0; h < 2; ++h) {
      const uint64_t now = m.to[h] | (a[h] & ~m.mask[h]);
      if (now == a[h]) continue;
      store64(address + 8 * h, now);
      delta += word_delta(a[h], now);
      changed = true;
    }
    return changed;
  }
  return false;
}

}  // namespace vei
