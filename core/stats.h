// What a run reports: the statistics structs the engine fills and the stages add to.
// Plain values, copied out by Engine::stats(); no thread-safety of their own.
#pragma once

#include <cstdint>
#include <optional>
#include <set>
#include <string>
#include <vector>

namespace vei {

// Two sources read from one file (or two unnamed generators) would share a name: the second and
// later ones become `NAME#2`, `NAME#3`..., so that statistics and labels name each source once.
inline void number_repeated_names(std::vector<std::string>& names) {
  std::set<std::string> taken(names.begin(), names.end());
  std::set<std::string> seen;
  for (auto& name : names) {
    if (seen.insert(name).second) continue;
    std::string numbered;
    for (int k = 2; taken.contains(numbered = name + "#" + std::to_string(k)); ++k) {}
    taken.insert(numbered);
    name = std::move(numbered);
  }
}

struct SourceSummary {
  std::string name;
  uint64_t packets = 0;
  uint64_t bytes = 0;
  uint64_t filtered = 0;
  uint64_t disordered = 0;
  uint64_t dropped = 0;
  int64_t offset_ns = 0;  // added to its timestamps
  uint64_t skipped = 0;   // outside pcap's from/until
};

struct LiveSummary {
  std::string name;
  uint64_t packets = 0;
  uint64_t bytes = 0;
  uint64_t kernel_dropped = 0;  // libpcap's ps_drop: the capture buffer was full
  uint64_t if_dropped = 0;
};

// How late packets left the pacer against their deadlines, ns.
struct PaceSummary {
  int64_t p50 = 0, p99 = 0, max = 0;
  uint64_t samples = 0;
};

struct TransformSummary {
  std::string name;      // the stage and where it is written: `snaplen at 1:20`
  uint64_t changed = 0;  // packets edited
  uint64_t dropped = 0;  // packets removed
};

struct NicSummary {
  uint64_t sent = 0, failed = 0, retried = 0;
};

struct Stats {
  std::vector<SourceSummary> sources;
  uint64_t packets = 0;        // written to the sink
  uint64_t bytes = 0;          // written to the sink, file framing included
  uint64_t captured_bytes = 0;  // packet bytes merged
  uint64_t dropped_after_end = 0;
  uint64_t forwarded_batches = 0;
  uint64_t copied_batches = 0;
  uint64_t accepted_events = 0;  // frames inject() accepted
  uint64_t refused_events = 0;   // event packets handed over after the pipeline stopped taking them
  uint64_t events = 0;           // injected frames merged into the output
  uint64_t late_events = 0;      // asked for a time already past: written at "now" instead
  std::vector<LiveSummary> live;
  std::vector<TransformSummary> transforms;
  std::optional<PaceSummary> pace;  // with a pace stage that waits
  std::optional<NicSummary> nic;    // with a nic sink
  double seconds = 0;
  std::vector<std::string> warnings;
  std::string error;  // the runtime failure, if any
};

}  // namespace vei
