#include "stages/timeline_source.h"

#include <fmt/format.h>

namespace vei {

void TimelineSource::compile_filter() {
  if (!options_.filter.empty())
    filter_ = std::make_unique<BpfFilter>(options_.filter, info_.linktype, info_.snaplen);
}

bool TimelineSource::admit(Batch& batch, uint32_t offset, int64_t file_ts_ns, uint32_t caplen, uint32_t len,
                           bool& time_kept) {
  const uint64_t seq = next_seq_++;
  if (filter_ && !filter_->matches(batch.data() + offset + record_header_size, caplen, len)) {
    ++stats_.filtered;
    return false;
  }
  int64_t ts = file_ts_ns + offset_;
  if (ts < last_ts_) [[unlikely]] {
    if (stats_.disordered++ == 0) {
      stats_.first_disordered = seq;
      first_disorder_lag_ = last_ts_ - ts;
    }
    if (options_.clamp_disorder) {
      ts = last_ts_;
      time_kept = false;
    }
  }
  if (!pcap::representable(ts)) [[unlikely]] {
    ++stats_.dropped;
    options_.report->damaged(fmt::format(
        "{}: record {}: timestamp {:.9f} s cannot be stored in a pcap file (seconds must fit in 32 "
        "unsigned bits); record dropped",
        options_.name, seq, static_cast<double>(ts) / 1e9));
    return false;
  }
  last_ts_ = std::max(last_ts_, ts);
  batch.records.push_back({ts, seq, offset, caplen, len, options_.rank, 0});
  ++stats_.packets;
  stats_.bytes += caplen;
  return true;
}

void TimelineSource::finish() {
  if (finished_) return;
  finished_ = true;
  if (stats_.disordered)
    options_.report->warn(fmt::format(
        "{}: {} record(s) older than a record before them (first: record {}, {:.6f} s back); {}",
        options_.name, stats_.disordered, stats_.first_disordered, static_cast<double>(first_disorder_lag_) / 1e9,
        options_.clamp_disorder ? "clamped to the time before them (disorder=keep keeps them)"
                                : "kept as they are (disorder=keep)"));
}

}  // namespace vei
