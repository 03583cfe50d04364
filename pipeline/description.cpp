#include "pipeline/description.h"

#include <algorithm>
#include <charconv>
#include <limits>
#include <numeric>
#include <optional>
#include <set>
#include <stdexcept>
#include <unordered_map>
#include <utility>

#include "pipeline/stage.h"

#include <fmt/format.h>

namespace vei {

namespace {

// ---- text helpers ------------------------------------------------------------------------------

// ASCII only, so the locale cannot change what the language accepts.
bool is_space(char c) { return c == ' ' || c == '\t' || c == '\r'; }
bool is_digit(char c) { return c >= '0' && c <= '9'; }
bool is_ident_start(char c) { return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_'; }
bool is_ident_char(char c) { return is_ident_start(c) || is_digit(c); }
char to_lower(char c) { return c >= 'A' && c <= 'Z' ? static_cast<char>(c - 'A' + 'a') : c; }

bool iequals(std::string_view a, std::string_view b) {
  return std::ranges::equal(a, b, [](char x, char y) { return to_lower(x) == to_lower(y); });
}

std::string_view trim(std::string_view s) {
  while (!s.empty() && is_space(s.front())) s.remove_prefix(1);
  while (!s.empty() && is_space(s.back())) s.remove_suffix(1);
  return s;
}

std::string position(Span s) { return fmt::format("{}:{}", s.line, s.col); }

// A name or value as quoted in a message: long ones are cut, since the source line shows them anyway.
std::string shown(std::string_view s) {
  constexpr size_t max = 64;
  if (s.size() <= max) return std::string(s);
  return fmt::format("{}...", s.substr(0, max - 16));
}

std::string list_note(std::string_view what, const std::vector<std::string_view>& names) {
  return fmt::format("valid {}: {}", what, fmt::join(names, ", "));
}

// ---- values ------------------------------------------------------------------------------------

struct Problem {
  std::string error;
  std::string note;
};
using Check = std::optional<Problem>;  // nullopt: the value is fine

struct Unit {
  std::string_view name;
  int64_t factor;
};

struct UnitSystem {
  std::vector<Unit> units;
  std::string_view bare;  // the unit of a bare number; empty when the unit is mandatory
  std::string_view quantum;  // what exact conversions must produce a whole number of
  bool case_insensitive = false;
};

const UnitSystem duration_units{
    {{"ns", 1},
     {"us", 1'000},
     {"\u00b5s", 1'000},  // micro sign
     {"ms", 1'000'000},
     {"s", 1'000'000'000},
     {"m", 60'000'000'000},
     {"h", 3'600'000'000'000}},
    "s",
    "nanoseconds"};

const UnitSystem size_units{{{"B", 1},
                             {"KiB", int64_t{1} << 10},
                             {"MiB", int64_t{1} << 20},
                             {"GiB", int64_t{1} << 30},
                             {"TiB", int64_t{1} << 40},
                             {"kB", 1'000},
                             {"KB", 1'000},
                             {"MB", 1'000'000},
                             {"GB", 1'000'000'000},
                             {"TB", 1'000'000'000'000}},
                            "B",
                            "bytes"};

const UnitSystem rate_units{{{"pps", 1}, {"kpps", 1'000}, {"Mpps", 1'000'000}}, "pps", {}};

// `Mbps` and `mbps` both mean megabits: nobody writes millibits per second.
const UnitSystem bitrate_units{
    {{"bps", 1}, {"kbps", 1'000}, {"mbps", 1'000'000}, {"gbps", 1'000'000'000}}, {}, {}, true};

const UnitSystem multiplier_units{{{"x", 1}}, "x", {}};

std::string unit_note(const UnitSystem& system) {
  std::vector<std::string_view> names;
  for (const auto& u : system.units) names.push_back(u.name);
  auto note = list_note("units", names);
  if (!system.bare.empty()) note += fmt::format(" (default {})", system.bare);
  return note;
}

Check find_unit(const UnitSystem& system, std::string_view name, int64_t& factor) {
  if (name.empty() && system.bare.empty()) return Problem{"missing unit", unit_note(system)};
  if (name.empty()) name = system.bare;
  for (const auto& u : system.units) {
    if (system.case_insensitive ? iequals(u.name, name) : u.name == name) {
      factor = u.factor;
      return {};
    }
  }
  return Problem{fmt::format("unknown unit '{}'", shown(name)), unit_note(system)};
}

// `[+-]digits[.digits] [unit]`.
struct Number {
  char sign = 0;  // 0, '+' or '-'
  std::string_view digits;
  std::string_view unit;
};

Check split_number(std::string_view text, const UnitSystem& system, Number& number) {
  text = trim(text);
  if (!text.empty() && (text.front() == '+' || text.front() == '-')) {
    number.sign = text.front();
    text.remove_prefix(1);
  }
  size_t end = 0;
  for (bool dot = false; end < text.size() && (is_digit(text[end]) || (text[end] == '.' && !dot)); ++end)
    dot = dot || text[end] == '.';
  number.digits = text.substr(0, end);
  number.unit = trim(text.substr(end));
  if (!std::ranges::any_of(number.digits, is_digit)) return Problem{"expected a number", unit_note(system)};
  return {};
}

// digits × factor computed exactly: `0.1s` is 100000000 ns, not whatever a double rounds it to.
Check scale_exact(std::string_view digits, int64_t factor, std::string_view quantum, int64_t& out) {
  if (digits.find('.') != std::string_view::npos) {
    while (digits.back() == '0') digits.remove_suffix(1);  // 1.50 needs no more precision than 1.5
    if (digits.back() == '.') digits.remove_suffix(1);
  }
  constexpr uint64_t max = std::numeric_limits<int64_t>::max();
  const Problem out_of_range{fmt::format("out of range: at most {} {}", max, quantum), ""};
  uint64_t mantissa = 0;
  uint64_t denominator = 1;
  bool fraction = false;
  for (char c : digits) {
    if (c == '.') {
      fraction = true;
      continue;
    }
    const auto digit = static_cast<uint64_t>(c - '0');
    if (mantissa > (max - digit) / 10 || (fraction && denominator > max / 10)) return out_of_range;
    mantissa = mantissa * 10 + digit;
    if (fraction) denominator *= 10;
  }
  // mantissa × factor / denominator is whole iff the part of the denominator that factor does not
  // cancel divides the mantissa.
  const auto common = std::gcd(static_cast<uint64_t>(factor), denominator);
  const uint64_t divisor = denominator / common;
  const uint64_t multiplier = static_cast<uint64_t>(factor) / common;
  if (mantissa % divisor != 0) return Problem{fmt::format("not a whole number of {}", quantum), ""};
  const uint64_t whole = mantissa / divisor;
  if (whole != 0 && multiplier > max / whole) return out_of_range;
  out = static_cast<int64_t>(whole * multiplier);
  return {};
}

Check read_exact(std::string_view text, const UnitSystem& system, int64_t& value, char& sign) {
  Number number;
  int64_t factor = 1;
  if (auto problem = split_number(text, system, number)) return problem;
  if (auto problem = find_unit(system, number.unit, factor)) return problem;
  if (auto problem = scale_exact(number.digits, factor, system.quantum, value)) return problem;
  if (number.sign == '-') value = -value;
  sign = number.sign;
  return {};
}

// Rates and factors are all strictly positive.
Check read_positive(std::string_view text, const UnitSystem& system, double& value) {
  Number number;
  int64_t factor = 1;
  if (auto problem = split_number(text, system, number)) return problem;
  if (auto problem = find_unit(system, number.unit, factor)) return problem;
  if (std::from_chars(number.digits.data(), number.digits.data() + number.digits.size(), value).ec != std::errc{})
    return Problem{"out of range", ""};
  value *= static_cast<double>(factor);
  if (number.sign == '-' || !(value > 0)) return Problem{"must be positive", ""};
  return {};
}

Check read_speed(std::string_view text, double& value) {
  text = trim(text);
  if (text == "realtime") {
    value = 1;
    return {};
  }
  if (text == "topspeed") {
    value = 0;
    return {};
  }
  if (auto problem = read_positive(text, multiplier_units, value))
    return Problem{problem->error, "`realtime`, `topspeed`, or a factor from 0.01x to 1000x"};
  if (value < 0.01 || value > 1000) return Problem{"out of range", "a factor from 0.01x to 1000x"};
  return {};
}

Check read_integer(std::string_view text, int64_t& value) {
  text = trim(text);
  if (text.starts_with('+') && !text.substr(1).starts_with('-')) text.remove_prefix(1);
  const auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
  if (ec == std::errc::result_out_of_range)
    return Problem{fmt::format("out of range: {}..{}", std::numeric_limits<int64_t>::min(), std::numeric_limits<int64_t>::max()), ""};
  if (ec != std::errc{} || end != text.data() + text.size() || text.empty())
    return Problem{"expected a whole number", ""};
  return {};
}

Check read_boolean(std::string_view text, bool& value) {
  static constexpr std::pair<std::string_view, bool> words[] = {
      {"true", true}, {"false", false}, {"yes", true}, {"no", false},
      {"on", true},   {"off", false},   {"1", true},   {"0", false}};
  text = trim(text);
  for (const auto& [word, meaning] : words) {
    if (iequals(word, text)) {
      value = meaning;
      return {};
    }
  }
  std::vector<std::string_view> names;
  for (const auto& w : words) names.push_back(w.first);
  return Problem{"unknown value", list_note("values", names)};
}

Check read_choice(const ParamSpec& spec, std::string_view text) {
  if (std::ranges::find(spec.choices, text) != spec.choices.end()) return {};
  const auto match = closest_match(text, spec.choices);
  return Problem{"unknown choice", fmt::format("{}{}", match.empty() ? "" : fmt::format("did you mean '{}'? ", match),
                                               list_note("choices", spec.choices))};
}

Check convert(const ParamSpec& spec, std::string_view text, Value& out) {
  out.type = spec.type;
  out.text = text;
  char sign = 0;
  switch (spec.type) {
    case ParamType::input:
    case ParamType::output:
    case ParamType::string:
      if (text.empty()) return Problem{"must not be empty", ""};
      return {};
    case ParamType::choice: return read_choice(spec, text);
    case ParamType::duration:
      if (auto problem = read_exact(text, duration_units, out.integer, sign)) return problem;
      out.explicit_sign = sign != 0;
      return {};
    case ParamType::size:
      if (auto problem = read_exact(text, size_units, out.integer, sign)) return problem;
      if (sign == '-') return Problem{"must not be negative", ""};
      return {};
    case ParamType::integer: return read_integer(text, out.integer);
    case ParamType::rate: return read_positive(text, rate_units, out.real);
    case ParamType::bitrate: return read_positive(text, bitrate_units, out.real);
    case ParamType::multiplier: return read_positive(text, multiplier_units, out.real);
    case ParamType::boolean: return read_boolean(text, out.boolean);
    case ParamType::speed: return read_speed(text, out.real);
  }
  return Problem{"unsupported type", ""};
}

// Collects every problem instead of stopping at the first, up to max_diagnostics; counts the rest.
struct Reporter {
  std::vector<Diagnostic> diagnostics;
  size_t more = 0;

  bool full() const { return diagnostics.size() >= max_diagnostics; }
  void error(Span at, std::string message, std::string note = {}) {
    if (full())
      ++more;
    else
      diagnostics.push_back({at, std::move(message), std::move(note)});
  }
};

// ---- syntax ------------------------------------------------------------------------------------

class Parser : public Reporter {
 public:
  Parser(std::string_view text, const Defines& defines) : text_(text), defines_(defines) {
    line_starts_.push_back(0);
    for (size_t i = 0; i < text.size(); ++i)
      if (text[i] == '\n') line_starts_.push_back(i + 1);
  }

  Syntax parse() {
    Syntax syntax;
    for (skip_spaces(); pos_ < text_.size(); skip_spaces()) {
      if (peek() == '\n' || peek() == ';') {
        ++pos_;
        continue;
      }
      try {
        if (at_define()) {
          parse_define(syntax.definitions);
          skip_spaces();
          if (pos_ < text_.size() && peek() != '\n' && peek() != ';')
            fail(here(), "expected the end of the statement: define(...) stands alone");
          continue;
        }
        Chain chain = parse_chain();
        if (pos_ < text_.size() && peek() != '\n' && peek() != ';')
          fail(here(), "expected '->' or the end of the statement");
        syntax.chains.push_back(std::move(chain));
      } catch (const Abort&) {
        pos_ = std::min(text_.find('\n', pos_), text_.size());
      }
    }
    resolve_bare_names(syntax);
    substitute(syntax);
    return syntax;
  }

 private:
  struct Abort {};  // unwinds a broken statement; parsing resumes on the next line

  char peek() const { return pos_ < text_.size() ? text_[pos_] : '\0'; }

  Span span(size_t begin, size_t end) const {
    const auto line = static_cast<size_t>(std::ranges::upper_bound(line_starts_, begin) - line_starts_.begin());
    return {static_cast<int>(line), static_cast<int>(begin - line_starts_[line - 1] + 1),
            static_cast<int>(std::max<size_t>(end - begin, 1))};
  }

  // The current character; at the end of the text, just past its last visible character rather
  // than on a blank line after it.
  Span here() const {
    size_t at = pos_;
    if (at == text_.size())
      while (at > 0 && (is_space(text_[at - 1]) || text_[at - 1] == '\n')) --at;
    return span(at, at);
  }

  [[noreturn]] void fail(Span at, std::string message) {
    error(at, std::move(message));
    throw Abort{};
  }

  void skip_spaces() {
    while (is_space(peek())) ++pos_;
    if (peek() == '#') pos_ = std::min(text_.find('\n', pos_), text_.size());
  }

  // Between a stage's parentheses a line break is a space (issue 11, item 20): long argument
  // lists may span lines, each with its comment.
  void skip_blank() {
    for (skip_spaces(); peek() == '\n'; skip_spaces()) ++pos_;
  }

  std::pair<std::string, Span> identifier(std::string_view expected) {
    const size_t begin = pos_;
    if (!is_ident_start(peek())) fail(here(), std::string(expected));
    while (is_ident_char(peek())) ++pos_;
    return {std::string(text_.substr(begin, pos_ - begin)), span(begin, pos_)};
  }

  Chain parse_chain() {
    Chain chain;
    chain.elements.push_back(parse_element("expected a stage or label"));
    for (skip_spaces(); text_.substr(pos_).starts_with("->"); skip_spaces()) {
      pos_ += 2;
      for (skip_spaces(); peek() == '\n'; skip_spaces()) ++pos_;  // a trailing `->` continues the chain
      chain.elements.push_back(parse_element("expected a stage or label after '->'"));
    }
    return chain;
  }

  Element parse_element(std::string_view expected) {
    Element element;
    auto [name, name_span] = identifier(expected);
    skip_spaces();
    if (peek() == ':') {
      ++pos_;
      element.label = std::move(name);
      element.label_span = name_span;
      skip_spaces();
      std::tie(name, name_span) = identifier(fmt::format("expected a stage name after '{}:'", shown(element.label)));
      skip_spaces();
    } else if (peek() != '(') {
      // Provisionally a reference; resolve_bare_names() makes it a call when no such label exists.
      element.is_reference = true;
      element.label = std::move(name);
      element.label_span = name_span;
      return element;
    }
    element.call.name = std::move(name);
    element.call.name_span = name_span;
    if (peek() == '(') parse_args(element.call);
    return element;
  }

  void parse_args(StageCall& call) {
    parse_list([&] { call.args.push_back(parse_arg()); });
  }

  // `(item, item, ...)` from the `(` on, each item read by `item`.
  template <typename Item>
  void parse_list(Item item) {
    ++pos_;
    skip_blank();
    if (peek() == ')') {
      ++pos_;
      return;
    }
    for (;;) {
      item();
      const size_t after = pos_;
      skip_blank();
      const char c = peek();
      if (c != ',' && c != ')') {
        // Most likely a `)` missing at the end of the argument's line: say so there, and resume
        // on the next line as for any broken statement.
        pos_ = after;
        skip_spaces();
        fail(here(), "expected ',' or ')'");
      }
      ++pos_;
      if (c == ')') return;
      skip_blank();
    }
  }

  Arg parse_arg() {
    Arg arg;
    const size_t begin = pos_;
    if (is_ident_start(peek())) {
      while (is_ident_char(peek())) ++pos_;
      const size_t key_end = pos_;
      skip_spaces();
      if (peek() == '=') {
        arg.key = text_.substr(begin, key_end - begin);
        arg.key_span = span(begin, key_end);
        ++pos_;
        skip_spaces();
      } else {
        pos_ = begin;  // not a key: the identifier starts a positional value
      }
    }
    if (peek() == '"')
      parse_quoted(arg);
    else
      parse_bare(arg);
    return arg;
  }

  void parse_quoted(Arg& arg) {
    const size_t begin = pos_++;
    for (;;) {
      if (pos_ == text_.size() || peek() == '\n') fail(span(begin, begin + 1), "unterminated string");
      if (peek() == '$' && reference(arg, pos_)) continue;
      const char c = text_[pos_++];
      if (c == '"') break;
      if (c == '\\' && (peek() == '"' || peek() == '\\' || peek() == '$')) {
        arg.value += text_[pos_++];
      } else if (c == '\\' && pos_ < text_.size() && peek() != '\n') {
        error(span(pos_ - 1, pos_ + 1), fmt::format("unknown escape sequence '\\{}'", peek()),
              R"(the escapes are \", \\ and \$)");
        ++pos_;
      } else {
        arg.value += c;
      }
    }
    arg.value_span = span(begin, pos_);
  }

  // Runs to the next top-level `,` or `)` so filters and paths need no quotes.
  void parse_bare(Arg& arg) {
    const size_t begin = pos_;
    int depth = 0;
    for (char c = peek(); pos_ < text_.size() && c != '\n' && c != '#'; c = peek()) {
      if (depth == 0 && (c == ',' || c == ')')) break;
      depth += c == '(' ? 1 : c == ')' ? -1 : 0;
      ++pos_;
    }
    const auto value = trim(text_.substr(begin, pos_ - begin));
    if (value.empty())
      fail(here(), arg.key.empty() ? "expected an argument" : fmt::format("missing value for '{}'", shown(arg.key)));
    const Span value_span = span(begin, begin + value.size());
    if (depth > 0) fail(value_span, "unbalanced '(' in value");
    for (size_t i = begin; i < begin + value.size();)
      if (text_[i] != '$' || !reference(arg, i)) arg.value += text_[i++];
    arg.value_span = value_span;
  }

  // `$NAME` or `${NAME}` at text_[i]: recorded in `arg`, for substitute(), and skipped. Any other
  // `$` is itself.
  bool reference(Arg& arg, size_t& i) {
    const bool braced = text_.substr(i + 1).starts_with('{');
    const size_t begin = i + 1 + (braced ? 1 : 0);
    size_t end = begin;
    while (end < text_.size() && (end == begin ? is_ident_start(text_[end]) : is_ident_char(text_[end]))) ++end;
    if (braced && (end == begin || end == text_.size() || text_[end] != '}')) {
      error(span(i, end), "expected a name and '}' after '${'", "write ${NAME}");
      return false;
    }
    if (end == begin) return false;
    const size_t stop = end + (braced ? 1 : 0);
    arg.references.push_back({std::string(text_.substr(begin, end - begin)), span(i, stop), arg.value.size()});
    i = stop;
    return true;
  }

  bool at_define() const {
    constexpr std::string_view keyword = "define";
    if (!text_.substr(pos_).starts_with(keyword)) return false;
    size_t at = pos_ + keyword.size();
    while (at < text_.size() && is_space(text_[at])) ++at;
    return at < text_.size() && text_[at] == '(';
  }

  // `define(NAME value, ...)`; the name may be written `$NAME`, as Click writes it.
  void parse_define(std::vector<Definition>& definitions) {
    pos_ = text_.find('(', pos_);
    parse_list([&] {
      if (peek() == '$') ++pos_;
      auto [name, name_span] = identifier("expected a name to define");
      const size_t after_name = pos_;
      skip_spaces();
      if (pos_ == after_name || peek() == ',' || peek() == ')' || peek() == '\n')
        fail(here(), fmt::format("expected a space, then the value of '{}'", shown(name)));
      Arg arg;
      arg.key = name;
      if (peek() == '"')
        parse_quoted(arg);
      else
        parse_bare(arg);
      for (const auto& r : arg.references)
        error(r.span, fmt::format("'${}' in a define: its values are taken as written", shown(r.name)),
              "write the value out, or give it on the command line with -D");
      const auto first = std::ranges::find(definitions, name, &Definition::name);
      if (first != definitions.end()) {
        error(name_span, fmt::format("'{}' is already defined", shown(name)),
              fmt::format("first defined at {}", position(first->name_span)));
        return;
      }
      definitions.push_back({std::move(name), std::move(arg.value), name_span, arg.value_span});
    });
  }

  // Every `$NAME` takes its value from the command line's defines, else from the text's define().
  // What substitution adds is bounded like the text itself: a long value used many times must not
  // make a small description take gigabytes.
  void substitute(Syntax& syntax) {
    std::map<std::string_view, std::string_view> values;
    for (const auto& d : syntax.definitions) values.emplace(d.name, d.value);
    for (const auto& [name, value] : defines_) values.insert_or_assign(name, value);
    std::vector<std::string_view> names;
    for (const auto& [name, _] : values) names.push_back(name);
    std::set<std::string_view> used;
    size_t added = 0;
    for (auto& chain : syntax.chains)
      for (auto& e : chain.elements)
        for (auto& arg : e.call.args) {
          std::string value;
          size_t from = 0;
          for (const auto& r : arg.references) {
            value.append(arg.value, from, r.at - from);
            from = r.at;
            used.insert(r.name);
            const auto it = values.find(r.name);
            if (it == values.end()) {
              error(r.span, fmt::format("undefined '${}'", shown(r.name)),
                    names.empty() ? fmt::format("define it: define({} value), or -D {}=value on the command line",
                                                shown(r.name), shown(r.name))
                                  : name_note(r.name, names));
            } else if ((added += it->second.size()) > max_description_size) {
              error(r.span, fmt::format("the values of the $NAMEs make the description longer than the {} "
                                        "bytes accepted", max_description_size));
              return;
            } else {
              value += it->second;
            }
          }
          value.append(arg.value, from);
          arg.value = std::move(value);
        }
    std::vector<std::string_view> uses(used.begin(), used.end());
    for (const auto& [name, _] : defines_)
      if (!used.contains(name))
        error({}, fmt::format("-D {}: the description never uses ${}", shown(name), shown(name)),
              uses.empty() ? std::string("it uses no $NAME") : name_note(name, uses));
  }

  static std::string name_note(std::string_view name, const std::vector<std::string_view>& names) {
    const auto match = closest_match(name, names);
    return fmt::format("{}names: {}", match.empty() ? "" : fmt::format("did you mean '${}'? ", match),
                       fmt::join(names, ", "));
  }

  // A bare name is a label if one is declared anywhere, otherwise a stage called without args.
  static void resolve_bare_names(Syntax& syntax) {
    std::set<std::string, std::less<>> labels;
    for (const auto& chain : syntax.chains)
      for (const auto& e : chain.elements)
        if (!e.is_reference && !e.label.empty()) labels.insert(e.label);
    for (auto& chain : syntax.chains)
      for (auto& e : chain.elements)
        if (e.is_reference && !labels.contains(e.label) && find_stage(e.label)) {
          e.is_reference = false;
          e.call.name = std::exchange(e.label, {});
          e.call.name_span = std::exchange(e.label_span, {});
        }
  }

  std::string_view text_;
  const Defines& defines_;
  std::vector<size_t> line_starts_;
  size_t pos_ = 0;
};

// ---- resolution --------------------------------------------------------------------------------

Span element_span(const Element& e) { return e.is_reference ? e.label_span : e.call.name_span; }

Span arg_span(const Arg& a) { return a.key.empty() ? a.value_span : a.key_span; }

std::string describe(const Node& n) {
  return n.label.empty() ? fmt::format("'{}'", n.stage->name()) : fmt::format("'{}' ({})", shown(n.label), n.stage->name());
}

bool is_source(StageKind kind) { return kind == StageKind::timeline_source || kind == StageKind::event_source; }

class Resolver : public Reporter {
 public:
  Resolver(const Syntax& syntax, Pipeline& out) : out_(out) {
    for (const auto& chain : syntax.chains)
      for (const auto& e : chain.elements) declare(e);
    for (const auto& chain : syntax.chains) {
      std::vector<int> ids;
      for (const auto& e : chain.elements) ids.push_back(node_for(e));
      for (size_t i = 1; i < ids.size(); ++i)
        connect(chain.elements[i - 1], ids[i - 1], chain.elements[i], ids[i]);
    }
    if (syntax.chains.empty()) error({1, 1, 1}, "no stages", "e.g. pcap(in.pcap) -> file(out.pcap)");
  }

 private:
  void declare(const Element& e) {
    if (e.is_reference || e.label.empty()) return;
    const auto [it, inserted] = labels_.emplace(e.label, &e);
    if (!inserted)
      error(e.label_span, fmt::format("duplicate label '{}'", shown(e.label)),
            fmt::format("first defined at {}", position(it->second->label_span)));
  }

  // The node of an element, created on its first appearance; -1 for a reference to nothing.
  int node_for(const Element& e) {
    const Element* definition = &e;
    if (e.is_reference) {
      const auto it = labels_.find(e.label);
      if (it == labels_.end()) {
        if (full()) {  // not worth a search through every label
          ++more;
          return -1;
        }
        auto names = stage_names();
        for (const auto& [label, _] : labels_) names.push_back(label);
        error(e.label_span, fmt::format("unknown label or stage '{}'", shown(e.label)),
              suggestion_or_list(e.label, "labels and stages", names));
        return -1;
      }
      definition = it->second;
    }
    const auto [it, inserted] = ids_.try_emplace(definition, static_cast<int>(out_.nodes.size()));
    if (inserted) out_.nodes.push_back(make_node(*definition, it->second));
    return it->second;
  }

  Node make_node(const Element& definition, int id) {
    Node node;
    node.id = id;
    node.label = definition.label;
    node.span = definition.call.name_span;
    node.stage = find_stage(definition.call.name);
    if (node.stage)
      resolve_params(node, definition.call.args);
    else
      error(node.span, fmt::format("unknown stage '{}'", shown(definition.call.name)),
            suggestion_or_list(definition.call.name, "stages", stage_names()));
    return node;
  }

  void resolve_params(Node& node, const std::vector<Arg>& args) {
    const StageSpec& spec = node.stage->spec();
    const size_t errors_before = diagnostics.size() + more;
    std::vector<size_t> positional;
    std::vector<std::string_view> names;
    for (size_t i = 0; i < spec.params.size(); ++i) {
      if (spec.params[i].positional) positional.push_back(i);
      names.push_back(spec.params[i].name);
    }
    std::vector<const Arg*> given(spec.params.size());
    size_t next_positional = 0;
    for (const Arg& arg : args) {
      size_t index = 0;
      if (arg.key.empty()) {
        if (next_positional == positional.size()) {
          error(arg.value_span, fmt::format("too many positional arguments for stage '{}'", spec.name),
                positional_note(spec, positional));
          continue;
        }
        index = positional[next_positional++];
      } else {
        const auto it = std::ranges::find(names, arg.key);
        if (it == names.end()) {
          error(arg.key_span, fmt::format("unknown parameter '{}' for stage '{}'", shown(arg.key), spec.name),
                suggestion_or_list(arg.key, "parameters", names));
          continue;
        }
        index = static_cast<size_t>(it - names.begin());
      }
      const ParamSpec& param = spec.params[index];
      if (given[index]) {
        error(arg_span(arg), fmt::format("duplicate parameter '{}' for stage '{}'", param.name, spec.name),
              fmt::format("first given at {}", position(arg_span(*given[index]))));
        continue;
      }
      given[index] = &arg;
      Value value;
      if (auto problem = convert(param, arg.value, value)) {
        error(arg.value_span,
              fmt::format("invalid {} '{}' for '{}': {}", to_string(param.type), shown(arg.value), param.name,
                          problem->error),
              std::move(problem->note));
        continue;
      }
      value.given = true;
      value.span = arg.value_span;
      node.params.emplace(param.name, std::move(value));
    }
    for (size_t i = 0; i < spec.params.size(); ++i) {
      const ParamSpec& param = spec.params[i];
      if (given[i]) continue;
      if (!param.default_value.empty()) {
        Value value;
        if (convert(param, param.default_value, value))
          throw std::logic_error(fmt::format("stage '{}': bad default for '{}'", spec.name, param.name));
        value.span = node.span;
        node.params.emplace(param.name, std::move(value));
      } else if (param.required) {
        error(node.span, fmt::format("missing required parameter '{}' for stage '{}'", param.name, spec.name),
              fmt::format("{}: {}", param.name, param.doc));
      }
    }
    // What the types alone cannot tell, the stage checks: only on values that parsed.
    if (diagnostics.size() + more != errors_before) return;
    std::vector<Diagnostic> refused;
    at_values(node, refused, [&] {
      node.stage->check(node);
      check_placement(node);
    });
    for (auto& d : refused) error(d.span, std::move(d.message), std::move(d.note));
  }

  static std::string positional_note(const StageSpec& spec, const std::vector<size_t>& positional) {
    if (positional.empty()) return fmt::format("'{}' takes no positional arguments", spec.name);
    std::vector<std::string_view> names;
    for (size_t i : positional) names.push_back(spec.params[i].name);
    return fmt::format("'{}' takes {} positional argument{}: {}", spec.name, names.size(),
                       names.size() == 1 ? "" : "s", fmt::join(names, ", "));
  }

  void connect(const Element& from_element, int from_id, const Element& to_element, int to_id) {
    if (from_id < 0 || to_id < 0) return;
    Node& from = out_.nodes[from_id];
    Node& to = out_.nodes[to_id];
    from.outputs.push_back(to_id);
    to.inputs.push_back(from_id);
    if (from.stage && from.stage->kind() == StageKind::sink)
      error(element_span(from_element), fmt::format("{} is a sink and has no output", describe(from)));
    if (!to.stage) return;
    if (is_source(to.stage->kind()))
      error(element_span(to_element),
            fmt::format("{} is a {} and takes no input", describe(to), to_string(to.stage->kind())));
    else if (to.stage->kind() != StageKind::merger && to.inputs.size() > 1)
      error(element_span(to_element), fmt::format("{} already has an input", describe(to)),
            "only a merger takes several inputs");
  }

  Pipeline& out_;
  std::map<std::string_view, const Element*> labels_;
  std::unordered_map<const Element*, int> ids_;
};

// Line `number` (1-based) of `text`, without its line break.
std::string_view source_line(std::string_view text, int number) {
  for (int line = 1; line < number && !text.empty(); ++line) {
    const auto end = text.find('\n');
    text.remove_prefix(end == std::string_view::npos ? text.size() : end + 1);
  }
  text = text.substr(0, text.find('\n'));
  if (text.ends_with('\r')) text.remove_suffix(1);
  return text;
}

}  // namespace

DescriptionError::DescriptionError(std::string where, std::string text, std::vector<Diagnostic> diagnostics,
                                   size_t more)
    : diagnostics_(std::move(diagnostics)) {
  if (diagnostics_.size() > max_diagnostics) {
    more += diagnostics_.size() - max_diagnostics;
    diagnostics_.resize(max_diagnostics);
  }
  formatted_ = format_diagnostics(where, text, diagnostics_);
  if (more) formatted_ += fmt::format("{}: {} more error{} not shown\n", where, more, more == 1 ? "" : "s");
}

std::string format_diagnostics(std::string_view where, std::string_view text,
                               const std::vector<Diagnostic>& diagnostics) {
  std::string out;
  auto it = std::back_inserter(out);
  // Of a longer line, the part around the error: a whole line could be a megabyte.
  constexpr size_t excerpt_width = 160;
  constexpr size_t excerpt_before = 40;
  for (const auto& d : diagnostics) {
    if (d.span.line == 0) {  // about the text as a whole, or a path the command adds: no line to show
      fmt::format_to(it, "{}: error: {}\n", where, d.message);
      if (!d.note.empty()) fmt::format_to(it, "note: {}\n", d.note);
      continue;
    }
    std::string_view line = source_line(text, d.span.line);
    size_t col = static_cast<size_t>(std::max(d.span.col, 1));  // 1-based, in `shown`
    size_t tildes = static_cast<size_t>(std::max(d.span.length - 1, 0));
    std::string excerpt;
    if (line.size() > excerpt_width) {
      const size_t at = col - 1;
      const size_t begin = std::min(at > excerpt_before ? at - excerpt_before : 0, line.size() - excerpt_width);
      const bool cut_before = begin > 0;
      const bool cut_after = begin + excerpt_width < line.size();
      excerpt = fmt::format("{}{}{}", cut_before ? "..." : "", line.substr(begin, excerpt_width), cut_after ? "..." : "");
      line = excerpt;
      col = col - begin + (cut_before ? 3 : 0);
      tildes = std::min(tildes, line.size() > col ? line.size() - col : 0);
    }
    const int width = std::max(5, static_cast<int>(fmt::formatted_size("{}", d.span.line)));
    fmt::format_to(it, "{}:{}:{}: error: {}\n{:>{}} | {}\n", where, d.span.line, d.span.col, d.message,
                   d.span.line, width, line);
    // Copy the line's tabs into the padding so the caret lines up whatever the tab width.
    std::string padding;
    for (size_t i = 0; i + 1 < col; ++i) padding += i < line.size() && line[i] == '\t' ? '\t' : ' ';
    fmt::format_to(it, "{:>{}} | {}^{}\n", "", width, padding, std::string(tildes, '~'));
    if (!d.note.empty()) fmt::format_to(it, "note: {}\n", d.note);
  }
  return out;
}

namespace {

// The length of the UTF-8 sequence at the start of `s`, or 0 when it is not one (a stray
// continuation byte, an overlong form, a surrogate, beyond U+10FFFF, cut short).
size_t utf8_sequence(std::string_view s) {
  const auto byte = [&](size_t i) { return i < s.size() ? static_cast<unsigned char>(s[i]) : 0u; };
  const unsigned lead = byte(0);
  if (lead < 0x80) return 1;
  const auto continuation = [&](size_t i, unsigned low = 0x80, unsigned high = 0xbf) {
    return byte(i) >= low && byte(i) <= high;
  };
  if (lead >= 0xc2 && lead <= 0xdf) return continuation(1) ? 2 : 0;
  if (lead >= 0xe0 && lead <= 0xef) {
    const unsigned low = lead == 0xe0 ? 0xa0 : 0x80, high = lead == 0xed ? 0x9f : 0xbf;
    return continuation(1, low, high) && continuation(2) ? 3 : 0;
  }
  if (lead >= 0xf0 && lead <= 0xf4) {
    const unsigned low = lead == 0xf0 ? 0x90 : 0x80, high = lead == 0xf4 ? 0x8f : 0xbf;
    return continuation(1, low, high) && continuation(2) && continuation(3) ? 4 : 0;
  }
  return 0;
}

// A description is UTF-8 text without NUL (issue 11, items 17 and 18): a capture given as a
// description would otherwise be echoed byte for byte in the diagnostics, and a NUL would end a
// path early when it reaches open(2). Refused whole, naming the first bad byte, showing none.
void check_text(std::string_view where, std::string_view text) {
  for (size_t at = 0; at < text.size();) {
    const size_t length = text[at] == '\0' ? 0 : utf8_sequence(text.substr(at));
    if (length) {
      at += length;
      continue;
    }
    const auto line = std::count(text.begin(), text.begin() + static_cast<ptrdiff_t>(at), '\n') + 1;
    throw DescriptionError(
        std::string(where), {},
        {{{0, 0, 1},
          fmt::format("not a text description: byte offset {} (line {}) is {}", at, line,
                      text[at] == '\0' ? std::string("a NUL byte")
                                        : fmt::format("0x{:02x}, not UTF-8", static_cast<unsigned char>(text[at]))),
          "a description is UTF-8 text; is this the file you meant?"}});
  }
}

}  // namespace

Syntax parse_syntax(std::string_view where, std::string_view text, const Defines& defines) {
  // The limit first cuts what is looked at: a longer text may end in half a UTF-8 sequence.
  check_text(where, text.substr(0, max_description_size));
  if (text.size() > max_description_size)
    throw DescriptionError(std::string(where), {},
                           {{{0, 0, 1},
                             fmt::format("the description is longer than the {} bytes accepted", max_description_size),
                             "is this the file you meant?"}});
  Parser parser(text, defines);
  Syntax syntax = parser.parse();
  if (!parser.diagnostics.empty())
    throw DescriptionError(std::string(where), std::string(text), std::move(parser.diagnostics), parser.more);
  return syntax;
}

Pipeline parse_pipeline(std::string_view where, std::string_view text, const Defines& defines) {
  const Syntax syntax = parse_syntax(where, text, defines);
  Pipeline pipeline{std::string(where), std::string(text), {}};
  Resolver resolver(syntax, pipeline);
  if (!resolver.diagnostics.empty()) {
    std::ranges::stable_sort(resolver.diagnostics, {}, [](const Diagnostic& d) {
      return std::pair(d.span.line, d.span.col);
    });
    throw DescriptionError(pipeline.where, pipeline.text, std::move(resolver.diagnostics), resolver.more);
  }
  return pipeline;
}

bool parse_value(const ParamSpec& spec, std::string_view text, Value& out, std::string& error) {
  auto problem = convert(spec, text, out);
  if (problem) error = std::move(problem->error);
  return !problem;
}

std::string_view closest_match(std::string_view word, const std::vector<std::string_view>& candidates) {
  // Optimal string alignment: like Levenshtein, but swapping two neighbours costs one edit, the
  // commonest typo (`mrege`, `pacp`). Three rows of the table are all it needs.
  const auto distance = [](std::string_view a, std::string_view b) {
    std::vector<size_t> before(b.size() + 1), previous(b.size() + 1), row(b.size() + 1);
    for (size_t j = 0; j <= b.size(); ++j) previous[j] = j;
    for (size_t i = 1; i <= a.size(); ++i) {
      row[0] = i;
      for (size_t j = 1; j <= b.size(); ++j) {
        row[j] = std::min({previous[j] + 1, row[j - 1] + 1, previous[j - 1] + (a[i - 1] == b[j - 1] ? 0 : 1)});
        if (i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1]) row[j] = std::min(row[j], before[j - 2] + 1);
      }
      std::swap(before, previous);
      std::swap(previous, row);
    }
    return previous[b.size()];
  };
  std::string_view best;
  size_t best_distance = std::max<size_t>(1, word.size() / 3) + 1;
  for (const auto candidate : candidates) {
    // The distance is at least the difference in length: no need to compute it for far words.
    const size_t apart = word.size() > candidate.size() ? word.size() - candidate.size() : candidate.size() - word.size();
    if (apart >= best_distance) continue;
    const size_t d = distance(word, candidate);
    if (d > 0 && d < best_distance) {
      best = candidate;
      best_distance = d;
    }
  }
  return best;
}

std::string suggestion_or_list(std::string_view word, std::string_view what, const std::vector<std::string_view>& names) {
  const auto match = closest_match(word, names);
  return match.empty() ? list_note(what, names) : fmt::format("did you mean '{}'?", match);
}

const Value* Node::find(std::string_view name) const {
  const auto it = params.find(name);
  return it == params.end() ? nullptr : &it->second;
}

}  // namespace vei
