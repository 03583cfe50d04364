#include "stages/stream.h"

#include <memory>

namespace vei {

namespace {

tcp::Close close_of(std::string_view text) {
  return text == "server" ? tcp::Close::server_fin : text == "rst" ? tcp::Close::client_rst : tcp::Close::client_fin;
}

}  // namespace

StreamStage::StreamStage()
    : ConversationStage(
          "stream",
          "A TCP connection carrying the bytes of two files: handshake, the request from the client, the response "
          "from the server (each in MSS-sized segments, acknowledged as the parties' TCP stacks do), then the "
          "teardown. Reassembled, each direction is its file byte for byte.",
          {
              {"request", ParamType::input, "", "the bytes the client sends (a file)", {}, true, true},
              {"response", ParamType::input, "", "the bytes the server answers with (a file; none: it only acknowledges)"},
              {"think", ParamType::duration, "1ms", "the server's time between the request and its response"},
              {"close", ParamType::choice, "client", "who ends the connection: `client` or `server` (FIN), `rst` (the client resets)",
               {"client", "server", "rst"}},
          },
          {"9"}) {}

ConversationStage::Generate StreamStage::generator(const Node& node) const {
  auto request = std::make_shared<const std::vector<std::byte>>(read_param_file(node, "request"));
  auto response = std::make_shared<const std::vector<std::byte>>(
      param(node, "response").given ? read_param_file(node, "response") : std::vector<std::byte>{});
  const int64_t think = param(node, "think").integer;
  const tcp::Close close = close_of(param(node, "close").text);
  return [request, response, think, close](Conversation& c, const Flow& f) {
    std::vector<tcp::Message> messages;
    if (!request->empty()) messages.push_back({true, *request, 0});
    if (!response->empty()) messages.push_back({false, *response, think});
    tcp::Options o = f.tcp_options();
    o.close = close;
    tcp::build(c, f.linktype, f.client_party(), f.server_party(), messages, o);
  };
}

}  // namespace vei

VEI_STAGE(stream, vei::StreamStage)
