// The output thread: takes merged batches (and, while pacing, event batches) from the output queue
// and writes them to the sink. It never runs graph tasks, so a sink that waits on the disk, or a
// pacer that sleeps, cannot starve the graph's workers.
#include "core/ordering.h"
#include "core/realtime.h"
#include "pipeline/engine_impl.h"

namespace vei {

bool Engine::Impl::send(std::span<const Piece> pieces) {
  std::lock_guard lock(sink_mutex);
  const uint64_t before = sink->stats().packets;
  bool ok = true;
  try {
    sink->consume(pieces);
  } catch (const std::exception& e) {
    fail(e.what());
    ok = false;
  }
  // A sink that failed part way counts what it did write or send: the statistics say so.
  written_packets.store(sink->stats().packets, std::memory_order_relaxed);
  written_bytes.store(sink->stats().bytes, std::memory_order_relaxed);
  // The series (--stats-json) counts the records handed over, or those written before a failure.
  uint64_t left = ok ? UINT64_MAX : sink->stats().packets - before;
  const uint16_t first_event_rank = api_rank();
  for (const Piece& p : pieces) {
    const auto taken = static_cast<uint32_t>(std::min<uint64_t>(p.count, left));
    const auto records = std::span(p.batch->records).subspan(p.first, taken);
    // A timeline source's own batch holds its records alone (the output's batches mix sources).
    if (p.batch->sorted && p.batch->source < first_event_rank && p.batch->pool != output_pool.get()) {
      series.add_sorted(p.batch->source, records.data(), records.data() + records.size());
    } else {
      for (const Record& r : records) {
        series.add(r.source, r.ts_ns, r.caplen);
        if (r.source >= first_event_rank) injections.written(r.seq, r.ts_ns);
      }
    }
    if ((left -= taken) == 0) break;
  }
  return ok;
}

void Engine::Impl::output_loop() {
  if (paced()) {
    if (pace.priority > 0)
      if (std::string refused = make_realtime(pace.priority); !refused.empty()) report.warn(std::move(refused));
    paced_output_loop();
  } else {
    bool failed = false;
    for (;;) {
      const std::unique_ptr<Sheet> sheet = output.pop().sheet;
      if (!failed) failed = !send(sheet->pieces);
      sheet->release();
      if (sheet->last) break;
    }
  }
  try {
    sink->close();
  } catch (const std::exception& e) {
    fail(e.what());
  }
  finished = std::chrono::steady_clock::now();
  graph.release_wait();
}

// While pacing, the output thread is the last merge: timeline records arrive merged and in order
// from the merger, event batches straight from their sources (stamped here, on arrival, with the
// timeline's now). Each record leaves at its deadline, the earliest timestamp first (a tie goes to
// the timeline, then to the event that came first). The pacer's delay (the merge's lateness) lets
// an event stamped "now" arrive before the timeline records that follow it are due.
void Engine::Impl::paced_output_loop() {
  struct Cursor {
    Batch* batch;
    size_t next;
  };
  std::deque<std::unique_ptr<Sheet>> timeline;
  std::deque<Delivery> incoming;
  size_t piece = 0, next = 0;  // in timeline.front(): the piece, and the record within it
  std::vector<Cursor> events;
  bool timeline_ended = false;
  bool closed = false;
  bool failed = false;
  for (;;) {
    if (timeline_ended && timeline.empty() && events.empty()) {
      if (closed) break;
      // Events accepted before this point are queued by now: they are drained and written.
      close_injection();
      closed = true;
    }
    // An event never overtakes a timeline record not yet known, so events wait for the timeline.
    output.drain(incoming, timeline.empty() && !timeline_ended);
    for (Delivery& d : incoming) {
      if (d.event) {
        stamp_paced_event(*d.event);
        events.push_back({d.event, 0});
      } else {
        timeline.push_back(std::move(d.sheet));
      }
    }
    incoming.clear();
    while (!timeline.empty()) {
      Sheet& sheet = *timeline.front();
      while (piece < sheet.pieces.size() && next == sheet.pieces[piece].count) {
        ++piece;
        next = 0;
      }
      if (piece < sheet.pieces.size()) break;
      timeline_ended |= sheet.last;
      sheet.release();
      timeline.pop_front();
      piece = 0;
    }
    std::erase_if(events, [](const Cursor& c) {
      if (c.next < c.batch->records.size()) return false;
      c.batch->pool->release(c.batch);
      return true;
    });

    // Stream 0 is the merged timeline, then the events in the order they were stamped. An event
    // never overtakes a timeline record not yet known, so events wait for the timeline.
    const bool timeline_known = !timeline.empty() || timeline_ended;
    const auto head = [&](size_t i) -> std::pair<const Batch*, size_t> {
      if (i > 0) return {events[i - 1].batch, events[i - 1].next};
      const Piece& p = timeline.front()->pieces[piece];
      return {p.batch, p.first + next};
    };
    const auto choice = choose(1 + events.size(), [&](size_t i) -> const Record* {
      if (i == 0 ? timeline.empty() : !timeline_known) return nullptr;
      const auto [batch, index] = head(i);
      return &batch->records[index];
    });
    if (!choice) continue;
    const auto [from, index] = head(choice->stream);
    const Record& r = from->records[index];
    if (!failed && !halted && !pacer->wait(r.ts_ns, r.len, &output.arrived())) continue;
    const Piece one{from, static_cast<uint32_t>(index), 1};
    if (!failed) failed = !send({&one, 1});
    last_out_ts = r.ts_ns;
    ++(choice->stream == 0 ? next : events[choice->stream - 1].next);
  }
}

}  // namespace vei
