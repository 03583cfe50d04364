// What the graph asks of a sink: take merged batches in order on the output thread, then close.
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>

#include "core/batch.h"
#include "core/sheet.h"
#include "core/stats.h"

namespace vei {

struct SinkStats {
  uint64_t packets = 0;
  uint64_t bytes = 0;  // bytes written, headers included
};

class Sink {
 public:
  virtual ~Sink() = default;
  // Takes records [first, first + count) of `batch`: they lie back to back in its arena, headers
  // in the output's format. Throws std::runtime_error naming the output on failure; what was
  // written before stays valid, and stats() counts every record written or sent, those of the
  // failing call included: the run's statistics report them.
  virtual void consume(const Batch& batch, size_t first, size_t count) = 0;
  void consume(const Batch& batch) { consume(batch, 0, batch.records.size()); }
  // The same for the pieces of a sheet, in order. A sink that can write many ranges at once
  // (writev) overrides it; failures as above.
  virtual void consume(std::span<const Piece> pieces) {
    for (const Piece& p : pieces) consume(*p.batch, p.first, p.count);
  }
  virtual void close() = 0;
  virtual const SinkStats& stats() const = 0;
  // Adds what only this kind of sink counts to the run's statistics. Called while consume() may
  // run on the output thread: what it reads must be safe to read then.
  virtual void add_stats(Stats&) const {}
};

}  // namespace vei
