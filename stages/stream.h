// `stream(request=FILE, response=FILE)`: any TCP exchange from two files of bytes. The client
// sends the request; the server answers with the response; the client then closes.
#pragma once

#include "pipeline/conversation_stage.h"

namespace vei {

class StreamStage final : public ConversationStage {
 public:
  StreamStage();
  Generate generator(const Node& node) const override;
};

}  // namespace vei
