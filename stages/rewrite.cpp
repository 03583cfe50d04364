#include "stages/rewrite.h"

#include <fmt/format.h>

#include <algorithm>
#include <sstream>
#include <cstring>
#include <stdexcept>
#include <string>

#include "core/pcap_format.h"

namespace vei {

namespace {

constexpr uint16_t ethertype_ipv4 = 0x0800, ethertype_ipv6 = 0x86dd, ethertype_arp = 0x0806;
constexpr size_t ipv4_header_size = 20, ipv6_header_size = 40;
constexpr uint8_t proto_tcp = 6, proto_udp = 17, proto_icmpv6 = 58, proto_mobility = 135;

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
  constexpr uint16_t mpls = 0x8847, mpls_multicast = 0x8848;
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
      if (nibble == 4 || nibble == 6) return NetworkLayer{layer.at, nibble == 4 ? ethertype_ipv4 : ethertype_ipv6};
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
    case 108: {
      // BSD loopback: the address family in the byte order of the host that wrote it (NULL) or in
      // network order (LOOP). AF_INET is 2 on every system; AF_INET6 is 24 (NetBSD, OpenBSD), 28
      // (FreeBSD) or 30 (macOS), the values Wireshark's null dissector takes.
      if (caplen < 4) return std::nullopt;
      uint32_t family = get32(p);
      if (family > 0xffff) family = __builtin_bswap32(family);
      if (family == 2) return NetworkLayer{4, ethertype_ipv4};
      if (family == 24 || family == 28 || family == 30) return NetworkLayer{4, ethertype_ipv6};
      return std::nullopt;
    }
    case 228:
      return NetworkLayer{0, ethertype_ipv4};
    case 229:
      return NetworkLayer{0, ethertype_ipv6};
    default:  // RAW (101): the version tells.
      if (caplen < 1) return std::nullopt;
      return NetworkLayer{0, std::to_integer<unsigned>(p[0]) >> 4 == 6 ? ethertype_ipv6 : ethertype_ipv4};
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

// tcprewrite's rewrite_iparp: an IPv4 request's or reply's sender and target addresses, each
// through the maps that apply to both directions (--pnat, `ip=`); ARP has no checksum.
bool rewrite_arp(std::byte* p, uint32_t caplen, size_t arp, const AddressMaps& maps) {
  if (caplen < arp + 8 || get16(p + arp + 2) != ethertype_ipv4 || p[arp + 5] != std::byte{4})
    return false;
  if (const uint16_t op = get16(p + arp + 6); op != 1 && op != 2) return false;
  const auto hardware = std::to_integer<size_t>(p[arp + 4]);
  bool changed = false;
  for (size_t at : {arp + 8 + hardware, arp + 8 + 2 * hardware + 4}) {
    if (caplen < at + 4) break;
    const uint32_t from = get32(p + at);
    if (const auto to = maps.map(from); to && *to != from) {
      put32(p + at, *to);
      changed = true;
    }
  }
  return changed;
}

// Where `linktype` shows IP packets of that version (network_layer finds them).
bool carries_ip(uint32_t linktype, bool v6) {
  return linktype == 0 || linktype == 108 || linktype == 276 || packets::supported_linktype(linktype, v6);
}

// RFC 1624 eqn 3 on the checksum at `at`, when the capture holds it. UDP's 0 means the sender
// computed none and stays so; a computed 0 is sent as 0xffff (RFC 768).
void adjust_at(std::byte* p, uint32_t caplen, size_t at, uint32_t delta, bool udp) {
  if (caplen < at + 2) return;
  const uint16_t checksum = get16(p + at);
  if (udp && checksum == 0) return;
  const uint16_t fixed = adjusted(checksum, delta);
  put16(p + at, udp && fixed == 0 ? 0xffff : fixed);
}

// The upper-layer header of an IPv6 packet that has a checksum over the addresses (TCP, UDP,
// ICMPv6, the Mobility Header: RFC 8200 8.1, RFC 6275 6.1), past the extension headers.
struct UpperLayer {
  size_t at;
  uint8_t protocol;
  // False behind a Routing header with segments left: the pseudo-header's destination is then the
  // final one, the header's last address, not the packet's (RFC 8200 8.1).
  bool covers_destination;
};

// Walks hop-by-hop, routing, destination options, AH (its length in 4-byte units, RFC 4302) and a
// first fragment's header (a later fragment holds no upper-layer header). ESP encrypts what
// follows, and a tunnelled packet has checksums over its own addresses: nothing is found there, nor
// past the capture. Every step moves on by at least 8 bytes, so the loop ends.
std::optional<UpperLayer> upper_layer(const std::byte* p, uint32_t caplen, size_t ip) {
  constexpr uint8_t hop_by_hop = 0, routing = 43, fragment = 44, auth = 51, destination = 60;
  auto next = std::to_integer<uint8_t>(p[ip + 6]);
  size_t at = ip + ipv6_header_size;
  bool routed = false;
  for (;;) {
    switch (next) {
      case proto_tcp:
      case proto_udp:
      case proto_icmpv6:
      case proto_mobility:
        return UpperLayer{at, next, !routed};
      case hop_by_hop:
      case routing:
      case destination:
      case auth:
      {
        if (caplen < at + 4) return std::nullopt;
        const auto length = std::to_integer<size_t>(p[at + 1]);
        routed |= next == routing && p[at + 3] != std::byte{0};
        const size_t size = next == auth ? (length + 2) * 4 : (length + 1) * 8;
        next = std::to_integer<uint8_t>(p[at]);
        at += size;
        break;
      }
      case fragment:
        if (caplen < at + 8 || (get16(p + at + 2) & 0xfff8) != 0) return std::nullopt;
        next = std::to_integer<uint8_t>(p[at]);
        at += 8;
        break;
      default:
        return std::nullopt;
    }
  }
}

}  // namespace

AddressRewriter::AddressRewriter(RewriteOptions options, uint32_t linktype)
    : options_(std::move(options)),
      src_(options_.src_ip),
      dst_(options_.dst_ip),
      both_(options_.both_ip),
      linktype_(linktype) {
  if ((options_.src_mac || options_.dst_mac) && linktype != 1)
    throw std::invalid_argument(fmt::format("rewrite: Ethernet addresses can only be set on EN10MB (1) packets, "
                                            "not on link type {} ({})",
                                            pcap::linktype_name(linktype), linktype));
  for (const bool v6 : {false, true}) {
    const bool asked = v6 ? src_.has_v6() || dst_.has_v6() : src_.has_v4() || dst_.has_v4();
    if (asked && !carries_ip(linktype, v6))
      throw std::invalid_argument(fmt::format("rewrite: cannot find IPv{} addresses in link type {} ({}); supported: "
                                              "EN10MB (1), RAW (101), {}, LINUX_SLL (113), LINUX_SLL2 (276), NULL (0), LOOP (108)",
                                              v6 ? 6 : 4, pcap::linktype_name(linktype), linktype,
                                              v6 ? "IPV6 (229)" : "IPV4 (228)"));
  }
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
  if (!layer) return changed;
  switch (layer->type) {
    case ethertype_arp:
      return rewrite_arp(p, caplen, layer->at, both_) || changed;
    case ethertype_ipv4:
      return rewrite_ipv4(p, caplen, layer->at) || changed;
    case ethertype_ipv6:
      return rewrite_ipv6(p, caplen, layer->at) || changed;
    default:
      return changed;
  }
}

bool AddressRewriter::rewrite_ipv4(std::byte* p, uint32_t caplen, size_t ip) const {
  if (caplen < ip + ipv4_header_size) return false;
  const auto version_ihl = std::to_integer<unsigned>(p[ip]);
  const auto protocol = std::to_integer<uint8_t>(p[ip + 9]);
  if (version_ihl >> 4 != 4 || (version_ihl & 0xf) < 5) return false;

  bool moved = false;
  uint32_t delta = 0;
  auto map = [&](std::byte* field, const AddressMaps& maps) {
    const uint32_t from = get32(field);
    const auto to = maps.map(from);
    if (!to || *to == from) return;
    put32(field, *to);
    delta += (~from >> 16) + (~from & 0xffff) + (*to >> 16) + (*to & 0xffff);
    moved = true;
  };
  map(p + ip + 12, src_);
  map(p + ip + 16, dst_);
  if (!moved) return false;

  put16(p + ip + 10, adjusted(get16(p + ip + 10), delta));
  // The TCP and UDP checksums cover the addresses (pseudo-header); only the first fragment holds them.
  if ((get16(p + ip + 6) & 0x1fff) != 0) return true;
  const size_t l4 = ip + (version_ihl & 0xf) * 4;
  if (protocol == proto_tcp) adjust_at(p, caplen, l4 + 16, delta, false);
  if (protocol == proto_udp) adjust_at(p, caplen, l4 + 6, delta, true);
  return true;
}

bool AddressRewriter::rewrite_ipv6(std::byte* p, uint32_t caplen, size_t ip) const {
  if (caplen < ip + ipv6_header_size || std::to_integer<unsigned>(p[ip]) >> 4 != 6) return false;
  uint32_t source = 0, destination = 0;
  const bool moved = src_.map_v6(p + ip + 8, source) | dst_.map_v6(p + ip + 24, destination);
  if (!moved) return false;
  // tcprewrite 4.4.3 (edit_packet.c ipv6_addr_csum_replace) updates TCP and UDP only, and stops at
  // a fragment header; ICMPv6 and Mobility checksums, and a first fragment's, are left wrong there.
  const auto upper = upper_layer(p, caplen, ip);
  if (!upper) return true;
  const uint32_t delta = source + (upper->covers_destination ? destination : 0);
  switch (upper->protocol) {
    case proto_tcp:
      adjust_at(p, caplen, upper->at + 16, delta, false);
      break;
    case proto_udp:
      adjust_at(p, caplen, upper->at + 6, delta, true);
      break;
    case proto_icmpv6:
      adjust_at(p, caplen, upper->at + 2, delta, false);
      break;
    default:  // the Mobility Header
      adjust_at(p, caplen, upper->at + 4, delta, false);
  }
  return true;
}

namespace {

// Parameter `name`'s space-separated `OLD:NEW` maps, appended to `to`.
void add_maps(const Node& node, const char* name, std::vector<AddressMap>& to) {
  const Value& v = param(node, name);
  std::istringstream words(v.text);
  try {
    for (std::string word; words >> word;) to.push_back(parse_address_map(word));
  } catch (const std::invalid_argument& e) {
    throw ParamError(v, fmt::format("{}: {}", name, e.what()));
  }
}

RewriteOptions rewrite_options(const Node& node) {
  RewriteOptions options;
  // The maps of one side come before those of both: the first that matches applies.
  add_maps(node, "srcip", options.src_ip);
  add_maps(node, "dstip", options.dst_ip);
  add_maps(node, "ip", options.both_ip);
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
           "Rewrites addresses as tcprewrite does: IPv4 and IPv6 networks mapped onto others of the same version "
           "and prefix length (host bits kept; host bits written in a network are ignored, as tcprewrite ignores "
           "them), Ethernet addresses set. The IPv4 header checksum and, in a first fragment, the checksums that "
           "cover the addresses (TCP, UDP; for IPv6 also ICMPv6 and the Mobility Header, past the extension "
           "headers) are updated for the new addresses (RFC 1624), so a packet valid before stays valid. `ip=` "
           "maps the sender and target of ARP requests and replies too (tcprewrite --pnat); other protocols, the "
           "packet an ICMP error quotes, tunnelled packets, what ESP encrypts and bytes beyond the capture are "
           "left alone.",
           {
               {"ip", ParamType::string, "",
                "`OLD:NEW` maps, space-separated, for source and destination addresses (and ARP's): "
                "`10.0.0.0/8:172.16.0.0/8` (10.1.2.3 becomes 172.1.2.3), `10.0.0.1:192.168.1.1`, "
                "`[2001:db8::/32]:[fd00::/32]` (IPv6 as tcprewrite writes it; without brackets where only one colon "
                "splits the text into two networks); the first that matches applies"},
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
