#include "stages/snaplen.h"

namespace vei {

TransformStats SnaplenCutter::apply(Batch& batch) const {
  TransformStats stats;
  for (auto& r : batch.records) {
    if (r.caplen <= length_) continue;
    r.caplen = length_;
    ++stats.changed;
  }
  if (stats.changed) compact(batch);
  return stats;
}

SnaplenStage::SnaplenStage()
    : TransformStage({"snaplen", StageKind::transform,
                      "Keeps at most this many captured bytes of each packet, as `editcap -s` does; the original length "
                      "stays in the record.",
                      {
                          {"length", ParamType::size, "", "captured bytes kept, at least 1, e.g. `96`", {}, true, true},
                      }}) {}

void SnaplenStage::check(const Node& node) const {
  const Value& length = param(node, "length");
  check_range(length, "snaplen", 1, UINT32_MAX, "bytes");
}

std::unique_ptr<Transform> SnaplenStage::make(const Node& node, const TransformContext&) const {
  return std::make_unique<SnaplenCutter>(static_cast<uint32_t>(param(node, "length").integer));
}

}  // namespace vei

VEI_STAGE(snaplen, vei::SnaplenStage)
