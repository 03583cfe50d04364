// The public facade: lifecycle, injection entry points and statistics. The jobs behind it are in
// the files pipeline/engine_impl.h lists.
#include "pipeline/engine.h"

#include <fmt/format.h>

#include "pipeline/engine_impl.h"

namespace vei {

Engine::Engine(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
Engine::Engine(Engine&&) noexcept = default;
Engine& Engine::operator=(Engine&&) noexcept = default;
Engine::~Engine() {
  if (impl_ && impl_->running) {
    stop();
    wait();
  }
}

Engine Engine::from_description(std::string_view where, std::string_view text, bool quiet, const Defines& defines) {
  auto impl = std::make_unique<Impl>();
  impl->report.set_quiet(quiet);
  impl->pipeline = std::make_unique<Pipeline>(parse_pipeline(where, text, defines));
  impl->plan = make_plan(*impl->pipeline);
  impl->configure();
  impl->build_graph();
  return Engine(std::move(impl));
}

void Engine::start() {
  auto& d = *impl_;
  if (d.running) return;
  // Interfaces and sockets first: one that cannot be used must not leave a truncated output behind.
  std::vector<Diagnostic> errors;
  for (size_t i = 0; i < d.plan.events.size() && errors.empty(); ++i) {
    const Node& n = d.pipeline->nodes[d.plan.events[i]];
    const EventContext context{d.event_rank(i), d.sources[0]->info().linktype, d.snaplen, d.sink_context.names[d.event_rank(i)]};
    at_values(n, errors, [&] { d.event_sources.push_back(static_cast<const EventStage&>(*n.stage).open(n, context)); });
  }
  if (!errors.empty()) {
    d.event_sources.clear();
    throw DescriptionError(d.pipeline->where, d.pipeline->text, std::move(errors));
  }
  const Node& sink = d.pipeline->nodes[d.plan.sink];
  d.sink = static_cast<const SinkStage&>(*sink.stage).open(sink, d.sink_context);
  d.series = SeriesCounter(d.sink_context.names.size());
  d.running = true;
  d.started = std::chrono::steady_clock::now();
  d.graph.reserve_wait();  // held by the output thread until the last batch is written
  d.output_thread = std::thread([&d] { d.output_loop(); });
  for (auto& input : d.input_nodes) input->activate();
  for (auto& source : d.event_sources) source->start(d);
}

int Engine::wait() {
  auto& d = *impl_;
  if (!d.running) return exit_failure;
  d.graph.wait_for_all();
  d.output_thread.join();
  for (auto& source : d.event_sources) source->stop();
  d.running = false;
  if (!d.error.empty() || d.report.has_lost()) return exit_failure;  // the message is in stats().error or a warning
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
  // The sources, the merger, the pacer and the sink count on the graph's tasks and the output
  // thread in plain fields: they are read once the run is over (wait() clears `running` after
  // joining them), never while one may be writing them; during the run only the atomic counters.
  const bool settled = !d.running;
  for (const auto& src : d.sources) {
    const auto st = settled ? src->stats() : SourceStats{};
    s.sources.push_back(
        {src->options().name, st.packets, st.bytes, st.filtered, st.disordered, st.dropped, src->offset(), st.skipped});
  }
  std::vector<std::string> names;
  for (const auto& src : s.sources) names.push_back(src.name);
  number_repeated_names(names);
  for (size_t i = 0; i < names.size(); ++i) s.sources[i].name = std::move(names[i]);
  s.packets = d.written_packets;
  s.accepted_events = d.accepted_events;
  s.refused_events = d.refused_events;
  s.bytes = d.written_bytes;
  if (settled && d.merger) {
    const auto& m = d.merger->stats();
    s.captured_bytes = m.bytes;
    s.dropped_after_end = m.dropped_after_end;
    s.packets_in_place = m.packets_in_place;
    s.packets_copied = m.packets_copied;
    s.events = m.events;
    s.late_events = m.late_events;
  }
  if (settled) s.series = d.series.series(d.sink_context.names);
  s.injections = d.injections.injections(d.sink_context.names);
  s.unlisted_injections = d.injections.unlisted();
  s.events += d.paced_events;
  s.late_events += d.paced_late;
  if (settled && d.pacer) {
    const auto l = d.pacer->lateness();
    s.pace = PaceSummary{l.p50, l.p99, l.max, l.samples};
  }
  if (settled && d.sink) d.sink->add_stats(s);
  for (const auto& source : d.event_sources) source->add_stats(s);
  for (size_t id = 0; id < d.transforms.size(); ++id) {
    if (!d.transforms[id]) continue;
    const Node& n = d.pipeline->nodes[id];
    s.transforms.push_back({fmt::format("{} at {}:{}", n.label.empty() ? n.stage->name() : n.label, n.span.line, n.span.col),
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
