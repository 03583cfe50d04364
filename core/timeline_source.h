// A source with a timeline of its own (a capture file, a generator). It fills batches whose record
// headers are already in the output format, with timestamps mapped onto the output timeline.
//
// Threads: not thread-safe. Opened, mapped and filtered on the configuring thread; then fill() is
// called by one thread at a time (the engine's input node for its rank, a TBB worker), or
// read_raw() and parse_raw() by two (splits_reading). stats() are plain counters of the filling
// (or parsing) thread: another thread reads them once the run is over.
// Ownership: the engine owns its sources; a batch handed to fill() is the caller's.
#pragma once

#include <cstdint>
#include <memory>
#include <mutex>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "core/batch.h"
#include "core/bpf_filter.h"
#include "core/pcap_format.h"
#include "core/report.h"

namespace vei {

class Interrupt;

// An interface packets were captured on: a pcapng Interface Description Block. Other sources
// have one, which `SourceInfo::linktype` and `snaplen` describe.
struct Interface {
  uint32_t linktype = 1;
  uint32_t snaplen = pcap::max_snaplen;  // as the IDB gives it: 0 is no limit
  std::string name;         // if_name; empty when the file gives none
  std::string description;  // if_description
};

// Every interface a pcapng source has met so far, by Record::iface. A pcapng file may describe an
// interface anywhere before its first packet, so the list grows while the source is read: its
// reading thread adds one before it passes on the first batch that names it, and the output
// thread looks it up when a record first does (core/pcapng_writer.h). Locked: both are rare.
class InterfaceList {
 public:
  // Adds `i` as interface `index`, unless the list already has that many (a loop's next pass reads
  // the same file, which names them alike).
  void add(size_t index, const Interface& i);
  std::optional<Interface> at(size_t index) const;

 private:
  mutable std::mutex mutex_;
  std::vector<Interface> list_;
};

struct SourceOptions {
  std::string name;  // how messages name the source: its file name
  uint16_t rank = 0;
  std::string filter;          // BPF, empty for none
  // The run reads one link type from this source (its output is a pcap, or transforms after the
  // merge read its packets): an interface described after the first packet with another link type
  // ends the source, reported as damage, since the check made when it opened could not see it.
  bool one_linktype = false;
  // Where a pcapng source lists its interfaces for the output (made by the source when null).
  // Shared, as options are copied (LoopingSource).
  std::shared_ptr<InterfaceList> interfaces;
  bool clamp_disorder = true;  // false: keep timestamps that go back as they are
  Report* report = nullptr;
  const Interrupt* interrupt = nullptr;  // ends waits on a stream input when raised
  // What makes the reader's input, released with the source: a decompressing pump
  // (core/decompress.h). Shared, as options are copied (LoopingSource).
  std::shared_ptr<void> producer;
};

struct SourceInfo {
  // The first interface's; a source whose interfaces differ lists them all in `interfaces`.
  uint32_t linktype = 1;
  bool swapped = false;  // packets as a file of the other byte order holds them (BpfFilter needs it)
  uint32_t snaplen = pcap::max_snaplen;
  pcap::Precision precision = pcap::Precision::us;
  bool pcapng = false;
  std::optional<int64_t> first_ts_ns;  // of the first record, before mapping; none when empty
  bool own_times = true;  // false for generated packets, timed from 0: they have no times to keep
  // By Record::iface. A pcapng source lists here the interfaces described before its first packet
  // (core/pcapng_reader.h); their link types may differ. Those it meets later are added to
  // SourceOptions::interfaces alone. Other sources leave it empty.
  std::vector<Interface> interfaces;
};

// Which records a source delivers, compared with each record's time in the file: those in
// [from, until), and no more than `count` of them (after the filter, as tcpdump -c counts).
struct Window {
  int64_t from_ns = INT64_MIN;
  int64_t until_ns = INT64_MAX;
  uint64_t count = UINT64_MAX;
};

struct SourceStats {
  uint64_t packets = 0;  // delivered
  uint64_t bytes = 0;    // captured bytes delivered
  uint64_t filtered = 0;
  uint64_t disordered = 0;  // records older than one before them
  uint64_t first_disordered = 0;
  uint64_t dropped = 0;  // unrepresentable timestamps
  uint64_t skipped = 0;  // outside the window (from/until)
};

class TimelineSource {
 public:
  explicit TimelineSource(SourceOptions options) : options_(std::move(options)) {}
  virtual ~TimelineSource() = default;

  const SourceOptions& options() const { return options_; }
  const SourceInfo& info() const { return info_; }
  const SourceStats& stats() const { return stats_; }
  // How records map onto the output: `offset_ns` is added to every timestamp, headers are written
  // in `precision`. Set once, after opening and before the first fill.
  void set_mapping(int64_t offset_ns, pcap::Precision precision) {
    offset_ = offset_ns;
    output_precision_ = precision;
  }
  int64_t offset() const { return offset_; }
  // Continues a timeline another instance delivered up to `ts`: a record older than that counts
  // as disordered (and is clamped, unless disorder=keep), as it would within one file.
  void follow(int64_t ts) { last_ts_ = ts; }
  int64_t last_ts() const { return last_ts_; }
  // Compiles `options().filter` for the link type found on opening; throws on a bad expression.
  void compile_filter();
  // Set once, after opening and before the first fill.
  void set_window(const Window& window) {
    window_ = window;
    windowed_ = window.from_ns != INT64_MIN || window.until_ns != INT64_MAX || window.count != UINT64_MAX;
    plain_ = !windowed_ && !filter_;
  }

