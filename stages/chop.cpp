#include "stages/chop.h"

#include <algorithm>

namespace vei {

TransformStats Chopper::apply(Batch& batch) const {
  TransformStats stats;
  for (auto& r : batch.records) {
    if (r.caplen == 0) continue;
    // A packet shorter than what is chopped keeps nothing, as with editcap.
    r.caplen -= std::min(bytes_, r.caplen);
    ++stats.changed;
  }
  if (stats.changed) compact(batch);
  return stats;
}

ChopStage::ChopStage()
    : TransformStage({"chop", StageKind::transform,
                      "Removes the last N captured bytes of each packet, as `editcap -C -N` does (a packet shorter than "
                      "N keeps none); the original length stays in the record, as with `snaplen`. Use it to cut "
                      "trailers, such as an FCS a capture kept.",
                      {
                          {"bytes", ParamType::size, "", "bytes removed from the end of each packet, e.g. `4`", {}, true, true},
                      }}) {}

void ChopStage::check(const Node& node) const {
  const Value& bytes = param(node, "bytes");
  check_range(bytes, "chop", 1, UINT32_MAX, "bytes");
}

std::unique_ptr<Transform> ChopStage::make(const Node& node, const TransformContext&) const {
  return std::make_unique<Chopper>(static_cast<uint32_t>(param(node, "bytes").integer));
}

}  // namespace vei

VEI_STAGE(chop, vei::ChopStage)
