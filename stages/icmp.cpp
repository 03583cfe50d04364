#include "stages/icmp.h"

#include "core/option_error.h"

#include <cmath>
#include <fmt/format.h>
#include <stdexcept>

namespace vei {

namespace {

__extension__ typedef unsigned __int128 u128;

constexpr size_t max_payload = 65535 - 20 - 8;  // an IPv4 packet's 16-bit total length

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

}  // namespace

packets::Mac parse_mac(std::string_view text, std::string_view param) {
  text = trim(text);
  const auto mac = packets::parse_mac(text);
  if (!mac) bad(param, fmt::format("'{}' is not an Ethernet address (expected the form aa:bb:cc:dd:ee:ff)", text));
  return *mac;
}

IcmpSource::IcmpSource(IcmpOptions icmp, uint32_t linktype, const std::string& background_path,
                       SourceOptions options)
    : TimelineSource(std::move(options)), icmp_(std::move(icmp)) {
  if (!packets::supported_linktype(linktype))
    throw std::runtime_error(fmt::format("icmp: cannot frame packets for the output's link type {} ({}); supported: "
                                         "EN10MB (1), RAW (101), IPV4 (228), LINUX_SLL (113)",
                                         pcap::linktype_name(linktype), linktype));
  nano_pps_ = checked_nano_pps(icmp_);

  info_.linktype = linktype;
  info_.precision = pcap::Precision::ns;
  info_.first_ts_ns = 0;
  info_.own_times = false;
  if (linktype == 1 && !background_path.empty() && background_path != "-" && (!icmp_.srcmac || !icmp_.dstmac))
    macs_.learn(background_path, [this](const IpAddr& ip) {
      return icmp_.src.contains(ip) || icmp_.dst.contains(ip);
    });
}

packets::Mac IcmpSource::mac_of(const IpAddr& ip, const std::optional<packets::Mac>& given) const {
  return given ? *given : macs_.of(ip);
}

int64_t IcmpSource::request_time(uint64_t i) const {
  return static_cast<int64_t>((u128(i) * 1'000'000'000'000'000'000u + u128(nano_pps_ / 2)) / u128(nano_pps_));
}

std::vector<std::byte> IcmpSource::build(uint64_t i, bool reply) const {
  // Requests cycle through the src × dst pairs, dst varying fastest.
  const u128 pair = u128(i) % (u128(icmp_.src.size()) * icmp_.dst.size());
  const IpAddr src_ip = icmp_.src.at(static_cast<uint64_t>(pair / icmp_.dst.size()));
  const IpAddr dst_ip = icmp_.dst.at(static_cast<uint64_t>(pair % icmp_.dst.size()));
  const packets::Endpoint src{mac_of(src_ip, icmp_.srcmac), src_ip.v4()};
  const packets::Endpoint dst{mac_of(dst_ip, icmp_.dstmac), dst_ip.v4()};
  // Sequence numbers start at 1 and wrap like ping's 16-bit counter.
  const auto sequence = static_cast<uint16_t>(i + 1);
  const auto ident = static_cast<uint16_t>(icmp_.ident);
  const auto ttl = static_cast<uint8_t>(icmp_.ttl);
  const auto size = static_cast<size_t>(icmp_.size);
  return reply ? packets::icmp_echo(info_.linktype, dst, src, ident, sequence, ttl, size, true)
               : packets::icmp_echo(info_.linktype, src, dst, ident, sequence, ttl, size, false);
}

void IcmpSource::fill(Batch& batch) {
  batch.clear();
  batch.source = options_.rank;
  const auto count = static_cast<uint64_t>(icmp_.count);
  for (;;) {
    // The reply of an earlier request goes first when it is due no later than the next request.
    const bool reply_due = icmp_.replies && next_reply_ < next_request_;
    const int64_t reply_time = reply_due ? request_time(next_reply_) + icmp_.rtt_ns : INT64_MAX;
    const bool reply = reply_due && (next_request_ == count || reply_time <= request_time(next_request_));
    if (!reply && next_request_ == count) break;
    const uint64_t i = reply ? next_reply_ : next_request_;
    if (!append_generated(batch, build(i, reply), reply ? reply_time : request_time(i))) break;
    ++(reply ? next_reply_ : next_request_);
  }
  // Headers are written here in the output format, and a dropped record leaves no gap.
  batch.raw_is_output = true;
  if (next_request_ == count && (!icmp_.replies || next_reply_ == count)) {
    batch.last = true;
    finish();
  }
}

// ---- the stage ---------------------------------------------------------------------------------

namespace {

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
  checked_nano_pps(icmp);
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

void IcmpStage::check(const Node& node) const { icmp_options(node); }

std::unique_ptr<TimelineSource> IcmpStage::open(const Node& node, SourceOptions options, const SourceContext& context) const {
  if (options.name.empty()) options.name = node.label.empty() ? std::string(name()) : node.label;
  // The background frames the output; generated as the background, icmp speaks Ethernet.
  const uint32_t linktype = context.background_linktype.value_or(1);
  return std::make_unique<IcmpSource>(icmp_options(node), linktype, context.background_path, std::move(options));
}

}  // namespace vei

VEI_STAGE(icmp, vei::IcmpStage)
