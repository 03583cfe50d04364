// `synscan(dst=, ports=, open=)`: an nmap-style SYN ("half-open") scan of the server's ports, with
// the answers of an open port (SYN-ACK, reset by the scanner's kernel) and of a closed one (RST-ACK).
#pragma once

#include "pipeline/conversation_stage.h"

namespace vei {

class SynscanStage final : public ConversationStage {
 public:
  SynscanStage();
  Generate generator(const Node& node) const override;
  void check_own(const Node& node) const override;
};

}  // namespace vei