  // Clears `batch` and fills it with the next records; sets batch.last when nothing follows.
  virtual void fill(Batch& batch) = 0;

  // A reader whose fill() is a read then a parse may have them run apart, so that reading a batch
  // overlaps parsing the one before: read_raw() on one thread at a time, parse_raw() on another
  // (one at a time too), both in the input's order. read_raw() takes the input's next bytes into
  // `raw` (Batch::Raw); parse_raw() turns them into records as fill() would, setting batch.last
  // when nothing follows; end_reading() (any thread) makes read_raw() end the input at once.
  virtual bool splits_reading() const { return false; }
  virtual void read_raw(Batch& /*raw*/) {}
  virtual void parse_raw(Batch& /*batch*/) {}
  virtual void end_reading() {}

  // A reader of a regular file may read it in lanes (pipeline/lanes.h): plan_raw(), on one thread
  // in the input's order, gives each batch its part of the file (or ends the input, Batch::Raw);
  // read_planned() reads a part, on several threads at once; parse_raw() parses the batches in
  // order, one at a time. Two parts are copied from the page cache at once, each parsed where its
  // bytes are still in cache. Not with splits_reading().
  virtual bool reads_in_lanes() const { return false; }
  virtual void plan_raw(Batch& /*raw*/) {}
  virtual void read_planned(Batch& /*raw*/) const {}

  // A source that waits for packets as they come (a live capture) has no end of its own: stop()
  // (any thread) tells it to end, and fill() is still called after the run is stopped, so that
  // what it already holds is delivered before its last batch. Other sources simply stop being read.
  virtual bool waits_for_packets() const { return false; }
  virtual void stop() {}

 protected:
  // Maps, filters and checks the record whose header starts at `offset` from batch.base, and
  // appends it to the batch. Returns false when the record is dropped; clears `time_kept` when
  // its output time differs from what the file says. A `file_ts_ns` of INT64_MIN or INT64_MAX
  // stands for a file time beyond what int64 nanoseconds hold: such a record is dropped.
  // The common case (no window, no filter, in order, a time a pcap holds) is inlined into the
  // readers' loops, which GCC does not do by itself: 1 GiB of 64-byte frames passes through in
  // 0.31 s inlined, 0.37 s called (medians of 9, to /dev/null).
  [[gnu::always_inline]] bool admit(Batch& batch, uint32_t offset, int64_t file_ts_ns, uint32_t caplen, uint32_t len,
                                    bool& time_kept) {
    int64_t ts = 0;
    if (plain_ && !__builtin_add_overflow(file_ts_ns, offset_, &ts) && ts >= last_ts_ && file_ts_ns != INT64_MIN &&
        file_ts_ns != INT64_MAX && pcap::representable(ts)) [[likely]] {
      last_ts_ = ts;
      append(batch, ts, next_seq_++, offset, caplen, len);
      return true;
    }
    return admit_checked(batch, offset, file_ts_ns, caplen, len, time_kept);
  }
  // Appends a generated frame at `own_ts_ns` (on the source's own timeline), its record header
  // written in the output format, so a generator's batches are raw_is_output. False, appending
  // nothing, when it does not fit a batch that already holds records (the next fill takes it); a
  // frame admit() drops for its time counts as taken.
  bool append_generated(Batch& batch, std::span<const std::byte> frame, int64_t own_ts_ns);
  // Reports what a finished source saw (disorder) once.
  void finish();
  // Past the window's `until` or its `count`: a reader stops, leaving the rest of its input unread.
  bool window_closed() const { return window_closed_; }

  SourceOptions options_;
  SourceInfo info_;
  SourceStats stats_;
  int64_t offset_ = 0;
  pcap::Precision output_precision_ = pcap::Precision::us;

 private:
  static constexpr uint64_t max_listed_drops = 10;
  // Counts a record dropped for its time; the first few are reported one by one.
  void drop(uint64_t seq, std::string_view why);

  std::unique_ptr<BpfFilter> filter_;
  Window window_;
  bool windowed_ = false;  // whether admit() tests the window at all: most sources have none
  // Neither a window nor a filter: admit()'s inline path may take a record. One flag, not the two
  // tests in the loop: 64-byte frames took 0.39 s with those, 0.35 s with this (medians of 9).
  bool plain_ = true;
  bool admit_checked(Batch& batch, uint32_t offset, int64_t file_ts_ns, uint32_t caplen, uint32_t len, bool& time_kept);
  // Appends a record admit() took (last_ts_ is the caller's), inlined like admit's common case. A batch's first record starts
  // it sorted (Batch::sorted): one record is in order whatever came before it.
  [[gnu::always_inline]] void append(Batch& batch, int64_t ts, uint64_t seq, uint32_t offset, uint32_t caplen, uint32_t len) {
    if (batch.records.empty()) batch.sorted = true;
    batch.records.push_back({ts, seq, offset, caplen, len, options_.rank, 0});
    ++stats_.packets;
    stats_.bytes += caplen;
  }
  bool window_closed_ = false;
  uint64_t next_seq_ = 0;
  int64_t last_ts_ = INT64_MIN;
  int64_t first_disorder_lag_ = 0;
  bool finished_ = false;
};

// Opens a capture by its content (classic pcap or pcapng, either of them possibly gzip- or
// zstd-compressed); `-` is standard input.
// Throws std::runtime_error naming the file when it cannot be read as a capture.
std::unique_ptr<TimelineSource> open_capture(const std::string& path, SourceOptions options);

}  // namespace vei
