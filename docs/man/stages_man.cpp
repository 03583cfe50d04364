#include "docs/man/stages_man.h"

#include <fmt/format.h>

#include "docs/man/cli_man.h"
#include "pipeline/stage.h"
#include "pipeline/vei_events.h"

namespace vei::man {
namespace {

// The words a value of this parameter can be, where there is a short list of them.
std::string values(const ParamSpec& p) {
  switch (p.type) {
    case ParamType::choice: {
      std::string out;
      for (auto c : p.choices) out += fmt::format("{}{}", out.empty() ? "" : " ", c);
      return out;
    }
    case ParamType::boolean: return "true false";
    case ParamType::speed: return "realtime topspeed";
    default: return {};
  }
}

std::string parameter(const ParamSpec& p) {
  // Choices are shown as the user writes them (`first|none`), quoted so that mdoc takes the
  // bars as text.
  std::string type{to_string(p.type)};
  if (p.type == ParamType::choice) {
    type.clear();
    for (auto c : p.choices) type += fmt::format("{}{}", type.empty() ? "" : "|", c);
  }
  std::string out = fmt::format(".It Cm {} Ns = Ns Ar \"{}\"\n{}", p.name, type, sentence(p.doc));
  if (p.required) out += text(p.positional ? "Required; may be given without its name." : "Required.");
  else if (p.positional) out += text("May be given without its name.");
  if (!p.default_value.empty()) out += text(fmt::format("Default: {}.", p.default_value));
  return out;
}

}  // namespace

std::string stages_page() {
  std::string out;
  for (const auto* stage : stages()) {
    const auto& spec = stage->spec();
    const auto kind = to_string(spec.kind);
    out += fmt::format(".Ss {}\n{}{}", spec.name,
                       text(fmt::format("{} {}.", kind.starts_with('e') ? "An" : "A", kind)), sentence(spec.doc));
    if (spec.params.empty()) continue;
    out += ".Bl -tag -width Ds\n";
    for (const auto& p : spec.params) out += parameter(p);
    out += ".El\n";
  }
  return out;
}

std::string stages_completion(std::string_view prefix) {
  std::string names, params, positional, paths, choices;
  for (const auto* stage : stages()) {
    const auto& spec = stage->spec();
    names += fmt::format("{}{}", names.empty() ? "" : " ", spec.name);
    std::string all, pos, files;
    for (const auto& p : spec.params) {
      all += fmt::format("{}{}", all.empty() ? "" : " ", p.name);
      if (p.positional) pos += fmt::format("{}{}", pos.empty() ? "" : " ", p.name);
      if (p.type == ParamType::input || p.type == ParamType::output)
        files += fmt::format("{}{}", files.empty() ? "" : " ", p.name);
      if (const auto v = values(p); !v.empty()) choices += fmt::format(" [{}.{}]='{}'", spec.name, p.name, v);
    }
    params += fmt::format(" [{}]='{}'", spec.name, all);
    positional += fmt::format(" [{}]='{}'", spec.name, pos);
    paths += fmt::format(" [{}]='{}'", spec.name, files);
  }
  return fmt::format(
      "{0}_stages='{1}'\ndeclare -gA {0}_params=({2} )\ndeclare -gA {0}_positional=({3} )\n"
      "declare -gA {0}_paths=({4} )\ndeclare -gA {0}_values=({5} )\n",
      prefix, names, params, positional, paths, choices);
}

std::string vei_events_list() {
  std::string out = ".Bl -tag -width Ds\n";
  for (const auto& e : vei_events())
    out += fmt::format(".It Dv {} Pq {}\n.Ql {}({})\n", e.name, e.type, e.stage, e.params);
  return out + ".El\n";
}

}  // namespace vei::man
