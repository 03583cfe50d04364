#include "stages/rewrite.h"

#include <arpa/inet.h>
#include <fmt/format.h>

#include <algorithm>
#include <charconv>
#include <sstream>
#include <cstring>
#include <stdexcept>
#include <string>

#include "core/pcap_format.h"

namespace vei {

namespace {

constexpr uint16_t ethertype_ipv4 = 0x0800, ethertype_arp = 0x0806;
constexpr size_t ipv4_header_size = 20;
constexpr uint8_t proto_tcp = 6, proto_udp = 17;

[[noreturn]] void bad_map(std::string_view text, std::string_view what) {
  throw std::invalid_argument(fmt::format("address map '{}': {}", text, what));
}

uint32_t prefix_mask(unsigned prefix) { return prefix ? ~uint32_t{0} << (32 - prefix) : 0; }

struct Network {
  uint32_t net;
  unsigned prefix;
};

// One side of a map, `a.b.c.d` or `a.b.c.d/len`; `map` is the whole text, for messages.
Network parse_network(std::string_view map, std::string_view side) {
  const auto slash = side.find('/');
  const std::string address(side.substr(0, slash));
  in_addr addr{};
  if (inet_pton(AF_INET, address.c_str(), &addr) != 1) bad_map(map, fmt::format("'{}' is not an IPv4 address", address));
  Network n{ntohl(addr.s_addr), 32};
  if (slash != std::string_view::npos) {
    const auto digits = side.substr(slash + 1);
    const char* end = digits.data() + digits.size();
    const auto [stop, ec] = std::from_chars(digits.data(), end, n.prefix);
    if (digits.empty() || ec != std::errc{} || stop != end || n.prefix > 32)
      bad_map(map, fmt::format("'/{}' is not a prefix length (0 to 32)", digits));
  }
  // tcprewrite masks both sides (ip_in_cidr, remap_ipv4): 172.16.0.0/8 is 172.0.0.0/8.
  n.net &= prefix_mask(n.prefix);
  return n;
}

using packets::get16;
using packets::get32;
using packets::put16;
using packets::put32;

// RFC 1624 eqn 3, HC' = ~(~HC + ~m + m'), with `delta` the sum of ~m + m' over the changed words.
uint16_t adjusted(uint16_t checksum, uint32_t delta) { return packets::fold(static_cast<uint16_t>(~checksum) + delta); }

// Where the network layer starts and its EtherType, or nothing when the capture does not show it.
struct NetworkLayer {
  size_t at;
  uint16_t type;
};

// Ethernet: past VLAN tags and MPLS labels, as tcprewrite (common/get.c, parse_metadata and
// parse_mpls): after the last label, the first nibble tells IPv4 (4), IPv6 (6) or Ethernet over
// MPLS (0, behind a 4-byte control word); a Generic Associated Channel label (13) is not followed.
// Every step moves on by at least 4 bytes of the capture, so the loop ends.
std::optional<NetworkLayer> ethernet_payload(const std::byte* p, uint32_t caplen) {
  constexpr uint16_t ipv6 = 0x86dd, mpls = 0x8847, mpls_multicast = 0x8848;
  constexpr unsigned gach = 13;
  NetworkLayer layer{14, 0};
  if (caplen < layer.at) return std::nullopt;
  layer.type = get16(p + 12);
  for (;;) {
    if (layer.type == 0x8100 || layer.type == 0x88a8 || layer.type == 0x9100) {
      if (caplen < layer.at + 4) return std::nullopt;
      layer.type = get16(p + layer.at + 2);
      layer.at += 4;
    } else if (layer.type == mpls || layer.type == mpls_multicast) {
      for (bool bottom = false; !bottom; layer.at += 4) {
        if (caplen < layer.at + 4) return std::nullopt;
        const uint32_t label = get32(p + layer.at);
        if (label >> 12 == gach) return std::nullopt;
        bottom = label & 0x100;
      }
      if (caplen <= layer.at) return std::nullopt;
      const auto nibble = std::to_integer<unsigned>(p[layer.at]) >> 4;
      if (nibble == 4 || nibble == 6) return NetworkLayer{layer.at, nibble == 4 ? ethertype_ipv4 : ipv6};
      if (nibble != 0 || caplen < layer.at + 4 + 14) return std::nullopt;
      layer.at += 4 + 14;
      layer.type = get16(p + layer.at - 2);
    } else {
      return layer;
    }
  }
}

std::optional<NetworkLayer> network_layer(const std::byte* p, uint32_t caplen, uint32_t linktype) {
  switch (linktype) {
    case 1:
      return ethernet_payload(p, caplen);
    case 113:
      if (caplen < 16) return std::nullopt;
      return NetworkLayer{16, get16(p + 14)};
    case 276:  // LINUX_SLL2: the protocol comes first
      if (caplen < 20) return std::nullopt;
      return NetworkLayer{20, get16(p)};
    case 0:
    case 108:
      // BSD loopback: AF_INET, 2 on every system, in the byte order of the host that wrote it (NULL)
      // or in network order (LOOP).
      if (caplen < 4 || (get32(p) != 2 && get32(p) != 0x02000000)) return std::nullopt;
      return NetworkLayer{4, ethertype_ipv4};
    default:  // RAW (101) may hold IPv6 as well: the version tells.
      return NetworkLayer{0, ethertype_ipv4};
  }
}

// Writes as much of `mac` as the capture holds at `at`.
bool set_mac(std::byte* p, uint32_t caplen, size_t at, const std::optional<packets::Mac>& mac) {
  if (!mac || caplen <= at) return false;
  const size_t n = std::min<size_t>(mac->size(), caplen - at);
  if (std::memcmp(p + at, mac->data(), n) == 0) return false;
  std::memcpy(p + at, mac->data(), n);
  return true;
}

// The address `maps` give `from`, if one matches.
std::optional<uint32_t> mapped(uint32_t from, const std::vector<AddressMap>& maps) {
  for (const AddressMap& m : maps)
    if ((from & m.mask) == m.from_net) return m.to_net | (from & ~m.mask);
  return std::nullopt;
}

// tcprewrite's rewrite_iparp: an IPv4 request's or reply's sender and target addresses, each
// through the maps that apply to both directions (--pnat, `ip=`); ARP has no checksum.
bool rewrite_arp(std::byte* p, uint32_t caplen, size_t arp, const std::vector<AddressMap>& maps) {
  if (caplen < arp + 8 || get16(p + arp + 2) != ethertype_ipv4 || p[arp + 5] != std::byte{4})
    return false;
  if (const uint16_t op = get16(p + arp + 6); op != 1 && op != 2) return false;
  const auto hardware = std::to_integer<size_t>(p[arp + 4]);
  bool changed = false;
  for (size_t at : {arp + 8 + hardware, arp + 8 + 2 * hardware + 4}) {
    if (caplen < at + 4) break;
    const uint32_t from = get32(p + at);
    if (const auto to = mapped(from, maps); to && *to != from) {
      put32(p + at, *to);
      changed = true;
    }
  }
  return changed;
}

bool ipv4_linktype(uint32_t linktype) {
  return linktype == 0 || linktype == 108 || linktype == 276 || packets::supported_linktype(linktype);
}

}  // namespace

AddressMap parse_address_map(std::string_view text) {
  const auto colon = text.find(':');
  if (colon == std::string_view::npos)
    bad_map(text, "expected FROM:TO, e.g. 10.1.0.0/16:172.16.0.0/16 or 10.0.0.1:10.9.9.9");
  const Network from = parse_network(text, text.substr(0, colon));
  const Network to = parse_network(text, text.substr(colon + 1));
  if (from.prefix != to.prefix)
    bad_map(text, fmt::format("the prefix lengths differ (/{} and /{}): a network maps onto one of the same size",
                              from.prefix, to.prefix));
  return {from.net, to.net, prefix_mask(from.prefix)};
}

AddressRewriter::AddressRewriter(RewriteOptions options, uint32_t linktype)
    : options_(std::move(options)), linktype_(linktype) {
  if ((options_.src_mac || options_.dst_mac) && linktype != 1)
    throw std::invalid_argument(fmt::format("rewrite: Ethernet addresses can only be set on EN10MB (1) packets, "
                                            "not on link type {} ({})",
                                            pcap::linktype_name(linktype), linktype));
  if ((!options_.src_ip.empty() || !options_.dst_ip.empty()) && !ipv4_linktype(linktype))
    throw std::invalid_argument(fmt::format("rewrite: cannot find IPv4 addresses in link type {} ({}); supported: "
                                            "EN10MB (1), RAW (101), IPV4 (228), LINUX_SLL (113), LINUX_SLL2 (276), NULL (0), LOOP (108)",
                                            pcap::linktype_name(linktype), linktype));
}

TransformStats AddressRewriter::apply(Batch& batch) const {
  TransformStats stats;
  for (const Record& r : batch.records)
    stats.changed += rewrite(batch.data() + r.offset + record_header_size, r.caplen);
  return stats;
}

bool AddressRewriter::rewrite(std::byte* p, uint32_t caplen) const {
  bool changed = false;
  if (linktype_ == 1) {
    changed = set_mac(p, caplen, 0, options_.dst_mac);
    changed |= set_mac(p, caplen, 6, options_.src_mac);
  }
  const auto layer = network_layer(p, caplen, linktype_);
  if (layer && layer->type == ethertype_arp) return rewrite_arp(p, caplen, layer->at, options_.both_ip) || changed;
  if (!layer || layer->type != ethertype_ipv4) return changed;
  const size_t ip = layer->at;
  if (caplen < ip + ipv4_header_size) return changed;
  const auto version_ihl = std::to_integer<unsigned>(p[ip]);
  const auto protocol = std::to_integer<uint8_t>(p[ip + 9]);
  if (version_ihl >> 4 != 4 || (version_ihl & 0xf) < 5) return changed;

  bool moved = false;
  uint32_t delta = 0;
  auto map = [&](std::byte* field, const std::vector<AddressMap>& maps) {
    const uint32_t from = get32(field);
    const auto to = mapped(from, maps);
    if (!to || *to == from) return;
    put32(field, *to);
    delta += (~from >> 16) + (~from & 0xffff) + (*to >> 16) + (*to & 0xffff);
    moved = true;
  };
  map(p + ip + 12, options_.src_ip);
  map(p + ip + 16, options_.dst_ip);
  if (!moved) return changed;

  put16(p + ip + 10, adjusted(get16(p + ip + 10), delta));
  // The TCP and UDP checksums cover the addresses (pseudo-header); only the first fragment holds them.
  if ((get16(p + ip + 6) & 0x1fff) != 0) return true;
  const size_t l4 = ip + (version_ihl & 0xf) * 4;
  if (protocol == proto_tcp && caplen >= l4 + 18) {
    put16(p + l4 + 16, adjusted(get16(p + l4 + 16), delta));
  } else if (protocol == proto_udp && caplen >= l4 + 8) {
    const uint16_t checksum = get16(p + l4 + 6);
    // 0 means the sender computed none; a computed 0 is sent as 0xffff (RFC 768).
    if (checksum != 0) {
      const uint16_t fixed = adjusted(checksum, delta);
      put16(p + l4 + 6, fixed ? fixed : 0xffff);
    }
  }
  return true;
}

namespace {

// Space-separated `OLD:NEW` maps, appended to `to`.
void add_maps(const Value& v, std::vector<AddressMap>& to) {
  std::istringstream words(v.text);
  try {
    for (std::string word; words >> word;) to.push_back(parse_address_map(word));
  } catch (const std::invalid_argument& e) {
    throw ParamError(v, e.what());
  }
}

RewriteOptions rewrite_options(const Node& node) {
  RewriteOptions options;
  // The maps of one side come before those of both: the first that matches applies.
  add_maps(param(node, "srcip"), options.src_ip);
  add_maps(param(node, "dstip"), options.dst_ip);
  add_maps(param(node, "ip"), options.both_ip);
  options.src_ip.insert(options.src_ip.end(), options.both_ip.begin(), options.both_ip.end());
  options.dst_ip.insert(options.dst_ip.end(), options.both_ip.begin(), options.both_ip.end());
  for (auto [name, mac] : {std::pair{"srcmac", &options.src_mac}, std::pair{"dstmac", &options.dst_mac}}) {
    const Value& v = param(node, name);
    if (!v.given) continue;
    *mac = packets::parse_mac(v.text);
    if (!*mac) throw ParamError(v, fmt::format("'{}' is not an Ethernet address (expected the form aa:bb:cc:dd:ee:ff)", v.text));
  }
  return options;
}

}  // namespace

RewriteStage::RewriteStage()
    : TransformStage(
          {"rewrite", StageKind::transform,
           "Rewrites addresses as tcprewrite does: IPv4 networks mapped onto others of the same prefix length "
           "(host bits kept; host bits written in a network are ignored, as tcprewrite ignores them), Ethernet "
           "addresses set. The IPv4 header checksum and, in a first fragment, the TCP or UDP checksum are updated "
           "for the new addresses (RFC 1624), so a packet valid before stays valid. `ip=` maps the sender and "
           "target of ARP requests and replies too (tcprewrite --pnat); other protocols, IPv6 and bytes beyond "
           "the capture are left alone.",
           {
               {"ip", ParamType::string, "",
                "`OLD:NEW` maps, space-separated, for source and destination addresses (and ARP's): "
                "`10.0.0.0/8:172.16.0.0/8` (10.1.2.3 becomes 172.1.2.3) or `10.0.0.1:192.168.1.1`; the first that "
                "matches applies"},
               {"srcip", ParamType::string, "", "the same, for source addresses only (tried before `ip`)"},
               {"dstip", ParamType::string, "", "the same, for destination addresses only (tried before `ip`)"},
               {"srcmac", ParamType::string, "", "set the Ethernet source address, `aa:bb:cc:dd:ee:ff`"},
               {"dstmac", ParamType::string, "", "set the Ethernet destination address"},
           }}) {}

void RewriteStage::check(const Node& node) const { rewrite_options(node); }

std::unique_ptr<Transform> RewriteStage::make(const Node& node, const TransformContext& context) const {
  try {
    return std::make_unique<AddressRewriter>(rewrite_options(node), context.linktype);
  } catch (const std::invalid_argument& e) {  // what the link type cannot carry
    throw ParamError(node.span, e.what());
  }
}

}  // namespace vei

VEI_STAGE(rewrite, vei::RewriteStage)
