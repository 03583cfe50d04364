#include "core/generator_source.h"

#include <fmt/format.h>

#include <algorithm>
#include <stdexcept>

namespace vei {

namespace {

__extension__ typedef unsigned __int128 u128;

// For std::push_heap's max-heap: the earliest (due, index) on top. A function object, so that the
// heap's loops inline it.
constexpr auto later = [](const auto& a, const auto& b) { return a.due != b.due ? a.due > b.due : a.index > b.index; };

}  // namespace

GeneratorSource::GeneratorSource(uint32_t linktype, uint64_t count, int64_t nano_rate, Build build,
                                 SourceOptions options)
    : GeneratorSource(linktype, count,
                      [nano_rate](uint64_t i) {
                        return static_cast<int64_t>((u128(i) * 1'000'000'000'000'000'000u + u128(nano_rate / 2)) /
                                                    u128(nano_rate));
                      },
                      std::move(build), std::move(options)) {}

GeneratorSource::GeneratorSource(uint32_t linktype, uint64_t count, StartTime start, Build build, SourceOptions options)
    : TimelineSource(std::move(options)), build_(std::move(build)), count_(count), start_time_(std::move(start)) {
  info_.linktype = linktype;
  info_.precision = pcap::Precision::ns;
  info_.first_ts_ns = 0;
  info_.own_times = false;
  if (count_) next_start_ = start_time_(0);
}

void GeneratorSource::begin_next() {
  std::unique_ptr<Conversation> c;
  if (spare_.empty()) {
    c = std::make_unique<Conversation>();
  } else {
    c = std::move(spare_.back());
    spare_.pop_back();
  }
  c->clear();
  const uint64_t index = begun_++;
  const int64_t start = next_start_;
  if (begun_ < count_) next_start_ = start_time_(begun_);
  build_(*c, index);
  if (c->frames.empty()) return spare_.push_back(std::move(c));
  held_ += c->bytes.size();
  if (held_ > max_held)
    throw std::runtime_error(fmt::format(
        "{}: {} conversations under way at once hold more than the {} MiB a generator may: lower its rate= (or "
        "shorten each conversation)",
        options_.name, active_.size() + 1, max_held >> 20));
  const int64_t due = start + c->frames.front().offset_ns;
  active_.push_back({std::move(c), start, index, 0, due});
  std::push_heap(active_.begin(), active_.end(), later);
}

void GeneratorSource::fill(Batch& batch) {
  batch.clear();
  batch.source = options_.rank;
  for (;;) {
    // A conversation joins once it starts no later than the earliest frame under way.
    while (begun_ < count_ && (active_.empty() || next_start_ <= active_.front().due)) begin_next();
    if (active_.empty()) break;
    Active& a = active_.front();
    if (!append_generated(batch, a.conversation->frame(a.next), a.due)) break;
    std::pop_heap(active_.begin(), active_.end(), later);
    Active& popped = active_.back();
    if (++popped.next < popped.conversation->frames.size()) {
      popped.due = popped.start + popped.conversation->frames[popped.next].offset_ns;
      std::push_heap(active_.begin(), active_.end(), later);
    } else {
      held_ -= popped.conversation->bytes.size();
      spare_.push_back(std::move(popped.conversation));
      active_.pop_back();
    }
    if (window_closed()) break;
  }
  // Headers are written here in the output format, and a dropped record leaves no gap.
  batch.raw_is_output = true;
  if (window_closed() || (active_.empty() && begun_ == count_)) {
    batch.last = true;
    finish();
  }
}

}  // namespace vei
