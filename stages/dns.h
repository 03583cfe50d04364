// `dns(name=, type=, answer=, rcode=)`: one DNS lookup over UDP, as a stub resolver asks it and a
// recursive resolver answers: the query, then the response one round trip later.
#pragma once

#include "pipeline/conversation_stage.h"

namespace vei {

class DnsStage final : public ConversationStage {
 public:
  DnsStage();
  Generate generator(const Node& node) const override;
  void check_own(const Node& node) const override;
};

}  // namespace vei
