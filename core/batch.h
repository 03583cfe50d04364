// The unit that moves through the graph: one arena of raw pcap records back to back (16-byte
// record header + bytes, from the first record's offset on), plus a small descriptor per record.
// Batches belong to a pool and go back to it, so the
// pool's size bounds memory whatever the trace size.
#pragma once

#include <climits>
#include <condition_variable>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <span>
#include <vector>

namespace vei {

inline constexpr size_t record_header_size = 16;
inline constexpr size_t default_arena_size = size_t{1} << 20;

struct Record {
  int64_t ts_ns;     // on the output timeline
  uint64_t seq;      // index of the record in its source (0-based), for ground truth and errors
  uint32_t offset;   // of the record header in the arena
  uint32_t caplen;
  uint32_t len;
  uint16_t source;   // rank of the source: 0 is the background
  uint16_t iface;    // its source's interface (SourceInfo::interfaces): 0 but in a pcapng file of several
};

// What a pcapng input said of a record beyond its bytes: its comments and flags, kept as the
// options of an Enhanced Packet Block in this host's byte order (without the end marker), so that a
// pcapng output writes them back as they are.
struct Annotation {
  uint32_t index;  // of the record in Batch::records
  uint32_t at;     // of its options in Batch::annotation_bytes
  uint32_t size;
};

// The captured bytes of records [first, last) (not empty) that lie back to back in one arena, as a
// sheet's pieces do (core/sheet.h): from the offsets of the first and the last, without a look at
// the records between.
inline uint64_t captured_bytes(const Record* first, const Record* last) {
  const Record& back = last[-1];
  return back.offset + back.caplen - first->offset - record_header_size * static_cast<uint64_t>(last - first - 1);
}

class BatchPool;

struct Batch {
  size_t used = 0;  // where the last whole record ends in the arena
  std::vector<Record> records;
  uint16_t source = 0;
  bool last = false;  // the source has nothing after this batch
  // The record headers in the arena are byte for byte what the output wants (format and time) and
  // the records lie back to back: the batch may be written or copied as one block.
  // Otherwise a consumer writes each header from its Record.
  bool raw_is_output = false;
  // No record's time is earlier than the one before it (TimelineSource::admit sets it): the merger
  // may look for the end of a run by bisection.
  bool sorted = false;
  // Records injected while the pipeline runs: their ts_ns are offsets from the output timeline's
  // "now", or from event_at when the injector gave a time.
  bool event = false;
  std::optional<int64_t> event_at;
  // Event records captured on an interface: their times are offsets from the first record's
  // capture, each kept in capture order on its own rather than moved as a block.
  bool captured = false;
  // The latest time its source reached in this batch, counting records that transforms after the
  // merge removed (they act on the merged stream): where the background ends for `end=first`.
  int64_t reached_ts = INT64_MIN;
  // The annotated records' options, by increasing index. Most batches have none: whatever copies
  // records to another batch (the merger) or removes some (remove_records, core/transform.h) carries
  // them when there are.
  std::vector<Annotation> annotations;
  std::vector<std::byte> annotation_bytes;
  // Between a reader's read_raw() and its parse_raw() (TimelineSource::splits_reading): the
  // input's bytes in [begin, used), no records yet.
  struct Raw {
    bool pending = false;      // read, not parsed yet
    size_t begin = 0;          // after a headroom for the bytes the batch before left over
    bool ended = false;        // the input has nothing after these bytes
    bool interrupted = false;  // it ended because the run stopped the wait for a stream
    // A batch read in lanes (TimelineSource::reads_in_lanes): where its bytes lie in the input (as
    // many as the arena holds after `begin`), and its number among its source's batches
    // (pipeline/lanes.h).
    uint64_t at = 0;
    uint64_t index = 0;
  } raw;
  // Appends an annotation of record `index` (greater than any before).
  void annotate(size_t index, std::span<const std::byte> options);
  // The options of the records in [first, first + count), as annotate() got them: empty when none has.
  std::span<const Annotation> annotations_of(size_t first, size_t count) const;
  BatchPool* pool = nullptr;

  Batch() = default;
  Batch(const Batch&) = delete;
  Batch& operator=(const Batch&) = delete;

  std::byte* data() { return arena_; }
  const std::byte* data() const { return arena_; }
  size_t capacity() const { return capacity_; }
  void reserve_arena(size_t bytes);  // grows (never shrinks), keeping contents
  void clear();

 private:
  friend class BatchPool;
  std::byte* arena_ = nullptr;           // in the pool's region, or grown_
  std::unique_ptr<std::byte[]> grown_;  // for a record larger than an arena
  size_t capacity_ = 0;
};

// A fixed set of batches. acquire() blocks while all are out; release() may be called from any
// thread and runs `on_release` afterwards (the graph uses it to let the source read again).
class BatchPool {
 public:
  BatchPool(size_t count, size_t arena_size);
  ~BatchPool();
  BatchPool(const BatchPool&) = delete;
  BatchPool& operator=(const BatchPool&) = delete;

  Batch* acquire();
  Batch* try_acquire();
  // A free batch, or a new one added to the pool when none is: for callers that must not wait.
  Batch* acquire_or_grow();
  void release(Batch* batch);
  void set_on_release(std::function<void()> callback) { on_release_ = std::move(callback); }
  size_t size() const { return batches_.size(); }

 private:
  // All arenas in one region backed by huge pages where the kernel allows: on a VM, faulting in
  // 4 KiB pages one by one costs a tenth of a merge's time.
  void* region_ = nullptr;
  size_t region_size_ = 0;
  std::vector<std::unique_ptr<Batch>> batches_;
  std::vector<Batch*> free_;
  std::mutex mutex_;
  std::condition_variable available_;
  std::function<void()> on_release_;
};

}  // namespace vei
