// The output's ordering rule, in one place. Both ways to the sink use it: the merger for unpaced
// output (core/merger.cpp) and the paced output loop (pipeline/output.cpp), which merges events
// into the already merged timeline as they arrive.
//
//  - Records go by timestamp. An equal timestamp goes to the stream listed first: timeline
//    sources by rank (the background first), then event batches in the order they were stamped;
//    within a stream, records keep their order. So the same inputs always give the same bytes.
//  - An event batch has no timeline of its own: its record times are offsets from the output
//    timeline's "now" (or from the time its injector asked for), and nothing is stamped before
//    what is already written (the floor). A time asked for that is already past is written at the
//    floor and counted late.
#pragma once

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <optional>

#include "core/batch.h"
#include "core/pcap_format.h"

namespace vei {

// The stream to take next among `count` streams, and the head that bounds how far it may run
// alone: head_of(i) is stream i's next record, or nullptr when it takes no part now.
struct Choice {
  size_t stream = 0;
  const Record* second = nullptr;  // the earliest head of the others (the first listed on a tie); nullptr when none
  size_t second_stream = 0;
};

template <class HeadOf>
std::optional<Choice> choose(size_t count, HeadOf&& head_of) {
  const Record* best = nullptr;
  const Record* second = nullptr;
  size_t best_stream = 0, second_stream = 0;
  for (size_t i = 0; i < count; ++i) {
    const Record* head = head_of(i);
    if (!head) continue;
    // Strictly earlier wins: on a tie the stream listed first keeps its place.
    if (!best || head->ts_ns < best->ts_ns) {
      second = best;
      second_stream = best_stream;
      best = head;
      best_stream = i;
    } else if (!second || head->ts_ns < second->ts_ns) {
      second = head;
      second_stream = i;
    }
  }
  if (!best) return std::nullopt;
  return Choice{best_stream, second, second_stream};
}

// How far the chosen stream may run alone: up to `limit` (its own end) and up to the runner-up's
// head, through a tie only when the chosen stream is listed first.
struct RunLimit {
  int64_t ts;
  bool ties;
  bool admits(int64_t t) const { return t < ts || (t == ts && ties); }
};

// Where the run from `first` ends: at the first record in [first, end) the limit does not admit.
// In a batch whose times never go back (Batch::sorted) that is found by galloping, then a binary
// search: a dense background's run of thousands of records between two sparse injections costs a
// few dozen comparisons, a run of one costs two. Otherwise record by record, so that a record out of
// order ends the run where it stands.
inline const Record* run_end(const Record* first, const Record* end, RunLimit limit, bool sorted) {
  if (!sorted) {
    while (first != end && limit.admits(first->ts_ns)) ++first;
    return first;
  }
  size_t step = 1;
  while (step <= static_cast<size_t>(end - first) && limit.admits(first[step - 1].ts_ns)) {
    first += step;
    step *= 2;
  }
  const Record* last = first + std::min(step, static_cast<size_t>(end - first));
  return std::partition_point(first, last, [limit](const Record& r) { return limit.admits(r.ts_ns); });
}

inline RunLimit run_limit(const Choice& choice, int64_t limit) {
  if (choice.second && choice.second->ts_ns <= limit) return {choice.second->ts_ns, choice.stream < choice.second_stream};
  return {limit, true};
}

// While pacing, how long every record is held back past its deadline: the merge's lateness, so that
// an event stamped "now" on another thread reaches the output before the timeline records that
// follow it. A run the description gives no event source (live, control) has no event to wait for
// (an API injection into it is merged when it arrives, in order, as at top speed).
inline int64_t output_delay(int64_t lateness_ns, bool has_event_sources) { return has_event_sources ? lateness_ns : 0; }

// Stamps event batch `b` on the timeline: its times become `now` (or b.event_at) plus their
// offsets, none before `floor`. A captured batch (b.captured) keeps its capture times, each record
// raised to the floor on its own, and `captured_last` (that source's last stamp) is kept up to
// date, so that its packets never change order; another batch is moved whole. Record headers are
// rewritten in `precision`. Returns how many records were asked for a time already past.
inline uint64_t stamp_events(Batch& b, int64_t now, int64_t floor, pcap::Precision precision,
                             int64_t* captured_last = nullptr) {
  const bool captured = b.captured && captured_last;
  if (captured) floor = std::max(floor, *captured_last);
  int64_t base = b.event_at.value_or(now);
  uint64_t late = 0;
  if (!captured && base < floor) {
    if (b.event_at) late = b.records.size();
    base = floor;
  }
  for (auto& r : b.records) {
    r.ts_ns += base;
    if (r.ts_ns < floor) {
      ++late;
      r.ts_ns = floor;
    }
    pcap::write_record_header(b.data() + r.offset, r.ts_ns, precision, r.caplen, r.len);
  }
  if (captured && !b.records.empty()) *captured_last = b.records.back().ts_ns;
  return late;
}

}  // namespace vei
