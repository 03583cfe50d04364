// `traceroute(dst=, hops=)`: a traceroute to the server, as the tracing host captures it: probes of
// growing TTL, a Time Exceeded from each router on the way, the destination's answer at the end.
#pragma once

#include "pipeline/conversation_stage.h"

namespace vei {

class TracerouteStage final : public ConversationStage {
 public:
  TracerouteStage();
  Generate generator(const Node& node) const override;
  void check_own(const Node& node) const override;
};

}  // namespace vei
