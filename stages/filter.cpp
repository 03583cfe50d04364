#include "stages/filter.h"

#include <algorithm>

namespace vei {

TransformStats PacketFilter::apply(Batch& batch) const {
  TransformStats stats;
  stats.dropped = remove_records(batch, [&](const Record& r) {
    return !bpf_.matches(batch.data() + r.offset + record_header_size, r.caplen, r.len);
  });
  return stats;
}

FilterStage::FilterStage()
    : TransformStage({"filter", StageKind::transform,
                      "Keeps only the packets a BPF expression matches. Placed after a source, it sees that source's "
                      "packets; after the merge, every packet, events included (a source's own `filter=` is the same "
                      "for that source alone).",
                      {
                          {"expression", ParamType::string, "", "BPF expression (tcpdump syntax), e.g. `tcp port 80`", {}, true, true},
                      }}) {}

std::unique_ptr<Transform> FilterStage::make(const Node& node, const TransformContext& context) const {
  const Value& expression = param(node, "expression");
  if (context.mixed_orders && reads_writer_order(context.linktype))
    throw ParamError(expression,
                     "the merged captures were written in both byte orders, and a filter for their link type reads "
                     "the address family in one of them",
                     "filter each source before the merge instead: its `filter=`, or `filter(...)` right after it");
  try {
    return std::make_unique<PacketFilter>(expression.text, context);
  } catch (const std::runtime_error& e) {
    throw ParamError(expression, e.what(), "filters use tcpdump's syntax: pcap-filter(7)");
  }
}

}  // namespace vei

VEI_STAGE(filter, vei::FilterStage)
