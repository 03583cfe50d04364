// What the graph asks of a transform: edit a batch's packets in place (their bytes, their captured
// length) or drop some. A transform works on one packet at a time and keeps no state between
// packets, so the engine may run it wherever a packet enters the graph, on any thread, and the
// result is the same as running it on the merged stream.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>

#include "core/batch.h"

namespace vei {

struct TransformStats {
  uint64_t changed = 0;  // packets edited
  uint64_t dropped = 0;  // packets removed
};

class Transform {
 public:
  virtual ~Transform() = default;
  // Edits the records of `batch` (link type given at construction). A transform that shortens or
  // removes records leaves the batch compacted (see compact()). Returns what it did to this batch.
  virtual TransformStats apply(Batch& batch) const = 0;
  // The most bytes of a packet it lets through, if it cuts them: a file's header declares it.
  virtual std::optional<uint32_t> max_caplen() const { return std::nullopt; }
};

// Moves the records' bytes down so that they lie back to back again after some were cut short or
// removed, as the sinks and the merger's block copies need. Headers already in the output's format
// (batch.raw_is_output) get the new captured length, so such a batch can still go out as it is.
void compact(Batch& batch);

}  // namespace vei
