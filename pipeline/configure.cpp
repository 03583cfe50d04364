// From a resolved description to an engine ready to build its graph: every stage is reached
// through the registry's interfaces (pipeline/stage.h), never by name.
#include <fmt/format.h>

#include <algorithm>
#include <filesystem>

#include "core/looping_source.h"
#include "core/ordering.h"
#include "core/paths.h"
#include "pipeline/engine_impl.h"

namespace vei {

namespace {

const SourceStage& source_stage(const Node& n) { return static_cast<const SourceStage&>(*n.stage); }

// A source's interfaces, indexed by Record::iface: its own list, or the one its info describes.
std::vector<Interface> interfaces_of(const SourceInfo& info) {
  if (!info.interfaces.empty()) return info.interfaces;
  return {Interface{info.linktype, info.snaplen, {}, {}}};
}

}  // namespace

void Engine::Impl::configure() {
  std::vector<Diagnostic> errors;
  check_paths(errors);
  check_loop_inputs(errors);
  if (!errors.empty()) throw DescriptionError(pipeline->where, pipeline->text, std::move(errors));
  for (const auto& n : pipeline->nodes) at_values(n, errors, [&] { n.stage->verify(n); });
  if (!errors.empty()) throw DescriptionError(pipeline->where, pipeline->text, std::move(errors));
  open_sources(errors);
  if (!errors.empty()) throw DescriptionError(pipeline->where, pipeline->text, std::move(errors));
  const Node& sink_node = pipeline->nodes[plan.sink];
  const auto& sink_stage = static_cast<const SinkStage&>(*sink_node.stage);
  precision = sink_stage.precision(sink_node, sources[0]->info());
  // Records longer than their file's snaplen are kept whole (libpcap would clip them silently), so
  // the output declares the largest length any input may deliver.
  snaplen = 0;
  for (auto& s : sources) snaplen = std::max(snaplen, pcap::record_limit(s->info().snaplen));
  const auto declared = sink_stage.snaplen(sink_node);
  if (declared) snaplen = *declared;
  make_transforms(errors);
  if (!errors.empty()) throw DescriptionError(pipeline->where, pipeline->text, std::move(errors));
  if (plan.merger) merge = static_cast<const MergerStage&>(*pipeline->nodes[*plan.merger].stage).options(pipeline->nodes[*plan.merger]);
  if (plan.pacer) pace = static_cast<const PacerStage&>(*pipeline->nodes[*plan.pacer].stage).options(pipeline->nodes[*plan.pacer]);
  if (pace.loop != 1) loop_sources();
  // After the transforms and the loop: the background may be read ahead to find where it starts,
  // through what drops its packets and into its next pass.
  map_timelines(errors);
  if (!errors.empty()) throw DescriptionError(pipeline->where, pipeline->text, std::move(errors));
  if (pace.mode.value > 0) {
    pacer = std::make_unique<Pacer>(pace.mode);
    pacer->set_delay(output_delay(merge.lateness_ns, !plan.events.empty()));
  }
  sink_context.linktype = sources[0]->info().linktype;
  for (const auto& s : sources) {
    sink_context.interfaces.push_back(interfaces_of(s->info()));
    sink_context.late_interfaces.push_back(s->options().interfaces);
  }
  // Events are framed for the background's link type (EventContext, pipeline/engine.cpp).
  sink_context.interfaces.resize(sources.size() + 1 + plan.events.size(), {Interface{sink_context.linktype, snaplen, {}, {}}});
  sink_context.report = &report;
  sink_context.precision = precision;
  // A transform after the merge that cuts every packet: the header says so, as editcap -s writes it.
  sink_context.snaplen = snaplen;
  if (!declared)
    for (int id : plan.output_transforms)
      if (const auto cut = transforms[id]->max_caplen()) sink_context.snaplen = std::min(sink_context.snaplen, *cut);
  describe_sources();
}

std::unique_ptr<TimelineSource> Engine::Impl::open_source(const Node& node, SourceOptions options, const SourceContext& ctx) {
  options.interrupt = &interrupt;
  if (node.stage->kind() != StageKind::event_source) return source_stage(node).open(node, std::move(options), ctx);
  auto alone = static_cast<const EventStage&>(*node.stage).open_alone(node, std::move(options));
  if (!alone)
    throw ParamError(node.span, fmt::format("'{}' cannot feed the output alone: it brings no packets of its own", node.stage->name()),
                     "feed a merge whose first input is a background: `pcap(bg.pcap) -> m: merge -> file(out.pcap)`");
  return alone;
}

void Engine::Impl::open_sources(std::vector<Diagnostic>& errors) {
  const auto& nodes = pipeline->nodes;
  const Node& sink_node = nodes[plan.sink];
  const bool mixed = static_cast<const SinkStage&>(*sink_node.stage).mixed_linktypes(sink_node);
  for (size_t rank = 0; rank < plan.sources.size(); ++rank) {
    const Node& n = nodes[plan.sources[rank]];
    SourceOptions options;
    options.rank = static_cast<uint16_t>(rank);
    options.report = &report;
    options.one_linktype = !mixed || !plan.output_transforms.empty();
    options.interfaces = std::make_shared<InterfaceList>();
    std::unique_ptr<TimelineSource> source;
    if (!at_values(n, errors, [&] { source = open_source(n, std::move(options), context); })) continue;
    if (rank == 0) {
      context.background_linktype = source->info().linktype;
      if (const auto files = paths(n, ParamType::input); !files.empty()) context.background_path = files[0]->text;
    }
    sources.push_back(std::move(source));
  }
  if (!errors.empty()) return;
  if (mixed) return;
  // The output speaks the background's link type; bytes of another link type would be misread.
  const uint32_t bg = sources[0]->info().linktype;
  for (size_t rank = 0; rank < sources.size(); ++rank)
    for (const auto& i : interfaces_of(sources[rank]->info()))
      if (i.linktype != bg) {
        errors.push_back({nodes[plan.sources[rank]].span,
                          fmt::format("{} has link type {} ({}), but the output has {} ({}), the first source's",
                                      sources[rank]->options().name, pcap::linktype_name(i.linktype), i.linktype,
                                      pcap::linktype_name(bg), bg),
                          "a pcap holds one link type: write pcapng (`file(out.pcapng)`), where each source has an "
                          "interface of its own, or convert this one first"});
        break;
      }
}

// `at` is measured from the background's first kept packet as it appears in the output: a packet
// its filter= or its own transforms drop does not start the timeline, as it does not end it.
// Why the background gives at= nothing to count from.
std::string_view Engine::Impl::empty_background_why() const {
  return sources[0]->info().first_ts_ns ? "keeps none of its packets (its filter= or transforms drop them all)"
                                        : "holds no packet";
}

void Engine::Impl::map_timelines(std::vector<Diagnostic>& errors) {
  const auto& nodes = pipeline->nodes;
  bool anchored = false;  // read the background ahead only when a source counts from its start
  for (size_t rank = 1; rank < sources.size(); ++rank) anchored |= placement(nodes[plan.sources[rank]]).rebase_first;
  for (size_t rank = 0; rank < sources.size(); ++rank) {
    const Node& n = nodes[plan.sources[rank]];
    const Placement place = placement(n);
    int64_t offset = place.shift;
    const auto first = sources[rank]->info().first_ts_ns;
    // Durations are checked one by one, not their sums: out of int64 nanoseconds, no time is right.
    bool overflow = false;
    const auto add = [&overflow](int64_t& to, int64_t v) { overflow |= __builtin_add_overflow(to, v, &to); };
    if (rank == 0) {
      if (place.at) add(offset, *place.at);
    } else if (place.rebase_first && first && !background_start && !sources[rank]->info().own_times) {
      errors.push_back({place.where->span, fmt::format("nothing to place {} at: the background {} {}", sources[rank]->options().name,
                                                       sources[0]->options().name, empty_background_why()),
                        "generated packets have no times of their own to keep: give the run a background with packets"});
    } else if (place.rebase_first && first && !background_start) {
      // Nothing to count from: the source keeps its own times, as mergecap keeps every input's.
      report.warn(fmt::format(
          "{}:{}:{}: {}: {} counts from the background's first packet, but the background {} {}; this "
          "source keeps its own times (as rebase=none)",
          pipeline->where, n.span.line, n.span.col, sources[rank]->options().name, place.at ? "at=" : "rebase=first",
          sources[0]->options().name, empty_background_why()));
    } else if (place.rebase_first && first) {
      add(offset, *background_start);
      add(offset, place.at.value_or(0));
      add(offset, -*first);
    }
    if (overflow) {
      errors.push_back({place.where->span, "this places the source beyond the representable time",
                        "timestamps are nanoseconds since 1970 within about ±292 years"});
      if (rank == 0) return;  // nothing can be placed after a background that cannot be
    }
    sources[rank]->set_mapping(offset, precision);
    if (rank == 0 && anchored) background_start = find_background_start();
  }
}

void Engine::Impl::check_loop_inputs(std::vector<Diagnostic>& errors) {
  if (!plan.pacer) return;
  const Value& loop = param(pipeline->nodes[*plan.pacer], "loop");
  if (loop.integer == 1) return;
  for (int id : plan.sources)
    for (const Value* file : paths(pipeline->nodes[id], ParamType::input))
      if (auto why = why_not_rereadable(file->text); !why.empty())
        errors.push_back({file->span, fmt::format("loop={} needs inputs that can be read again", loop.text), std::move(why)});
}

std::optional<int64_t> Engine::Impl::find_background_start() {
  // Batches the background keeps nothing of are dropped here, their records counted as the graph
  // would count them: at most one batch is held, whatever the background filters out.
  background_head = std::make_unique<Batch>();
  background_head->reserve_arena(default_arena_size);
  const size_t own = own_transforms[0];
  do {
    sources[0]->fill(*background_head);
    run_transforms(*background_head, 0, 0, own);
  } while (background_head->records.empty() && !background_head->last);
  if (background_head->records.empty()) return std::nullopt;
  return background_head->records.front().ts_ns;
}

// Every path the run writes (outputs, labels, sockets) must be a file that nothing else in the run
// reads or writes: checked before anything is opened, so a refused run leaves every file as it was.
void Engine::Impl::check_paths(std::vector<Diagnostic>& errors) {
  for (auto& d : path_clashes(*pipeline)) errors.push_back(std::move(d));
  for (const auto& n : pipeline->nodes)
    for (const Value* v : paths(n, ParamType::input)) {
      std::error_code ec;
      if (v->text != "-") total_input_bytes += std::filesystem::file_size(v->text, ec) * !ec;
    }
}

void Engine::Impl::make_transforms(std::vector<Diagnostic>& errors) {
  const auto& nodes = pipeline->nodes;
  // Every source's link type, checked before. A source's own transforms see its packets as its file
  // holds them, in that file's byte order; those after the merge, the background's (and know when
  // the sources' byte orders differ: see FilterStage).
  const auto of = [&](const SourceInfo& info) { return TransformContext{info.linktype, snaplen, info.swapped}; };
  TransformContext after_merge = of(sources[0]->info());
  const TransformContext events{after_merge.linktype, snaplen};
  for (const auto& s : sources) after_merge.mixed_orders |= s->info().swapped != after_merge.swapped;
  // Only an output of several link types lets them through (open_sources): a transform after
  // the merge knows one, so it is refused there rather than misreading the others' packets.
  std::vector<uint32_t> linktypes;
  for (const auto& s : sources)
    for (const auto& i : interfaces_of(s->info()))
      if (std::ranges::find(linktypes, i.linktype) == linktypes.end()) linktypes.push_back(i.linktype);
  std::vector<std::string> names;
  for (uint32_t l : linktypes) names.push_back(pcap::linktype_name(l));
  if (linktypes.size() > 1)
    for (int id : plan.output_transforms)
      errors.push_back({nodes[id].span,
                        fmt::format("'{}' after the merge would see packets of {} link types ({}), but reads one",
                                    nodes[id].stage->name(), linktypes.size(), fmt::join(names, ", ")),
                        "put it on each source instead: `pcap(a.pcap) -> " + std::string(nodes[id].stage->name()) +
                            "(...) -> m`"});
  if (!errors.empty()) return;
  transforms.resize(nodes.size());
  transform_counts = std::make_unique<TransformCounts[]>(nodes.size());
  std::vector<char> refused(nodes.size());  // reported once, though in every chain it is part of
  const auto chain = [&](const std::vector<int>& own, const TransformContext& tc) {
    own_transforms.push_back(own.size());
    std::vector<int> ids = own;
    ids.insert(ids.end(), plan.output_transforms.begin(), plan.output_transforms.end());
    for (size_t i = 0; i < ids.size(); ++i)
      if (const int id = ids[i]; !transforms[id] && !refused[id])
        refused[id] = !at_values(nodes[id], errors, [&] {
          transforms[id] = static_cast<const TransformStage&>(*nodes[id].stage).make(nodes[id], i < own.size() ? tc : after_merge);
        });
    return ids;
  };
  for (size_t rank = 0; rank < plan.source_transforms.size(); ++rank)
    chains.push_back(chain(plan.source_transforms[rank], of(sources[rank]->info())));
  chains.push_back(chain({}, events));  // api_rank
  for (const auto& own : plan.event_transforms) chains.push_back(chain(own, events));
}

// Names, origins and stages by rank, for labels and statistics.
void Engine::Impl::describe_sources() {
  for (size_t rank = 0; rank < sources.size(); ++rank) {
    const Node& n = pipeline->nodes[plan.sources[rank]];
    const auto files = paths(n, ParamType::input);
    const std::string file = files.empty() ? std::string() : files[0]->text;
    sink_context.names.push_back(!n.label.empty() ? n.label
                                 : file.empty()   ? std::string(n.stage->name())
                                                  : std::filesystem::path(file).stem().string());
    sink_context.origins.push_back(file.empty() ? std::string(n.stage->name()) : file);
    sink_context.stages.emplace_back(n.stage->name());
  }
  sink_context.names.emplace_back("api");
  sink_context.origins.emplace_back("event");
  sink_context.stages.emplace_back("api");
  for (int id : plan.events) {
    const Node& n = pipeline->nodes[id];
    sink_context.names.push_back(static_cast<const EventStage&>(*n.stage).source_name(n));
    sink_context.origins.emplace_back("event");
    sink_context.stages.emplace_back(n.stage->name());
  }
  number_repeated_names(sink_context.names);
}

// pace(loop=N): every timeline source plays N times, pass k shifted by k periods, the period being
// the background's span plus one average gap (found by reading the background once beforehand).
void Engine::Impl::loop_sources() {
  const Value& loop = param(pipeline->nodes[*plan.pacer], "loop");
  for (const auto& source : sources)
    if (source->waits_for_packets())
      throw DescriptionError(pipeline->where, pipeline->text,
                             {{loop.span, "loop needs inputs that can be read again", "a live capture comes only once"}});
  Report quiet;  // the passes report damage themselves
  quiet.set_quiet(true);
  SourceOptions options;
  options.report = &quiet;
  auto scan = open_source(pipeline->nodes[plan.sources[0]], std::move(options), SourceContext{});
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
    const auto open_again = [this, rank](uint64_t pass) {
      SourceOptions again;
      // Messages about a later pass (its disorder, a damaged record) say which pass they mean.
      again.name = fmt::format("{} (loop pass {})", sources[rank]->options().name, pass + 1);
      again.rank = static_cast<uint16_t>(rank);
      again.report = &report;
      again.one_linktype = sources[rank]->options().one_linktype;
      again.interfaces = sources[rank]->options().interfaces;
      return open_source(pipeline->nodes[plan.sources[rank]], std::move(again), context);
    };
    sources[rank] = std::make_unique<LoopingSource>(std::move(sources[rank]), open_again, pace.loop, period);
  }
}

}  // namespace vei
