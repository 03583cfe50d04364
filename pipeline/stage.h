// What a stage is, and the registry of stages: the one place the parser, `veipipe check`, `graph`,
// `stages`, the plan, the engine, control lines and the fuzz harness learn which stages exist.
//
// A stage is one file pair in stages/ holding its declaration (a StageSpec: name, kind, parameters
// with types, defaults and documentation), its typed options, its builder and its registration
// (VEI_STAGE at the end of its .cpp, and one line in stages/list.h). In the spirit of Click's
// elements, a stage class holds no run state: the builder makes the object that runs (a
// TimelineSource, a Transform, a Sink...) from a resolved description node.
//
// Threads: the built-in stages are listed on the registry's first use (a function-local static,
// so any thread may be first); register_stage() adds one before any pipeline using it is parsed,
// from one thread. After that the registry is read-only and may be read from any thread. Stage
// objects are immutable and shared.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <span>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

#include "core/pacer.h"
#include "core/pcap_format.h"
#include "core/stats.h"
#include "core/timeline_source.h"
#include "pipeline/description.h"

namespace vei {

class TimelineSource;
class Transform;
class Sink;
class Report;
struct SourceOptions;
struct SourceInfo;
struct Batch;


// A parameter value that its stage refuses (out of range, malformed, contradicting another): reported
// like a description error, with a caret under the value.
class ParamError : public std::runtime_error {
 public:
  ParamError(const Value& at, const std::string& message, std::string hint = {})
      : ParamError(at.span, message, std::move(hint)) {}
  ParamError(Span at, const std::string& message, std::string hint = {})
      : std::runtime_error(message), span(at), note(std::move(hint)) {}
  Span span;
  std::string note;
};

class Stage {
 public:
  explicit Stage(StageSpec spec) : spec_(std::move(spec)) {}
  virtual ~Stage() = default;
  const StageSpec& spec() const { return spec_; }
  std::string_view name() const { return spec_.name; }
  StageKind kind() const { return spec_.kind; }

  // Checks what the types alone cannot (ranges, forms, combinations of parameters) without
  // touching any file or interface; throws ParamError. The parser calls it for every node, so
  // `veipipe check`, `graph` and control lines report a bad value before anything runs.
  virtual void check(const Node&) const {}

  // Checks what this machine decides, still without writing or creating anything: the directory
  // an output goes in, an interface (issue 11, item 16). Throws std::runtime_error with the
  // message the run would give (or ParamError, for a caret). Called by the engine's configuration,
  // so `veipipe check` and a run's start-up both refuse the same things, before any output opens.
  virtual void verify(const Node&) const {}

