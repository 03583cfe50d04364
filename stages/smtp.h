// `smtp(from=, to=, subject=, body=)`: one mail handed from a client to a server over SMTP (RFC
// 5321), as a mail relay sees it on port 25: banner, EHLO, MAIL, one RCPT per recipient, DATA and
// the message (RFC 5322 headers, the body dot-stuffed), QUIT.
#pragma once

#include "pipeline/conversation_stage.h"

namespace vei {

class SmtpStage final : public ConversationStage {
 public:
  SmtpStage();
  Generate generator(const Node& node) const override;
  void check_own(const Node& node) const override;
};

}  // namespace vei
