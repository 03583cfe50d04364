// What every conversation generator (`stream`, `http`, `dns`, `smtp`, `sip`, `ssh`, `tls`,
// `traceroute`, `synscan`) shares: its place on the timeline, how often it repeats, which hosts
// and ports each repetition uses and their Ethernet addresses, the TCP stacks of both parties and
// the round-trip time, and the seed. A stage declares only its own parameters and says how one
// repetition is built (a Generate function); this class declares and checks the rest, once.
//
// Repetition i (from 0) starts at i/rate on the source's timeline. It goes from the i-th address of
// the src × dst pairs (dst varying fastest) and from client port sport.first + i mod |sport|, so
// the 5-tuple tells repetitions apart; its random choices come from mix_seed(seed, i).
//
// Threads: a stage object is immutable; Generate functions are called on the source's filling
// thread and must not share mutable state between calls.
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <string_view>
#include <vector>

#include "core/conversation.h"
#include "core/packet_builder.h"
#include "core/tcp_conversation.h"
#include "pipeline/stage.h"

namespace vei {

// One repetition of a conversation, as its Generate function sees it.
struct Flow {
  uint32_t linktype = 1;
  packets::Host client, server;
  uint16_t client_port = 0, server_port = 0;
  uint64_t index = 0;  // the repetition
  uint64_t seed = 0;   // this repetition's
  const tcp::Stack* client_stack = nullptr;
  const tcp::Stack* server_stack = nullptr;
  int64_t rtt_ns = 0;

  tcp::Party client_party() const { return {client, client_port, client_stack}; }
  tcp::Party server_party() const { return {server, server_port, server_stack}; }
  // rtt and seed set; the rest as tcp::Options defaults.
  tcp::Options tcp_options() const;
};

// An inclusive port range `80` or `1024-2047`.
struct PortRange {
  uint16_t first = 0, last = 0;
  uint32_t size() const { return uint32_t{last} - first + 1u; }
};
// Throws ParamError under `v` for a malformed, out of range or reversed (empty) range.
PortRange parse_port_range(const Value& v);

class ConversationStage : public SourceStage {
 public:
  using Generate = std::function<void(Conversation&, const Flow&)>;

  struct Defaults {
    std::string_view dport;  // the server's port: "80"; empty when the stage has no `dport` (it chooses)
    std::string_view count = "1";
    std::string_view rate = "1pps";
  };

  // `doc`: what the stage generates; the shared parameters' documentation is added here.
  ConversationStage(std::string_view name, std::string_view doc, std::vector<ParamSpec> own, Defaults defaults);

  // Reads the stage's own parameters, and any file they name: throws OptionError naming the
  // parameter (or ParamError at its value). Called by verify (so `veipipe check` reports a missing
  // file with a caret) and when the source opens.
  virtual Generate generator(const Node& node) const = 0;
  // Checks of the stage's own parameters that need no file (called by check()).
  virtual void check_own(const Node&) const {}

  void check(const Node& node) const final;
  void verify(const Node& node) const final;
  std::unique_ptr<TimelineSource> open(const Node& node, SourceOptions options, const SourceContext& context) const final;

 private:
  static std::vector<ParamSpec> with_shared(std::vector<ParamSpec> own, Defaults defaults);
};

// A file a stage sends (a body, a request): read whole, at most `limit` bytes. Throws OptionError
// naming `param` when it is missing, unreadable or larger.
std::vector<std::byte> read_param_file(const Node& node, std::string_view param, size_t limit = size_t{16} << 20);

// Text as bytes, for the messages of text protocols.
inline std::span<const std::byte> as_bytes(std::string_view s) { return {reinterpret_cast<const std::byte*>(s.data()), s.size()}; }

}  // namespace vei
