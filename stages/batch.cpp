#include "stages/batch.h"

#include <cstring>

namespace vei {

void Batch::clear() {
  used = 0;
  records.clear();
  last = false;
  raw_is_output = false;
}

void Batch::reserve_arena(size_t bytes) {
  if (bytes <= capacity_) return;
  auto bigger = std::make_unique_for_overwrite<std::byte[]>(bytes);
  if (used) std::memcpy(bigger.get(), arena_.get(), used);
  arena_ = std::move(bigger);
  capacity_ = bytes;
}

BatchPool::BatchPool(size_t count, size_t arena_size) {
  batches_.reserve(count);
  free_.reserve(count);
  for (size_t i = 0; i < count; ++i) {
    auto b = std::make_unique<Batch>();
    b->reserve_arena(arena_size);
    b->pool = this;
    free_.push_back(b.get());
    batches_.push_back(std::move(b));
  }
}

Batch* BatchPool::acquire() {
  std::unique_lock lock(mutex_);
  available_.wait(lock, [this] { return !free_.empty(); });
  Batch* b = free_.back();
  free_.pop_back();
  return b;
}

Batch* BatchPool::try_acquire() {
  std::lock_guard lock(mutex_);
  if (free_.empty()) return nullptr;
  Batch* b = free_.back();
  free_.pop_back();
  return b;
}

void BatchPool::release(Batch* batch) {
  batch->clear();
  {
    std::lock_guard lock(mutex_);
    free_.push_back(batch);
  }
  available_.notify_one();
  if (on_release_) on_release_();
}

}  // namespace vei
