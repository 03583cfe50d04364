#include "stages/script.h"

#include <fmt/format.h>

#include <algorithm>
#include <charconv>
#include <cmath>
#include <memory>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

#include "core/background_hosts.h"
#include "core/generator_source.h"
#include "core/host_macs.h"
#include "core/option_error.h"
#include "core/timeline_source.h"
#include "pipeline/conversation_stage.h"
#include "pipeline/plan.h"
#include "pipeline/vei_events.h"

namespace vei {

namespace {

// Keeps the script's times far inside int64 nanoseconds however many sleeps add up.
constexpr double max_script_seconds = 1e9;

bool is_space(char c) { return c == ' ' || c == '\t' || c == '\r'; }
bool is_word(char c) { return c != ';' && c != '#' && !is_space(c); }

// One line of a script, read left to right; columns are 1-based.
class LineReader {
 public:
  LineReader(std::string_view line, int number) : line_(line), number_(number) {}
  bool done() {
    while (pos_ < line_.size() && is_space(line_[pos_])) ++pos_;
    return pos_ == line_.size();
  }
  // The next word (empty at `;` or the end), and where it is.
  std::string_view word(Span& span) {
    done();
    const size_t begin = pos_;
    while (pos_ < line_.size() && is_word(line_[pos_])) ++pos_;
    span = at(begin, pos_ - begin);
    return line_.substr(begin, pos_ - begin);
  }
  bool semicolon() {
    if (done() || line_[pos_] != ';') return false;
    ++pos_;
    return true;
  }
  Span here() const { return at(pos_, 1); }

