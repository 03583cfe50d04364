// What a run reports: the statistics structs the engine fills and the stages add to.
// Plain values, copied out by Engine::stats(); no thread-safety of their own.
#pragma once

#include <algorithm>
#include <cstdint>
#include <optional>
#include <set>
#include <string>
#include <vector>

namespace vei {

// Two sources read from one file (or two unnamed generators) would share a name: the second and
// later ones become `NAME#2`, `NAME#3`..., so that statistics and labels name each source once.
inline void number_repeated_names(std::vector<std::string>& names) {
  std::set<std::string> taken(names.begin(), names.end());
  std::set<std::string> seen;
  for (auto& name : names) {
    if (seen.insert(name).second) continue;
    std::string numbered;
    for (int k = 2; taken.contains(numbered = name + "#" + std::to_string(k)); ++k) {}
    taken.insert(numbered);
    name = std::move(numbered);
  }
}

struct SourceSummary {
  std::string name;
  uint64_t packets = 0;
  uint64_t bytes = 0;
  uint64_t filtered = 0;
  uint64_t disordered = 0;
  uint64_t dropped = 0;
  int64_t offset_ns = 0;  // added to its timestamps
  uint64_t skipped = 0;   // outside pcap's from/until
};

struct LiveSummary {
  std::string name;
  uint64_t packets = 0;
  uint64_t bytes = 0;
  uint64_t kernel_dropped = 0;  // libpcap's ps_drop: the capture buffer was full
  uint64_t if_dropped = 0;
};

// How late packets left the pacer against their deadlines, ns.
struct PaceSummary {
  int64_t p50 = 0, p99 = 0, max = 0;
  uint64_t samples = 0;
};

struct TransformSummary {
  std::string name;      // the stage and where it is written: `snaplen at 1:20`
  uint64_t changed = 0;  // packets edited
  uint64_t dropped = 0;  // packets removed
};

struct NicSummary {
  uint64_t sent = 0, failed = 0, retried = 0;
};

// The output's rate per source: packets and captured bytes written, by bucket of the output
// timeline counted from its first packet (a record earlier than that, kept by disorder=keep, goes
// to bucket 0).
struct SeriesSource {
  std::string name;  // as the labels name it
  uint16_t rank = 0;
  std::vector<uint64_t> packets, bytes;  // one per bucket
};
struct Series {
  int64_t start_ns = 0;              // the first packet written
  int64_t bucket_ns = 1'000'000'000;  // a second, doubled as often as a long run needs
  std::vector<SeriesSource> sources;  // every rank, events' too; all as long as the last bucket used
};

// An injection (an API call, a control line): when its first packet was written, on the output
// timeline (none if it never was), by which source and stage, how many packets.
struct Injection {
  std::string source;
  std::string stage;
  uint64_t packets = 0;
  std::optional<int64_t> ts_ns;
};

// Counts the series on the output thread: a table of (packets, bytes) with a row per bucket and a
// column per source rank, no allocation but the table's amortised growth. Records arrive in
// timestamp order, so the common case is one comparison with the current bucket's bounds. Past
// `max_buckets` the bucket width doubles, pairs of rows merging, so the table stays within
// max_buckets rows (36,000: a 10-hour run in seconds) whatever the run's length.
class SeriesCounter {
 public:
  static constexpr size_t default_max_buckets = 36'000;
  explicit SeriesCounter(size_t sources = 0, size_t max_buckets = default_max_buckets)
      : sources_(sources), max_buckets_(std::max<size_t>(max_buckets, 1)) {}

  void add(uint16_t source, int64_t ts_ns, uint32_t caplen) {
    if (ts_ns < begin_ || ts_ns >= end_) [[unlikely]] enter(ts_ns);
    Cell& c = cells_[row_ * sources_ + source];
    ++c.packets;
    c.bytes += caplen;
  }

  // Adds records [first, last) of `source`, in time order and back to back in their arena (a
  // Piece, core/sheet.h, of a sorted batch): a search per bucket they span, their bytes from the
  // offsets of the bucket's first and last, instead of a look at each record. On the output
  // thread, that look cost 18% of a 64-byte-frame pass-through's samples, each record a cache miss
  // (the reader wrote it on another core).
  // A template, so that this installed header needs no core/batch.h: Rec is vei::Record, and
  // captured_bytes() (core/batch.h) is found where it is called from, by the record's namespace.
  template <typename Rec>
  void add_sorted(uint16_t source, const Rec* first, const Rec* last) {
    while (first != last) {
      if (first->ts_ns < begin_ || first->ts_ns >= end_) enter(first->ts_ns);
      const Rec* to = std::partition_point(first, last, [this](const Rec& r) { return r.ts_ns < end_; });
      Cell& c = cells_[row_ * sources_ + source];
      c.packets += static_cast<uint64_t>(to - first);
      c.bytes += captured_bytes(first, to);
      first = to;
    }
  }

