#include "docs/man/cli_man.h"

#include <CLI/CLI.hpp>
#include <fmt/format.h>

#include <cctype>
#include <cstdio>
#include <vector>

namespace vei::man {
namespace {

using Options = std::vector<const CLI::Option*>;

// Hidden options (an empty group, as CLI11 hides them from --help) are no part of the manual.
bool visible(const CLI::Option* o) { return !o->get_group().empty(); }

// Option groups are nameless subcommands in CLI11: they are shown with their parent.
std::vector<const CLI::App*> option_groups(const CLI::App& app) {
  return app.get_subcommands([](const CLI::App* s) { return s->get_name().empty(); });
}
std::vector<const CLI::App*> commands(const CLI::App& app) {
  return app.get_subcommands([](const CLI::App* s) { return !s->get_name().empty() && !s->get_group().empty(); });
}

Options own_options(const CLI::App& app, bool with_help) {
  return app.get_options([&](const CLI::Option* o) { return visible(o) && (with_help || o != app.get_help_ptr()); });
}

// The options of `app`, then those of its option groups.
Options all_options(const CLI::App& app, bool with_help) {
  Options all = own_options(app, with_help);
  for (const auto* group : option_groups(app))
    for (const auto* o : own_options(*group, false)) all.push_back(o);
  return all;
}

bool takes_value(const CLI::Option& o) { return o.get_items_expected_max() != 0; }

// CLI11's type name ("FILE", "TEXT:{constant,poisson}"): the part before the validators' text.
std::string argument(const CLI::Option& o) {
  std::string type = o.get_type_name();
  type = type.substr(0, type.find(':'));
  for (char& c : type) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return type.empty() ? "value" : type;
}

// The choices an IsMember validator adds to the type name (":{us,ns}"), comma-separated.
std::string choices(const CLI::Option& o) {
  const std::string type = o.get_type_name();
  const auto open = type.find(":{");
  const auto close = type.find('}', open);
  if (open == std::string::npos || close == std::string::npos) return {};
  std::string out;
  for (char c : type.substr(open + 2, close - open - 2)) out += c == ',' ? std::string(", ") : std::string(1, c);
  return out;
}

std::vector<std::string> names(const CLI::Option& o) {
  std::vector<std::string> out;
  for (const auto& s : o.get_snames()) out.push_back("-" + s);
  for (const auto& l : o.get_lnames()) out.push_back("--" + l);
  return out;
}

// mdoc arguments naming the option: `Fl e` (or every name: `Fl e , Fl -expression`), then
// `Ar expression` when it takes a value; a positional is `Ar file`.
std::string head(const CLI::Option& o, bool every_name) {
  if (!o.nonpositional()) return "Ar " + o.get_name();
  std::string out;
  for (const auto& n : names(o)) {
    if (!out.empty()) {
      if (!every_name) break;
      out += " , ";
    }
    out += "Fl " + n.substr(1);
  }
  return takes_value(o) ? out + " Ar " + argument(o) : out;
}

std::string synopsis_of(const CLI::App& app, std::string_view command) {
  std::string out = ".Nm\n";
  if (!command.empty()) out += fmt::format(".Cm {}\n", command);
  // --version goes on a line of its own, with --help (synopsis()).
  for (const auto* o : own_options(app, false))
    if (o != app.get_version_ptr()) out += fmt::format(".{}{}\n", o->get_required() ? "" : "Op ", head(*o, false));
  for (const auto* group : option_groups(app)) {
    const auto grouped = own_options(*group, false);
    // A group of which exactly one must be given reads `{--size size | --count count}`.
    if (group->get_require_option_min() == 1 && group->get_require_option_max() == 1) {
      std::string alternatives;
      for (const auto* o : grouped) alternatives += fmt::format("{}{}", alternatives.empty() ? "" : " | ", head(*o, false));
      out += fmt::format(".Brq {}\n", alternatives);
    } else {
      for (const auto* o : grouped) out += fmt::format(".Op {}\n", head(*o, false));
    }
  }
  return out;
}

std::string option_list(const CLI::App& app, bool with_help) {
  const Options all = all_options(app, with_help);
  if (all.empty()) return {};
  std::string out = ".Bl -tag -width Ds\n";
  for (const auto* o : all) {
    out += fmt::format(".It {}\n{}", head(*o, true), sentence(o->get_description()));
    if (const auto c = choices(*o); !c.empty()) out += text(fmt::format("One of: {}.", c));
    if (!o->get_default_str().empty()) out += text(fmt::format("Default: {}.", o->get_default_str()));
    if (o->get_required()) out += text("Required.");
  }
  return out + ".El\n";
}

std::string joined_names(const Options& options, bool valued_only) {
  std::string out;
  for (const auto* o : options)
    if (!valued_only || takes_value(*o))
      for (const auto& n : names(*o)) out += fmt::format("{}{}", out.empty() ? "" : " ", n);
  return out;
}

}  // namespace

std::string text(std::string_view in) {
  std::string out;
  bool line_start = true, in_code = false;
  for (size_t i = 0; i < in.size(); ++i) {
    const char c = in[i];
    if (line_start && c == ' ') continue;
    if (line_start && (c == '.' || c == '\'')) out += "\\&";
    line_start = c == '\n';
    if (c == '\\') out += "\\e";
    else if (c == '`') out += (in_code = !in_code) ? "\\(oq" : "\\(cq";
    else out += c;
    // roff wants each sentence on a line of its own (its end gets the wider space): a sentence
    // ends at . ! or ?, closing brackets or quotes after it, and a space. An abbreviation with
    // inner dots ("e.g.") ends none, marked with \& so that roff does not take it for one either.
    if (c != '.' && c != '!' && c != '?') continue;
    size_t end = i + 1;
    while (end < in.size() && (in[end] == ')' || in[end] == '"' || in[end] == '\'')) ++end;
    if (end >= in.size() || in[end] != ' ') continue;
    const size_t space = in.find_last_of(' ', i);
    const size_t word_start = space == std::string_view::npos ? 0 : space + 1;
    if (c == '.' && in.substr(word_start, i - word_start).find('.') != std::string_view::npos) {
      out += "\\&";
      continue;
    }
    out.append(in.substr(i + 1, end - i - 1));
    out += '\n';
    i = end;
    line_start = true;
  }
  if (!out.empty() && out.back() != '\n') out += '\n';
  return out;
}

std::string sentence(std::string_view in) {
  std::string s{in};
  if (!s.empty()) s[0] = static_cast<char>(std::toupper(static_cast<unsigned char>(s[0])));
  if (!s.empty() && s.back() != '.' && s.back() != '!' && s.back() != '?') s += '.';
  return text(s);
}

std::string synopsis(const CLI::App& app) {
  const auto subcommands = commands(app);
  std::string out;
  if (subcommands.empty()) out = synopsis_of(app, "");
  for (const auto* s : subcommands) out += synopsis_of(*s, s->get_name());
  // The options the program takes alone (--help, --version).
  std::string alone;
  for (const CLI::Option* o : {app.get_help_ptr(), app.get_version_ptr()})
    if (o) alone += fmt::format("{}{}", alone.empty() ? "" : " | ", head(*o, false));
  if (!alone.empty()) out += fmt::format(".Nm\n.{}\n", alone);
  return out;
}

std::string options(const CLI::App& app) {
  std::string out = option_list(app, true);
  for (const auto* s : commands(app)) {
    out += fmt::format(".Ss {}\n{}{}", s->get_name(), sentence(s->get_description()), option_list(*s, false));
  }
  return out;
}

std::string completion(const CLI::App& app, std::string_view prefix) {
  std::string command_names, options_map, valued_map;
  const auto add = [&](std::string_view name, const CLI::App& a) {
    const Options all = all_options(a, true);
    options_map += fmt::format(" [{}]='{}'", name, joined_names(all, false));
    valued_map += fmt::format(" [{}]='{}'", name, joined_names(all, true));
  };
  add("-", app);
  for (const auto* s : commands(app)) {
    command_names += fmt::format("{}{}", command_names.empty() ? "" : " ", s->get_name());
    add(s->get_name(), *s);
  }
  return fmt::format("{0}_commands='{1}'\ndeclare -gA {0}_options=({2} )\ndeclare -gA {0}_valued=({3} )\n", prefix,
                     command_names, options_map, valued_map);
}

void add_generate_option(CLI::App& app, std::function<std::string(std::string_view part)> generate) {
  app.add_option_function<std::string>("--generate",
                                       [generate = std::move(generate)](const std::string& part) {
                                         const std::string out = generate(part);
                                         if (out.empty())
                                           throw CLI::ValidationError("--generate", "no part '" + part + "'");
                                         std::fwrite(out.data(), 1, out.size(), stdout);
                                         throw CLI::Success();
                                       })
      ->group("");
}

}  // namespace vei::man
