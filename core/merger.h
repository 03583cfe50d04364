// k-way merge by timestamp. Exact for timeline sources: a record is emitted only once every
// timeline input that has not ended shows its next record, and equal timestamps go by input rank,
// then by order within the input, so the output bytes depend only on the inputs, never on thread
// timing. Event batches (batch->event) have no timeline of their own: their record times are
// offsets from the output timeline's "now" (the last time emitted; before anything is, the
// background's first packet) or from batch->event_at, and they never make the merge wait.
// With End::concat the timeline inputs go whole, one after another (mergecap -a): only the first
// that has not ended takes part in the rule.
//
// Input port: batches tagged with their source rank, each timeline source's in order. Output:
// sheets (core/sheet.h) handed to `emit`, one at the end of each push() that merged something; the
// last one (from finish()) has `last` set. A run of records whose headers are already the output's
// (Batch::raw_is_output) goes out where it lies, as a piece of its batch; others (events, times
// moved, precision converted) are copied into output batches with their headers rewritten. An input
// batch travels on in the `done` list of the sheet that holds its last piece. The rule itself (ties,
// event stamps) is core/ordering.h's.
//
// Threads: not thread-safe. One thread at a time calls push() and finish() (the engine's serial
// merge node); `emit` runs on that thread. stats() is read by others only after the run.
// Ownership: a pushed batch belongs to the merger until it is released to its pool or handed on in
// an emitted sheet; an emitted sheet belongs to whoever `emit` gives it to.
#pragma once

#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <optional>
#include <vector>

#include "core/batch.h"
#include "core/pcap_format.h"
#include "core/sheet.h"

namespace vei {

struct MergerStats {
  uint64_t packets = 0;
  uint64_t bytes = 0;  // captured bytes
  uint64_t packets_in_place = 0;  // written from the batch their source filled
  uint64_t packets_copied = 0;    // copied into an output batch, their headers rewritten
  uint64_t dropped_after_end = 0;  // records of other inputs later than the first input's end
  uint64_t events = 0;
  uint64_t late_events = 0;  // asked for a time already past, written at "now" instead
};

class TimestampMerger {
 public:
  // first: the run ends with the background (what the others hold past its last packet is not
  // written); all: when every input has; concat: every input whole, one after another in rank
  // order, each record's time as it is (mergecap -a).
  enum class End { first, all, concat };

  // Headers that must be rewritten are written in `precision`.
  TimestampMerger(size_t inputs, End end, pcap::Precision precision, BatchPool& output_pool,
                  std::function<void(std::unique_ptr<Sheet>)> emit);

  // "Now" before anything is written when the background shows no packet (stopped at once, or
  // filtered empty): where its first packet would be.
  void set_origin(int64_t ts_ns) { origin_ = ts_ns; }

  void push(Batch* batch);
  // No timeline record is left to write (all ended, or the background did with end=first): only
  // events can still come. The owner decides when to finish().
  bool timeline_done() const { return timeline_done_; }
  // Writes every event already pushed, then emits the last batch.
  void finish();
  bool finished() const { return finished_; }
  const MergerStats& stats() const { return stats_; }

 private:
  // The fields choose() reads of every input at every run come first, in one cache line.
  struct Input {
    const Record* next = nullptr;  // in queue.front(); null while the queue is empty
    const Record* end = nullptr;
    bool ended = false;
    bool event = false;
    int64_t reached = INT64_MIN;  // the latest Batch::reached_ts pushed
    std::deque<Batch*> queue;
  };

  void merge();
  // With concat, the one timeline input whose records may go next: the first that has not ended.
  // SIZE_MAX otherwise: every input may.
  size_t turn() const;
  bool now_known() const;
  int64_t now() const;
  void stamp_events();
  void emit_due_events();
  // Moves past finished batches: releases them, marks the input ended after its last one.
  void settle(Input& in);
  void take_run(Input& in, const Record* run_end);
  void copy_run(const Batch& batch, const Record* r, const Record* run_end);
  Batch& output_with_room(size_t bytes);
  // Hands the sheet on (if it holds anything), the output batch being filled with it.
  void flush(bool last = false);

  std::vector<Input> inputs_;  // timeline inputs by rank, then one per pending event batch
  std::vector<Batch*> deferred_;  // event batches waiting for "now" to be known
  End end_;
  pcap::Precision precision_;
  BatchPool& output_pool_;
  std::function<void(std::unique_ptr<Sheet>)> emit_;
  std::unique_ptr<Sheet> sheet_;
  Batch* out_ = nullptr;  // being filled by copies; in sheet_->done once it has a piece
  int64_t last_background_ts_ = INT64_MIN;
  int64_t last_ts_ = 0;
  int64_t origin_ = 0;
  bool emitted_any_ = false;
  bool timeline_done_ = false;
  bool finished_ = false;
  MergerStats stats_;
};

}  // namespace vei
