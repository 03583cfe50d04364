// The address maps of `rewrite` (stages/rewrite.h), tcprewrite's --pnat/--srcipmap/--dstipmap: a
// network of either IP version mapped onto another of the same version and prefix length, and the
// form the per-packet loop matches them in.
//
// Threads: plain values, no shared state.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string_view>
#include <vector>

#include "core/ip.h"

namespace vei {

// An address in `from`/prefix takes `to`'s network bits and keeps its own host bits. Both have
// their host bits cleared: tcprewrite ignores those written in a map (cidr.c ip_in_cidr,
// ip6_in_cidr; edit_packet.c remap_ipv4, remap_ipv6). For an IPv6 prefix length that is not a
// multiple of 8, tcprewrite 4.4.3's remap_ipv6 writes the partial byte at an index it takes from
// the address's bytes; here the bits are those of the map.
struct AddressMap {
  IpAddr from, to;
  unsigned prefix = 0;
};

// `FROM:TO`, each side an address or a network `address/len` of one version, the same length on
// both sides: `10.1.0.0/16:172.16.0.0/16`, `10.0.0.1:10.9.9.9` (/32), and for IPv6 tcprewrite's
// `[2001:db8::/32]:[fd00::/32]`, or without brackets where only one colon splits the text into two
// addresses (`2001:db8::/32:fd00::/32`, `2001:db8::1:fd00::9`). Throws std::invalid_argument naming
// the text and what is wrong with it, an ambiguous split included.
AddressMap parse_address_map(std::string_view text);

// The maps of one direction, by version, as integers in host order; the first that matches applies.
class AddressMaps {
 public:
  AddressMaps() = default;
  explicit AddressMaps(const std::vector<AddressMap>& maps);

  bool has_v4() const { return !v4_.empty(); }
  bool has_v6() const { return !v6_.empty(); }
  // The address the first matching map gives `from`, or nothing. Inline: it runs for every IPv4
  // address of every packet.
  std::optional<uint32_t> map(uint32_t from) const {
    for (const V4& m : v4_)
      if ((from & m.mask) == m.net) return m.to | (from & ~m.mask);
    return std::nullopt;
  }
  // Maps the IPv6 address at `address` (16 bytes, network order) in place; true when it changed.
  // Adds to `delta` the sum of ~old + new over its changed 16-bit words (RFC 1624's ~m + m', for
  // the checksums that cover it).
  bool map_v6(std::byte* address, uint32_t& delta) const;

 private:
  struct V4 {
    uint32_t net, to, mask;
  };
  struct V6 {  // the high half first
    uint64_t net[2], to[2], mask[2];
  };
  std::vector<V4> v4_;
  std::vector<V6> v6_;
};

}  // namespace vei
