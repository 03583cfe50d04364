// `http(method=, path=, status=, ...)`: an HTTP/1.1 request and its response over one TCP
// connection per repetition. The client speaks first, the server answers after a short think
// time with headers and body as one message, then the client closes (keep-alive semantics: the
// response's Content-Length ends the message, not the connection).
#pragma once

#include "pipeline/conversation_stage.h"

namespace vei {

class HttpStage final : public ConversationStage {
 public:
  HttpStage();
  void check_own(const Node& node) const override;
  Generate generator(const Node& node) const override;
};

}  // namespace vei
