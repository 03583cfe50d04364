#include "pipeline/stage.h"

#include <fmt/format.h>

#include <algorithm>
#include <vector>

#include "core/option_error.h"
#include "core/timeline_source.h"
#include "stages/list.h"

namespace vei {

std::string_view to_string(StageKind kind) {
  switch (kind) {
    case StageKind::timeline_source: return "timeline source";
    case StageKind::event_source: return "event source";
    case StageKind::transform: return "transform";
    case StageKind::merger: return "merger";
    case StageKind::pacer: return "pacer";
    case StageKind::sink: return "sink";
  }
  return "?";
}

std::string_view to_string(ParamType type) {
  switch (type) {
    case ParamType::input: return "path";
    case ParamType::output: return "path";
    case ParamType::string: return "string";
    case ParamType::choice: return "choice";
    case ParamType::duration: return "duration";
    case ParamType::integer: return "integer";
    case ParamType::size: return "size";
    case ParamType::rate: return "rate";
    case ParamType::bitrate: return "bitrate";
    case ParamType::multiplier: return "multiplier";
    case ParamType::boolean: return "boolean";
    case ParamType::speed: return "speed";
  }
  return "?";
}

std::vector<ParamSpec> placement_params(std::string_view first_doc, std::string_view rebase_default) {
  return {
      {"at", ParamType::duration, "", first_doc},
      {"shift", ParamType::duration, "0s", "add this to every timestamp (after rebasing)"},
      {"rebase", ParamType::choice, rebase_default,
       rebase_default.empty()
           ? "`first`: move the first packet to the first source's start (+at); `none`: keep original times. "
             "Default: first when `at` is given, else none. The start is the first packet the first source "
             "keeps (after its filter= and transforms); when it keeps none, original times are kept, with a "
             "warning"
           : "`first`: start at the first source's first packet (+at); `none`: start at the epoch (+shift). "
             "That packet is the first the first source keeps (after its filter= and transforms); when it "
             "keeps none, this source starts at the epoch (+shift), with a warning",
       {"first", "none"}},
  };
}

std::unique_ptr<TimelineSource> EventStage::open_alone(const Node&, SourceOptions) const { return nullptr; }

Placement placement(const Node& node) {
  const Value& at = param(node, "at");
  const Value& rebase = param(node, "rebase");
  Placement p;
  if (at.given) p.at = at.integer;
  p.shift = param(node, "shift").integer;
  p.rebase_first = rebase.text.empty() ? at.given : rebase.text == "first";
  p.where = at.given ? &at : &param(node, "shift");
  return p;
}

void check_range(const Value& v, std::string_view what, int64_t min, int64_t max, std::string_view unit) {
  if (v.integer < min || v.integer > max)
    throw ParamError(v, fmt::format("{} must be {}..{}{}{}", what, min, max, unit.empty() ? "" : " ", unit));
}

void check_placement(const Node& node) {
  const Value* rebase = node.find("rebase");
  const Value& at = param(node, "at");
  if (rebase && at.given && rebase->text == "none")
    throw ParamError(rebase->given ? *rebase : at, "at= places the first packet, rebase=none keeps the original times: give one",
                     "shift= moves the original times by a constant");
}

namespace {

std::vector<const Stage*>& registry() {
  static std::vector<const Stage*> list = [] {
    std::vector<const Stage*> builtin;
#define VEI_LIST_STAGE(name) builtin.push_back(&builtin::name());
    VEI_BUILTIN_STAGES(VEI_LIST_STAGE)
#undef VEI_LIST_STAGE
    return builtin;
  }();
  return list;
}

}  // namespace

std::span<const Stage* const> stages() { return registry(); }

const Stage* find_stage(std::string_view name) {
  for (const Stage* s : registry())
    if (s->name() == name) return s;
  return nullptr;
}

std::vector<std::string_view> stage_names() {
  std::vector<std::string_view> names;
  for (const Stage* s : registry()) names.push_back(s->name());
  return names;
}

void register_stage(const Stage& stage) {
  if (find_stage(stage.name())) throw std::logic_error("a stage named '" + std::string(stage.name()) + "' exists already");
  registry().push_back(&stage);
}

const Value& param(const Node& node, std::string_view name) {
  static const Value absent;
  const Value* v = node.find(name);
  return v ? *v : absent;
}

bool at_values(const Node& node, std::vector<Diagnostic>& errors, const std::function<void()>& f) {
  try {
    f();
    return true;
  } catch (const ParamError& e) {
    errors.push_back({e.span, e.what(), e.note});
  } catch (const OptionError& e) {
    const Value* v = node.find(e.option);
    errors.push_back({v && v->given ? v->span : node.span, e.what(), ""});
  }
  return false;
}

std::vector<const Value*> paths(const Node& node, ParamType type) {
  std::vector<const Value*> found;
  for (const auto& p : node.stage->spec().params)
    if (const Value* v = node.find(p.name); p.type == type && v && v->given) found.push_back(v);
  return found;
}

}  // namespace vei
