// Events: packets that have no timeline of their own (API injections, control lines, live
// captures). Any thread fills an event batch and hands it over; it is stamped on the output
// timeline by whoever merges it (the merger, or while pacing the output thread).
#include <fmt/format.h>
#include <sys/stat.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <filesystem>

#include "core/clock.h"
#include "core/ordering.h"
#include "pipeline/engine_impl.h"

namespace vei {

// Stamped on arrival at the output thread, with the pacer's "now"; nothing goes before what is
// already out, nor before the timeline's start (core/ordering.h).
void Engine::Impl::stamp_paced_event(Batch& b) {
  const int64_t now = pacer->timeline_now().value_or(origin);
  const uint64_t late = stamp_events(b, now, std::max(last_out_ts, origin), precision, &captured_last_stamp[b.source]);
  paced_late.fetch_add(late, std::memory_order_relaxed);
  paced_events.fetch_add(b.records.size(), std::memory_order_relaxed);
}

bool Engine::Impl::submit_event(Batch* b, std::string_view stage) {
  run_transforms(*b, b->source);
  if (b->records.empty()) {  // all filtered out
    b->pool->release(b);
    return true;
  }
  std::shared_lock lock(inject_mutex);
  if (!accepting) {
    refused_events.fetch_add(b->records.size(), std::memory_order_relaxed);
    b->pool->release(b);
    return false;
  }
  uint64_t id = next_event_id.fetch_add(b->records.size());
  if (!b->captured) injections.accepted(id, b->records.size(), b->source, std::string(stage));
  for (auto& r : b->records) r.seq = id++;
  accepted_events.fetch_add(b->records.size());
  if (paced()) {
    output.push({nullptr, b});
  } else {
    events_in_flight.fetch_add(1);
    merge_node->try_put(b);
  }
  return true;
}

// Captured records carry their capture time (CLOCK_REALTIME): they become offsets from the first,
// which is placed on the timeline where the pacer says that moment lies (at top speed, at now).
void Engine::Impl::deliver_captured(Batch* b) {
  if (b->records.empty()) return b->pool->release(b);
  const int64_t first = b->records.front().ts_ns;
  for (auto& r : b->records) r.ts_ns -= first;
  b->event = true;
  b->captured = true;
  b->event_at.reset();
  if (pacer) b->event_at = pacer->timeline_at(first + realtime_to_monotonic());
  submit_event(b);
}

size_t Engine::Impl::inject(std::span<const InjectedFrame> frames, std::optional<int64_t> at_ns, uint16_t rank,
                            std::string_view stage) {
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
  if (!submit_event(b, stage)) throw InjectError("the pipeline has finished; nothing more can be injected");
  return frames.size();
}

size_t Engine::Impl::inject_stage(std::string_view stage, uint16_t rank) {
  const auto line = parse_pipeline("<inject>", stage);
  if (!is_source_chain(line))
    throw InjectError("inject takes one source stage, optionally followed by transforms, e.g. icmp(dst=10.0.0.9, count=3) "
                      "or pcap(attack.pcap) -> rewrite(ip=\"10.0.0.5:192.168.1.66\")");
  const Node& node = line.nodes[0];
  // Read whole on the injecting thread: standard input or a FIFO could block it for ever.
  for (const Value* file : paths(node, ParamType::input)) {
    struct stat st {};
    if (file->text != "-" && ::stat(file->text.c_str(), &st) != 0)
      throw InjectError(fmt::format("{}: {}", file->text, std::strerror(errno)));
    if (file->text == "-" || !S_ISREG(st.st_mode))
      throw InjectError(fmt::format("{}: an injected capture must be a regular file", file->text));
  }
  SourceOptions options;
  options.rank = rank;
  options.report = &report;
  auto source = open_line_source(line, std::move(options), context);
  const auto linktype = sources[0]->info().linktype;
  if (source->info().linktype != linktype)
    throw InjectError(fmt::format("link type {} differs from the output's {}", pcap::linktype_name(source->info().linktype),
                                  pcap::linktype_name(linktype)));
  const auto chain = make_line_transforms(line, {linktype, snaplen, source->info().swapped});
  // Offsets from its own first packet, then from `at`.
  source->set_mapping(-source->info().first_ts_ns.value_or(0), precision);
  const Placement place = placement(node);
  const int64_t at = place.at.value_or(0) + place.shift;
  std::vector<std::vector<std::byte>> storage;
  std::vector<InjectedFrame> frames;
  size_t total = 0;
  for_each_record(*source, [&](const Batch& batch, const Record& r) {
    total += r.caplen;
    if (total > max_injection_bytes)
      throw InjectError(fmt::format("an injection is limited to {} MiB", max_injection_bytes >> 20));
    const auto* bytes = batch.data() + r.offset + record_header_size;
    storage.emplace_back(bytes, bytes + r.caplen);
    frames.push_back({storage.back(), r.ts_ns + at, r.len});
  }, chain);
  return inject(frames, std::nullopt, rank, node.stage->name());
}

std::string Engine::Impl::inject_line(std::string_view line, uint16_t rank) {
  try {
    return fmt::format("ok {}", inject_stage(line, rank));
  } catch (const DescriptionError& e) {
    std::string message;
    for (const auto& d : e.diagnostics()) message += fmt::format("{}col {}: {}", message.empty() ? "" : "; ", d.span.col, d.message);
    return "error: " + message;
  } catch (const std::exception& e) {
    return fmt::format("error: {}", e.what());
  }
}

void Engine::Impl::fail(std::string message) {
  {
    std::lock_guard lock(error_mutex);
    if (error.empty()) error = std::move(message);
  }
  halt();
}

}  // namespace vei
