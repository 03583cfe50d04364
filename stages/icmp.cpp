#include "stages/icmp.h"

#include <cmath>
#include <fmt/format.h>
#include <memory>
#include <optional>
#include <stdexcept>

#include "core/generator_source.h"
#include "core/host_macs.h"
#include "core/ip.h"
#include "core/option_error.h"
#include "core/packet_builder.h"

namespace vei {

namespace {

__extension__ typedef unsigned __int128 u128;

constexpr size_t max_payload = 65535 - 20 - 8;  // an IPv4 packet's 16-bit total length

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

[[noreturn]] void bad(std::string_view param, std::string_view what) {
  throw OptionError(param, fmt::format("icmp: {}: {}", param, what));
}

std::string_view trim(std::string_view s) {
  while (!s.empty() && s.front() == ' ') s.remove_prefix(1);
  while (!s.empty() && s.back() == ' ') s.remove_suffix(1);
  return s;
}

// The rate in packets per 1e9 s, after checking every option's range.
int64_t checked_nano_pps(const IcmpOptions& icmp) {
  if (icmp.count < 1) bad("count", fmt::format("{} requests: at least 1 is needed", icmp.count));
  if (icmp.ttl < 1 || icmp.ttl > 255) bad("ttl", fmt::format("{} is out of range (1..255)", icmp.ttl));
  if (icmp.ident < 0 || icmp.ident > 0xffff) bad("id", fmt::format("{} is out of range (0..65535)", icmp.ident));
  if (icmp.size < 0 || icmp.size > static_cast<int64_t>(max_payload))
    bad("size", fmt::format("{} bytes of payload do not fit an IPv4 packet (at most {})", icmp.size, max_payload));
  if (icmp.rtt_ns < 0) bad("rtt", "must not be negative");
  // Timestamps are whole nanoseconds: a faster rate would give requests equal times.
  if (!(icmp.rate <= 1e9)) bad("rate", "at most 1Gpps");
  const int64_t nano_pps = std::llround(icmp.rate * 1e9);
  if (nano_pps < 1) bad("rate", "at least 1e-9 pps");
  const u128 span = (u128(icmp.count - 1) * 1'000'000'000'000'000'000u + u128(nano_pps / 2)) / u128(nano_pps) +
                    u128(icmp.rtt_ns);
  if (span >= u128(pcap::ns_per_s) << 32)
    bad("count", fmt::format("{} requests at {} pps last longer than a pcap timestamp can cover", icmp.count, icmp.rate));

  return nano_pps;
}

packets::Mac parse_mac(std::string_view text, std::string_view param) {
  text = trim(text);
  const auto mac = packets::parse_mac(text);
  if (!mac) bad(param, fmt::format("'{}' is not an Ethernet address (expected the form aa:bb:cc:dd:ee:ff)", text));
  return *mac;
}

// The ranges conversations take (core/ip.h), in this stage's words and for IPv4 only.
IpRange ipv4_range(const Node& node, std::string_view name) {
  IpRange r;
  try {
    r = parse_ip_range(param(node, name).text, name);
  } catch (const OptionError& e) {
    throw OptionError(name, fmt::format("icmp: {}", e.what()));
  }
  if (r.first.v6)
    bad(name, fmt::format("'{}' is IPv6: ICMPv4 echoes go between IPv4 addresses", param(node, name).text));
  return r;
}

IcmpOptions icmp_options(const Node& node) {
  IcmpOptions icmp;
  icmp.src = ipv4_range(node, "src");
  icmp.dst = ipv4_range(node, "dst");
  icmp.rate = param(node, "rate").real;
  icmp.count = param(node, "count").integer;
  icmp.size = param(node, "size").integer;
  icmp.ttl = param(node, "ttl").integer;
  icmp.ident = param(node, "id").integer;
  icmp.replies = param(node, "replies").boolean;
  icmp.rtt_ns = param(node, "rtt").integer;
  if (const Value& v = param(node, "srcmac"); v.given) icmp.srcmac = parse_mac(v.text, "srcmac");
  if (const Value& v = param(node, "dstmac"); v.given) icmp.dstmac = parse_mac(v.text, "dstmac");
  return icmp;
}

}  // namespace

IcmpStage::IcmpStage()
    : SourceStage(
          {"icmp", StageKind::timeline_source,
           "Generates ICMP echo requests (and, with `replies=true`, the echo replies) with valid IPv4 and ICMP "
           "checksums, framed for the output's link type (Ethernet, raw IPv4 or Linux cooked). Request i is "
           "at start + i/rate exactly, start being the first source's first packet (+`at`, +`shift`); requests "
           "cycle through the src × dst pairs of the address ranges, sequence numbers count up from 1. Ethernet "
           "addresses not given are those the background capture shows for the IPs, else locally administered.",
           [] {
             std::vector<ParamSpec> params{
                 {"src", ParamType::string, "10.255.0.1", "source IPv4 address, or a range `10.0.0.1-10.0.0.9` or `10.0.0.0/24`"},
                 {"dst", ParamType::string, "", "destination IPv4 address, or a range `10.0.0.1-10.0.0.9` or `10.0.0.0/24`", {}, false, true},
                 {"rate", ParamType::rate, "1pps", "echo requests per second"},
                 {"count", ParamType::integer, "10", "number of echo requests"},
                 {"size", ParamType::size, "56", "ICMP payload bytes of each packet"},
                 {"ttl", ParamType::integer, "64", "IPv4 time to live (1..255)"},
                 {"id", ParamType::integer, "30309", "ICMP identifier, 0..65535 (30309 is 0x7665, \"ve\")"},
             };
             for (auto& p : placement_params("place the first request this long after the first source's first packet", "first"))
               params.push_back(std::move(p));
             params.push_back({"replies", ParamType::boolean, "false", "also generate each request's echo reply, from dst to src"});
             params.push_back({"rtt", ParamType::duration, "1ms", "time from a request to its reply"});
             params.push_back({"srcmac", ParamType::string, "",
                               "source Ethernet address `aa:bb:cc:dd:ee:ff` (default: the background's for that IP, else "
                               "02:00 + the IP)"});
             params.push_back({"dstmac", ParamType::string, "", "destination Ethernet address (default: as for srcmac)"});
             return params;
           }()}) {}

void IcmpStage::check(const Node& node) const { checked_nano_pps(icmp_options(node)); }

std::unique_ptr<TimelineSource> IcmpStage::open(const Node& node, SourceOptions options, const SourceContext& context) const {
  if (options.name.empty()) options.name = node.label.empty() ? std::string(name()) : node.label;
  // The background frames the output; generated as the background, icmp speaks Ethernet.
  const uint32_t linktype = context.background_linktype.value_or(1);
  if (!packets::supported_linktype(linktype))
    throw std::runtime_error(fmt::format("icmp: cannot frame packets for the output's link type {} ({}); supported: "
                                         "EN10MB (1), RAW (101), IPV4 (228), LINUX_SLL (113)",
                                         pcap::linktype_name(linktype), linktype));
  const IcmpOptions icmp = icmp_options(node);
  const int64_t nano_pps = checked_nano_pps(icmp);
  auto macs = std::make_shared<HostMacs>();
  const std::string& background = context.background_path;
  if (linktype == 1 && !background.empty() && background != "-" && (!icmp.srcmac || !icmp.dstmac))
    macs->learn(background, [&](const IpAddr& ip) { return icmp.src.contains(ip) || icmp.dst.contains(ip); });

  // Request i (and its reply) cycles through the src × dst pairs, dst varying fastest.
  auto build = [icmp, linktype, macs](Conversation& c, uint64_t i) {
    const u128 pair = u128(i) % (u128(icmp.src.size()) * icmp.dst.size());
    const IpAddr src_ip = icmp.src.at(static_cast<uint64_t>(pair / icmp.dst.size()));
    const IpAddr dst_ip = icmp.dst.at(static_cast<uint64_t>(pair % icmp.dst.size()));
    const auto mac = [&](const std::optional<packets::Mac>& given, const IpAddr& ip) { return given ? *given : macs->of(ip); };
    const packets::Endpoint src{mac(icmp.srcmac, src_ip), src_ip.v4()};
    const packets::Endpoint dst{mac(icmp.dstmac, dst_ip), dst_ip.v4()};
    // Sequence numbers start at 1 and wrap like ping's 16-bit counter.
    const auto sequence = static_cast<uint16_t>(i + 1);
    const auto ident = static_cast<uint16_t>(icmp.ident);
    const auto ttl = static_cast<uint8_t>(icmp.ttl);
    const auto size = static_cast<size_t>(icmp.size);
    c.add(0, packets::add_icmp_echo(c.bytes, linktype, src, dst, ident, sequence, ttl, size, false));
    if (icmp.replies)
      c.add(icmp.rtt_ns, packets::add_icmp_echo(c.bytes, linktype, dst, src, ident, sequence, ttl, size, true));
  };
  return std::make_unique<GeneratorSource>(linktype, static_cast<uint64_t>(icmp.count), nano_pps, std::move(build),
                                           std::move(options));
}

}  // namespace vei

VEI_STAGE(icmp, vei::IcmpStage)
