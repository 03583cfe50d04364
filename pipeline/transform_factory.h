// Turns a resolved description node into the transform it describes: the one place that knows
// every transform stage's builder.
#pragma once

#include <memory>
#include <vector>

#include "pipeline/description.h"
#include "core/transform.h"

namespace vei {

// Builds the transform for packets of `linktype` (at most `snaplen` bytes captured). A bad
// parameter adds a diagnostic under its value and gives nullptr.
std::unique_ptr<Transform> make_transform(const Node& node, uint32_t linktype, uint32_t snaplen,
                                          std::vector<Diagnostic>& errors);

// The transforms after the source of a line to inject (see is_source_chain), in order; throws
// DescriptionError for a bad parameter.
std::vector<std::unique_ptr<Transform>> make_line_transforms(const Pipeline& line, uint32_t linktype, uint32_t snaplen);

}  // namespace vei
