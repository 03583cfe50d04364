#include "pipeline/engine.h"

#include <fmt/format.h>
#include <oneapi/tbb/flow_graph.h>

#include <chrono>
#include <condition_variable>
#include <deque>
#include <filesystem>
#include <functional>
#include <mutex>
#include <shared_mutex>
#include <thread>

#include "pipeline/plan.h"
#include "pipeline/source_factory.h"
#include "pipeline/transform_factory.h"
#include "stages/control.h"
#include "stages/file.h"
#include "stages/live.h"
#include "core/looping_source.h"
#include "stages/nic.h"
#include "stages/pace.h"
#include "core/timeline_source.h"
#include "stages/merge.h"

namespace vei {

namespace {

namespace flow = tbb::flow;

constexpr size_t batches_per_source = 3;
// What the timeline sources' batches may take in all: with many sources each gets smaller arenas
// (down to min_source_arena), so that memory stays bounded whatever their number.
constexpr size_t source_memory_budget = size_t{48} << 20;
constexpr size_t min_source_arena = size_t{16} << 10;
constexpr size_t output_batches = 4;
// Injected frames travel in small batches, one per inject() call.
constexpr size_t event_batches = 64;
constexpr size_t event_arena_size = size_t{64} << 10;
// A live source flushes a batch every millisecond or so: many small batches, enough of them to ride
// out a quarter of a second of output stall at a packet per millisecond.
constexpr size_t live_batches = 256;
constexpr size_t live_arena_size = size_t{64} << 10;

int64_t clock_ns(clockid_t clock) {
  timespec t{};
  clock_gettime(clock, &t);
  return int64_t{t.tv_sec} * 1'000'000'000 + t.tv_nsec;
}

// CLOCK_MONOTONIC - CLOCK_REALTIME, from the tightest of three monotonic brackets around a
// realtime read: a thread preempted between two clock reads would otherwise skew it by the
// preemption (tens of ms on a loaded machine) and misplace a whole live batch.
int64_t realtime_to_monotonic() {
  int64_t best_width = INT64_MAX, offset = 0;
  for (int i = 0; i < 3; ++i) {
    const int64_t before = clock_ns(CLOCK_MONOTONIC);
    const int64_t real = clock_ns(CLOCK_REALTIME);
    const int64_t after = clock_ns(CLOCK_MONOTONIC);
    if (after - before < best_width) {
      best_width = after - before;
      offset = before + (after - before) / 2 - real;
    }
  }
  return offset;
}

// Hands merged batches (and, while pacing, event batches) from the graph to the output thread,
// which never runs graph tasks: a sink that sleeps or waits on the disk must not starve the
// graph's two workers.
class OutputQueue {
 public:
  void push(Batch* b) {
    {
      std::lock_guard lock(mutex_);
      queue_.push_back(b);
      arrived_.store(true, std::memory_order_release);
    }
    ready_.notify_one();
  }
  Batch* pop() {
    std::unique_lock lock(mutex_);
    ready_.wait(lock, [this] { return !queue_.empty(); });
    Batch* b = queue_.front();
    queue_.pop_front();
    return b;
  }
  // Moves every queued batch to the end of `out`, first waiting for one (or a wake()) if `block`.
  void drain(std::deque<Batch*>& out, bool block) {
    std::unique_lock lock(mutex_);
    if (block) ready_.wait(lock, [this] { return !queue_.empty() || woken_; });
    woken_ = false;
    arrived_.store(false, std::memory_order_relaxed);
    out.insert(out.end(), queue_.begin(), queue_.end());
    queue_.clear();
  }
  // Ends a blocking drain, or a pacer's wait on arrived(), without a batch.
  void wake() {
    {
      std::lock_guard lock(mutex_);
      woken_ = true;
      arrived_.store(true, std::memory_order_release);
    }
    ready_.notify_one();
  }
  // Set while something pushed (or a wake) has not been drained: a pacer's wait ends on it.
  const std::atomic<bool>& arrived() const { return arrived_; }

 private:
  std::mutex mutex_;
  std::condition_variable ready_;
  std::deque<Batch*> queue_;
  std::atomic<bool> arrived_{false};
  bool woken_ = false;
};

// Reads `source` to its end, calling f(batch, record) for every record.
template <class F>
void for_each_record(TimelineSource& source, F&& f, std::span<const std::unique_ptr<Transform>> chain = {}) {
  Batch batch;
  batch.reserve_arena(default_arena_size);
  do {
    source.fill(batch);
    for (const auto& transform : chain) transform->apply(batch);
    for (const auto& r : batch.records) f(batch, r);
  } while (!batch.last);
}

}  // namespace

struct Engine::Impl {
  std::unique_ptr<Pipeline> pipeline;
  Plan plan;
  Report report;
  std::vector<std::unique_ptr<TimelineSource>> sources;
  std::vector<std::unique_ptr<BatchPool>> pools;
  std::unique_ptr<BatchPool> output_pool;
  std::unique_ptr<TimestampMerger> merger;
  pcap::Precision precision = pcap::Precision::us;
  std::function<std::unique_ptr<Sink>()> open_sink;
  uint64_t total_input_bytes = 0;  // of the regular files among the inputs, for the ETA
  std::unique_ptr<Sink> sink;
  std::mutex sink_mutex;  // held around every write to the sink; freeze_output() takes it for good
  OutputQueue output;

