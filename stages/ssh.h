// `ssh(user=, keystrokes=, version=)`: an interactive SSH session as a capture between the parties
// sees it: version banners, the key exchange in the clear (KEXINIT both ways, curve25519 ECDH,
// NEWKEYS), then packets whose bytes are random (they would be encrypted) and whose sizes are those
// of OpenSSH's authentication, shell start-up, echoed keystrokes and logout.
#pragma once

#include "pipeline/conversation_stage.h"

namespace vei {

class SshStage final : public ConversationStage {
 public:
  SshStage();
  Generate generator(const Node& node) const override;
  void check_own(const Node& node) const override;
};

}  // namespace vei
