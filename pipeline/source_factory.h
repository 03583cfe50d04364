// Turns a resolved description node into the timeline source it describes. The one place that
// knows every source stage's builder; adding a source stage means a declaration in stage_spec.cpp
// and a branch here.
#pragma once

#include <memory>
#include <optional>
#include <string>

#include "pipeline/description.h"
#include "core/timeline_source.h"

namespace vei {

// What a source may need to know about the pipeline it joins.
struct SourceContext {
  // The background's link type (the output's, so a generator frames its packets for it); none
  // when building the background itself.
  std::optional<uint32_t> background_linktype;
  std::string background_path;  // empty unless the background is a capture file
};

// Opens the source (reading a file's header, say); throws std::runtime_error naming what failed.
std::unique_ptr<TimelineSource> make_timeline_source(const Node& node, SourceOptions options,
                                                     const SourceContext& context);

// The parameter's value as declared, or an empty value when absent.
const Value& param(const Node& node, std::string_view name);

}  // namespace vei
