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

// Removes the records `drop` says so of, with their annotations, and compacts what stays.
// Returns how many went.
template <typename Drop>
size_t remove_records(Batch& batch, Drop drop) {
  size_t kept = 0;
  size_t a = 0, kept_a = 0;  // annotations read, kept
  auto& notes = batch.annotations;
  for (size_t i = 0; i < batch.records.size(); ++i) {
    const bool gone = drop(batch.records[i]);
    if (a < notes.size() && notes[a].index == i) {
      if (!gone) notes[kept_a++] = {static_cast<uint32_t>(kept), notes[a].at, notes[a].size};
      ++a;
    }
    if (!gone) batch.records[kept++] = batch.records[i];
  }
  notes.resize(kept_a);
  const size_t dropped = batch.records.size() - kept;
  batch.records.resize(kept);
  if (dropped) compact(batch);
  return dropped;
}

}  // namespace vei
