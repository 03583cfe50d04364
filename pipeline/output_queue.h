// The hand-off from the graph to the output thread.
#pragma once

#include <atomic>
#include <condition_variable>
#include <deque>
#include <iterator>
#include <memory>
#include <mutex>

#include "core/batch.h"
#include "core/sheet.h"

namespace vei {

// One hand-off to the output thread: a sheet of merged records, or (while pacing) an event batch
// straight from its injector.
struct Delivery {
  std::unique_ptr<Sheet> sheet;
  Batch* event = nullptr;
};

// Hands merged sheets (and, while pacing, event batches) from the graph to the output thread,
// which never runs graph tasks: a sink that sleeps or waits on the disk must not starve the
// graph's two workers.
class OutputQueue {
 public:
  void push(Delivery d) {
    {
      std::lock_guard lock(mutex_);
      queue_.push_back(std::move(d));
      arrived_.store(true, std::memory_order_release);
    }
    ready_.notify_one();
  }
  Delivery pop() {
    std::unique_lock lock(mutex_);
    ready_.wait(lock, [this] { return !queue_.empty(); });
    Delivery d = std::move(queue_.front());
    queue_.pop_front();
    return d;
  }
  // Moves every queued delivery to the end of `out`, first waiting for one (or a wake()) if `block`.
  void drain(std::deque<Delivery>& out, bool block) {
    std::unique_lock lock(mutex_);
    if (block) ready_.wait(lock, [this] { return !queue_.empty() || woken_; });
    woken_ = false;
    arrived_.store(false, std::memory_order_relaxed);
    std::move(queue_.begin(), queue_.end(), std::back_inserter(out));
    queue_.clear();
  }
  // Ends a blocking drain, or a pacer's wait on arrived(), without a batch.
  void wake() {
    {
      std::lock_guard lock(mutex_);
      woken_ = true;
      arrived_.store(true, std::memory_order_release);
    }
    ready_.notify_one();
  }
  // Set while something pushed (or a wake) has not been drained: a pacer's wait ends on it.
  const std::atomic<bool>& arrived() const { return arrived_; }

 private:
  std::mutex mutex_;
  std::condition_variable ready_;
  std::deque<Delivery> queue_;
  std::atomic<bool> arrived_{false};
  bool woken_ = false;
};

}  // namespace vei