  // names[rank] names each column.
  Series series(const std::vector<std::string>& names) const {
    Series s{start_.value_or(0), width_, {}};
    const size_t rows = cells_.size() / std::max<size_t>(sources_, 1);
    for (size_t rank = 0; rank < sources_; ++rank) {
      SeriesSource column{names.at(rank), static_cast<uint16_t>(rank), {}, {}};
      for (size_t row = 0; row < rows; ++row) {
        column.packets.push_back(cells_[row * sources_ + rank].packets);
        column.bytes.push_back(cells_[row * sources_ + rank].bytes);
      }
      s.sources.push_back(std::move(column));
    }
    return s;
  }

 private:
  struct Cell {
    uint64_t packets = 0, bytes = 0;
  };

  // Makes the bucket of ts current, growing the table or widening the buckets first.
  void enter(int64_t ts_ns) {
    if (!start_) start_ = ts_ns;
    // Unsigned: any two pcap times (1970 to 2106) are less than 2^62 ns apart, so width_ cannot overflow.
    const uint64_t offset = ts_ns > *start_ ? static_cast<uint64_t>(ts_ns) - static_cast<uint64_t>(*start_) : 0;
    while (offset / static_cast<uint64_t>(width_) >= max_buckets_) widen();
    row_ = offset / static_cast<uint64_t>(width_);
    if ((row_ + 1) * sources_ > cells_.size()) cells_.resize((row_ + 1) * sources_);
    // Bucket 0 also takes what comes before the start.
    const int64_t begin = *start_ + static_cast<int64_t>(row_) * width_;
    begin_ = row_ == 0 ? INT64_MIN : begin;
    end_ = begin > INT64_MAX - width_ ? INT64_MAX : begin + width_;
  }

  void widen() {
    const size_t rows = cells_.size() / std::max<size_t>(sources_, 1);
    for (size_t row = 0; row < rows; ++row)
      for (size_t rank = 0; rank < sources_; ++rank) {
        const Cell c = cells_[row * sources_ + rank];
        if (row % 2 == 0) cells_[row / 2 * sources_ + rank] = {};
        Cell& into = cells_[row / 2 * sources_ + rank];
        into.packets += c.packets;
        into.bytes += c.bytes;
      }
    cells_.resize((rows + 1) / 2 * sources_);
    width_ *= 2;
  }

  size_t sources_;
  size_t max_buckets_;
  std::vector<Cell> cells_;
  std::optional<int64_t> start_;
  int64_t width_ = 1'000'000'000;
  size_t row_ = 0;
  // The current bucket's bounds; before the first record, an empty range so that it enters one.
  int64_t begin_ = 0, end_ = 0;
};

struct Stats {
  std::vector<SourceSummary> sources;
  uint64_t packets = 0;        // written to the sink
  uint64_t bytes = 0;          // written to the sink, file framing included
  uint64_t captured_bytes = 0;  // packet bytes merged
  uint64_t dropped_after_end = 0;
  uint64_t packets_in_place = 0;  // written from the batches their sources filled
  uint64_t packets_copied = 0;    // copied by the merger to rewrite their headers (events, times moved)
  uint64_t accepted_events = 0;  // frames inject() accepted
  uint64_t refused_events = 0;   // event packets handed over after the pipeline stopped taking them
  uint64_t events = 0;           // injected frames merged into the output
  uint64_t late_events = 0;      // asked for a time already past: written at "now" instead
  Series series;
  std::vector<Injection> injections;
  uint64_t unlisted_injections = 0;  // past InjectionLog's bound: counted, not listed
  std::vector<LiveSummary> live;
  std::vector<TransformSummary> transforms;
  std::optional<PaceSummary> pace;  // with a pace stage that waits
  std::optional<NicSummary> nic;    // with a nic sink
  double seconds = 0;
  std::vector<std::string> warnings;
  std::string error;  // the runtime failure, if any
};

}  // namespace vei
