#include "pipeline/plan.h"

#include <fmt/format.h>

#include <algorithm>

#include "core/timeline_source.h"
#include "pipeline/stage.h"

namespace vei {

namespace {

bool is_source(const Node& n) {
  return n.stage->kind() == StageKind::timeline_source || n.stage->kind() == StageKind::event_source;
}

std::string stage_text(const Node& n) {
  std::string args;
  for (const auto& [name, value] : n.params)
    args += fmt::format("{}{}={}", args.empty() ? "" : ", ", name, value.text);
  return fmt::format("{}({})", n.stage->name(), args);
}

// Walks upstream from `id` through a chain of transforms, each with one input. Returns the first
// stage that is not a transform (-1 after an error) and the transforms passed, nearest it first.
int through_transforms(const Pipeline& pipeline, int id, std::vector<int>& chain, std::vector<Diagnostic>& errors) {
  chain.clear();
  // A bound on the walk: labels could make a transform feed itself.
  for (size_t steps = 0; pipeline.nodes[id].stage->kind() == StageKind::transform; ++steps) {
    const Node& t = pipeline.nodes[id];
    if (t.inputs.size() != 1 || steps == pipeline.nodes.size()) {
      errors.push_back({t.span, t.inputs.empty() ? "nothing feeds this transform" : "a transform takes one input",
                        "transforms sit in a chain: `pcap(in.pcap) -> snaplen(96) -> m`"});
      return -1;
    }
    chain.push_back(id);
    id = t.inputs[0];
  }
  std::reverse(chain.begin(), chain.end());
  return id;
}

}  // namespace

Plan make_plan(const Pipeline& pipeline) {
  Plan plan;
  plan.pipeline = &pipeline;
  std::vector<Diagnostic> errors;
  for (const auto& n : pipeline.nodes) {
    if (n.stage->kind() == StageKind::sink) {
      if (plan.sink >= 0)
        errors.push_back({n.span, "a pipeline has one sink; this is a second one",
                          fmt::format("the first is '{}' on line {}", pipeline.nodes[plan.sink].stage->name(),
                                      pipeline.nodes[plan.sink].span.line)});
      else
        plan.sink = n.id;
    }
  }
  if (plan.sink < 0 && !pipeline.nodes.empty())
    errors.push_back({pipeline.nodes.back().span, "the pipeline has no sink",
                      "end a chain with one, e.g. `-> file(out.pcap)`"});
  if (plan.sink >= 0) {
    const Node& sink = pipeline.nodes[plan.sink];
    const Node* fed = &sink;
    if (!sink.inputs.empty() && pipeline.nodes[sink.inputs[0]].stage->kind() == StageKind::pacer) {
      fed = &pipeline.nodes[sink.inputs[0]];
      plan.pacer = fed->id;
    }
    const int feeder_id =
        fed->inputs.empty() ? -1 : through_transforms(pipeline, fed->inputs[0], plan.output_transforms, errors);
    if (fed->inputs.empty()) {
      errors.push_back({fed->span, fmt::format("nothing feeds this {}", fed->stage->name()), "connect a source to it with `->`"});
    } else if (feeder_id >= 0) {
      const Node& feeder = pipeline.nodes[feeder_id];
      if (feeder.stage->kind() == StageKind::merger) {
        plan.merger = feeder.id;
        for (int input : feeder.inputs) {
          std::vector<int> chain;
          const int id = through_transforms(pipeline, input, chain, errors);
          if (id < 0) continue;
          const Node& in = pipeline.nodes[id];
          if (in.stage->kind() == StageKind::event_source) {
            plan.events.push_back(id);
            plan.event_transforms.push_back(std::move(chain));
          } else if (is_source(in)) {
            plan.sources.push_back(id);
            plan.source_transforms.push_back(std::move(chain));
          } else {
            errors.push_back({in.span, fmt::format("'{}' cannot feed a merger here", in.stage->name()),
                              "a merger takes sources"});
          }
        }
        if (feeder.inputs.empty()) errors.push_back({feeder.span, "this merger has no inputs", ""});
        else if (plan.sources.empty())
          errors.push_back({feeder.span, "this merger has no timeline source",
                            "the first timeline source (e.g. a pcap) is the background whose timeline the output follows"});
      } else if (is_source(feeder)) {  // alone: an event source then runs on its own timeline
        plan.sources.push_back(feeder.id);
        plan.source_transforms.emplace_back();
      } else if (feeder.stage->kind() == StageKind::pacer) {
        errors.push_back({feeder.span, fmt::format("'{}' goes right before the sink, after every transform", feeder.stage->name()),
                          "e.g. `m -> snaplen(64) -> pace(realtime) -> file(out.pcap)`"});
      } else {
        errors.push_back({feeder.span, fmt::format("'{}' cannot feed the {} here", feeder.stage->name(), fed->stage->name()),
                          "feed it from a source or a merge"});
      }
    }
  }
  // Marked once rather than searched for each node: a description may have thousands of sources.
  std::vector<bool> listed(pipeline.nodes.size());
  for (int id : plan.sources) listed[id] = true;
  for (int id : plan.events) listed[id] = true;
  for (const auto* chains : {&plan.source_transforms, &plan.event_transforms})
    for (const auto& chain : *chains)
      for (int id : chain) listed[id] = true;
  for (int id : plan.output_transforms) listed[id] = true;
  // After an error in the path to the sink, the stages behind it would all be reported again.
  const bool path_broken = !errors.empty();
  for (const auto& n : pipeline.nodes) {
    const bool used = n.id == plan.sink || n.id == plan.merger || n.id == plan.pacer || listed[n.id];
    if (!used && is_source(n) && n.outputs.empty())
      errors.push_back({n.span, "this source feeds nothing", "connect it with `-> merge-label`"});
    else if (!used && !path_broken)
      errors.push_back({n.span, "this stage does not reach the sink", ""});
  }
  if (!errors.empty()) throw DescriptionError(pipeline.where, pipeline.text, std::move(errors));
  return plan;
}

std::vector<Diagnostic> path_clashes(const Pipeline& pipeline, const std::vector<CommandPath>& extra) {
  std::vector<PathUse> uses;
  std::vector<const Value*> values;  // by use; null for an extra one
  std::vector<std::string> names;    // by use: how a message names it
  const auto add = [&](PathUse use, const Value* value, std::string what) {
    names.push_back(what.empty() ? describe(use) : std::move(what));
    use.tag = values.size();
    values.push_back(value);
    uses.push_back(std::move(use));
  };
  for (const auto& e : extra)
    if (!e.use.writes) add(e.use, nullptr, e.what);
  for (const auto& n : pipeline.nodes)
    for (const ParamType type : {ParamType::input, ParamType::output})
      for (const Value* v : paths(n, type)) add({v->text, type == ParamType::output}, v, "");
  for (const auto& e : extra)
    if (e.use.writes) add(e.use, nullptr, e.what);

  std::vector<Diagnostic> errors;
  for (const auto& clash : find_path_clashes(uses)) {
    const std::string& at = names[clash.at];
    const std::string& other = names[clash.other];
    const Span where = values[clash.at] ? values[clash.at]->span : Span{0, 0, 1};
    if (clash.read_twice)
      errors.push_back({where, fmt::format("{} is read twice (also as {})", at, other),
                        "standard input, a pipe or a terminal gives each byte to one reader: it can be read by one "
                        "source only"});
    else if (uses[clash.other].writes)
      errors.push_back({where, fmt::format("{} is written twice (also as {})", at, other),
                        "two outputs written to one file would overwrite each other"});
    else
      errors.push_back({where, fmt::format("the output {} is also an input ({})", at, other),
                        "writing it would destroy the input before it is read"});
  }
  return errors;
}

bool is_source_chain(const Pipeline& line) {
  const auto& nodes = line.nodes;
  // Nodes come in the order the line names them.
  bool chain = !nodes.empty() && nodes[0].stage->kind() == StageKind::timeline_source;
  for (size_t i = 1; chain && i < nodes.size(); ++i)
    chain = nodes[i].stage->kind() == StageKind::transform && nodes[i].inputs == std::vector<int>{static_cast<int>(i - 1)} &&
            nodes[i - 1].outputs.size() == 1;
  return chain;
}

std::unique_ptr<TimelineSource> open_line_source(const Pipeline& line, SourceOptions options, const SourceContext& context) {
  const Node& n = line.nodes[0];
  std::vector<Diagnostic> errors;
  std::unique_ptr<TimelineSource> source;
  // An injection starts at the output's now (+at, +shift), whatever its own times.
  if (const Value& rebase = param(n, "rebase"); rebase.given && rebase.text == "none")
    errors.push_back({rebase.span, "an injected source starts at the output's now: rebase=none cannot keep its times",
                      "at= and shift= place it after now"});
  else
    at_values(n, errors, [&] { source = static_cast<const SourceStage&>(*n.stage).open(n, std::move(options), context); });
  if (!errors.empty()) throw DescriptionError(line.where, line.text, std::move(errors));
  return source;
}

std::vector<std::unique_ptr<Transform>> make_line_transforms(const Pipeline& line, const TransformContext& context) {
  std::vector<Diagnostic> errors;
  std::vector<std::unique_ptr<Transform>> chain;
  for (size_t i = 1; i < line.nodes.size(); ++i) {
    const Node& n = line.nodes[i];
    at_values(n, errors, [&] { chain.push_back(static_cast<const TransformStage&>(*n.stage).make(n, context)); });
  }
  if (!errors.empty()) throw DescriptionError(line.where, line.text, std::move(errors));
  return chain;
}

std::string describe_plan(const Plan& plan, bool dot) {
  const auto& nodes = plan.pipeline->nodes;
  std::vector<int> order = plan.sources;
  order.insert(order.end(), plan.events.begin(), plan.events.end());
  for (const auto* chains : {&plan.source_transforms, &plan.event_transforms})
    for (const auto& chain : *chains) order.insert(order.end(), chain.begin(), chain.end());
  if (plan.merger) order.push_back(*plan.merger);
  order.insert(order.end(), plan.output_transforms.begin(), plan.output_transforms.end());
  if (plan.pacer) order.push_back(*plan.pacer);
  order.push_back(plan.sink);
  std::string out;
  if (dot) {
    out = "digraph veipipe {\n  rankdir=LR;\n  node [shape=box, fontname=monospace];\n";
    for (int id : order) {
      std::string label = stage_text(nodes[id]);
      for (size_t pos = 0; (pos = label.find('"', pos)) != std::string::npos; pos += 2) label.insert(pos, "\\");
      out += fmt::format("  n{} [label=\"{}\"];\n", id, label);
    }
    for (int id : order)
      for (int to : nodes[id].outputs) out += fmt::format("  n{} -> n{};\n", id, to);
    return out + "}\n";
  }
  const auto then = [&](const std::vector<int>& chain) {
    std::string text;
    for (int id : chain) text += " -> " + stage_text(nodes[id]);
    return text;
  };
  for (size_t rank = 0; rank < plan.sources.size(); ++rank) {
    const Node& n = nodes[plan.sources[rank]];
    out += fmt::format("source {}{}: {}{}\n", rank, rank == 0 ? " (background, output timeline)" : "",
                       stage_text(n), then(plan.source_transforms[rank]));
  }
  for (size_t i = 0; i < plan.events.size(); ++i)
    out += fmt::format("event source: {}{}\n", stage_text(nodes[plan.events[i]]), then(plan.event_transforms[i]));
  if (plan.merger) out += fmt::format("merge: {}\n", stage_text(nodes[*plan.merger]));
  for (int id : plan.output_transforms) out += fmt::format("transform: {}\n", stage_text(nodes[id]));
  if (plan.pacer) out += fmt::format("pace: {}\n", stage_text(nodes[*plan.pacer]));
  out += fmt::format("sink: {}\n", stage_text(nodes[plan.sink]));
  return out;
}

}  // namespace vei
