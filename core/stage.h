// The one declaration of a stage that the parser, `veipipe stages` and error messages all read.
#pragma once

#include <cstdint>
#include <span>
#include <string_view>
#include <vector>

namespace vei {

// How a parameter's text is read. Units are part of the value: `90s`, `2ms`, `50pps`, `900mbps`, `4x`, `1MiB`.
enum class ParamType {
  path,        // a file name; `-` means stdin/stdout where the stage says so
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

// All built-in stages, in the order `veipipe stages` lists them.
std::span<const StageSpec> builtin_stages();
const StageSpec* find_stage(std::string_view name);

}  // namespace vei
