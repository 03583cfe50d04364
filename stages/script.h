// `script(FILE)`: the original libvei's planned "scripting injection" (iscripts). A file of
// timed vei.h events, each played as its conversation (pipeline/vei_events.h) on the script's
// own timeline, between client hosts standing for the script's actors and a server, all taken
// from the background when it shows hosts (core/background_hosts.h).
//
//   # comment
//   ACTOR attacker     # the actions after it come from this actor's client host
//   VEI_PING;
//   sleep 10;          # seconds, decimals allowed: advances the script's time
//   VEI_HTTP_HEAD; VEI_NMAP;
//   ACTOR victim
//   VEI_SSH_SESSION;
//
// Errors in the file are description errors at their place in it (file:line:col, a caret).
#pragma once

#include <string>
#include <vector>

#include "pipeline/stage.h"

namespace vei {

struct VeiEvent;

struct ScriptAction {
  const VeiEvent* event = nullptr;
  Span span;  // its name in the file
  size_t actor = 0;
  int64_t at_ns = 0;
};

struct Script {
  std::string path, text;
  std::vector<std::string> actors;  // by first appearance; "" is the actor of actions before any ACTOR
  std::vector<ScriptAction> actions;  // in time order
};

// Parses a script's text; every problem becomes a diagnostic in `errors` (one per line at most)
// at its place in `text`. A parser of untrusted text: fuzz/harness.h feeds it.
Script parse_script(std::string path, std::string text, std::vector<Diagnostic>& errors);

class ScriptStage final : public SourceStage {
 public:
  ScriptStage();
  // Reads and parses the file, and checks that this build has every action's stage.
  void verify(const Node& node) const override;
  std::unique_ptr<TimelineSource> open(const Node& node, SourceOptions options, const SourceContext& context) const override;
};

}  // namespace vei
