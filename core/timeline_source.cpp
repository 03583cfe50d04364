#include "core/timeline_source.h"

#include <fmt/format.h>

#include <cstring>

namespace vei {

void InterfaceList::add(size_t index, const Interface& i) {
  const std::lock_guard lock(mutex_);
  if (index == list_.size()) list_.push_back(i);
}

std::optional<Interface> InterfaceList::at(size_t index) const {
  const std::lock_guard lock(mutex_);
  if (index >= list_.size()) return std::nullopt;
  return list_[index];
}

void TimelineSource::compile_filter() {
  if (!options_.filter.empty())
    filter_ = std::make_unique<BpfFilter>(options_.filter, info_.linktype, info_.snaplen, info_.swapped);
  plain_ = !windowed_ && !filter_;
}

bool TimelineSource::admit_checked(Batch& batch, uint32_t offset, int64_t file_ts_ns, uint32_t caplen, uint32_t len,
                           bool& time_kept) {
  const uint64_t seq = next_seq_++;
  // (The saturated times INT64_MIN and INT64_MAX are dropped below, whatever the window.)
  if (windowed_ && (file_ts_ns < window_.from_ns || file_ts_ns >= window_.until_ns) && file_ts_ns != INT64_MIN &&
      file_ts_ns != INT64_MAX) [[unlikely]] {
    ++stats_.skipped;
    // Times are taken to grow: the first record past `until` ends the reading.
    window_closed_ = file_ts_ns >= window_.until_ns;
    return false;
  }
  if (filter_ && !filter_->matches(batch.data() + offset + record_header_size, caplen, len)) {
    ++stats_.filtered;
    return false;
  }
  // A file time its reader saturated, or one the mapping pushes out of int64 nanoseconds, cannot
  // be placed on the timeline at all.
  int64_t ts = 0;
  const bool out_of_range = file_ts_ns == INT64_MIN || file_ts_ns == INT64_MAX ||
                            __builtin_add_overflow(file_ts_ns, offset_, &ts);
  if (out_of_range) [[unlikely]] {
    drop(seq, "timestamp out of range (beyond 292 years from 1970 once mapped onto the output timeline)");
    return false;
  }
  if (ts < last_ts_) [[unlikely]] {
    if (stats_.disordered++ == 0) {
      stats_.first_disordered = seq;
      first_disorder_lag_ = last_ts_ - ts;
    }
    if (options_.clamp_disorder) {
      ts = last_ts_;
      time_kept = false;
    } else {
      batch.sorted = false;
    }
  }
  if (!pcap::representable(ts)) [[unlikely]] {
    drop(seq, fmt::format("timestamp {:.9f} s cannot be stored in a pcap file (seconds must fit in 32 unsigned bits)",
                          static_cast<double>(ts) / 1e9));
    return false;
  }
  last_ts_ = std::max(last_ts_, ts);
  append(batch, ts, seq, offset, caplen, len);
  if (windowed_) [[unlikely]] window_closed_ = stats_.packets >= window_.count;
  return true;
}

bool TimelineSource::append_generated(Batch& batch, std::span<const std::byte> frame, int64_t own_ts_ns) {
  const size_t size = record_header_size + frame.size();
  if (batch.used + size > batch.capacity()) {
    if (batch.used) return false;
    batch.reserve_arena(size);
  }
  std::byte* at = batch.data() + batch.used;
  const auto caplen = static_cast<uint32_t>(frame.size());
  std::memcpy(at + record_header_size, frame.data(), caplen);
  bool time_kept = true;
  if (admit(batch, static_cast<uint32_t>(batch.used), own_ts_ns, caplen, caplen, time_kept)) {
    pcap::write_record_header(at, batch.records.back().ts_ns, output_precision_, caplen, caplen);
    batch.used += size;
  }
  return true;
}

void TimelineSource::drop(uint64_t seq, std::string_view why) {
  // Each drop marks the run damaged; only the first few are listed, so that a file of bad times
  // costs neither unbounded memory (the report keeps its messages) nor a flood of warnings.
  if (++stats_.dropped <= max_listed_drops)
    options_.report->damaged(fmt::format("{}: record {}: {}; record dropped", options_.name, seq, why));
}

void TimelineSource::finish() {
  if (finished_) return;
  finished_ = true;
  if (stats_.dropped > max_listed_drops)
    options_.report->damaged(fmt::format("{}: {} record(s) dropped in all for their timestamps (the first {} listed above)",
                                         options_.name, stats_.dropped, max_listed_drops));
  if (stats_.disordered)
    options_.report->warn(fmt::format(
        "{}: {} record(s) older than a record before them (first: record {}, {:.6f} s back); {}",
        options_.name, stats_.disordered, stats_.first_disordered, static_cast<double>(first_disorder_lag_) / 1e9,
        options_.clamp_disorder ? "clamped to the time before them (disorder=keep keeps them)"
                                : "kept as they are (disorder=keep)"));
}

}  // namespace vei
