// The hand-off from the graph to the output thread.
#pragma once

#include <atomic>
#include <condition_variable>
#include <deque>
#include <mutex>

#include "core/batch.h"

namespace vei {

// Hands merged batches (and, while pacing, event batches) from the graph to the output thread,
// which never runs graph tasks: a sink that sleeps or waits on the disk must not starve the
// graph's two workers.
class OutputQueue {
 public:
  void push(Batch* b) {
    {
      std::lock_guard lock(mutex_);
      queue_.push_back(b);
      arrived_.store(true, std::memory_order_release);
    }
    ready_.notify_one();
  }
  Batch* pop() {
    std::unique_lock lock(mutex_);
    ready_.wait(lock, [this] { return !queue_.empty(); });
    Batch* b = queue_.front();
    queue_.pop_front();
    return b;
  }
  // Moves every queued batch to the end of `out`, first waiting for one (or a wake()) if `block`.
  void drain(std::deque<Batch*>& out, bool block) {
    std::unique_lock lock(mutex_);
    if (block) ready_.wait(lock, [this] { return !queue_.empty() || woken_; });
    woken_ = false;
    arrived_.store(false, std::memory_order_relaxed);
    out.insert(out.end(), queue_.begin(), queue_.end());
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
  std::deque<Batch*> queue_;
  std::atomic<bool> arrived_{false};
  bool woken_ = false;
};

}  // namespace vei
