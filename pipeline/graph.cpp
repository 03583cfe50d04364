// The flow graph: each timeline source is an input_node behind a limiter_node, all feeding one
// serial function_node that runs the merger. A reader that splits reading from parsing
// (TimelineSource::splits_reading) has a serial parse node after its limiter: its input node only
// reads, so the next batch is read while the one before is parsed. One read in lanes
// (TimelineSource::reads_in_lanes) has a lane node there instead: its input node only says which
// part of the file each batch holds, and the lane node reads two at once and parses them in order
// (pipeline/lanes.h). Event batches are put to the
// same merge node from the
// injecting threads (unpaced output). Memory stays bounded: a source reads a batch only when one of
// its pool's is free, and the limiter admits no more than the pool holds.
#include <fmt/format.h>

#include <algorithm>
#include <cstring>

#include "pipeline/engine_impl.h"

namespace vei {

namespace {

constexpr size_t batches_per_source = 3;
// What the timeline sources' batches may take in all: with many sources each gets smaller arenas
// (down to min_source_arena), so that memory stays bounded whatever their number. Fresh pages cost
// here (13% of an 8-way merge's samples zeroed the pools' huge pages): the 8-way merge took 0.42 s
// with 32 MiB (1 MiB arenas, 54 MiB peak RSS), 0.46 s with 48 MiB (73 MiB; medians of 7).
constexpr size_t source_memory_budget = size_t{32} << 20;
constexpr size_t min_source_arena = size_t{16} << 10;
// Larger arenas cost fewer trips through the graph per byte: a 4 GiB pass-through takes 0.55 s with
// 1 MiB, 0.47 s with 2 MiB and no less with 4 MiB (2 cores, to /dev/null).
constexpr size_t max_source_arena = size_t{2} << 20;
// Two threads copying a file from the page cache at once take half the time of one: a 4 GiB
// pass-through to /dev/null took 0.32 s read in two lanes, 0.49 s in one (2-core VM, prototype).
constexpr size_t lanes_per_source = 2;
// A source's batches out at once are its pool's: the lanes' ring must hold them all.
static_assert(Lanes<Batch*>::ring > batches_per_source + 1);
constexpr size_t output_batches = 4;
// Injected frames travel in small batches, one per inject() call.
constexpr size_t event_batches = 64;
constexpr size_t event_arena_size = size_t{64} << 10;

// Copies a timeline batch read outside the pools into one of them.
void take_records(const Batch& from, Batch& to) {
  to.clear();
  to.reserve_arena(from.used);
  std::memcpy(to.data(), from.data(), from.used);
  to.used = from.used;
  to.records = from.records;
  to.source = from.source;
  to.last = from.last;
  to.raw_is_output = from.raw_is_output;
  to.sorted = from.sorted;
  to.reached_ts = from.reached_ts;
  to.annotations = from.annotations;
  to.annotation_bytes = from.annotation_bytes;
}

}  // namespace

void Engine::Impl::build_graph() {
  const size_t n = sources.size();
  output_pool = std::make_unique<BatchPool>(output_batches, default_arena_size);
  event_pool = std::make_unique<BatchPool>(event_batches, event_arena_size);
  const auto end = merge.concat    ? TimestampMerger::End::concat
                   : merge.end_all ? TimestampMerger::End::all
                                   : TimestampMerger::End::first;
  merger = std::make_unique<TimestampMerger>(n, end, precision, *output_pool, [this](std::unique_ptr<Sheet> sheet) { output.push({std::move(sheet)}); });
  const auto& bg = *sources[0];
  origin = std::max<int64_t>(0, background_start.value_or(bg.info().first_ts_ns.value_or(0) + bg.offset()));
  merger->set_origin(origin);
  merge_node = std::make_unique<flow::function_node<Batch*, flow::continue_msg>>(graph, flow::serial, [this](Batch* b) {
    const bool event = b->event;
    merger->push(b);
    if (event) events_in_flight.fetch_sub(1);
    maybe_finish();
    return flow::continue_msg();
  });
  source_done.assign(n, 0);
  lanes.resize(n);
  captured_last_stamp.assign(n + 1 + plan.events.size(), INT64_MIN);
  const size_t arena =
      std::clamp(source_memory_budget / (n * (batches_per_source + 1)) / 4096 * 4096, min_source_arena, max_source_arena);
  for (size_t rank = 0; rank < n; ++rank) {
    // One batch more than the limiter admits: an input_node runs its body ahead and holds the
    // result while the limiter is full.
    pools.push_back(std::make_unique<BatchPool>(batches_per_source + 1, arena));
    auto& limiter = limiters.emplace_back(std::make_unique<flow::limiter_node<Batch*>>(graph, batches_per_source));
    // A batch back in its pool lets the source read one more: memory stays at the pool's size.
    pools.back()->set_on_release([l = limiter.get()] { l->decrementer().try_put(flow::continue_msg()); });
    auto& input = input_nodes.emplace_back(std::make_unique<flow::input_node<Batch*>>(
        graph, [this, rank](tbb::flow_control& fc) { return next_batch(rank, fc); }));
    flow::make_edge(*input, *limiter);
    const bool in_lanes = sources[rank]->reads_in_lanes();
    if (in_lanes) lanes[rank] = std::make_unique<Lanes<Batch*>>();
    if (in_lanes || sources[rank]->splits_reading()) {
      auto& parse = parse_nodes.emplace_back(std::make_unique<ParseNode>(
          graph, in_lanes ? lanes_per_source : size_t{flow::serial}, [this, rank](Batch* b, ParseNode::output_ports_type& ports) {
            const auto pass_on = [&](Batch* x) {
              if (Batch* out = parse_batch(rank, x)) std::get<0>(ports).try_put(out);
            };
            if (!lanes[rank]) return pass_on(b);
            lanes[rank]->run(b->raw.index, [&] { read_planned(rank, *b); }, pass_on);
          }));
      flow::make_edge(*limiter, *parse);
      flow::make_edge(flow::output_port<0>(*parse), *merge_node);
    } else {
      parse_nodes.emplace_back();
      flow::make_edge(*limiter, *merge_node);
    }
  }
  parse_done.assign(n, 0);
}

Batch* Engine::Impl::next_batch(size_t rank, tbb::flow_control& fc) {
  if (source_done[rank]) {
    fc.stop();
    return nullptr;
  }
  // The limiter lets this body run only while the pool has a free batch.
  Batch* b = pools[rank]->try_acquire();
  if (!b) {
    fail(fmt::format("internal error: source {} ran out of batches", rank));
    fc.stop();
    return nullptr;
  }
  bool end = stopping && !sources[rank]->waits_for_packets();
  try {
    if (!end && rank == 0 && background_head) {
      // Read ahead to find where the timeline starts; its own transforms already ran.
      take_records(*background_head, *b);
      background_head.reset();
      run_transforms(*b, rank, own_transforms[rank]);
    } else if (!end && lanes[rank]) {
      sources[rank]->plan_raw(*b);
    } else if (!end && parse_nodes[rank]) {
      sources[rank]->read_raw(*b);
    } else if (!end) {
      sources[rank]->fill(*b);
      run_transforms(*b, rank);
    }
  } catch (const std::exception& e) {
    fail(e.what());
    end = true;
  }
  // Stopped or failed: an empty last batch ends this source cleanly in the merger.
  if (end) {
    b->clear();
    b->source = static_cast<uint16_t>(rank);
    b->last = true;
  }
  // A reader that splits reading ends with its input (the parse may end it sooner: end_reading).
  source_done[rank] = b->last || (parse_nodes[rank] && b->raw.ended);
  if (lanes[rank]) b->raw.index = lanes[rank]->post(b);
  return b;
}

void Engine::Impl::read_planned(size_t rank, Batch& b) {
  if (!b.raw.pending) return;  // the background's first batch, read ahead; or an empty last one
  try {
    sources[rank]->read_planned(b);
  } catch (const std::exception& e) {
    fail(e.what());
    sources[rank]->end_reading();
    b.clear();
    b.source = static_cast<uint16_t>(rank);
    b.last = true;
  }
}

Batch* Engine::Impl::parse_batch(size_t rank, Batch* b) {
  // Batches read before the parse found the source's end (a closed window, damage) are not wanted.
  if (parse_done[rank]) {
    b->pool->release(b);
    return nullptr;
  }
  if (b->raw.pending) {
    try {
      sources[rank]->parse_raw(*b);
      run_transforms(*b, rank);
    } catch (const std::exception& e) {
      fail(e.what());
      sources[rank]->end_reading();
      b->clear();
      b->source = static_cast<uint16_t>(rank);
      b->last = true;
    }
  }
  parse_done[rank] = b->last;
  return b;
}

// In the merge node: once no timeline record is left, stop accepting events and finish as soon as
// every event already accepted has been merged, so that accepted == written.
void Engine::Impl::maybe_finish() {
  if (merger->finished() || !merger->timeline_done()) return;
  stopping = true;
  // While pacing, events never reach the merger: the output thread closes injection at its end.
  if (paced()) return merger->finish();
  close_injection();
  if (events_in_flight.load() == 0) merger->finish();
}

}  // namespace vei
