// The pipeline description language: Click-style arrows between stage calls (docs/architecture.md).
//
//   pcap(campus.pcap) -> m: merge -> file(eval.pcap, labels=eval.csv)
//   pcap(exploit.pcap, at=+90s) -> m
//
// Statements are separated by newlines or `;`; `#` starts a comment; a line ending in `->`, or
// one inside a stage's parentheses, continues on the next. An element is a stage call
// `name(args)` (parentheses optional when there are no args), optionally labelled `label: call`,
// or a bare label that refers to a labelled element declared anywhere in the description.
//
//   define(bg campus.pcap, gap 90s)        # a statement of its own, anywhere in the text
//   pcap($bg) -> m: merge -> file(eval.pcap)
//   pcap(exploit.pcap, at=+$gap) -> m     # `${gap}` where a name character follows
//
// `$NAME` in a value (bare or quoted; `\$` is a literal `$` in a quoted one) is replaced by the
// value of `define(NAME value)` or of the command line's `-D NAME=value`, which overrides it.
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <string_view>
#include <vector>


namespace vei {

// ---- stage declarations -----------------------------------------------------------------------

// How a parameter's text is read. Units are part of the value: `90s`, `2ms`, `50pps`, `900mbps`, `4x`, `1MiB`.
enum class ParamType {
  input,       // a file the stage reads; `-` means stdin where the stage says so
  output,      // a file the stage creates or writes; `-` means stdout where the stage says so
  string,      // free text, e.g. a BPF filter
  choice,      // one of ParamSpec::choices
  duration,    // signed time: `90s`, `+2.5ms`, `-1us`, `100ns`, `1m`, `1h`; a bare number is seconds
  integer,     // a whole number, no unit
  size,        // bytes: `1500`, `64B`, `1KiB`, `1MiB`, `1GiB`, `1kB`, `1MB`, `1GB`
  rate,        // packets per second: `50pps`, `10kpps`, `1Mpps`, or a bare number
  bitrate,     // bits per second: `900mbps`, `1gbps`, `64kbps`, `1000bps`
  multiplier,  // speed factor: `4x`, `0.5x`
  boolean,     // true/false, yes/no, on/off, 1/0
  speed,       // `realtime` (1x), `topspeed` (0: no pacing), or a factor `0.01x`..`1000x`
};

struct ParamSpec {
  std::string_view name;
  ParamType type;
  std::string_view default_value;  // empty: no default (absent unless required)
  std::string_view doc;
  std::vector<std::string_view> choices = {};  // for ParamType::choice
  bool positional = false;  // may be given without `name=`, in declaration order of positional params
  bool required = false;
};

enum class StageKind { timeline_source, event_source, transform, merger, pacer, sink };

struct StageSpec {
  std::string_view name;
  StageKind kind;
  std::string_view doc;  // one paragraph
  std::vector<ParamSpec> params;
};

std::string_view to_string(StageKind kind);
std::string_view to_string(ParamType type);

class Stage;

// 1-based line and column of the first character, length in characters (at least 1). Line 0: a
// diagnostic about no place in the text (the text as a whole, a command-line option).
struct Span {
  int line = 0;
  int col = 0;
  int length = 1;
};

struct Diagnostic {
  Span span;
  std::string message;
  std::string note;  // empty, or the valid choices / a "did you mean"
};

// Bounds that keep a hostile or mistaken description cheap whatever its size: a longer text is
// refused at once; no more than max_diagnostics are kept and printed (the others only counted); a
// long source line is printed as an excerpt around the error, long names and values in messages too.
inline constexpr size_t max_description_size = size_t{1} << 20;
inline constexpr size_t max_diagnostics = 50;

// A parse or validation failure: every diagnostic of the description, formatted like a compiler's.
// Beyond max_diagnostics (including `more` found but not kept), the rest are counted on a last line.
class DescriptionError : public std::exception {
 public:
  DescriptionError(std::string where, std::string text, std::vector<Diagnostic> diagnostics, size_t more = 0);
  const char* what() const noexcept override { return formatted_.c_str(); }
  const std::vector<Diagnostic>& diagnostics() const { return diagnostics_; }

