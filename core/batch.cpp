#include "core/batch.h"

#include <sys/mman.h>

#include <algorithm>
#include <cstring>
#include <new>

namespace vei {

void Batch::clear() {
  used = 0;
  records.clear();
  last = false;
  raw_is_output = false;
  sorted = false;
  event = false;
  event_at.reset();
  captured = false;
  reached_ts = INT64_MIN;
  annotations.clear();
  annotation_bytes.clear();
  raw = {};
}

void Batch::annotate(size_t index, std::span<const std::byte> options) {
  annotations.push_back({static_cast<uint32_t>(index), static_cast<uint32_t>(annotation_bytes.size()),
                         static_cast<uint32_t>(options.size())});
  annotation_bytes.insert(annotation_bytes.end(), options.begin(), options.end());
}

std::span<const Annotation> Batch::annotations_of(size_t first, size_t count) const {
  if (annotations.empty()) return {};
  const auto by_index = [](const Annotation& a, size_t i) { return a.index < i; };
  const auto from = std::lower_bound(annotations.begin(), annotations.end(), first, by_index);
  const auto to = std::lower_bound(from, annotations.end(), first + count, by_index);
  return {from, to};
}

void Batch::reserve_arena(size_t bytes) {
  if (bytes <= capacity_) return;
  auto bigger = std::make_unique_for_overwrite<std::byte[]>(bytes);
  if (used) std::memcpy(bigger.get(), arena_, used);
  grown_ = std::move(bigger);
  arena_ = grown_.get();
  capacity_ = bytes;
}

BatchPool::BatchPool(size_t count, size_t arena_size) {
  constexpr size_t huge = size_t{2} << 20;
  region_size_ = (count * arena_size + huge - 1) / huge * huge + huge;
  region_ = ::mmap(nullptr, region_size_, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (region_ == MAP_FAILED) throw std::bad_alloc();
  auto* first = reinterpret_cast<std::byte*>((reinterpret_cast<uintptr_t>(region_) + huge - 1) & ~(huge - 1));
  ::madvise(first, count * arena_size, MADV_HUGEPAGE);
  // Faulted in now rather than when a burst first needs them: resident memory is the pools' size
  // from the start and stays flat, and no page fault lands in the middle of a paced run.
  for (size_t at = 0; at < count * arena_size; at += 4096) first[at] = std::byte{0};
  // A record descriptor per 64 bytes of arena covers all but captures of tiny frames.
  const size_t typical_records = arena_size / 64;
  batches_.reserve(count);
  free_.reserve(count);
  for (size_t i = 0; i < count; ++i) {
    auto b = std::make_unique<Batch>();
    b->arena_ = first + i * arena_size;
    b->capacity_ = arena_size;
    b->records.reserve(typical_records);
    b->pool = this;
    free_.push_back(b.get());
    batches_.push_back(std::move(b));
  }
}

BatchPool::~BatchPool() { ::munmap(region_, region_size_); }

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

Batch* BatchPool::acquire_or_grow() {
  std::lock_guard lock(mutex_);
  if (!free_.empty()) {
    Batch* b = free_.back();
    free_.pop_back();
    return b;
  }
  auto& b = batches_.emplace_back(std::make_unique<Batch>());
  b->pool = this;
  free_.reserve(batches_.size());
  return b.get();
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
