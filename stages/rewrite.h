// Rewrites addresses as tcprewrite's --srcipmap/--dstipmap/--pnat and --enet-smac/--enet-dmac do:
// IPv4 addresses by prefix, Ethernet addresses outright, with the checksums that cover the
// addresses updated to match.
#pragma once

#include <cstdint>
#include <optional>
#include <string_view>
#include <vector>

#include "core/packet_builder.h"
#include "core/transform.h"
#include "pipeline/stage.h"

namespace vei {

// Host byte order; from_net and to_net have no bits outside mask. An address in from_net/mask
// takes to_net's network bits and keeps its own host bits.
struct AddressMap {
  uint32_t from_net = 0;
  uint32_t to_net = 0;
  uint32_t mask = 0;
};

// `10.1.0.0/16:172.16.0.0/16` (the same prefix length on both sides) or `10.0.0.1:10.9.9.9` (/32).
// Throws std::invalid_argument naming the text and what is wrong with it.
AddressMap parse_address_map(std::string_view text);

// The initialisers let designated initialisers name only some members without a warning.
struct RewriteOptions {
  std::optional<packets::Mac> src_mac{}, dst_mac{};  // Ethernet link type only
  std::vector<AddressMap> src_ip{}, dst_ip{};        // IPv4; the first map that matches wins
  // Those of src_ip and dst_ip given for both directions (`ip=`, tcprewrite's --pnat): the only ones
  // tcprewrite applies to ARP's sender and target addresses.
  std::vector<AddressMap> both_ip{};
};

class AddressRewriter final : public Transform {
 public:
  // Throws std::invalid_argument when the link type cannot carry what is asked: Ethernet addresses
  // need EN10MB (1); IPv4 addresses are found in EN10MB, RAW (101), IPV4 (228), LINUX_SLL (113),
  // LINUX_SLL2 (276) and BSD loopback (NULL 0, LOOP 108), ARP's in EN10MB and the Linux cooked ones.
  AddressRewriter(RewriteOptions options, uint32_t linktype);

  TransformStats apply(Batch& batch) const override;

 private:
  // True when it changed any of the packet's `caplen` bytes (the only ones it reads or writes).
  bool rewrite(std::byte* p, uint32_t caplen) const;

  RewriteOptions options_;
  uint32_t linktype_;
};

class RewriteStage final : public TransformStage {
 public:
  RewriteStage();
  void check(const Node& node) const override;
  std::unique_ptr<Transform> make(const Node& node, const TransformContext& context) const override;
};

}  // namespace vei
