// The ordering rule (core/ordering.h) and the merger (core/merger.h) tested directly, without the
// engine: batches built by hand, pushed in any order, the output read back record by record.
#include <doctest/doctest.h>
#include <fmt/format.h>

#include <cstring>
#include <memory>
#include <span>
#include <string>
#include <vector>

#include "core/merger.h"
#include "core/ordering.h"

using namespace vei;

namespace {

// A record of stream `source`, numbered `index` within it; its one byte of payload is the index.
struct Rec {
  int64_t ts;
  uint16_t source;
  uint64_t index;
};

// Fills `b` (from `pool`) with records of one source; `last` when nothing follows. Headers are left
// for the merger to write, as a source whose times it maps does.
Batch* batch(BatchPool& pool, uint16_t source, std::vector<std::pair<int64_t, uint64_t>> records, bool last,
             bool event = false) {
  Batch* b = pool.acquire();
  b->source = source;
  b->last = last;
  b->event = event;
  for (const auto& [ts, index] : records) {
    std::byte* p = b->data() + b->used;
    p[record_header_size] = std::byte(index);
    b->records.push_back({ts, index, static_cast<uint32_t>(b->used), 1, 1, source, 0});
    b->used += record_header_size + 1;
  }
  return b;
}

// Runs a merger of `inputs` over the batches `push` hands it; returns "source.index@ts" of every
// record written, in output order.
struct Harness {
  explicit Harness(size_t inputs, TimestampMerger::End end = TimestampMerger::End::first)
      : out_pool(64, 4096), in_pool(64, 4096),
        merger(inputs, end, pcap::Precision::ns, out_pool, [this](std::unique_ptr<Sheet> s) { take(*s); }) {}