  flow::graph graph;
  std::vector<std::unique_ptr<flow::input_node<Batch*>>> input_nodes;
  std::vector<std::unique_ptr<flow::limiter_node<Batch*>>> limiters;
  std::unique_ptr<flow::function_node<Batch*, flow::continue_msg>> merge_node;
  std::vector<char> source_done;

  std::thread output_thread;
  std::atomic<bool> stopping{false};
  std::atomic<bool> halted{false};  // stop(): what is merged is written without waiting for its time
  std::atomic<uint64_t> written_packets{0};
  std::atomic<uint64_t> written_bytes{0};
  mutable std::mutex error_mutex;
  std::string error;
  std::chrono::steady_clock::time_point started, finished;
  std::atomic<bool> running{false};

  // Ends the run as stop() does (what is merged is still written, without waiting for its time).
  void fail(std::string message) {
    {
      std::lock_guard lock(error_mutex);
      if (error.empty()) error = std::move(message);
    }
    halt();
  }
  void halt() {
    stopping = true;
    halted = true;
    output.wake();
  }

  // Events: batches of injected frames, handed to the merge node from any thread.
  std::unique_ptr<BatchPool> event_pool;
  std::shared_mutex inject_mutex;
  bool accepting = true;                 // under inject_mutex
  std::atomic<uint64_t> events_in_flight{0};  // put to the merge node, not yet merged
  std::atomic<uint64_t> next_event_id{0};
  std::atomic<uint64_t> accepted_events{0};
  uint32_t snaplen = 0;

  // In the merge node: once no timeline record is left, stop accepting events and finish as soon
  // as every event already accepted has been merged, so that accepted == written.
  void maybe_finish() {
    if (merger->finished() || !merger->timeline_done()) return;
    stopping = true;
    // While pacing, events never reach the merger: the output thread closes injection at its end.
    if (paced()) return merger->finish();
    {
      std::unique_lock lock(inject_mutex);
      accepting = false;
    }
    if (events_in_flight.load() == 0) merger->finish();
  }

  // Pacing (a pace stage that waits): the output thread merges events into the timeline itself.
  std::unique_ptr<Pacer> pacer;
  bool paced() const { return pacer != nullptr; }
  int64_t origin = 0;  // the timeline's now before its first packet
  int64_t last_out_ts = INT64_MIN;  // output thread
  std::atomic<uint64_t> paced_events{0};
  std::atomic<uint64_t> paced_late{0};
  NicWriter* nic = nullptr;  // the sink, when it is a nic

  std::vector<std::unique_ptr<LiveCapture>> lives;
  std::vector<std::unique_ptr<BatchPool>> live_pools;
  std::vector<std::string> live_names;
  std::vector<int64_t> live_last_stamp;  // output thread: a live source's packets keep capture order

  // Transforms by node id, null for other stages: apply() is const, so one instance serves every
  // thread. chains[rank]: the transforms a rank's packets go through, its own then the output's.
  struct TransformCounts {
    std::atomic<uint64_t> changed{0}, dropped{0};
  };
  std::vector<std::unique_ptr<Transform>> transforms;
  std::unique_ptr<TransformCounts[]> transform_counts;
  std::vector<std::vector<int>> chains;
  void make_transforms(std::vector<Diagnostic>& errors);
  void run_transforms(Batch& b, size_t rank) {
    for (int id : chains[rank]) {
      const TransformStats t = transforms[id]->apply(b);
      if (t.changed) transform_counts[id].changed.fetch_add(t.changed, std::memory_order_relaxed);
      if (t.dropped) transform_counts[id].dropped.fetch_add(t.dropped, std::memory_order_relaxed);
    }
  }

