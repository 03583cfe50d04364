#include "pipeline/source_factory.h"

#include <fmt/format.h>

#include <stdexcept>

#include "stages/icmp.h"

namespace vei {

const Value& param(const Node& node, std::string_view name) {
  static const Value absent;
  const Value* v = node.find(name);
  return v ? *v : absent;
}

namespace {

std::unique_ptr<TimelineSource> make_icmp(const Node& node, SourceOptions options, const SourceContext& context) {
  IcmpOptions icmp;
  icmp.src = parse_ipv4_range(param(node, "src").text, "src");
  icmp.dst = parse_ipv4_range(param(node, "dst").text, "dst");
  icmp.rate = param(node, "rate").real;
  icmp.count = param(node, "count").integer;
  icmp.size = param(node, "size").integer;
  icmp.ttl = param(node, "ttl").integer;
  icmp.ident = param(node, "id").integer;
  icmp.replies = param(node, "replies").boolean;
  icmp.rtt_ns = param(node, "rtt").integer;
  if (const Value& v = param(node, "srcmac"); v.given) icmp.srcmac = parse_mac(v.text, "srcmac");
  if (const Value& v = param(node, "dstmac"); v.given) icmp.dstmac = parse_mac(v.text, "dstmac");
  if (options.name.empty()) options.name = node.label.empty() ? "icmp" : node.label;
  // The background frames the output; generated as the background, icmp speaks Ethernet.
  const uint32_t linktype = context.background_linktype.value_or(1);
  return std::make_unique<IcmpSource>(std::move(icmp), linktype, context.background_path, std::move(options));
}

}  // namespace

std::unique_ptr<TimelineSource> make_timeline_source(const Node& node, SourceOptions options,
                                                     const SourceContext& context) {
  const std::string_view stage = node.spec->name;
  options.filter = param(node, "filter").text;
  options.clamp_disorder = param(node, "disorder").text != "keep";
  if (stage == "pcap") return open_capture(param(node, "file").text, std::move(options));
  if (stage == "icmp") return make_icmp(node, std::move(options), context);
  throw std::logic_error(fmt::format("no builder for source stage '{}'", stage));
}

}  // namespace vei
