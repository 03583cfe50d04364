#include "stages/pace.h"

namespace vei {

PaceStage::PaceStage()
    : PacerStage({"pace", StageKind::pacer,
                  "Releases packets at their time on the output timeline: `realtime` keeps the capture's own "
                  "timing, `4x` or `0.5x` scales it, `pps=` or `mbps=` sets a constant rate instead, `topspeed` does "
                  "not wait. Deadlines are absolute (start + elapsed timeline / speed), so errors never add up; the "
                  "run reports how late packets left (p50/p99/max). Runs on the output thread: sleep, then spin.",
                  {
                      {"speed", ParamType::speed, "realtime", "`realtime`, `topspeed`, or a factor `0.01x`..`1000x`", {}, true},
                      {"pps", ParamType::rate, "", "a constant packet rate instead of the capture's timing, e.g. `10kpps`"},
                      {"mbps", ParamType::bitrate, "",
                       "a constant bit rate (wire bytes) instead of the capture's timing, e.g. `100mbps`"},
                      {"loop", ParamType::integer, "1",
                       "play the timeline sources this many times, `0` until stopped (tcpreplay's --loop=0: with "
                       "`topspeed` into a file, the file grows until SIGINT/SIGTERM or a full disk ends the run, the "
                       "file whole); the timeline continues (each pass starts one average packet gap after the previous "
                       "pass's last packet of the first source; a source that lasts longer overlaps its next pass, whose "
                       "records before the previous pass's last are clamped to its time, as disorder=clamp does)"},
                      {"priority", ParamType::integer, "0",
                       "`1`..`99`: the output thread runs SCHED_FIFO at this priority, with the process's memory "
                       "locked and the thread pinned to the last CPU (as root; a step that is not permitted is named "
                       "in the run's warnings and skipped); `0` keeps normal scheduling"},
                  }}) {}

// One way of timing at a time: a rate replaces the capture's timing, so it excludes a speed.
void PaceStage::check(const Node& node) const {
  const Value& speed = param(node, "speed");
  const Value& pps = param(node, "pps");
  const Value& mbps = param(node, "mbps");
  if (pps.given && mbps.given) throw ParamError(mbps, "give either `pps` or `mbps`, not both");
  if ((pps.given || mbps.given) && speed.given)
    throw ParamError(speed, "a speed cannot be combined with `pps` or `mbps`", "a rate replaces the capture's own timing");
  if (const Value& loop = param(node, "loop"); loop.integer < 0)
    throw ParamError(loop, "loop must be 0 (until stopped) or a number of passes");
  if (const Value& priority = param(node, "priority"); priority.integer < 0 || priority.integer > 99)
    throw ParamError(priority, "priority must be 1..99 (SCHED_FIFO), or 0 for normal scheduling");
}

PaceOptions PaceStage::options(const Node& node) const {
  PaceMode mode{PaceMode::multiplier, param(node, "speed").real};
  const Value& pps = param(node, "pps");
  const Value& mbps = param(node, "mbps");
  if (pps.given) mode = {PaceMode::pps, pps.real};
  else if (mbps.given) mode = {PaceMode::mbps, mbps.real / 1e6};
  else if (mode.value == 1) mode.kind = PaceMode::realtime;
  return {mode, static_cast<uint64_t>(param(node, "loop").integer), static_cast<int>(param(node, "priority").integer)};
}

}  // namespace vei

VEI_STAGE(pace, vei::PaceStage)
