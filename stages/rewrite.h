// Rewrites addresses as tcprewrite's --srcipmap/--dstipmap/--pnat and --enet-smac/--enet-dmac do:
// IPv4 and IPv6 addresses by prefix (core/address_map.h), Ethernet addresses outright, with the
// checksums that cover the addresses updated to match.
#pragma once

#include <cstdint>
#include <optional>
#include <vector>

#include "core/address_map.h"
#include "core/packet_builder.h"
#include "core/transform.h"
#include "pipeline/stage.h"

namespace vei {

// The initialisers let designated initialisers name only some members without a warning.
struct RewriteOptions {
  std::optional<packets::Mac> src_mac{}, dst_mac{};  // Ethernet link type only
  std::vector<AddressMap> src_ip{}, dst_ip{};        // either version; the first map that matches wins
  // Those of src_ip and dst_ip given for both directions (`ip=`, tcprewrite's --pnat): the only ones
  // tcprewrite applies to ARP's sender and target addresses.
  std::vector<AddressMap> both_ip{};
};

class AddressRewriter final : public Transform {
 public:
  // Throws std::invalid_argument when the link type cannot carry what is asked: Ethernet addresses
  // need EN10MB (1); IP addresses are found in EN10MB, RAW (101), LINUX_SLL (113), LINUX_SLL2 (276),
  // BSD loopback (NULL 0, LOOP 108), and IPV4 (228) or IPV6 (229) by version; ARP's in EN10MB and
  // the Linux cooked ones.
  AddressRewriter(RewriteOptions options, uint32_t linktype);

  TransformStats apply(Batch& batch) const override;

 private:
  // True when it changed any of the packet's `caplen` bytes (the only ones it reads or writes).
  bool rewrite(std::byte* p, uint32_t caplen) const;
  // The same for the IPv4 or IPv6 packet at `ip`.
  bool rewrite_ipv4(std::byte* p, uint32_t caplen, size_t ip) const;
  bool rewrite_ipv6(std::byte* p, uint32_t caplen, size_t ip) const;

  RewriteOptions options_;
  AddressMaps src_, dst_, both_;
  uint32_t linktype_;
};

class RewriteStage final : public TransformStage {
 public:
  RewriteStage();
  void check(const Node& node) const override;
  std::unique_ptr<Transform> make(const Node& node, const TransformContext& context) const override;
};

}  // namespace vei