 private:
  std::vector<Diagnostic> diagnostics_;
  std::string formatted_;
};

// `<where>:line:col: error: message`, the source line, a caret span `^~~~`, then `note: ...`.
std::string format_diagnostics(std::string_view where, std::string_view text,
                               const std::vector<Diagnostic>& diagnostics);

// ---- syntax tree -------------------------------------------------------------------------------

// A `$NAME` in a value.
struct Reference {
  std::string name;
  Span span;      // `$NAME` or `${NAME}` in the text
  size_t at = 0;  // where its value goes in Arg::value as written without the references
};

struct Arg {
  std::string key;  // empty for a positional argument
  std::string value;  // unquoted text (quotes removed, escapes resolved, `$NAME`s substituted)
  Span key_span;
  Span value_span;
  std::vector<Reference> references;  // in order
};

// `define(NAME value)`: one per name.
struct Definition {
  std::string name;
  std::string value;
  Span name_span;
  Span value_span;
};

struct StageCall {
  std::string name;
  Span name_span;
  std::vector<Arg> args;
};

struct Element {
  std::string label;  // empty when unlabelled
  Span label_span;
  bool is_reference = false;  // a bare label: `call` is unused
  StageCall call;
};

struct Chain {
  std::vector<Element> elements;  // connected left to right by `->`
};

struct Syntax {
  std::vector<Chain> chains;
  std::vector<Definition> definitions;  // in order of appearance
};

// Values for `$NAME`s given outside the text (`veipipe run -D NAME=value`, Python's `defines=`):
// each overrides the text's `define(NAME ...)`, or stands for one the text lacks. A name the text
// never uses as `$NAME` is an error: a misspelt `-D` would otherwise go unnoticed and the run use
// the default the user meant to replace.
using Defines = std::map<std::string, std::string, std::less<>>;

// Throws DescriptionError with every syntax error found, an undefined `$NAME` or unused override
// among them.
Syntax parse_syntax(std::string_view where, std::string_view text, const Defines& defines = {});

// ---- resolved pipeline ------------------------------------------------------------------------

// A parameter value, checked and converted according to its ParamSpec.
struct Value {
  ParamType type = ParamType::string;
  std::string text;      // as written (path, string, choice: the value itself)
  int64_t integer = 0;   // duration: nanoseconds; size: bytes; integer: the number
  double real = 0;       // rate: packets/s; bitrate: bits/s; multiplier: factor
  bool boolean = false;
  bool explicit_sign = false;  // duration written with a leading + or -
  bool given = false;          // false: filled from the spec's default
  Span span;
};

struct Node {
  int id = 0;  // index in Pipeline::nodes
  const Stage* stage = nullptr;
  std::string label;  // empty when unlabelled
  Span span;          // the stage name in the description
  std::map<std::string, Value, std::less<>> params;  // every declared param that is given or has a default
  std::vector<int> inputs;   // node ids feeding this node, in declaration order
  std::vector<int> outputs;  // node ids this node feeds

  const Value* find(std::string_view name) const;
};

struct Pipeline {
  std::string where;
  std::string text;
  std::vector<Node> nodes;  // in order of first appearance in the description
};

// Parses and validates against the registry (pipeline/stage.h), each stage checking its own values: unknown stages (did you mean), unknown params
// (valid choices), bad values and units, missing required params, duplicate or undefined labels,
// wrong port use (a source with an input, a sink with an output, a non-merger with two inputs).
// Throws DescriptionError listing every problem found.
Pipeline parse_pipeline(std::string_view where, std::string_view text, const Defines& defines = {});

// Converts one value by type; on failure returns false and sets `error` (e.g. "unknown unit 'sx'").
bool parse_value(const ParamSpec& spec, std::string_view text, Value& out, std::string& error);

// Levenshtein-based suggestion among `candidates`, or empty when nothing is close.
std::string_view closest_match(std::string_view word, const std::vector<std::string_view>& candidates);
// The note for a misspelt name: "did you mean 'x'?" when one is close, else "valid <what>: a, b, ...".
std::string suggestion_or_list(std::string_view word, std::string_view what, const std::vector<std::string_view>& names);

}  // namespace vei
