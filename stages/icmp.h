// The `icmp` generator: ICMP echo requests (and optionally their replies) on a timeline of its own
// that starts at 0, so that the engine places it like a capture (`at=`, `shift=`, `rebase=`).
#pragma once

#include <optional>
#include <string>
#include <string_view>

#include "core/host_macs.h"
#include "core/ip.h"
#include "core/packet_builder.h"
#include "core/timeline_source.h"
#include "pipeline/stage.h"

namespace vei {

// `aa:bb:cc:dd:ee:ff`; throws OptionError naming `param` when malformed.
packets::Mac parse_mac(std::string_view text, std::string_view param);

// Wide types, so that the source itself checks every range and names the parameter.
struct IcmpOptions {
  IpRange src{IpAddr::v4(0x0aff0001), IpAddr::v4(0x0aff0001)};  // IPv4 only
  IpRange dst;
  double rate = 1;  // requests per second
  int64_t count = 10;  // requests
  int64_t size = 56;  // ICMP payload bytes
  int64_t ttl = 64;
  int64_t ident = 0x7665;
  bool replies = false;
  int64_t rtt_ns = 1'000'000;
  std::optional<packets::Mac> srcmac, dstmac;
};

class IcmpSource final : public TimelineSource {
 public:
  // `linktype` is the output's. MAC addresses not given are learned from `background_path` (a
  // capture; empty or `-` for none) when the link type is Ethernet. Throws std::runtime_error for
  // an unsupported link type or an option out of range.
  IcmpSource(IcmpOptions icmp, uint32_t linktype, const std::string& background_path, SourceOptions options);

  void fill(Batch& batch) override;

 private:
  // Own time of request i: i / rate, rounded to the nanosecond from the index, so nothing drifts.
  int64_t request_time(uint64_t i) const;
  std::vector<std::byte> build(uint64_t i, bool reply) const;
  packets::Mac mac_of(const IpAddr& ip, const std::optional<packets::Mac>& given) const;

  IcmpOptions icmp_;
  int64_t nano_pps_;  // the rate in packets per 1e9 s: an integer, for exact times
  HostMacs macs_;
  uint64_t next_request_ = 0;
  uint64_t next_reply_ = 0;
};

class IcmpStage final : public SourceStage {
 public:
  IcmpStage();
  void check(const Node& node) const override;
  std::unique_ptr<TimelineSource> open(const Node& node, SourceOptions options,
                                       const SourceContext& context) const override;
};

}  // namespace vei
