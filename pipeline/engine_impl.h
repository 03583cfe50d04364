// The engine's state, shared by the files that each do one of its jobs:
//   configure.cpp  a resolved description -> open sources, timeline mapping, transforms, sink set-up
//   graph.cpp      the oneTBB flow graph: timeline sources -> limiters -> (parse nodes) -> the merge node
//   output.cpp     the output thread: the merged stream (and, while pacing, events) to the sink
//   events.cpp     injection (API, control lines) and captured frames, stamped on the timeline
//   engine.cpp     the public facade: lifecycle and statistics
// Nothing here is public API (pipeline/engine.h is).
//
// Threads: TBB's workers run the input nodes (one per timeline source at a time), the serial parse
// nodes of the readers that split reading from parsing, the lane nodes of those read in lanes (two
// batches read at once, parsed in order: pipeline/lanes.h), and the serial merge node; the output
// thread owns the sink and, while pacing, the pacer's wait and the last
// merge; injecting threads (API callers, control sockets, live captures) only fill event batches
// and hand them over through submit_event().
#pragma once

#include <oneapi/tbb/flow_graph.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdint>
#include <memory>
#include <mutex>
#include <optional>
#include <shared_mutex>
#include <string>
#include <thread>
#include <vector>

#include "core/batch.h"
#include "core/input_fd.h"
#include "core/merger.h"
#include "core/pacer.h"
#include "core/report.h"
#include "core/sink.h"
#include "core/timeline_source.h"
#include "core/transform.h"
#include "pipeline/engine.h"
#include "pipeline/lanes.h"
#include "pipeline/output_queue.h"
#include "pipeline/plan.h"
#include "pipeline/stage.h"

namespace vei {

namespace flow = tbb::flow;

struct Engine::Impl final : EventInjector {
  // ---- configuration (configure.cpp): fixed once from_description() returns ----
  std::unique_ptr<Pipeline> pipeline;
  Plan plan;
  Report report;
  std::vector<std::unique_ptr<TimelineSource>> sources;  // by rank; [0] is the background
  SourceContext context;                                  // what later sources learn of the background
  pcap::Precision precision = pcap::Precision::us;
  uint32_t snaplen = 0;  // the largest caplen any input may deliver (or the sink's snaplen=)
  MergeOptions merge;
  PaceOptions pace;
  SinkContext sink_context;
  uint64_t total_input_bytes = 0;  // of the regular files among the inputs, for the ETA

  // Ranks: timeline sources 0..n-1, then the API's injections, then each event source in the order
  // the description declares them.
  uint16_t api_rank() const { return static_cast<uint16_t>(sources.size()); }
  uint16_t event_rank(size_t i) const { return static_cast<uint16_t>(sources.size() + 1 + i); }

  // Transforms by node id, null for other stages: apply() is const, so one instance serves every
  // thread. chains[rank]: the transforms a rank's packets go through, its own then the output's.
  struct TransformCounts {
    std::atomic<uint64_t> changed{0}, dropped{0};
  };
  std::vector<std::unique_ptr<Transform>> transforms;
  std::unique_ptr<TransformCounts[]> transform_counts;
  std::vector<std::vector<int>> chains;
  std::vector<size_t> own_transforms;  // by rank: how many of chains[rank] are the rank's own

  void configure();  // throws DescriptionError, or std::runtime_error for an input that cannot be opened
  void open_sources(std::vector<Diagnostic>& errors);
  void map_timelines(std::vector<Diagnostic>& errors);
  // The background's first kept packet on the output timeline (after its filter= and its own
  // transforms), read ahead into `background_head`; none when it keeps no packet at all.
  std::optional<int64_t> find_background_start();
  std::string_view empty_background_why() const;
  std::unique_ptr<Batch> background_head;  // delivered before the background's next fill()
  std::optional<int64_t> background_start;
  void check_paths(std::vector<Diagnostic>& errors);
  // pace(loop=N) reads every timeline input again: refuses one that is a stream, before opening it.
  void check_loop_inputs(std::vector<Diagnostic>& errors);
  void make_transforms(std::vector<Diagnostic>& errors);
  void describe_sources();
  void loop_sources();
  std::unique_ptr<TimelineSource> open_source(const Node& node, SourceOptions options, const SourceContext& ctx);
  // Runs chains[rank][from, to) on b.
  void run_transforms(Batch& b, size_t rank, size_t from = 0, size_t to = SIZE_MAX) {
    const auto& chain = chains[rank];
    for (size_t i = from; i < std::min(to, chain.size()); ++i) {
      // What the transforms after the merge remove still counts for where the source reached: they
      // act on the merged stream, so they must not move the background's end (core/batch.h).
      if (i == own_transforms[rank])
        for (const auto& r : b.records) b.reached_ts = std::max(b.reached_ts, r.ts_ns);
      const int id = chain[i];
      const TransformStats t = transforms[id]->apply(b);
      if (t.changed) transform_counts[id].changed.fetch_add(t.changed, std::memory_order_relaxed);
      if (t.dropped) transform_counts[id].dropped.fetch_add(t.dropped, std::memory_order_relaxed);
    }
  }

