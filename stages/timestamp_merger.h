// k-way merge of timeline sources by timestamp. Exact: a record is emitted only once every input
// that has not ended shows its next record, and equal timestamps go by input rank, then by order
// within the input, so the output bytes depend only on the inputs, never on thread timing.
//
// Input port: batches tagged with their source rank, each source's in order. Output: full batches
// handed to `emit`; the last one has `last` set. Input batches go back to their pools as soon as
// their records are copied, or travel on unchanged when a whole batch can be forwarded.
#pragma once

#include <cstdint>
#include <deque>
#include <functional>
#include <vector>

#include "stages/batch.h"
#include "stages/pcap_format.h"

namespace vei {

struct MergerStats {
  uint64_t packets = 0;
  uint64_t bytes = 0;  // captured bytes
  uint64_t forwarded_batches = 0;
  uint64_t copied_batches = 0;
  uint64_t dropped_after_end = 0;  // records of other inputs later than the first input's end
};

class TimestampMerger {
 public:
  enum class End { first, all };

  // Headers that must be rewritten are written in `precision`.
  TimestampMerger(size_t inputs, End end, pcap::Precision precision, BatchPool& output_pool,
                  std::function<void(Batch*)> emit);

  void push(Batch* batch);
  bool finished() const { return finished_; }
  const MergerStats& stats() const { return stats_; }

 private:
  struct Input {
    std::deque<Batch*> queue;
    const Record* next = nullptr;  // in queue.front(); null while the queue is empty
    const Record* end = nullptr;
    bool ended = false;
  };

  void merge();
  // Moves past finished batches: releases them, marks the input ended after its last one.
  void settle(Input& in);
  void take_run(Input& in, const Record* run_end);
  Batch& output_with_room(size_t bytes);
  void finish();

  std::vector<Input> inputs_;
  End end_;
  pcap::Precision precision_;
  BatchPool& output_pool_;
  std::function<void(Batch*)> emit_;
  Batch* out_ = nullptr;
  int64_t last_background_ts_ = INT64_MIN;
  bool finished_ = false;
  MergerStats stats_;
};

}  // namespace vei