 private:
  Span at(size_t begin, size_t length) const {
    return {number_, static_cast<int>(begin) + 1, static_cast<int>(std::max<size_t>(length, 1))};
  }
  std::string_view line_;
  int number_;
  size_t pos_ = 0;
};

std::vector<std::string_view> action_names() {
  auto names = vei_event_names();
  names.push_back("sleep");
  return names;
}

}  // namespace

Script parse_script(std::string path, std::string text, std::vector<Diagnostic>& errors) {
  Script s{std::move(path), std::move(text), {}, {}};
  std::optional<size_t> actor;
  int64_t now = 0;
  auto actor_index = [&](std::string_view name) {
    const auto it = std::find(s.actors.begin(), s.actors.end(), name);
    if (it != s.actors.end()) return static_cast<size_t>(it - s.actors.begin());
    s.actors.emplace_back(name);
    return s.actors.size() - 1;
  };
  std::string_view rest = s.text;
  for (int number = 1; !rest.empty(); ++number) {
    const size_t end = rest.find('\n');
    std::string_view line = rest.substr(0, end);
    rest = end == std::string_view::npos ? std::string_view{} : rest.substr(end + 1);
    line = line.substr(0, line.find('#'));
    LineReader r(line, number);
    Span span;
    auto fail = [&](Span at, std::string message, std::string note = {}) {
      errors.push_back({at, std::move(message), std::move(note)});
    };
    if (const std::string_view first = r.word(span); first == "ACTOR") {
      const Span keyword = span;
      const std::string_view name = r.word(span);
      if (name.empty()) fail(keyword, "ACTOR needs a name, e.g. ACTOR attacker");
      else if (!r.done()) fail(r.here(), fmt::format("nothing may follow the actor's name '{}' on its line", name));
      else actor = actor_index(name);
      continue;
    }
    LineReader statements(line, number);
    while (!statements.done()) {
      const std::string_view word = statements.word(span);
      const Span name = span;
      if (word.empty()) {
        fail(statements.here(), "expected an action (VEI_PING, ...), `sleep SECONDS` or `ACTOR NAME`");
        break;
      }
      if (word == "sleep") {
        const std::string_view value = statements.word(span);
        double seconds = -1;
        const auto [ptr, ec] = std::from_chars(value.data(), value.data() + value.size(), seconds);
        if (value.empty() || ec != std::errc{} || ptr != value.data() + value.size() || !(seconds >= 0)) {
          fail(value.empty() ? name : span,
               value.empty() ? "sleep needs a number of seconds, e.g. sleep 2.5"
                             : fmt::format("'{}' is not a number of seconds (e.g. sleep 2.5)", value));
          break;
        }
        if (seconds > max_script_seconds - static_cast<double>(now) / 1e9) {
          fail(span, fmt::format("the script would last more than {:g} seconds", max_script_seconds));
          break;
        }
        now += std::llround(seconds * 1e9);
      } else if (const VeiEvent* event = find_vei_event(word)) {
        if (!actor) actor = actor_index("");
        s.actions.push_back({event, name, *actor, now});
      } else {
        fail(name, fmt::format("unknown action '{}'", word), suggestion_or_list(word, "actions", action_names()));
        break;
      }
      if (!statements.semicolon()) {
        fail(statements.here(), fmt::format("missing ';' after '{}'", word));
        break;
      }
    }
  }
  return s;
}

namespace {

Script read_script(const Node& node) {
  const auto bytes = read_param_file(node, "file", size_t{1} << 20);
  std::vector<Diagnostic> errors;
  Script s = parse_script(param(node, "file").text, std::string(reinterpret_cast<const char*>(bytes.data()), bytes.size()), errors);
  if (!errors.empty()) throw DescriptionError(s.path, s.text, std::move(errors));
  return s;
}

struct Hosts {
  std::vector<IpAddr> clients;  // one per actor
  IpAddr server;
};

// The background's when it shows hosts; else 10.255.1.N for the N-th actor (from 1), 10.255.0.2.
Hosts hosts_of(const Script& s, const std::string& background_path) {
  Hosts h;
  const auto seen = background_path.empty() ? std::nullopt : background_hosts(background_path);
  if (!seen || seen->clients.empty()) {
    h.server = IpAddr::v4(0x0aff0002);
    for (size_t i = 0; i < s.actors.size(); ++i) h.clients.push_back(IpAddr::v4(0x0aff0101 + static_cast<uint32_t>(i)));
    return h;
  }
  if (seen->clients.size() < s.actors.size())
    throw OptionError("file", fmt::format("{}: {} actors, but the background shows only {} client hosts", s.path,
                                          s.actors.size(), seen->clients.size()));
  h.server = seen->server;
  h.clients.assign(seen->clients.begin(), seen->clients.begin() + static_cast<std::ptrdiff_t>(s.actors.size()));
  return h;
}

// Each action's stage line, parsed; a line this build or these hosts cannot make is an error at
// the action. With `book`, the hosts' Ethernet addresses go in the lines, so that no action's
// stage reads the background again.
std::vector<Pipeline> action_lines(const Script& s, const Hosts& h, const HostMacs* book = nullptr) {
  std::vector<Pipeline> lines;
  std::vector<Diagnostic> errors;
  for (size_t n = 0; n < s.actions.size(); ++n) {
    const ScriptAction& a = s.actions[n];
    const IpAddr& client = h.clients[a.actor];
    const std::optional<EventMacs> macs = book ? std::optional(EventMacs{book->of(client), book->of(h.server)}) : std::nullopt;
    try {
      lines.push_back(parse_pipeline(fmt::format("{}:{}", s.path, a.span.line),
                                     vei_event_line(*a.event, client, h.server, n, macs ? &*macs : nullptr)));
    } catch (const std::runtime_error& e) {
      errors.push_back({a.span, e.what(), ""});
    }
  }
  if (!errors.empty()) throw DescriptionError(s.path, s.text, std::move(errors));
  return lines;
}

}  // namespace

ScriptStage::ScriptStage()
    : SourceStage(
          {"script", StageKind::timeline_source,
           "Plays a script of vei.h events (the original libvei's iscripts) on its own timeline from 0. One action "
           "per statement, each ending in `;`, several per line allowed; `#` starts a comment. `VEI_PING;` (any "
           "event of vei.h) plays that event's conversation at the script's current time; `sleep 2.5;` advances "
           "the time by that many seconds; a line `ACTOR name` makes the actions after it come from that actor's "
           "client host (actions before any ACTOR have an actor of their own). Actors take, in order of first "
           "appearance, the background's most frequent sources, and the server is the background's busiest (see "
           "vei.h); without a background showing IP hosts, actor N is 10.255.1.N and the server 10.255.0.2. "
           "Action n of the file (from 0) is seeded with n. A mistake in the file is reported at its line and "
           "column.",
           [] {
             std::vector<ParamSpec> params{
                 {"file", ParamType::input, "", "the script", {}, true, true},
             };
             for (auto& p : placement_params("place the script's time 0 this long after the first source's first packet", "first"))
               params.push_back(std::move(p));
             return params;
           }()}) {}

void ScriptStage::verify(const Node& node) const {
  const Script s = read_script(node);
  action_lines(s, hosts_of(s, {}));
}

std::unique_ptr<TimelineSource> ScriptStage::open(const Node& node, SourceOptions options, const SourceContext& context) const {
  if (options.name.empty()) options.name = node.label.empty() ? std::string(name()) : node.label;
  const Script s = read_script(node);
  const Hosts hosts = hosts_of(s, context.background_path);
  HostMacs book;
  if (context.background_linktype.value_or(1) == 1)
    book.learn(context.background_path, [&hosts](const IpAddr& ip) {
      return ip == hosts.server || std::find(hosts.clients.begin(), hosts.clients.end(), ip) != hosts.clients.end();
    });
  const auto lines = action_lines(s, hosts, &book);
  // Opened now, so that a stage refusing its line stops the start; read when their time comes.
  auto sources = std::make_shared<std::vector<std::unique_ptr<TimelineSource>>>();
  auto times = std::make_shared<std::vector<int64_t>>();
  for (size_t n = 0; n < lines.size(); ++n) {
    SourceOptions o;
    o.name = fmt::format("{}:{}", s.path, s.actions[n].span.line);
    o.rank = options.rank;
    o.report = options.report;
    auto source = open_line_source(lines[n], std::move(o), context);
    source->set_mapping(-source->info().first_ts_ns.value_or(0), pcap::Precision::ns);
    sources->push_back(std::move(source));
    times->push_back(s.actions[n].at_ns);
  }
  auto build = [sources](Conversation& c, uint64_t i) {
    for_each_record(*(*sources)[i], [&c](const Batch& batch, const Record& r) {
      const auto* bytes = batch.data() + r.offset + record_header_size;
      c.frames.push_back({r.ts_ns, c.bytes.size(), r.caplen});
      c.bytes.insert(c.bytes.end(), bytes, bytes + r.caplen);
    });
    (*sources)[i].reset();  // played once
  };
  return std::make_unique<GeneratorSource>(context.background_linktype.value_or(1), sources->size(),
                                           [times](uint64_t i) { return (*times)[i]; }, std::move(build), std::move(options));
}

}  // namespace vei

VEI_STAGE(script, vei::ScriptStage)