  // ---- the graph (graph.cpp) ----
  std::vector<std::unique_ptr<BatchPool>> pools;
  std::unique_ptr<BatchPool> output_pool;
  std::unique_ptr<TimestampMerger> merger;
  flow::graph graph;
  std::vector<std::unique_ptr<flow::input_node<Batch*>>> input_nodes;
  std::vector<std::unique_ptr<flow::limiter_node<Batch*>>> limiters;
  // A reader that splits reading from parsing (TimelineSource::splits_reading) has its parse node
  // between its limiter and the merge node, and one read in lanes (TimelineSource::reads_in_lanes)
  // its lane node there, which reads and parses; the others have none.
  using ParseNode = flow::multifunction_node<Batch*, std::tuple<Batch*>>;
  std::vector<std::unique_ptr<ParseNode>> parse_nodes;
  std::vector<std::unique_ptr<Lanes<Batch*>>> lanes;  // by rank, for the sources read in lanes
  std::unique_ptr<flow::function_node<Batch*, flow::continue_msg>> merge_node;
  std::vector<char> source_done;  // the input node's: it has read its last batch
  std::vector<char> parse_done;   // the parse node's: it has passed its source's last batch on
  int64_t origin = 0;  // the timeline's now before its first packet

  void build_graph();
  Batch* next_batch(size_t rank, tbb::flow_control& fc);
  // The parse node's body: the batch to pass on to the merge node, or null for one read after the
  // source's end, which goes back to its pool.
  Batch* parse_batch(size_t rank, Batch* b);
  // The lane node's reading: a failure ends the source with `b` as its last batch.
  void read_planned(size_t rank, Batch& b);
  void maybe_finish();

  // ---- the output thread (output.cpp) ----
  std::unique_ptr<Sink> sink;
  std::mutex sink_mutex;  // held around every write to the sink; freeze_output() takes it for good
  OutputQueue output;
  std::unique_ptr<Pacer> pacer;  // with a pace stage that waits
  bool paced() const { return pacer != nullptr; }
  std::thread output_thread;
  std::atomic<uint64_t> written_packets{0};
  std::atomic<uint64_t> written_bytes{0};
  SeriesCounter series;  // what send() wrote, by second and rank

  void output_loop();
  void paced_output_loop();
  // Writes the records of `pieces`; false once the sink has failed.
  bool send(std::span<const Piece> pieces);

  // ---- events (events.cpp) ----
  std::unique_ptr<BatchPool> event_pool;
  std::shared_mutex inject_mutex;
  bool accepting = true;                       // under inject_mutex
  std::atomic<uint64_t> events_in_flight{0};   // put to the merge node, not yet merged
  std::atomic<uint64_t> next_event_id{0};
  std::atomic<uint64_t> accepted_events{0};
  std::atomic<uint64_t> refused_events{0};     // handed over after injection closed: not written
  InjectionLog injections;                     // accepted injections (not live captures)
  std::vector<std::unique_ptr<EventSource>> event_sources;
  // Output thread, while pacing: the last time written, and each captured rank's last stamp.
  int64_t last_out_ts = INT64_MIN;
  std::vector<int64_t> captured_last_stamp;
  std::atomic<uint64_t> paced_events{0};
  std::atomic<uint64_t> paced_late{0};

  // Hands an event batch to the merge node, or while pacing to the output thread; false (and the
  // batch released, its records counted refused) once the pipeline takes no more events.
  // `stage` names what was injected (`icmp`, `pcap`; `frames` for frames given as bytes).
  bool submit_event(Batch* b, std::string_view stage = {});
  void stamp_paced_event(Batch& b);
  void close_injection() {
    std::unique_lock lock(inject_mutex);
    accepting = false;
  }
  size_t inject(std::span<const InjectedFrame> frames, std::optional<int64_t> at_ns, uint16_t rank,
                std::string_view stage = "frames");
  size_t inject_stage(std::string_view stage, uint16_t rank);
  // EventInjector
  std::string inject_line(std::string_view line, uint16_t rank) override;
  void deliver_captured(Batch* b) override;
  void fail(std::string message) override;

  // ---- lifecycle (engine.cpp) ----
  std::atomic<bool> stopping{false};
  Interrupt interrupt;  // wakes sources waiting on a stream input when the run stops
  std::atomic<bool> halted{false};  // stop(): what is merged is written without waiting for its time
  std::atomic<bool> running{false};
  mutable std::mutex error_mutex;
  std::string error;
  std::chrono::steady_clock::time_point started, finished;

  // Ends the run as stop() does (what is merged is still written, without waiting for its time).
  void halt() {
    stopping = true;
    for (auto& source : sources) source->stop();
    halted = true;
    interrupt.raise();
    output.wake();
  }
};

}  // namespace vei
