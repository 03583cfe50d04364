// `sip(from=, to=, duration=)`: one SIP call over UDP as RFC 3261 sets it up and tears it down,
// with an SDP offer and answer (RFC 3264) for the audio the call would carry.
#pragma once

#include "pipeline/conversation_stage.h"

namespace vei {

class SipStage final : public ConversationStage {
 public:
  SipStage();
  Generate generator(const Node& node) const override;
  void check_own(const Node& node) const override;
};

}  // namespace vei
