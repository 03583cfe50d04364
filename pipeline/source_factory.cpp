#include "pipeline/source_factory.h"

#include <fmt/format.h>

#include <stdexcept>

namespace vei {

const Value& param(const Node& node, std::string_view name) {
  static const Value absent;
  const Value* v = node.find(name);
  return v ? *v : absent;
}

std::unique_ptr<TimelineSource> make_timeline_source(const Node& node, SourceOptions options,
                                                     const SourceContext& /*context*/) {
  const std::string_view stage = node.spec->name;
  options.filter = param(node, "filter").text;
  options.clamp_disorder = param(node, "disorder").text != "keep";
  if (stage == "pcap") return open_capture(param(node, "file").text, std::move(options));
  throw std::logic_error(fmt::format("no builder for source stage '{}'", stage));
}

}  // namespace vei
