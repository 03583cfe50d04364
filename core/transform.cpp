#include "core/transform.h"

#include <cstring>

namespace vei {

void compact(Batch& batch) {
  size_t at = 0;
  for (auto& r : batch.records) {
    // Records only shrink or go, so each moves down, never over one still to move.
    if (r.offset != at) std::memmove(batch.data() + at, batch.data() + r.offset, record_header_size + r.caplen);
    if (batch.raw_is_output) std::memcpy(batch.data() + at + 8, &r.caplen, sizeof r.caplen);
    r.offset = static_cast<uint32_t>(at);
    at += record_header_size + r.caplen;
  }
  batch.used = at;
}

}  // namespace vei