 private:
  StageSpec spec_;
};

// Runs `f` (a stage's check or builder) for `node`: a ParamError, or an OptionError naming one of
// its parameters, becomes a diagnostic under that value. The one path by which a bad parameter is
// reported, whichever code finds it. Returns false when it added a diagnostic.
bool at_values(const Node& node, std::vector<Diagnostic>& errors, const std::function<void()>& f);

// Refuses a number outside min..max (what the field it goes into holds), naming the range, so
// that a value too large never reads as too small (issue 11, item 19: `snaplen(10GiB)` was told
// "must be at least 1 byte"). `what` names the value ("snaplen"), `unit` follows the range.
void check_range(const Value& v, std::string_view what, int64_t min, int64_t max, std::string_view unit = "");

// Placement on the output timeline, shared by every timeline source: `at`, `shift`, `rebase`.
struct Placement {
  std::optional<int64_t> at;  // ns after the background's first packet
  int64_t shift = 0;          // ns
  bool rebase_first = false;  // move the first packet to the background's start (+at)
  const Value* where = nullptr;  // the value an overflow is reported at
};
// The three parameters, declared once; `rebase_default` empty means `first` exactly when `at` is given.
std::vector<ParamSpec> placement_params(std::string_view first_doc, std::string_view rebase_default);
Placement placement(const Node& node);
// `at=` places the first packet relative to the background's; `rebase=none` keeps the original
// times: together one of them would be ignored, so they are refused (ParamError under rebase).
// The parser calls it for every node; a node without those parameters passes.
void check_placement(const Node& node);

// What a timeline source may need to know about the pipeline it joins.
struct SourceContext {
  // The background's link type (the output's, so a generator frames its packets for it); none
  // when building the background itself.
  std::optional<uint32_t> background_linktype;
  std::string background_path;  // the file the background reads; empty if none
};

class SourceStage : public Stage {
 public:
  using Stage::Stage;
  // Opens the source (reading a file's header, say); throws std::runtime_error naming what failed.
  virtual std::unique_ptr<TimelineSource> open(const Node& node, SourceOptions options,
                                               const SourceContext& context) const = 0;
};

struct TransformContext {
  uint32_t linktype = 1;
  uint32_t snaplen = pcap::max_snaplen;
  bool swapped = false;       // the packets are in a file of the other byte order (see BpfFilter)
  bool mixed_orders = false;  // after a merge of files of both byte orders, some are
};

class TransformStage : public Stage {
 public:
  using Stage::Stage;
  // Throws ParamError for a value that cannot work with this link type (a filter that does not compile).
  virtual std::unique_ptr<Transform> make(const Node& node, const TransformContext& context) const = 0;
};

// An injected line (a control line, Engine::inject(stage)) is read whole before it is handed
// over: this bounds the captured bytes one line may bring.
inline constexpr size_t max_injection_bytes = size_t{64} << 20;

// What an event source reaches of the engine. Every method may be called from any thread.
class EventInjector {
 public:
  virtual ~EventInjector() = default;
  // Injects a line such as `icmp(dst=10.0.0.9) -> snaplen(64)` as events of `rank`; the reply
  // `ok <packets>` or `error: <message>`.
  virtual std::string inject_line(std::string_view line, uint16_t rank) = 0;
  // Hands over a batch of captured frames (timestamps CLOCK_REALTIME ns), from b->pool.
  virtual void deliver_captured(Batch* b) = 0;
  // Ends the run with an error (what is merged is still written).
  virtual void fail(std::string message) = 0;
};

// A running event source: created at start(), stopped by the engine's wait().
class EventSource {
 public:
  virtual ~EventSource() = default;
  virtual void start(EventInjector& engine) = 0;
  virtual void stop() = 0;
  virtual void add_stats(Stats&) const {}
};

struct EventContext {
  uint16_t rank = 0;
  uint32_t linktype = 1;  // the output's
  uint32_t snaplen = pcap::max_snaplen;
  std::string name;  // as name() gave it
};

class EventStage : public Stage {
 public:
  using Stage::Stage;
  // How labels and statistics name this source's packets.
  virtual std::string source_name(const Node& node) const = 0;
  // Opens the interface, socket...; throws std::runtime_error naming it.
  virtual std::unique_ptr<EventSource> open(const Node& node, const EventContext& context) const = 0;
  // The source as the only input of a run, its packets on a timeline of their own (a live capture
  // written with the times it was captured, as tcpdump -w does); nullptr when it has no packets of
  // its own (a control socket).
  virtual std::unique_ptr<TimelineSource> open_alone(const Node& node, SourceOptions options) const;
};

struct MergeOptions {
  bool end_all = false;    // end=all: run until every input ends; else with the background
  bool concat = false;     // concat=true: every input whole, one after another (mergecap -a)
  int64_t lateness_ns = 0;  // how long the paced output is held back for events
};

class MergerStage : public Stage {
 public:
  using Stage::Stage;
  virtual MergeOptions options(const Node& node) const = 0;
};

struct PaceOptions {
  PaceMode mode{PaceMode::multiplier, 0};  // a value of 0: top speed, nothing waits
  uint64_t loop = 1;                        // passes over the timeline sources; 0: until stopped
  int priority = 0;                         // SCHED_FIFO priority of the output thread; 0: normal
};

class PacerStage : public Stage {
 public:
  using Stage::Stage;
  virtual PaceOptions options(const Node& node) const = 0;
};

struct SinkContext {
  uint32_t linktype = 1;  // the background's: what a sink of one link type writes
  pcap::Precision precision = pcap::Precision::us;
  uint32_t snaplen = pcap::max_snaplen;  // the largest caplen written
  // By source rank, for ground truth: the name, origin (a file, or "event") and stage (`pcap`,
  // `stream`, `control`, `api`...) of every source.
  std::vector<std::string> names, origins, stages;
  // By source rank, every interface a record's `iface` may name: a timeline source's own
  // (SourceInfo::interfaces, or one from its linktype and snaplen), one of the background's link
  // type for each event source.
  std::vector<std::vector<Interface>> interfaces;
  // By timeline source rank: every interface the source has met, those it describes after its
  // first packet included, which `interfaces` cannot list (read on the output thread; see
  // InterfaceList).
  std::vector<std::shared_ptr<const InterfaceList>> late_interfaces;
  Report* report = nullptr;  // the run's: for packets the sink could not take
};

class SinkStage : public Stage {
 public:
  using Stage::Stage;
  // The output's timestamp precision, given the background's.
  virtual pcap::Precision precision(const Node&, const SourceInfo&) const { return pcap::Precision::us; }
  // A snapshot length the sink declares in place of the inputs' largest.
  virtual std::optional<uint32_t> snaplen(const Node&) const { return std::nullopt; }
  // Whether the output takes sources of different link types (each record's own, from
  // SinkContext::interfaces) rather than writing everything as the background's.
  virtual bool mixed_linktypes(const Node&) const { return false; }
  // Opens the output (creating or truncating a file): called by start(), never by `check`.
  virtual std::unique_ptr<Sink> open(const Node& node, const SinkContext& context) const = 0;
};

// The registry. Built-in stages come from stages/list.h in the order `veipipe stages` lists them.
std::span<const Stage* const> stages();
const Stage* find_stage(std::string_view name);
std::vector<std::string_view> stage_names();
// Adds a stage (a test's own, say) before any pipeline that uses it is parsed; not thread-safe.
void register_stage(const Stage& stage);

// The parameter's value as resolved, or an empty value when absent.
const Value& param(const Node& node, std::string_view name);
// Every file a node reads or writes (its `input`/`output` parameters that are given).
std::vector<const Value*> paths(const Node& node, ParamType type);

}  // namespace vei

// Defines the function the registry (pipeline/stage.cpp, from stages/list.h) calls to reach a
// built-in stage: `VEI_STAGE(pcap, PcapStage)` at the end of stages/pcap.cpp.
#define VEI_STAGE(name, Class)                        \
  namespace vei::builtin {                            \
  const ::vei::Stage& name() {                        \
    static const Class stage;                         \
    return stage;                                     \
  }                                                   \
  }
