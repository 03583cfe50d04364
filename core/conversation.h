// A generated conversation: whole frames, each at an offset from the conversation's start, in one
// buffer so that building one costs a few allocations whatever its length (the buffers keep their
// capacity when a generator reuses a Conversation for the next repetition).
//
// Threads: a plain value; a generator owns the ones it fills.
#pragma once

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <span>
#include <vector>

namespace vei {

struct Conversation {
  struct Frame {
    int64_t offset_ns = 0;
    size_t begin = 0;  // in `bytes`
    size_t size = 0;
  };
  std::vector<std::byte> bytes;
  std::vector<Frame> frames;

  void clear() {
    bytes.clear();
    frames.clear();
  }
  // Records the frame `at` (built at the end of `bytes` by packets::add_ip_frame, then sealed).
  template <typename At>
  void add(int64_t offset_ns, const At& at) {
    frames.push_back({offset_ns, at.begin, at.end - at.begin});
  }
  std::span<const std::byte> frame(size_t i) const { return {bytes.data() + frames[i].begin, frames[i].size}; }
  // Frames built out of time order (a conversation's parties are simulated one after the other)
  // are put in time order; frames of equal time keep the order they were added in.
  void sort() {
    std::stable_sort(frames.begin(), frames.end(), [](const Frame& a, const Frame& b) { return a.offset_ns < b.offset_ns; });
  }
};

}  // namespace vei
