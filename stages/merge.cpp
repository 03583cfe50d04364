#include "stages/merge.h"

namespace vei {

MergeStage::MergeStage()
    : MergerStage({"merge", StageKind::merger,
                   "Merges its inputs into one stream by timestamp. Exact for timeline sources: equal timestamps "
                   "are ordered by input declaration order, then record order, so the same inputs always give "
                   "the same bytes.",
                   {
                       {"end", ParamType::choice, "first",
                        "stop with the first input (`first`, the background: what other inputs hold past its last "
                        "packet's time is not written) or when all inputs end (`all`)",
                        {"first", "all"}},
                       {"concat", ParamType::boolean, "false",
                        "`true`: append the inputs one after another in the order they are declared, each record "
                        "with its own time (mergecap -a): records of the second follow the last of the first, "
                        "whatever their times; every input is written whole"},
                       {"lateness", ParamType::duration, "5ms",
                        "how long event packets (live, api, control) may take to reach the merge while pacing: the output "
                        "is held back this long so that an event is written in timestamp order; one later still is "
                        "written at once and counted late. Without an event source in the description, nothing "
                        "waits"},
                   }}) {}

void MergeStage::check(const Node& node) const {
  if (const Value& lateness = param(node, "lateness"); lateness.integer < 0)
    throw ParamError(lateness, "lateness must not be negative", "it is how long the output waits for events");
  if (const Value& end = param(node, "end"); end.given && param(node, "concat").boolean)
    throw ParamError(end, "end= does not apply to concat=true", "concat writes every input whole, one after another");
}

MergeOptions MergeStage::options(const Node& node) const {
  return {param(node, "end").text == "all", param(node, "concat").boolean, param(node, "lateness").integer};
}

}  // namespace vei

VEI_STAGE(merge, vei::MergeStage)
