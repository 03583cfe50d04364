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
#include "stages/control_socket.h"
#include "stages/file_writer.h"
#include "stages/timeline_source.h"
#include "stages/timestamp_merger.h"

namespace vei {

namespace {

namespace flow = tbb::flow;

constexpr size_t batches_per_source = 3;
constexpr size_t output_batches = 4;
// Injected frames travel in small batches, one per inject() call.
constexpr size_t event_batches = 64;
constexpr size_t event_arena_size = size_t{64} << 10;

// Hands merged batches from the graph to the output thread, which never runs graph tasks: a sink
// that sleeps or waits on the disk must not starve the graph's two workers.
class OutputQueue {
 public:
  void push(Batch* b) {
    {
      std::lock_guard lock(mutex_);
      queue_.push_back(b);
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

 private:
  std::mutex mutex_;
  std::condition_variable ready_;
  std::deque<Batch*> queue_;
};

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
  OutputQueue output;

  flow::graph graph;
  std::vector<std::unique_ptr<flow::input_node<Batch*>>> input_nodes;
  std::vector<std::unique_ptr<flow::limiter_node<Batch*>>> limiters;
  std::unique_ptr<flow::function_node<Batch*, flow::continue_msg>> merge_node;
  std::vector<char> source_done;

  std::thread output_thread;
  std::atomic<bool> stopping{false};
  std::atomic<uint64_t> written_packets{0};
  std::atomic<uint64_t> written_bytes{0};
  mutable std::mutex error_mutex;
  std::string error;
  std::chrono::steady_clock::time_point started, finished;
  std::atomic<bool> running{false};

  void fail(std::string message) {
    {
      std::lock_guard lock(error_mutex);
      if (error.empty()) error = std::move(message);
    }
    stopping = true;
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
    {
      std::unique_lock lock(inject_mutex);
      accepting = false;
    }
    if (events_in_flight.load() == 0) merger->finish();
  }

  size_t inject(std::span<const InjectedFrame> frames, std::optional<int64_t> at_ns, uint16_t rank);
  size_t inject_stage(std::string_view stage, uint16_t rank);
  SourceContext context;
  // Event sources rank after every timeline source: `api`, then `control`.
  uint16_t api_rank() const { return static_cast<uint16_t>(sources.size()); }
  uint16_t control_rank() const { return static_cast<uint16_t>(sources.size() + 1); }
  std::vector<std::unique_ptr<ControlSocket>> controls;
  std::string control_line(std::string_view line);
  void open_sources();
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
      context.background = sources[0].get();
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
    if (rank == 0) {
      if (at.given) offset += at.integer;
      bg_start = bg_first + offset;
    } else if (rebase_first && first) {
      offset += bg_start + at.integer - *first;
    }
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
    if (out_path != "-" && in_path != "-" && std::filesystem::equivalent(out_path, in_path, ec))
      errors.push_back({param(sink_node, "file").span, fmt::format("the output '{}' is also an input", out_path),
                        "writing it would destroy the input before it is read"});
    total_input_bytes += std::filesystem::file_size(in_path, ec) * !ec;
  }
  if (!errors.empty()) throw DescriptionError(pipeline->where, pipeline->text, std::move(errors));
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
  open_sink = [path = out_path, precision = precision, snaplen = snaplen, linktype = bg.linktype, labels] {
    return std::make_unique<FileWriter>(path, precision, snaplen, linktype, labels);
  };
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
  merger->set_origin(std::max<int64_t>(0, bg.info().first_ts_ns.value_or(0) + bg.offset()));
  merge_node = std::make_unique<flow::function_node<Batch*, flow::continue_msg>>(
      graph, flow::serial, [this](Batch* b) {
        const bool event = b->event;
        merger->push(b);
        if (event) events_in_flight.fetch_sub(1);
        maybe_finish();
        return flow::continue_msg();
      });
  source_done.assign(n, 0);
  for (size_t rank = 0; rank < n; ++rank) {
    // One batch more than the limiter admits: an input_node runs its body ahead and holds the
    // result while the limiter is full.
    pools.push_back(std::make_unique<BatchPool>(batches_per_source + 1, default_arena_size));
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
    if (!end) sources[rank]->fill(*b);
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

void Engine::Impl::output_loop() {
  bool failed = false;
  for (;;) {
    Batch* b = output.pop();
    const bool last = b->last;
    if (!failed) {
      try {
        sink->consume(*b);
        written_packets.store(sink->stats().packets, std::memory_order_relaxed);
        written_bytes.store(sink->stats().bytes, std::memory_order_relaxed);
      } catch (const std::exception& e) {
        failed = true;
        fail(e.what());
      }
    }
    b->pool->release(b);
    if (last) break;
  }
  try {
    sink->close();
  } catch (const std::exception& e) {
    fail(e.what());
  }
  finished = std::chrono::steady_clock::now();
  graph.release_wait();
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
    b->records.push_back({f.offset_ns, 0, static_cast<uint32_t>(b->used), caplen, caplen, rank, 0});
    b->used += record_header_size + caplen;
  }
  std::shared_lock lock(inject_mutex);
  if (!accepting) {
    event_pool->release(b);
    throw InjectError("the pipeline has finished; nothing more can be injected");
  }
  uint64_t id = next_event_id.fetch_add(frames.size());
  for (auto& r : b->records) r.seq = id++;
  events_in_flight.fetch_add(1);
  accepted_events.fetch_add(frames.size());
  merge_node->try_put(b);
  return frames.size();
}

size_t Engine::Impl::inject_stage(std::string_view stage, uint16_t rank) {
  // An injection is read whole before it is handed over; this bounds what one line may ask for.
  constexpr size_t max_bytes = size_t{64} << 20;
  const auto description = parse_pipeline("<inject>", stage);
  if (description.nodes.size() != 1 || description.nodes[0].spec->kind != StageKind::timeline_source)
    throw InjectError("inject takes one source stage, e.g. icmp(dst=10.0.0.9, count=3) or pcap(attack.pcap)");
  const Node& node = description.nodes[0];
  SourceOptions options;
  options.rank = rank;
  options.report = &report;
  auto source = make_timeline_source(node, std::move(options), context);
  const auto linktype = sources[0]->info().linktype;
  if (source->info().linktype != linktype)
    throw InjectError(fmt::format("link type {} differs from the output's {}", pcap::linktype_name(source->info().linktype),
                                  pcap::linktype_name(linktype)));
  source->compile_filter();
  // Offsets from its own first packet, then from `at`.
  source->set_mapping(-source->info().first_ts_ns.value_or(0), precision);
  const int64_t at = param(node, "at").integer + param(node, "shift").integer;
  std::vector<std::vector<std::byte>> storage;
  std::vector<InjectedFrame> frames;
  size_t total = 0;
  Batch batch;
  batch.reserve_arena(default_arena_size);
  do {
    source->fill(batch);
    for (const auto& r : batch.records) {
      total += r.caplen;
      if (total > max_bytes) throw InjectError(fmt::format("an injection is limited to {} MiB", max_bytes >> 20));
      const auto* bytes = batch.data() + r.offset + record_header_size;
      storage.emplace_back(bytes, bytes + r.caplen);
      frames.push_back({storage.back(), r.ts_ns + at});
    }
  } while (!batch.last);
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
  d.sink = d.open_sink();
  for (int id : d.plan.events)
    d.controls.push_back(std::make_unique<ControlSocket>(param(d.pipeline->nodes[id], "path").text,
                                                         [&d](std::string_view line) { return d.control_line(line); }));
  d.running = true;
  d.started = std::chrono::steady_clock::now();
  d.graph.reserve_wait();  // held by the output thread until the last batch is written
  d.output_thread = std::thread([&d] { d.output_loop(); });
  for (auto& input : d.input_nodes) input->activate();
}

int Engine::wait() {
  auto& d = *impl_;
  if (!d.running) return exit_failure;
  d.graph.wait_for_all();
  d.output_thread.join();
  d.controls.clear();
  d.running = false;
  if (!d.error.empty()) return exit_failure;  // the message is in stats().error
  return d.report.is_damaged() ? exit_damaged : exit_ok;
}

void Engine::stop() { impl_->stopping = true; }

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
