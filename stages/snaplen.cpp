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

}  // namespace vei
