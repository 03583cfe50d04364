#include "stages/filter.h"

#include <algorithm>

namespace vei {

TransformStats PacketFilter::apply(Batch& batch) const {
  const auto kept = std::remove_if(batch.records.begin(), batch.records.end(), [&](const Record& r) {
    return !bpf_.matches(batch.data() + r.offset + record_header_size, r.caplen, r.len);
  });
  TransformStats stats;
  stats.dropped = static_cast<uint64_t>(batch.records.end() - kept);
  if (stats.dropped) {
    batch.records.erase(kept, batch.records.end());
    compact(batch);
  }
  return stats;
}

}  // namespace vei
