// `tls(sni=NAME, version=1.2|1.3)`: an HTTPS session over TCP as a capture between the parties
// sees it: the handshake (ClientHello with the name asked for, the server's flight with a real
// certificate), the request and the response as application data, close_notify, the TCP close.
// What is encrypted is random bytes of the right sizes: nothing decrypts, everything dissects.
#pragma once

#include "pipeline/conversation_stage.h"

namespace vei {

class TlsStage final : public ConversationStage {
 public:
  TlsStage();
  void check_own(const Node& node) const override;
  Generate generator(const Node& node) const override;
};

}  // namespace vei