  // Hands an event batch to the merge node, or while pacing to the output thread; false (and the
  // batch released) once the pipeline takes no more events.
  bool submit_event(Batch* b);
  void deliver_live(Batch* b);
  void stamp_paced_event(Batch& b);
  void close_injection() {
    std::unique_lock lock(inject_mutex);
    accepting = false;
  }
  // Writes records [first, first + count) of b; false once the sink has failed.
  bool send(const Batch& b, size_t first, size_t count);
  void paced_output_loop();
  size_t inject(std::span<const InjectedFrame> frames, std::optional<int64_t> at_ns, uint16_t rank);
  size_t inject_stage(std::string_view stage, uint16_t rank);
  SourceContext context;
  // Event sources rank after every timeline source: `api`, then `control`.
  uint16_t api_rank() const { return static_cast<uint16_t>(sources.size()); }
  uint16_t control_rank() const { return static_cast<uint16_t>(sources.size() + 1); }
  uint16_t live_rank(size_t i) const { return static_cast<uint16_t>(sources.size() + 2 + i); }
  std::vector<std::unique_ptr<ControlSocket>> controls;
  std::string control_line(std::string_view line);
  void open_sources();
  std::unique_ptr<TimelineSource> open_again(size_t rank, uint64_t pass);
  void loop_sources(const Value& loop);
  void build_graph();
  Batch* next_batch(size_t rank, tbb::flow_control& fc);
  void output_loop();
};

void Engine::Impl::open_sources() {
  const auto& nodes = pipeline->nodes;
  for (size_t rank = 0; rank < plan.sources.size(); ++rank) {
    const Node& n = nodes[plan.sources[rank]];
    SourceOptions options;
    options.rank = static_cast<uint16_t>(rank);
    options.report = &report;
    sources.push_back(make_timeline_source(n, std::move(options), context));
    if (rank == 0) {
      context.background_linktype = sources[0]->info().linktype;
      if (n.spec->name == "pcap") context.background_path = param(n, "file").text;
    }
  }

  // The output speaks the background's link type; bytes of another link type would be misread.
  const auto& bg = sources[0]->info();
  std::vector<Diagnostic> errors;
  for (size_t rank = 1; rank < sources.size(); ++rank) {
    const auto& info = sources[rank]->info();
    if (info.linktype != bg.linktype)
      errors.push_back({nodes[plan.sources[rank]].span,
                        fmt::format("{} has link type {} ({}), but the output has {} ({}), the first source's",
                                    sources[rank]->options().name, pcap::linktype_name(info.linktype),
                                    info.linktype, pcap::linktype_name(bg.linktype), bg.linktype),
                        "merge only captures of one link type (convert this one first)"});
  }

  for (size_t rank = 0; rank < sources.size(); ++rank) {
    try {
      sources[rank]->compile_filter();
    } catch (const std::runtime_error& e) {
      errors.push_back({param(nodes[plan.sources[rank]], "filter").span, e.what(),
                        "filters use tcpdump's syntax: pcap-filter(7)"});
    }
  }

  const Node& sink_node = nodes[plan.sink];
  const auto& precision_choice = param(sink_node, "precision").text;
  const bool ns = precision_choice == "ns" ||
                  (precision_choice == "auto" && (bg.precision == pcap::Precision::ns || bg.pcapng));
  precision = ns ? pcap::Precision::ns : pcap::Precision::us;

  // Timeline mapping (DESIGN.md §2): `at` is measured from the background's first packet as it
  // appears in the output.
  const int64_t bg_first = bg.first_ts_ns.value_or(0);
  int64_t bg_start = 0;
  for (size_t rank = 0; rank < sources.size(); ++rank) {
    const Node& n = nodes[plan.sources[rank]];
    const Value& at = param(n, "at");
    const auto& rebase = param(n, "rebase");
    // A stage may declare its own default (icmp has no clock of its own: `first`); pcap declares none.
    const bool rebase_first = rebase.text.empty() ? at.given : rebase.text == "first";
    int64_t offset = param(n, "shift").integer;
    const auto first = sources[rank]->info().first_ts_ns;
    // Durations are checked one by one, not their sums: out of int64 nanoseconds, no time is right.
    bool overflow = false;
    const auto add = [&overflow](int64_t& to, int64_t v) { overflow |= __builtin_add_overflow(to, v, &to); };
    if (rank == 0) {
      if (at.given) add(offset, at.integer);
      bg_start = bg_first;
      add(bg_start, offset);
    } else if (rebase_first && first) {
      add(offset, bg_start);
      add(offset, at.integer);
      add(offset, -*first);
    }
    if (overflow)
      errors.push_back({(at.given ? at : param(n, "shift")).span, "this places the source beyond the representable time",
                        "timestamps are nanoseconds since 1970 within about ±292 years"});
    sources[rank]->set_mapping(offset, precision);
  }

  // Records longer than their file's snaplen are kept whole (libpcap would clip them silently), so
  // the output declares the largest length any input may deliver.
  snaplen = 0;
  for (auto& s : sources) snaplen = std::max(snaplen, pcap::record_limit(s->info().snaplen));
  if (const Value& v = param(sink_node, "snaplen"); v.given) snaplen = static_cast<uint32_t>(v.integer);
  // Opening the output truncates it: refuse when it is one of the inputs.
  const auto& out_path = param(sink_node, "file").text;
  for (size_t rank = 0; rank < sources.size(); ++rank) {
    std::error_code ec;
    const auto& in_path = param(nodes[plan.sources[rank]], "file").text;
    if (!out_path.empty() && out_path != "-" && in_path != "-" && std::filesystem::equivalent(out_path, in_path, ec))
      errors.push_back({param(sink_node, "file").span, fmt::format("the output '{}' is also an input", out_path),
                        "writing it would destroy the input before it is read"});
    total_input_bytes += std::filesystem::file_size(in_path, ec) * !ec;
  }
  make_transforms(errors);
  if (!errors.empty()) throw DescriptionError(pipeline->where, pipeline->text, std::move(errors));
  if (plan.pacer) {
    if (const Value& loop = param(nodes[*plan.pacer], "loop"); loop.integer > 1) loop_sources(loop);
  }
  // Opened by start(): `veipipe check` must not create or truncate the output.
  LabelsOptions labels;
  labels.path = param(sink_node, "labels").text;
  for (size_t rank = 0; rank < sources.size(); ++rank) {
    const Node& n = nodes[plan.sources[rank]];
    const auto& file = param(n, "file").text;
    labels.names.push_back(!n.label.empty() ? n.label
                           : file.empty()   ? std::string(n.spec->name)
                                            : std::filesystem::path(file).stem().string());
    labels.origins.push_back(file.empty() ? std::string(n.spec->name) : file);
  }
  for (const char* event_source : {"api", "control"}) {
    labels.names.emplace_back(event_source);
    labels.origins.emplace_back("event");
  }
  for (int id : plan.events) {
    const Node& n = nodes[id];
    if (n.spec->name != "live") continue;
    labels.names.push_back(!n.label.empty() ? n.label : fmt::format("live {}", param(n, "interface").text));
    labels.origins.emplace_back("event");
  }
  if (sink_node.spec->name == "nic") {
    NicOptions options;
    options.truncate_to_mtu = param(sink_node, "truncate").boolean;
    options.max_retries = static_cast<int>(param(sink_node, "retries").integer);
    options.method = nic_method_from_string(param(sink_node, "method").text).value_or(NicMethod::inject);
    open_sink = [this, interface = param(sink_node, "interface").text, options, linktype = bg.linktype] {
      auto writer = std::make_unique<NicWriter>(interface, options);
      if (writer->linktype() != linktype)
        throw std::runtime_error(fmt::format("nic {}: the interface speaks {} ({}), but the output is {} ({})", interface,
                                             pcap::linktype_name(writer->linktype()), writer->linktype(),
                                             pcap::linktype_name(linktype), linktype));
      nic = writer.get();
      return std::unique_ptr<Sink>(std::move(writer));
    };
  } else {
    // A snaplen() after the merge cuts every packet: the header says so, as editcap -s writes it.
    uint32_t header_snaplen = snaplen;
    if (!param(sink_node, "snaplen").given)
      for (int id : plan.output_transforms)
        if (nodes[id].spec->name == "snaplen")
          header_snaplen = std::min(header_snaplen, static_cast<uint32_t>(param(nodes[id], "length").integer));
    open_sink = [path = out_path, precision = precision, header_snaplen, linktype = bg.linktype, labels] {
      return std::unique_ptr<Sink>(std::make_unique<FileWriter>(path, precision, header_snaplen, linktype, labels));
    };
  }
  if (plan.pacer) {
    const Node& pace = nodes[*plan.pacer];
    PaceMode mode{PaceMode::multiplier, param(pace, "speed").real};
    const Value& pps = param(pace, "pps");
    const Value& mbps = param(pace, "mbps");
    if (pps.given) mode = {PaceMode::pps, pps.real};
    else if (mbps.given) mode = {PaceMode::mbps, mbps.real / 1e6};
    else if (mode.value == 1) mode.kind = PaceMode::realtime;
    if (mode.value > 0) {
      pacer = std::make_unique<Pacer>(mode);
      pacer->set_delay(plan.merger ? param(nodes[*plan.merger], "lateness").integer : 0);
    }
  }
}

void Engine::Impl::make_transforms(std::vector<Diagnostic>& errors) {
  const auto& nodes = pipeline->nodes;
  const uint32_t linktype = sources[0]->info().linktype;  // every source's, checked before
  transforms.resize(nodes.size());
  transform_counts = std::make_unique<TransformCounts[]>(nodes.size());
  const auto chain = [&](const std::vector<int>& own) {
    std::vector<int> ids = own;
    ids.insert(ids.end(), plan.output_transforms.begin(), plan.output_transforms.end());
    for (int id : ids)
      if (!transforms[id]) transforms[id] = make_transform(nodes[id], linktype, snaplen, errors);
    return ids;
  };
  for (const auto& own : plan.source_transforms) chains.push_back(chain(own));
  chains.push_back(chain({}));  // api_rank
  chains.push_back(chain({}));  // control_rank
  for (size_t i = 0; i < plan.events.size(); ++i)
    if (nodes[plan.events[i]].spec->name == "live") chains.push_back(chain(plan.event_transforms[i]));
}

std::unique_ptr<TimelineSource> Engine::Impl::open_again(size_t rank, uint64_t pass) {
  SourceOptions options;
  // Messages about a later pass (its disorder, a damaged record) say which pass they mean.
  options.name = fmt::format("{} (loop pass {})", sources[rank]->options().name, pass + 1);
  options.rank = static_cast<uint16_t>(rank);
  options.report = &report;
  auto source = make_timeline_source(pipeline->nodes[plan.sources[rank]], std::move(options), context);
  source->compile_filter();
  return source;
}

// pace(loop=N): every timeline source plays N times, pass k shifted by k periods, the period being
// the background's span plus one average gap (found by reading the background once beforehand).
void Engine::Impl::loop_sources(const Value& loop) {
  for (int id : plan.sources)
    if (param(pipeline->nodes[id], "file").text == "-")
      throw DescriptionError(pipeline->where, pipeline->text,
                             {{loop.span, "loop needs inputs that can be read again",
                               "standard input (`-`) can be read only once"}});
  Report quiet;  // the passes report damage themselves
  quiet.set_quiet(true);
  SourceOptions options;
  options.report = &quiet;
  auto scan = make_timeline_source(pipeline->nodes[plan.sources[0]], std::move(options), SourceContext{});
  scan->compile_filter();
  int64_t first = INT64_MAX, last = INT64_MIN;
  uint64_t count = 0;
  for_each_record(*scan, [&](const Batch&, const Record& r) {
    first = std::min(first, r.ts_ns);
    last = std::max(last, r.ts_ns);
    ++count;
  });
  const int64_t span = count ? last - first : 0;
  const int64_t period = span + (count > 1 ? span / static_cast<int64_t>(count - 1) : 1'000'000);
  for (size_t rank = 0; rank < sources.size(); ++rank) {
    const int64_t offset = sources[rank]->offset();
    sources[rank] = std::make_unique<LoopingSource>(std::move(sources[rank]), [this, rank](uint64_t pass) { return open_again(rank, pass); },
                                                    static_cast<uint64_t>(loop.integer), period);
    sources[rank]->set_mapping(offset, precision);
  }
}

void Engine::Impl::build_graph() {
  const size_t n = sources.size();
  output_pool = std::make_unique<BatchPool>(output_batches, default_arena_size);
  event_pool = std::make_unique<BatchPool>(event_batches, event_arena_size);
  const auto end = param(pipeline->nodes[plan.merger.value_or(plan.sink)], "end").text == "all"
                       ? TimestampMerger::End::all
                       : TimestampMerger::End::first;
  merger = std::make_unique<TimestampMerger>(n, end, precision, *output_pool, [this](Batch* b) { output.push(b); });
  const auto& bg = *sources[0];
  origin = std::max<int64_t>(0, bg.info().first_ts_ns.value_or(0) + bg.offset());
  merger->set_origin(origin);
  merge_node = std::make_unique<flow::function_node<Batch*, flow::continue_msg>>(
      graph, flow::serial, [this](Batch* b) {
        const bool event = b->event;
        merger->push(b);
        if (event) events_in_flight.fetch_sub(1);
        maybe_finish();
        return flow::continue_msg();
      });
  source_done.assign(n, 0);
  const size_t arena = std::clamp(source_memory_budget / (n * (batches_per_source + 1)) / 4096 * 4096,
                                  min_source_arena, default_arena_size);
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
    flow::make_edge(*limiter, *merge_node);
  }
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
  bool end = stopping;
  try {
    if (!end) {
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
  source_done[rank] = b->last;
  return b;
}

bool Engine::Impl::send(const Batch& b, size_t first, size_t count) {
  std::lock_guard lock(sink_mutex);
  try {
    sink->consume(b, first, count);
    written_packets.store(sink->stats().packets, std::memory_order_relaxed);
    written_bytes.store(sink->stats().bytes, std::memory_order_relaxed);
    return true;
  } catch (const std::exception& e) {
    fail(e.what());
    return false;
  }
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

    Batch* from = nullptr;
    size_t* index = nullptr;
    if (!timeline.empty()) {
      from = timeline.front();
      index = &next;
    }
    for (auto& c : events) {
      if (!from && !timeline_ended) break;
      if (!from || c.batch->records[c.next].ts_ns < from->records[*index].ts_ns) {
        from = c.batch;
        index = &c.next;
      }
    }
    if (!from) continue;
    const Record& r = from->records[*index];
    if (!failed && !halted && !pacer->wait(r.ts_ns, r.len, &output.arrived())) continue;
    if (!failed) failed = !send(*from, *index, 1);
    last_out_ts = r.ts_ns;
    ++*index;
  }
}

// Nothing goes before what is already out, nor before the timeline's start. An injected batch
// keeps its spacing (moved whole to the floor when late); live records keep their capture times,
// each raised to the floor on its own, so that a late batch never lands after the next one's head.
void Engine::Impl::stamp_paced_event(Batch& b) {
  const bool live = b.source >= live_rank(0);
  int64_t* live_last = live ? &live_last_stamp[b.source - live_rank(0)] : nullptr;
  const int64_t floor = std::max({last_out_ts, origin, live ? *live_last : INT64_MIN});
  int64_t base = b.event_at.value_or(pacer->timeline_now().value_or(origin));
  if (!live && base < floor) {
    if (b.event_at) paced_late.fetch_add(b.records.size(), std::memory_order_relaxed);
    base = floor;
  }
  for (auto& r : b.records) {
    r.ts_ns += base;
    if (r.ts_ns < floor) {
      if (live) paced_late.fetch_add(1, std::memory_order_relaxed);
      r.ts_ns = floor;
    }
    pcap::write_record_header(b.data() + r.offset, r.ts_ns, precision, r.caplen, r.len);
  }
  if (live && !b.records.empty()) *live_last = b.records.back().ts_ns;
  paced_events.fetch_add(b.records.size(), std::memory_order_relaxed);
}

bool Engine::Impl::submit_event(Batch* b) {
  run_transforms(*b, b->source);
  if (b->records.empty()) {  // all filtered out
    b->pool->release(b);
    return true;
  }
  std::shared_lock lock(inject_mutex);
  if (!accepting) {
    b->pool->release(b);
    return false;
  }
  uint64_t id = next_event_id.fetch_add(b->records.size());
  for (auto& r : b->records) r.seq = id++;
  accepted_events.fetch_add(b->records.size());
  if (paced()) {
    output.push(b);
  } else {
    events_in_flight.fetch_add(1);
    merge_node->try_put(b);
  }
  return true;
}

// Live records carry their capture time (CLOCK_REALTIME): they become offsets from the first,
// which is placed on the timeline where the pacer says that moment lies (at top speed, at now).
void Engine::Impl::deliver_live(Batch* b) {
  if (b->records.empty()) return b->pool->release(b);
  const int64_t first = b->records.front().ts_ns;
  for (auto& r : b->records) r.ts_ns -= first;
  b->event_at.reset();
  if (pacer) b->event_at = pacer->timeline_at(first + realtime_to_monotonic());
  submit_event(b);
}

size_t Engine::Impl::inject(std::span<const InjectedFrame> frames, std::optional<int64_t> at_ns, uint16_t rank) {
  if (frames.empty()) return 0;
  size_t bytes = 0;
  int64_t previous = INT64_MIN;
  for (const auto& f : frames) {
    if (f.bytes.empty()) throw InjectError("an empty frame cannot be injected");
    if (f.bytes.size() > snaplen)
      throw InjectError(fmt::format("a frame of {} bytes is longer than the output's snaplen {}", f.bytes.size(), snaplen));
    if (f.offset_ns < previous) throw InjectError("frame offsets must not decrease");
    previous = f.offset_ns;
    bytes += record_header_size + f.bytes.size();
  }
  // Filled before taking the lock: the merge node needs it exclusively to close injection, and
  // only the merge node gives event batches back.
  Batch* b = running.load() ? event_pool->acquire() : event_pool->acquire_or_grow();
  b->reserve_arena(bytes);
  b->source = rank;
  b->event = true;
  b->event_at = at_ns;
  for (const auto& f : frames) {
    const auto caplen = static_cast<uint32_t>(f.bytes.size());
    std::memcpy(b->data() + b->used + record_header_size, f.bytes.data(), caplen);
    b->records.push_back({f.offset_ns, 0, static_cast<uint32_t>(b->used), caplen, std::max(caplen, f.wire_length), rank, 0});
    b->used += record_header_size + caplen;
  }
  if (!submit_event(b)) throw InjectError("the pipeline has finished; nothing more can be injected");
  return frames.size();
}

size_t Engine::Impl::inject_stage(std::string_view stage, uint16_t rank) {
  // An injection is read whole before it is handed over; this bounds what one line may ask for.
  constexpr size_t max_bytes = size_t{64} << 20;
  const auto description = parse_pipeline("<inject>", stage);
  if (!is_source_chain(description))
    throw InjectError("inject takes one source stage, optionally followed by transforms, e.g. icmp(dst=10.0.0.9, count=3) "
                      "or pcap(attack.pcap) -> rewrite(ip=\"10.0.0.5:192.168.1.66\")");
  const Node& node = description.nodes[0];
  // Read whole on the injecting thread: standard input or a FIFO could block it for ever.
  if (const Value& file = param(node, "file"); file.given) {
    std::error_code ec;
    if (file.text == "-" || !std::filesystem::is_regular_file(file.text, ec))
      throw InjectError(fmt::format("{}: an injected capture must be a regular file", file.text));
  }
  SourceOptions options;
  options.rank = rank;
  options.report = &report;
  auto source = make_timeline_source(node, std::move(options), context);
  const auto linktype = sources[0]->info().linktype;
  if (source->info().linktype != linktype)
    throw InjectError(fmt::format("link type {} differs from the output's {}", pcap::linktype_name(source->info().linktype),
                                  pcap::linktype_name(linktype)));
  source->compile_filter();
  const auto chain = make_line_transforms(description, linktype, snaplen);
  // Offsets from its own first packet, then from `at`.
  source->set_mapping(-source->info().first_ts_ns.value_or(0), precision);
  const int64_t at = param(node, "at").integer + param(node, "shift").integer;
  std::vector<std::vector<std::byte>> storage;
  std::vector<InjectedFrame> frames;
  size_t total = 0;
  for_each_record(*source, [&](const Batch& batch, const Record& r) {
    total += r.caplen;
    if (total > max_bytes) throw InjectError(fmt::format("an injection is limited to {} MiB", max_bytes >> 20));
    const auto* bytes = batch.data() + r.offset + record_header_size;
    storage.emplace_back(bytes, bytes + r.caplen);
    frames.push_back({storage.back(), r.ts_ns + at, r.len});
  }, chain);
  return inject(frames, std::nullopt, rank);
}

std::string Engine::Impl::control_line(std::string_view line) {
  try {
    return fmt::format("ok {}", inject_stage(line, control_rank()));
  } catch (const DescriptionError& e) {
    std::string message;
    for (const auto& d : e.diagnostics()) message += fmt::format("{}col {}: {}", message.empty() ? "" : "; ", d.span.col, d.message);
    return "error: " + message;
  } catch (const std::exception& e) {
    return fmt::format("error: {}", e.what());
  }
}

Engine::Engine(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
Engine::Engine(Engine&&) noexcept = default;
Engine& Engine::operator=(Engine&&) noexcept = default;
Engine::~Engine() {
  if (impl_ && impl_->running) {
    stop();
    wait();
  }
}

Engine Engine::from_description(std::string_view where, std::string_view text, bool quiet) {
  auto impl = std::make_unique<Impl>();
  impl->report.set_quiet(quiet);
  impl->pipeline = std::make_unique<Pipeline>(parse_pipeline(where, text));
  impl->plan = make_plan(*impl->pipeline);
  impl->open_sources();
  impl->build_graph();
  return Engine(std::move(impl));
}

void Engine::start() {
  auto& d = *impl_;
  if (d.running) return;
  const uint32_t linktype = d.sources[0]->info().linktype;
  for (int id : d.plan.events) {
    const Node& n = d.pipeline->nodes[id];
    if (n.spec->name != "live") continue;
    LiveOptions options;
    options.interface = param(n, "interface").text;
    options.filter = param(n, "filter").text;
    options.snaplen = static_cast<uint32_t>(std::min<int64_t>(param(n, "snaplen").integer, d.snaplen));
    options.promisc = param(n, "promisc").boolean;
    auto& live = d.lives.emplace_back(std::make_unique<LiveCapture>(options, d.live_rank(d.lives.size())));
    if (live->linktype() != linktype)
      throw std::runtime_error(fmt::format("live {}: the interface speaks {} ({}), but the output is {} ({})",
                                           options.interface, pcap::linktype_name(live->linktype()), live->linktype(),
                                           pcap::linktype_name(linktype), linktype));
    d.live_pools.push_back(std::make_unique<BatchPool>(live_batches, live_arena_size));
    d.live_names.push_back(!n.label.empty() ? n.label : fmt::format("live {}", options.interface));
    d.live_last_stamp.push_back(INT64_MIN);
  }
  d.sink = d.open_sink();
  for (int id : d.plan.events)
    if (d.pipeline->nodes[id].spec->name == "control")
      d.controls.push_back(std::make_unique<ControlSocket>(param(d.pipeline->nodes[id], "path").text,
                                                           [&d](std::string_view line) { return d.control_line(line); }));
  d.running = true;
  d.started = std::chrono::steady_clock::now();
  d.graph.reserve_wait();  // held by the output thread until the last batch is written
  d.output_thread = std::thread([&d] { d.output_loop(); });
  for (auto& input : d.input_nodes) input->activate();
  for (size_t i = 0; i < d.lives.size(); ++i)
    d.lives[i]->start(*d.live_pools[i], [&d](Batch* b) { d.deliver_live(b); },
                      [&d](const std::string& message) { d.fail(message); });
}

int Engine::wait() {
  auto& d = *impl_;
  if (!d.running) return exit_failure;
  d.graph.wait_for_all();
  d.output_thread.join();
  d.controls.clear();
  for (auto& live : d.lives) live->stop();
  d.running = false;
  if (!d.error.empty()) return exit_failure;  // the message is in stats().error
  return d.report.is_damaged() ? exit_damaged : exit_ok;
}

void Engine::stop() { impl_->halt(); }

void Engine::freeze_output() { impl_->sink_mutex.lock(); }

size_t Engine::inject(std::span<const InjectedFrame> frames, std::optional<int64_t> at_ns) {
  return impl_->inject(frames, at_ns, impl_->api_rank());
}

size_t Engine::inject(std::string_view stage) { return impl_->inject_stage(stage, impl_->api_rank()); }

uint32_t Engine::linktype() const { return impl_->sources[0]->info().linktype; }

size_t Engine::inject(std::span<const std::byte> frame, std::optional<int64_t> at_ns) {
  const InjectedFrame f{frame, 0};
  return inject(std::span(&f, 1), at_ns);
}

Stats Engine::stats() const {
  const auto& d = *impl_;
  Stats s;
  for (const auto& src : d.sources) {
    const auto& st = src->stats();
    s.sources.push_back({src->options().name, st.packets, st.bytes, st.filtered, st.disordered, st.dropped,
                         src->offset()});
  }
  s.packets = d.written_packets;
  s.accepted_events = d.accepted_events;
  s.bytes = d.written_bytes;
  if (d.merger) {
    const auto& m = d.merger->stats();
    s.captured_bytes = m.bytes;
    s.dropped_after_end = m.dropped_after_end;
    s.forwarded_batches = m.forwarded_batches;
    s.copied_batches = m.copied_batches;
    s.events = m.events;
    s.late_events = m.late_events;
  }
  s.events += d.paced_events;
  s.late_events += d.paced_late;
  if (d.pacer) {
    const auto l = d.pacer->lateness();
    s.pace = PaceSummary{l.p50, l.p99, l.max, l.samples};
  }
  if (d.nic) {
    const auto& n = d.nic->nic_stats();
    s.nic = NicSummary{n.sent, n.failed, n.retried};
  }
  for (const auto& live : d.lives) {
    const auto st = live->stats();
    s.live.push_back({d.live_names[&live - d.lives.data()], st.packets, st.bytes, st.kernel_dropped, st.if_dropped});
  }
  for (size_t id = 0; id < d.transforms.size(); ++id) {
    if (!d.transforms[id]) continue;
    const Node& n = d.pipeline->nodes[id];
    s.transforms.push_back({fmt::format("{} at {}:{}", n.label.empty() ? n.spec->name : n.label, n.span.line, n.span.col),
                            d.transform_counts[id].changed.load(), d.transform_counts[id].dropped.load()});
  }
  const auto end = d.running ? std::chrono::steady_clock::now() : d.finished;
  s.seconds = std::chrono::duration<double>(end - d.started).count();
  s.warnings = d.report.messages();
  std::lock_guard lock(d.error_mutex);
  s.error = d.error;
  return s;
}

std::string Engine::progress() const {
  const auto& d = *impl_;
  const double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - d.started).count();
  const double bytes = static_cast<double>(d.written_bytes.load());
  const double rate = secs > 0 ? bytes / secs : 0.0;
  std::string line = fmt::format("{} packets, {:.1f} MB, {:.2f} GB/s", d.written_packets.load(), bytes / 1e6, rate / 1e9);
  // Output bytes track input bytes closely (same records, one file header each side).
  const auto total = static_cast<double>(d.total_input_bytes);
  if (rate > 0 && total > bytes) line += fmt::format(", {:.0f}% (ETA {:.0f} s)", 100 * bytes / total, (total - bytes) / rate);
  return line;
}

}  // namespace vei
