// The `icmp` generator: ICMP echo requests (and optionally their replies) on a timeline of its own
// that starts at 0, so that the engine places it like a capture (`at=`, `shift=`, `rebase=`). Each
// request and its reply are one conversation of a GeneratorSource (core/generator_source.h), which
// puts a reply due no later than the next request before it.
#pragma once

#include "pipeline/stage.h"

namespace vei {

class IcmpStage final : public SourceStage {
 public:
  IcmpStage();
  void check(const Node& node) const override;
  std::unique_ptr<TimelineSource> open(const Node& node, SourceOptions options,
                                       const SourceContext& context) const override;
};

}  // namespace vei
