// The shape of a resolved description: which stage is the background, which feed the merger,
// where the output goes. Checked without touching any file, so `veipipe graph` and `check` use it.
#pragma once

#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "core/paths.h"
#include "core/timeline_source.h"
#include "core/transform.h"
#include "pipeline/description.h"
#include "pipeline/stage.h"

namespace vei {

struct Plan {
  const Pipeline* pipeline = nullptr;
  std::vector<int> sources;  // timeline sources' node ids by rank: sources[0] is the background
  std::vector<int> events;   // event sources' node ids, in declaration order
  std::optional<int> merger;
  std::optional<int> pacer;  // between the merger (or the source) and the sink
  int sink = -1;
  // Transforms' node ids, nearest the source first: between sources[rank] and the merge, between
  // events[i] and the merge, and after the merge (these apply to every packet).
  std::vector<std::vector<int>> source_transforms;
  std::vector<std::vector<int>> event_transforms;
  std::vector<int> output_transforms;
};

// Throws DescriptionError for a graph the engine cannot run: no sink or several, a stage that
// reaches no sink, a source that feeds nothing.
Plan make_plan(const Pipeline& pipeline);

// A path the command reads or writes besides the description's own: `--stats-json FILE` (written
// after the run), the description itself read from `-`. `what` names it in messages, in place of
// the path.
struct CommandPath {
  PathUse use;
  std::string what;
};

// Paths of the run that would destroy or starve one another (core/paths.h), as diagnostics under
// the later use: every `input`/`output` value of the description, with `extra` (the command's own:
// reads before the description's, as the command reads them first; writes after). A clash at an
// extra use has no position (line 0). Both `check` and a run's start-up find them before anything
// is opened.
std::vector<Diagnostic> path_clashes(const Pipeline& pipeline, const std::vector<CommandPath>& extra = {});

// A line to inject (a control line, Engine::inject(stage)): one timeline source, optionally
// followed by transforms in a chain.
bool is_source_chain(const Pipeline& line);
// Opens that source; throws DescriptionError for a bad parameter, std::runtime_error for a file
// that cannot be read.
std::unique_ptr<TimelineSource> open_line_source(const Pipeline& line, SourceOptions options, const SourceContext& context);
// The transforms after that source, built in order; throws DescriptionError for a bad parameter.
std::vector<std::unique_ptr<Transform>> make_line_transforms(const Pipeline& line, const TransformContext& context);

// Reads `source` to its end, calling f(batch, record) for every record, after `chain`.
template <class F>
void for_each_record(TimelineSource& source, F&& f, std::span<const std::unique_ptr<Transform>> chain = {}) {
  Batch batch;
  batch.reserve_arena(default_arena_size);
  do {
    source.fill(batch);
    for (const auto& transform : chain) transform->apply(batch);
    for (const auto& r : batch.records) f(batch, r);
  } while (!batch.last);
}

// The resolved graph as text (one stage per line with every parameter) or as Graphviz DOT.
std::string describe_plan(const Plan& plan, bool dot);

}  // namespace vei
