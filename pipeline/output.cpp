// The output thread: takes merged batches (and, while pacing, event batches) from the output queue
// and writes them to the sink. It never runs graph tasks, so a sink that waits on the disk, or a
// pacer that sleeps, cannot starve the graph's workers.
#include "core/ordering.h"
#include "pipeline/engine_impl.h"

namespace vei {

bool Engine::Impl::send(const Batch& b, size_t first, size_t count) {
  std::lock_guard lock(sink_mutex);
  const uint64_t before = sink->stats().packets;
  bool ok = true;
  try {
    sink->consume(b, first, count);
  } catch (const std::exception& e) {
    fail(e.what());
    ok = false;
  }
  // A sink that failed part way counts what it did write or send: the statistics say so.
  written_packets.store(sink->stats().packets, std::memory_order_relaxed);
  written_bytes.store(sink->stats().bytes, std::memory_order_relaxed);
  // The series (--stats-json) counts the records handed over, or those written before a failure.
  const size_t taken = ok ? count : static_cast<size_t>(sink->stats().packets - before);
  const uint16_t first_event_rank = api_rank();
  for (size_t i = first; i < first + taken; ++i) {
    const Record& r = b.records[i];
    series.add(r.source, r.ts_ns, r.caplen);
    if (r.source >= first_event_rank) injections.written(r.seq, r.ts_ns);
  }
  return ok;
}

void Engine::Impl::output_loop() {
  if (paced()) {
    paced_output_loop();
  } else {
    bool failed = false;
    for (;;) {
      Batch* b = output.pop();
      const bool last = b->last;
      if (!failed) failed = !send(*b, 0, b->records.size());
      b->pool->release(b);
      if (last) break;
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
  std::deque<Batch*> timeline;
  std::deque<Batch*> incoming;
  size_t next = 0;  // in timeline.front()
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
    for (Batch* b : incoming) {
      if (b->event) {
        stamp_paced_event(*b);
        events.push_back({b, 0});
      } else {
        timeline.push_back(b);
      }
    }
    incoming.clear();
    while (!timeline.empty() && next == timeline.front()->records.size()) {
      timeline_ended |= timeline.front()->last;
      timeline.front()->pool->release(timeline.front());
      timeline.pop_front();
      next = 0;
    }
    std::erase_if(events, [](const Cursor& c) {
      if (c.next < c.batch->records.size()) return false;
      c.batch->pool->release(c.batch);
      return true;
    });

    // Stream 0 is the merged timeline, then the events in the order they were stamped. An event
    // never overtakes a timeline record not yet known, so events wait for the timeline.
    const bool timeline_known = !timeline.empty() || timeline_ended;
    const auto choice = choose(1 + events.size(), [&](size_t i) -> const Record* {
      if (i == 0) return timeline.empty() ? nullptr : &timeline.front()->records[next];
      return timeline_known ? &events[i - 1].batch->records[events[i - 1].next] : nullptr;
    });
    if (!choice) continue;
    Batch* from = choice->stream == 0 ? timeline.front() : events[choice->stream - 1].batch;
    size_t* index = choice->stream == 0 ? &next : &events[choice->stream - 1].next;
    const Record& r = from->records[*index];
    if (!failed && !halted && !pacer->wait(r.ts_ns, r.len, &output.arrived())) continue;
    if (!failed) failed = !send(*from, *index, 1);
    last_out_ts = r.ts_ns;
    ++*index;
  }
}

}  // namespace vei
