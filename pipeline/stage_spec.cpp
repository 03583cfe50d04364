#include "pipeline/stage_spec.h"

#include <array>

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
    case ParamType::path: return "path";
    case ParamType::string: return "string";
    case ParamType::choice: return "choice";
    case ParamType::duration: return "duration";
    case ParamType::integer: return "integer";
    case ParamType::size: return "size";
    case ParamType::rate: return "rate";
    case ParamType::bitrate: return "bitrate";
    case ParamType::multiplier: return "multiplier";
    case ParamType::boolean: return "boolean";
  }
  return "?";
}

// One explicit list: adding a stage means adding its declaration here and its builder in
// pipeline/graph.cpp, nothing else.
std::span<const StageSpec> builtin_stages() {
  static const std::array stages{
      StageSpec{
          "pcap", StageKind::timeline_source,
          "Reads a capture file: classic pcap (little or big endian, micro- or nanosecond) through a "
          "fast in-place reader, pcapng through libpcap; `-` reads standard input. Its packets are "
          "mapped onto the output timeline: `at=` places its first packet relative to the first "
          "source's first packet, `shift=` adds a constant, `rebase=none` keeps original times.",
          {
              {"file", ParamType::path, "", "capture to read (`-` for standard input)", {}, true, true},
              {"at", ParamType::duration, "",
               "place the first packet this long after the first source's first packet (implies rebase=first)"},
              {"shift", ParamType::duration, "0s", "add this to every timestamp (after rebasing)"},
              {"rebase", ParamType::choice, "",
               "`first`: move the first packet to the first source's start (+at); `none`: keep original times. "
               "Default: first when `at` is given, else none",
               {"first", "none"}},
              {"filter", ParamType::string, "", "BPF expression (tcpdump syntax); packets not matching are dropped"},
              {"disorder", ParamType::choice, "clamp",
               "what to do with a packet older than the one before it in this file: `clamp` it to the "
               "previous timestamp (output time never decreases), or `keep` it as it is",
               {"clamp", "keep"}},
          }},
      StageSpec{
          "merge", StageKind::merger,
          "Merges its inputs into one stream by timestamp. Exact for timeline sources: equal timestamps "
          "are ordered by input declaration order, then record order, so the same inputs always give "
          "the same bytes.",
          {
              {"end", ParamType::choice, "first",
               "stop with the first input (`first`, the background: what other inputs hold past its last "
               "packet's time is not written) or when all inputs end (`all`)",
               {"first", "all"}},
          }},
      StageSpec{
          "file", StageKind::sink,
          "Writes a classic pcap file (`-` for standard output), one write() per batch. The link type "
          "is the first source's; the file is a valid pcap on every exit path.",
          {
              {"file", ParamType::path, "", "output file (`-` for standard output)", {}, true, true},
              {"precision", ParamType::choice, "auto",
               "timestamp precision: `us`, `ns`, or `auto` (ns when the first source is ns pcap or pcapng, else us)",
               {"auto", "us", "ns"}},
              {"snaplen", ParamType::size, "", "snapshot length written in the header (default: 262144, libpcap's maximum, or a larger one an input declares)"},
              {"labels", ParamType::path, "",
               "ground truth: a line for every packet not from the first source (output index, timestamp, source, "
               "origin file or `event`, record index or event id); CSV, or JSON lines when the name ends in .jsonl"},
          }},
  };
  return stages;
}

const StageSpec* find_stage(std::string_view name) {
  for (const auto& s : builtin_stages())
    if (s.name == name) return &s;
  return nullptr;
}

}  // namespace vei
