// Plays a timeline source several times on one continuing timeline: pass k is a fresh instance of
// the source (opened again by `open`) whose timestamps are shifted by k * period. The period comes
// from the caller (the background's span plus one average gap), so that every looped source keeps
// its place relative to the background in every pass.
#pragma once

#include <functional>
#include <memory>

#include "core/timeline_source.h"

namespace vei {

class LoopingSource final : public TimelineSource {
 public:
  // Opens the source again, its filter compiled, for pass `pass` (counted from 0).
  using Opener = std::function<std::unique_ptr<TimelineSource>(uint64_t pass)>;

  // `first` is the first pass's instance, already open and filtered; it takes this source's
  // mapping (set_mapping() on this source, before the first fill).
  // `passes` 0: until the run stops (its Interrupt).
  LoopingSource(std::unique_ptr<TimelineSource> first, Opener open, uint64_t passes, int64_t period_ns);

  void fill(Batch& batch) override;

 private:
  // The run stopped: no further pass begins.
  bool stopped() const;

  std::unique_ptr<TimelineSource> current_;
  Opener open_;
  uint64_t passes_;
  uint64_t pass_ = 0;
  int64_t period_ns_;
  SourceStats before_;  // of the passes already played
  bool first_mapped_ = false;
};

}  // namespace vei
