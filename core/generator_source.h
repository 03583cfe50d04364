// A timeline source that plays `count` generated conversations, the i-th starting at i/rate (or
// at a time of the caller's) on its own timeline (which starts at 0, so the engine places it like a capture: `at=`, `shift=`,
// `rebase=`). Conversations that overlap in time are interleaved frame by frame in time order;
// frames of equal time go in the order of their conversations, then of their building.
//
// Memory: only the conversations under way are held (their buffers reused), so a million
// repetitions cost what the longest overlap does; beyond max_held bytes (rate x duration too
// large: 100,000 SSH sessions a second, each lasting seconds) fill() throws, naming the source,
// rather than grow without bound.
//
// Threads: as every TimelineSource (core/timeline_source.h); `build` is called on the filling thread.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <vector>

#include "core/conversation.h"
#include "core/timeline_source.h"

namespace vei {

class GeneratorSource final : public TimelineSource {
 public:
  // Appends conversation `index`'s frames, offsets from its own start, in time order.
  using Build = std::function<void(Conversation&, uint64_t index)>;

  // Conversation `index`'s start on the source's timeline; never before the previous one's.
  using StartTime = std::function<int64_t(uint64_t index)>;

  // `nano_rate`: conversations per 1e9 s (an integer, so that start times are exact).
  GeneratorSource(uint32_t linktype, uint64_t count, int64_t nano_rate, Build build, SourceOptions options);
  // Conversations at the times `start` gives (a script's timeline).
  GeneratorSource(uint32_t linktype, uint64_t count, StartTime start, Build build, SourceOptions options);

  void fill(Batch& batch) override;

 private:
  struct Active {
    std::unique_ptr<Conversation> conversation;
    int64_t start = 0;
    uint64_t index = 0;
    size_t next = 0;  // the next frame to deliver
    int64_t due = 0;  // its time, kept here: the heap compares it at every step (thousands under way)
  };
  void begin_next();

  Build build_;
  uint64_t count_;
  StartTime start_time_;
  static constexpr size_t max_held = size_t{1} << 30;
  size_t held_ = 0;  // bytes of the conversations under way
  uint64_t begun_ = 0;
  int64_t next_start_ = 0;  // of conversation begun_: asked once, it is compared for every frame
  std::vector<Active> active_;  // a min-heap on (due, index)
  std::vector<std::unique_ptr<Conversation>> spare_;
};

}  // namespace vei
