#include "core/looping_source.h"

#include "core/input_fd.h"

namespace vei {

LoopingSource::LoopingSource(std::unique_ptr<TimelineSource> first, Opener open, uint64_t passes, int64_t period_ns)
    : TimelineSource(first->options()),
      current_(std::move(first)),
      open_(std::move(open)),
      passes_(passes),
      period_ns_(period_ns) {
  info_ = current_->info();
}

bool LoopingSource::stopped() const { return options_.interrupt && options_.interrupt->raised(); }

void LoopingSource::fill(Batch& batch) {
  // The first pass takes the mapping set on this source once it is known.
  if (!first_mapped_) {
    current_->set_mapping(offset_, output_precision_);
    first_mapped_ = true;
  }
  for (;;) {
    current_->fill(batch);
    const SourceStats& now = current_->stats();
    stats_.packets = before_.packets + now.packets;
    stats_.bytes = before_.bytes + now.bytes;
    stats_.filtered = before_.filtered + now.filtered;
    stats_.dropped = before_.dropped + now.dropped;
    stats_.skipped = before_.skipped + now.skipped;
    if (now.disordered && !stats_.disordered) stats_.first_disordered = now.first_disordered;
    stats_.disordered = before_.disordered + now.disordered;
    if (!batch.last || pass_ + 1 == passes_ || stopped()) return;
    before_ = stats_;
    ++pass_;
    const int64_t last = current_->last_ts();
    current_ = open_(pass_);
    current_->set_mapping(offset_ + static_cast<int64_t>(pass_) * period_ns_, output_precision_);
    // A source that lasts longer than the period overlaps its next pass.
    current_->follow(last);
    batch.last = false;
    // A pass that ends with an empty batch goes on with the next pass's first records.
    if (!batch.records.empty()) return;
  }
}

}  // namespace vei