  void take(Sheet& sheet) {
    for (const Piece& p : sheet.pieces) {
      const Batch& b = *p.batch;
      for (const auto& r : std::span(b.records).subspan(p.first, p.count)) {
        const auto index = static_cast<unsigned>(b.data()[r.offset + record_header_size]);
        written += fmt::format("{}{}.{}@{}", written.empty() ? "" : " ", r.source, index, r.ts_ns);
        // The header the sink will write carries the record's time.
        uint32_t sec = 0, ns = 0;
        std::memcpy(&sec, b.data() + r.offset, 4);
        std::memcpy(&ns, b.data() + r.offset + 4, 4);
        CHECK(int64_t{sec} * 1'000'000'000 + ns == r.ts_ns);
      }
    }
    CHECK_FALSE(ended);  // nothing after the last sheet
    ended |= sheet.last;
    sheet.release();
  }

  BatchPool out_pool, in_pool;
  TimestampMerger merger;
  std::string written;
  bool ended = false;
};

Record at(int64_t ts) { return Record{ts, 0, 0, 0, 0, 0, 0}; }

}  // namespace

TEST_CASE("ordering: choose takes the earliest head, the stream listed first on a tie, and names the runner-up") {
  std::vector<Record> heads{at(20), at(10), at(10), at(30)};
  auto choice = choose(heads.size(), [&](size_t i) { return &heads[i]; });
  REQUIRE(choice);
  CHECK(choice->stream == 1);
  CHECK(choice->second == &heads[2]);
  CHECK(choice->second_stream == 2);
  // A stream that takes no part is skipped; none at all gives no choice.
  choice = choose(heads.size(), [&](size_t i) { return i == 1 ? nullptr : &heads[i]; });
  CHECK(choice->stream == 2);
  CHECK(choice->second_stream == 0);
  CHECK_FALSE(choose(3, [](size_t) -> const Record* { return nullptr; }));
  // The chosen stream runs up to the runner-up's head, through a tie only when listed first.
  const RunLimit first{run_limit(Choice{0, &heads[1], 1}, INT64_MAX)};
  CHECK(first.admits(10));
  CHECK_FALSE(first.admits(11));
  const RunLimit later{run_limit(Choice{2, &heads[1], 1}, INT64_MAX)};
  CHECK(later.admits(9));
  CHECK_FALSE(later.admits(10));
  // Without a runner-up (or one beyond it), the stream's own limit, inclusive.
  CHECK(run_limit(Choice{0, nullptr, 0}, 50).admits(50));
  CHECK_FALSE(run_limit(Choice{0, &heads[3], 3}, 25).admits(26));
}

TEST_CASE("ordering: run_end gallops through a sorted batch to where a record by record walk stops") {
  // Times with long equal stretches and gaps, so that ties and both kinds of limit are met.
  std::vector<Record> records;
  int64_t t = 0;
  for (int i = 0; i < 700; ++i) {
    t += (i * 7919) % 5 == 0 ? 3 : 0;
    records.push_back(Record{t, static_cast<uint64_t>(i), 0, 0, 0, 0, 0});
  }
  const Record* end = records.data() + records.size();
  const auto walk = [&](const Record* r, RunLimit limit) {
    while (r != end && limit.admits(r->ts_ns)) ++r;
    return r;
  };
  size_t checked = 0;
  for (size_t from : {size_t{0}, size_t{1}, size_t{250}, size_t{699}, size_t{700}})
    for (int64_t at = -1; at <= t + 1; ++at)
      for (bool ties : {false, true}) {
        const RunLimit limit{at, ties};
        const Record* first = records.data() + from;
        CHECK(run_end(first, end, limit, true) == walk(first, limit));
        ++checked;
      }
  CHECK(checked > 1000);
  // A batch out of order ends its run at the first record the limit refuses, as it stands.
  std::vector<Record> unsorted(4);
  for (int64_t i = 0; const int64_t ts : {1, 9, 2, 3}) unsorted[i++].ts_ns = ts;
  CHECK(run_end(unsorted.data(), unsorted.data() + 4, {5, false}, false) == unsorted.data() + 1);
}

TEST_CASE("ordering: the output waits the merge's lateness only when the description has an event source") {
  // merge(lateness=2s) with nothing but timeline sources: no event can come, so nothing is held back.
  CHECK(output_delay(2'000'000'000, false) == 0);
  CHECK(output_delay(2'000'000'000, true) == 2'000'000'000);
  CHECK(output_delay(5'000'000, true) == 5'000'000);
}

TEST_CASE("ordering: stamp_events moves a batch to now (or its time), never before the floor, counting what was late") {
  BatchPool pool(4, 4096);
  Batch* b = batch(pool, 5, {{0, 0}, {100, 1}, {250, 2}}, false, true);
  CHECK(stamp_events(*b, 1000, 1000, pcap::Precision::ns) == 0);
  CHECK(b->records[0].ts_ns == 1000);
  CHECK(b->records[2].ts_ns == 1250);
  pool.release(b);

  // Asked for a time already past: written at the floor, spacing kept, every record counted late.
  b = batch(pool, 5, {{0, 0}, {100, 1}}, false, true);
  b->event_at = 400;
  CHECK(stamp_events(*b, 1000, 900, pcap::Precision::ns) == 2);
  CHECK(b->records[0].ts_ns == 900);
  CHECK(b->records[1].ts_ns == 1000);
  pool.release(b);

  // Captured records keep their capture times, each raised to the floor on its own, and never go
  // before that source's last stamp.
  int64_t last = 1050;
  b = batch(pool, 5, {{0, 0}, {30, 1}, {80, 2}}, false, true);
  b->captured = true;
  b->event_at = 1000;
  CHECK(stamp_events(*b, 2000, 900, pcap::Precision::ns, &last) == 2);
  CHECK(b->records[0].ts_ns == 1050);
  CHECK(b->records[1].ts_ns == 1050);
  CHECK(b->records[2].ts_ns == 1080);
  CHECK(last == 1080);
  pool.release(b);
}

TEST_CASE("merger: equal times go by rank, then by record order, whatever order the batches arrive in") {
  Harness h(3);
  // Rank 2 arrives first, rank 0 last: nothing may be written before every input shows its head.
  h.merger.push(batch(h.in_pool, 2, {{5, 0}, {20, 1}, {30, 2}}, true));
  h.merger.push(batch(h.in_pool, 1, {{20, 0}, {20, 1}, {25, 2}}, true));
  CHECK(h.merger.stats().packets == 0);
  h.merger.push(batch(h.in_pool, 0, {{10, 0}, {20, 1}, {20, 2}, {30, 3}}, true));
  CHECK(h.merger.timeline_done());
  h.merger.finish();
  CHECK(h.ended);
  CHECK(h.written == "2.0@5 0.0@10 0.1@20 0.2@20 1.0@20 1.1@20 2.1@20 1.2@25 0.3@30 2.2@30");
}

TEST_CASE("merger: an input's next batch is awaited before its records can be passed") {
  Harness h(2);
  h.merger.push(batch(h.in_pool, 0, {{10, 0}, {40, 1}}, false));
  h.merger.push(batch(h.in_pool, 1, {{20, 0}}, false));
  // 10 and 20 are merged (output batches go out when full or at the end); 40 waits, since the
  // other input's next batch may hold something before it.
  CHECK(h.merger.stats().packets == 2);
  h.merger.push(batch(h.in_pool, 1, {{40, 1}}, true));
  h.merger.push(batch(h.in_pool, 0, {{50, 2}}, true));
  h.merger.finish();
  CHECK(h.written == "0.0@10 1.0@20 0.1@40 1.1@40 0.2@50");
}

TEST_CASE("merger: end=first stops with the background and counts what the others hold past it; end=all drains") {
  for (const auto end : {TimestampMerger::End::first, TimestampMerger::End::all}) {
    CAPTURE(end == TimestampMerger::End::all);
    Harness h(2, end);
    h.merger.push(batch(h.in_pool, 0, {{10, 0}, {30, 1}}, true));
    h.merger.push(batch(h.in_pool, 1, {{20, 0}, {30, 1}, {31, 2}, {50, 3}}, true));
    CHECK(h.merger.timeline_done());
    h.merger.finish();
    if (end == TimestampMerger::End::first) {
      // A record at the background's last time is still written; after it, none.
      CHECK(h.written == "0.0@10 1.0@20 0.1@30 1.1@30");
      CHECK(h.merger.stats().dropped_after_end == 2);
    } else {
      CHECK(h.written == "0.0@10 1.0@20 0.1@30 1.1@30 1.2@31 1.3@50");
      CHECK(h.merger.stats().dropped_after_end == 0);
    }
  }
}

TEST_CASE("merger: events are stamped at now and go after timeline records of the same time") {
  Harness h(2);
  h.merger.set_origin(5);
  // Before the background shows a packet, now is unknown: the event waits.
  h.merger.push(batch(h.in_pool, 2, {{0, 0}, {15, 1}}, false, true));
  CHECK(h.merger.stats().packets == 0);
  h.merger.push(batch(h.in_pool, 1, {{10, 0}, {25, 1}}, false));
  h.merger.push(batch(h.in_pool, 0, {{10, 0}, {20, 1}, {25, 2}}, false));
  // now = the background's first packet (10): the event's records at 10 and 25 follow the timeline
  // records of those times, as it is listed after them, also while the background's next batch is
  // awaited (rank 1's record at 25 is known).
  CHECK(h.merger.stats().packets == 5);
  h.merger.push(batch(h.in_pool, 0, {}, true));
  h.merger.push(batch(h.in_pool, 1, {}, true));
  h.merger.finish();
  CHECK(h.written == "0.0@10 1.0@10 2.0@10 0.1@20 0.2@25 1.1@25 2.1@25");
  CHECK(h.merger.stats().events == 2);
  CHECK(h.merger.stats().late_events == 0);
}

TEST_CASE("merger: an event asked for a time already written is written at now and counted late") {
  Harness h(1);
  h.merger.push(batch(h.in_pool, 0, {{10, 0}, {20, 1}}, false));
  Batch* e = batch(h.in_pool, 1, {{0, 0}}, false, true);
  e->event_at = 5;
  h.merger.push(e);
  h.merger.push(batch(h.in_pool, 0, {{30, 2}}, true));
  h.merger.finish();
  CHECK(h.written == "0.0@10 0.1@20 1.0@20 0.2@30");
  CHECK(h.merger.stats().late_events == 1);
}

TEST_CASE("merger: events pushed after the end are counted, not written") {
  Harness h(1);
  h.merger.push(batch(h.in_pool, 0, {{10, 0}}, true));
  h.merger.finish();
  h.merger.push(batch(h.in_pool, 1, {{0, 0}, {1, 1}}, false, true));
  CHECK(h.written == "0.0@10");
  CHECK(h.merger.stats().dropped_after_end == 2);
}

TEST_CASE("merger: with end=first the background ends where it reached, counting records a transform after the merge removed") {
  Harness h(2);
  Batch* bg = batch(h.in_pool, 0, {{10, 0}}, true);
  bg->reached_ts = 50;  // its records at 30 and 50 were filtered out after the source
  h.merger.push(bg);
  h.merger.push(batch(h.in_pool, 1, {{20, 0}, {50, 1}, {60, 2}}, true));
  h.merger.finish();
  CHECK(h.written == "0.0@10 1.0@20 1.1@50");
  CHECK(h.merger.stats().dropped_after_end == 1);
}

TEST_CASE("merger: concat writes each input whole after the one before, times as they are, events at now") {
  Harness h(3, TimestampMerger::End::concat);
  // Rank 1 arrives first and starts earlier: it still waits for rank 0 to end.
  h.merger.push(batch(h.in_pool, 1, {{5, 0}, {6, 1}}, false));
  h.merger.push(batch(h.in_pool, 2, {{1, 0}}, true));
  CHECK(h.merger.stats().packets == 0);
  h.merger.push(batch(h.in_pool, 0, {{10, 0}, {30, 1}}, false));
  CHECK(h.merger.stats().packets == 2);
  // An event comes at now (30), between the inputs, before rank 1's earlier records.
  h.merger.push(batch(h.in_pool, 3, {{0, 0}}, false, true));
  h.merger.push(batch(h.in_pool, 0, {{20, 2}}, true));
  CHECK_FALSE(h.merger.timeline_done());
  h.merger.push(batch(h.in_pool, 1, {{4, 2}}, true));
  CHECK(h.merger.timeline_done());
  h.merger.finish();
  CHECK(h.written == "0.0@10 0.1@30 3.0@30 0.2@20 1.0@5 1.1@6 1.2@4 2.0@1");
  CHECK(h.merger.stats().dropped_after_end == 0);
}
