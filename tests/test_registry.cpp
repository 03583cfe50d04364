// The stage registry's promises, checked by walking it rather than by naming stages one by one:
//
// 1. Every invalid parameter value of every stage is a description error with a caret under that
//    value: for each registered stage and each of its parameters, a minimal valid pipeline holding
//    the stage gets one bad value chosen by the parameter's type (or, for free text, a value the
//    stage itself must refuse), and both parse + plan (what `veipipe graph` does) and
//    Engine::from_description (what `veipipe check` does) must throw a DescriptionError whose one
//    diagnostic is at that value's line and column, with the caret line under it. A stage or a
//    parameter the walk has no case for fails the test, so a new stage cannot slip past it. The
//    ranges the stages check themselves (icmp's count, ttl, id..., snaplen, loop, retries, pace's
//    exclusive rates) are cases of their own. tests/registry_test.sh checks the same at the
//    command line (exit 2, caret, no file created).
// 2. A stage that exists only in this test registers itself and runs from a description like a
//    built-in one: it is listed, its bad value is a caret error, it transforms a real capture
//    byte for byte as it says, and the engine's statistics count it.
#include <doctest/doctest.h>
#include <fmt/format.h>

#include <algorithm>
#include <filesystem>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "core/transform.h"
#include "pipeline/conversation_stage.h"
#include "pipeline/description.h"
#include "pipeline/engine.h"
#include "pipeline/plan.h"
#include "pipeline/conversation_stage.h"
#include "pipeline/stage.h"
#include "testutil.h"

using namespace vei;
namespace fs = std::filesystem;

namespace {

const std::string corpus = VEIPIPE_CORPUS_DIR;
// Plain Ethernet, microseconds, little-endian, 179 packets in order (corpus MANIFEST.tsv).
const std::string background = corpus + "/tcpreplay-test.pcap";

// ---- the test-only stage -------------------------------------------------------------------------

// Keeps the packets whose index in their source is even (or odd) and writes `mark` into the last
// captured byte of each packet kept. Stateless per packet, as a Transform must be: the index is
// the record's own `seq`, whatever batch it comes in.
class EveryOther final : public Transform {
 public:
  EveryOther(bool keep_odd, std::byte mark) : keep_odd_(keep_odd), mark_(mark) {}

  TransformStats apply(Batch& batch) const override {
    TransformStats stats;
    const auto kept = std::remove_if(batch.records.begin(), batch.records.end(),
                                     [&](const Record& r) { return (r.seq % 2 == 1) != keep_odd_; });
    stats.dropped = static_cast<uint64_t>(batch.records.end() - kept);
    batch.records.erase(kept, batch.records.end());
    for (const Record& r : batch.records) {
      if (r.caplen == 0) continue;
      std::byte& last = batch.data()[r.offset + record_header_size + r.caplen - 1];
      if (last == mark_) continue;
      last = mark_;
      ++stats.changed;
    }
    if (stats.dropped) compact(batch);
    return stats;
  }

 private:
  bool keep_odd_;
  std::byte mark_;
};

class EveryOtherStage final : public TransformStage {
 public:
  EveryOtherStage()
      : TransformStage({"test_every_other", StageKind::transform,
                        "Test only: keeps every other packet of its input (by index in its source) and marks the last "
                        "captured byte of each packet kept.",
                        {
                            {"keep", ParamType::choice, "even", "`even` or `odd` indexes", {"even", "odd"}, true},
                            {"mark", ParamType::integer, "255", "the value written into the last byte, 0..255"},
                        }}) {}

  void check(const Node& node) const override {
    const Value& mark = param(node, "mark");
    if (mark.integer < 0 || mark.integer > 255) throw ParamError(mark, "mark must be 0..255", "a byte's value");
  }

  std::unique_ptr<Transform> make(const Node& node, const TransformContext&) const override {
    return std::make_unique<EveryOther>(param(node, "keep").text == "odd",
                                        static_cast<std::byte>(param(node, "mark").integer));
  }
};

// Registers the test stage once per process, however many test cases (or repeated runs of them)
// ask for it.
const Stage& test_stage() {
  static const EveryOtherStage stage;
  if (find_stage(stage.name()) != &stage) register_stage(stage);
  return stage;
}

// ---- descriptions with one bad value ------------------------------------------------------------

// Marks where the bad value starts in a stage call; removed before parsing.
constexpr char mark = '\x01';

struct Files {
  test::TempDir dir;
  std::string out() const { return (dir / "out.pcap").string(); }
};

// A minimal valid pipeline around the stage call `call` (which contains `mark`), by kind.
std::string pipeline_around(StageKind kind, const std::string& call, const Files& files) {
  switch (kind) {
    case StageKind::timeline_source:
    case StageKind::event_source:
      // A second source (timeline or event) into a merge whose background is a real capture.
      return fmt::format("pcap({}) -> m: merge -> file({})\n{} -> m", background, files.out(), call);
    case StageKind::transform:
    case StageKind::merger:
    case StageKind::pacer: return fmt::format("pcap({}) -> {} -> file({})", background, call, files.out());
    case StageKind::sink: return fmt::format("pcap({}) -> {}", background, call);
  }
  FAIL("no pipeline template for stage kind ", static_cast<int>(kind));
  return {};
}

// A valid value for a required parameter that is not the one under test.
std::optional<std::string> valid_value(const Stage& stage, const ParamSpec& p, const Files& files) {
  static const std::map<std::string, std::string, std::less<>> known{
      {"control.path", ""},  // filled below: a socket in the temporary directory
      {"live.interface", "lo"},
      {"nic.interface", "lo"},
      {"icmp.dst", "10.0.0.1"},
      {"filter.expression", "tcp"},
      {"snaplen.length", "64"},
  };
  const std::string key = fmt::format("{}.{}", stage.name(), p.name);
  if (key == "control.path") return (files.dir / "ctl.sock").string();
  if (const auto it = known.find(key); it != known.end()) return it->second;
  switch (p.type) {
    case ParamType::input: return background;
    case ParamType::output: return files.out();
    case ParamType::string: return std::nullopt;  // free text: only the table knows
    case ParamType::choice: return std::string(p.choices.at(0));
    case ParamType::duration: return "1ms";
    case ParamType::integer: return "1";
    case ParamType::size: return "64";
    case ParamType::rate: return "10pps";
    case ParamType::bitrate: return "1mbps";
    case ParamType::multiplier: return "1x";
    case ParamType::boolean: return "true";
    case ParamType::speed: return "realtime";
  }
  return std::nullopt;
}

// The bad value the type alone refuses; none for free text.
std::optional<std::string> typed_bad_value(ParamType type) {
  switch (type) {
    case ParamType::integer: return "abc";
    case ParamType::size: return "12parsecs";
    case ParamType::duration: return "5 apples";
    case ParamType::rate: return "fast";
    case ParamType::bitrate: return "-3mbps";
    case ParamType::multiplier: return "twice";
    case ParamType::choice: return "nosuchchoice";
    case ParamType::boolean: return "maybe";
    case ParamType::speed: return "warp";
    case ParamType::input:
    case ParamType::output: return "\"\"";
    case ParamType::string: return std::nullopt;
  }
  return std::nullopt;
}

// Free-text parameters: a value the stage itself must refuse. `opened`: only known once the inputs
// are open (a BPF filter compiles for the background's link type), so `veipipe check` and the
// engine report it, not parse + plan.
struct StringBad {
  std::string value;
  bool opened = false;
};
const std::map<std::string, StringBad, std::less<>> string_bad{
    {"pcap.filter", {"\"tcp port\"", true}},
    {"pcap.from", {"yesterday"}},
    {"pcap.until", {"2009-13-01T00:00:00Z"}},
    {"live.filter", {"\"tcp port\"", true}},
    {"filter.expression", {"\"tcp port\"", true}},
    {"icmp.src", {"10.0.0.x"}},
    {"icmp.dst", {"10.0.0.x"}},
    {"icmp.srcmac", {"zz"}},
    {"icmp.dstmac", {"zz"}},
    {"rewrite.ip", {"1.2.3:"}},
    {"rewrite.srcip", {"1.2.3:"}},
    {"rewrite.dstip", {"1.2.3:"}},
    {"rewrite.srcmac", {"zz"}},
    {"rewrite.dstmac", {"zz"}},
    // The parameters every conversation generator shares (pipeline/conversation_stage.h).
    {"conversation.src", {"10.0.0.x"}},
    {"conversation.dst", {"10.0.0.1-10.0.0.0"}},
    {"conversation.sport", {"2000-1000"}},
    {"conversation.dport", {"65536"}},
    {"conversation.srcmac", {"zz"}},
    {"conversation.dstmac", {"aa:bb"}},
    {"traceroute.routers", {"10.254.0.x"}},
    {"synscan.ports", {"http"}},
    {"synscan.open", {"22-"}},
    {"dns.name", {"www..example.com"}},
    {"dns.answer", {"10.0.0.x"}},
    {"sip.from", {"\"alice smith\""}},
    {"sip.to", {"bob@2001:db8::5"}},
    {"tls.sni", {"bad_name.example"}},
    {"tls.alpn", {"\"h2,,http/1.1\""}},
    {"http.host", {"\"www example.com\""}},
    {"http.path", {"index.html"}},
    {"http.form", {"\"a=hello world\""}},
    {"http.type", {"texthtml"}},
    {"smtp.from", {"alice"}},
    {"smtp.to", {"carol@"}},
    {"smtp.subject", {"\"Hi\\\\nthere\""}},  // `\n` breaks a line of body=; a subject is one line
    {"smtp.body", {std::string(999, 'x')}},  // SMTP lines hold 998 bytes
    {"ssh.user", {"bad/user"}},
    {"ssh.version", {"Open-SSH"}},
};
// Free-text parameters with no value the description alone can refuse, and why.
const std::map<std::string, std::string, std::less<>> string_skipped{
    {"live.interface",
     "any name may be an interface by the time the run starts: a missing one is a runtime failure when the capture "
     "opens (exit 1), not a description error"},
    {"nic.interface",
     "any name may be an interface by the time the run starts: a missing one is a runtime failure when the sink "
     "opens (exit 1), not a description error"},
};

struct Case {
  std::string name;  // for messages: `stage.param = value`
  const Stage* stage = nullptr;
  std::string call;  // with `mark` where the bad value starts
  bool opened = false;
};

// `stage(required=valid..., param=BAD)`, the required ones first in declaration order.
std::string call_with(const Stage& stage, const ParamSpec& bad_param, const std::string& bad, const Files& files) {
  std::vector<std::string> args;
  for (const auto& p : stage.spec().params) {
    if (!p.required || p.name == bad_param.name) continue;
    const auto valid = valid_value(stage, p, files);
    CHECK_MESSAGE(valid, "no valid value known for the required parameter '", p.name, "' of stage '", stage.name(),
                  "': add it to valid_value()");
    args.push_back(fmt::format("{}={}", p.name, valid.value_or("?")));
  }
  args.push_back(fmt::format("{}={}{}", bad_param.name, mark, bad));
  return fmt::format("{}({})", stage.name(), fmt::join(args, ", "));
}

// Ranges, forms and combinations the stages check themselves. `@` marks the refused value.
struct RangeCase {
  std::string_view stage, param, call;  // in `call`, `{out}` is the output file
};
constexpr RangeCase range_cases[] = {
    {"icmp", "count", "icmp(dst=10.0.0.1, count=@0)"},
    {"icmp", "count", "icmp(dst=10.0.0.1, count=@-5)"},
    {"icmp", "count", "icmp(dst=10.0.0.1, rate=1pps, count=@5000000000)"},  // past pcap's 32-bit seconds
    {"icmp", "ttl", "icmp(dst=10.0.0.1, ttl=@256)"},
    {"icmp", "ttl", "icmp(dst=10.0.0.1, ttl=@0)"},
    {"icmp", "id", "icmp(dst=10.0.0.1, id=@65536)"},
    {"icmp", "id", "icmp(dst=10.0.0.1, id=@-1)"},
    {"icmp", "size", "icmp(dst=10.0.0.1, size=@70000)"},
    {"icmp", "rate", "icmp(dst=10.0.0.1, rate=@2000Mpps)"},          // above 1Gpps
    {"icmp", "rtt", "icmp(dst=10.0.0.1, replies=true, rtt=@-1ms)"},
    {"icmp", "dst", "icmp(dst=@10.0.0.9-10.0.0.1)"},  // a reversed range
    {"icmp", "src", "icmp(dst=10.0.0.1, src=@10.0.0.1-10.0.0)"},
    {"icmp", "dstmac", "icmp(dst=10.0.0.1, dstmac=@aa:bb:cc:dd:ee)"},
    {"tls", "response", "tls(response=@17MiB)"},
    {"tls", "request", "tls(request=@-1)"},
    {"tls", "sni", "tls(@10.0.0.1)"},  // an IP address is no server name (RFC 6066)
    {"tls", "alpn", "tls(alpn=@\"h2,http 1.1\")"},
    {"snaplen", "length", "snaplen(@0)"},
    {"snaplen", "length", "snaplen(@5GiB)"},
    {"live", "snaplen", "live(lo, snaplen=@0)"},
    {"live", "snaplen", "live(lo, snaplen=@5GiB)"},
    {"pace", "loop", "pace(loop=@-1)"},
    {"pace", "mbps", "pace(pps=1kpps, mbps=@1mbps)"},
    {"pace", "speed", "pace(@4x, pps=1kpps)"},
    {"pace", "speed", "pace(@0.001x)"},
    {"nic", "retries", "nic(lo, retries=@-1)"},
    {"nic", "retries", "nic(lo, retries=@3000000000)"},
    {"rewrite", "ip", "rewrite(ip=@10.0.0.0/8:172.16.0.0/16)"},  // prefix lengths differ
    {"rewrite", "srcip", "rewrite(srcip=@10.0.0.300:10.0.0.1)"},
    {"rewrite", "ip", "rewrite(ip=@\"10.0.0.1:10.0.0.2 10.0.0.3\")"},  // the second map has no `:`
    // The header's snapshot length is 32 bits: 0 and anything above wrap silently today.
    {"file", "snaplen", "file({out}, snaplen=@0)"},
    {"file", "snaplen", "file({out}, snaplen=@5GiB)"},
    // "How long the output is held back": a negative time has no meaning.
    {"merge", "lateness", "merge(lateness=@-5ms)"},
    {"traceroute", "hops", "traceroute(hops=@0)"},
    {"traceroute", "hops", "traceroute(hops=@65)"},
    {"traceroute", "probes", "traceroute(probes=@11)"},
    {"traceroute", "port", "traceroute(port=@0)"},
    {"traceroute", "port", "traceroute(hops=64, probes=10, port=@65000)"},  // the last probes' ports past 65535
    {"traceroute", "port", "traceroute(method=icmp, port=@33434)"},         // ICMP probes have no port
    {"traceroute", "routers", "traceroute(hops=8, routers=@10.9.0.1-10.9.0.3)"},
    {"traceroute", "routers", "traceroute(routers=@fd00::1/120)"},  // src is IPv4
    {"synscan", "ports", "synscan(ports=@\"\")"},
    {"synscan", "ports", "synscan(ports=\"22,@,80\")"},  // the caret under the empty item
    {"synscan", "ports", "synscan(ports=\"80, @1024-1\")"},
    {"synscan", "open", "synscan(ports=\"1-1024\", open=\"22,@8080\")"},  // not scanned
    {"synscan", "delay", "synscan(delay=@-1ms)"},
    {"ssh", "keystrokes", "ssh(keystrokes=@10001)"},
    {"ssh", "keystrokes", "ssh(keystrokes=@-1)"},
    {"test_every_other", "mark", "test_every_other(mark=@256)"},
    {"test_every_other", "mark", "test_every_other(odd, mark=@-1)"},
};

// Where `mark` is in `text` (1-based line and column), and `text` without it.
struct Located {
  std::string text;
  int line = 0, col = 0;
};
Located locate(std::string text) {
  const auto at = text.find(mark);
  REQUIRE(at != std::string::npos);
  text.erase(at, 1);
  const auto newline = text.rfind('\n', at);  // text[at] is the value's first character, never a newline
  Located l;
  l.line = 1 + static_cast<int>(std::count(text.begin(), text.begin() + static_cast<std::ptrdiff_t>(at), '\n'));
  l.col = static_cast<int>(newline == std::string::npos ? at + 1 : at - newline);
  l.text = std::move(text);
  return l;
}

std::optional<DescriptionError> plan_error(const std::string& text) {
  try {
    const auto pipeline = parse_pipeline("t", text);
    make_plan(pipeline);
  } catch (const DescriptionError& e) {
    return e;
  }
  return std::nullopt;
}

std::optional<DescriptionError> check_error(const std::string& text) {
  try {
    Engine::from_description("t", text, true);
  } catch (const DescriptionError& e) {
    return e;
  } catch (const std::exception& e) {
    FAIL_CHECK("not a description error: ", e.what());
  }
  return std::nullopt;
}

// The formatted error has `t:LINE:COL: error:` first, then the source line, then a caret under
// column COL of it.
void check_caret(const DescriptionError& e, const Located& at) {
  const std::string text = e.what();
  INFO("error:\n", text);
  // CHECKs, not REQUIREs: one case failing must not hide the cases after it.
  CHECK(e.diagnostics().size() == 1);
  if (e.diagnostics().empty()) return;
  CHECK(e.diagnostics()[0].span.line == at.line);
  CHECK(e.diagnostics()[0].span.col == at.col);
  const std::string head = fmt::format("t:{}:{}: error: ", at.line, at.col);
  CHECK(text.starts_with(head));
  // Line 2 is `  LINE | source`, line 3 `       | ^~~`.
  std::vector<std::string> lines;
  for (size_t begin = 0, end; begin < text.size(); begin = end + 1) {
    end = text.find('\n', begin);
    if (end == std::string::npos) end = text.size();
    lines.push_back(text.substr(begin, end - begin));
  }
  CHECK(lines.size() >= 3);
  if (lines.size() < 3) return;
  const auto bar = lines[2].find("| ");
  const auto caret = lines[2].find('^');
  CHECK(bar != std::string::npos);
  CHECK(caret != std::string::npos);
  if (bar == std::string::npos || caret == std::string::npos) return;
  CHECK(caret - (bar + 2) == static_cast<size_t>(at.col - 1));
  CHECK(lines[2].find_first_not_of(" |^~", bar) == std::string::npos);
}

// The whole check of one case: parse + plan refuse it (unless only opened inputs can tell), the
// engine's from_description (veipipe check) refuses it, both at the value, and nothing is created.
void check_refused(const Case& c, const Files& files) {
  const std::string description = pipeline_around(c.stage->kind(), c.call, files);
  const Located at = locate(description);
  INFO("case ", c.name, "\ndescription:\n", at.text);
  if (!c.opened) {
    const auto e = plan_error(at.text);
    CHECK_MESSAGE(e, "parse + plan accepted the bad value");
    if (e) check_caret(*e, at);
  }
  const auto e = check_error(at.text);
  CHECK_MESSAGE(e, "Engine::from_description (veipipe check) accepted the bad value");
  if (e) check_caret(*e, at);
  CHECK_MESSAGE(fs::is_empty(files.dir.path()), "a refused description created a file");
}

std::string spec_key(std::string_view stage, std::string_view param) { return fmt::format("{}.{}", stage, param); }

const ParamSpec* find_param(const Stage& stage, std::string_view name) {
  for (const auto& p : stage.spec().params)
    if (p.name == name) return &p;
  return nullptr;
}

}  // namespace

TEST_CASE("registry: every typed parameter of every registered stage refuses a bad value with a caret") {
  test_stage();
  const Files files;
  size_t walked = 0, skipped = 0;
  std::set<std::string> used_tables;
  for (const Stage* stage : stages()) {
    CAPTURE(stage->name());
    CHECK_MESSAGE(!stage->spec().params.empty(), "stage '", stage->name(), "' has no parameter: no case to walk");
    for (const ParamSpec& p : stage->spec().params) {
      std::string key = spec_key(stage->name(), p.name);
      if (dynamic_cast<const ConversationStage*>(stage) && !string_bad.contains(key) && !string_skipped.contains(key))
        key = spec_key("conversation", p.name);
      Case c{key, stage, {}, false};
      if (const auto bad = typed_bad_value(p.type)) {
        c.call = call_with(*stage, p, *bad, files);
        c.name += " = " + *bad;
      } else if (const auto it = string_bad.find(key); it != string_bad.end()) {
        used_tables.insert(key);
        c.call = call_with(*stage, p, it->second.value, files);
        c.opened = it->second.opened;
        c.name += " = " + it->second.value;
      } else if (string_skipped.contains(key)) {
        used_tables.insert(key);
        MESSAGE("skipped ", key, ": ", string_skipped.at(key));
        ++skipped;
        continue;
      } else {
        FAIL_CHECK("no case for parameter '", p.name, "' (", to_string(p.type), ") of stage '", stage->name(),
                   "': give it a bad value in string_bad or a reason in string_skipped");
        continue;
      }
      check_refused(c, files);
      ++walked;
    }
  }
  // The tables name only parameters that exist: a renamed one must not leave a case behind unseen.
  for (const auto& [key, _] : string_bad) CHECK_MESSAGE(used_tables.contains(key), "string_bad names ", key, ", no such string parameter");
  for (const auto& [key, _] : string_skipped)
    CHECK_MESSAGE(used_tables.contains(key), "string_skipped names ", key, ", no such string parameter");
  MESSAGE(walked, " (stage, parameter) cases walked, ", skipped, " skipped");
  CHECK(walked >= 40);
}

TEST_CASE("registry: the ranges and combinations the stages check themselves are caret errors") {
  test_stage();
  const Files files;
  std::set<std::string> stages_covered;
  for (const auto& r : range_cases) {
    const Stage* stage = find_stage(r.stage);
    CHECK_MESSAGE((stage && find_param(*stage, r.param)), "no stage ", r.stage, " with a parameter ", r.param);
    if (!stage || !find_param(*stage, r.param)) continue;
    std::string call(r.call);
    std::replace(call.begin(), call.end(), '@', mark);
    if (const auto at = call.find("{out}"); at != std::string::npos) call.replace(at, 5, files.out());
    check_refused({std::string(r.call), stage, call, false}, files);
    stages_covered.insert(std::string(r.stage));
  }
  // Every stage with a range of its own (a check() override, or a size that must fit 32 bits).
  for (const char* name : {"icmp", "snaplen", "live", "pace", "nic", "rewrite", "file", "merge", "traceroute", "synscan",
                           "ssh", "test_every_other"})
    CHECK_MESSAGE(stages_covered.contains(name), name, " has no range case");
}

TEST_CASE("registry: a value a transform refuses when it is built is reported once, whatever the sources") {
  // Transforms after the merge apply to every source's chain (and the API's): each builds them,
  // but a refused value is one error.
  const Files files;
  const std::string before = fmt::format("pcap({0}) -> m: merge -> ", background);
  const std::string text = fmt::format("{}filter(\"tcp port\") -> file({})\npcap({}) -> m\nicmp(dst=10.0.0.1) -> m",
                                       before, files.out(), background);
  const auto e = check_error(text);
  REQUIRE(e);
  check_caret(*e, Located{"", 1, static_cast<int>((before + "filter(").size()) + 1});
  CHECK(fs::is_empty(files.dir.path()));
}

TEST_CASE("registry: a stage registered by a test is listed, checked, run from a description and counted") {
  const Stage& stage = test_stage();
  test_stage();  // a second registration attempt is a no-op, not a duplicate
  const auto listed = stages();
  CHECK(std::count(listed.begin(), listed.end(), &stage) == 1);
  CHECK(find_stage("test_every_other") == &stage);
  CHECK_THROWS_AS(register_stage(stage), std::logic_error);  // the registry refuses a second stage of a name
  CHECK(find_stage("test_every_other") == &stage);

  // Its own check, with a caret.
  {
    const Files files;
    const auto e = plan_error(fmt::format("pcap({}) -> test_every_other(mark=300) -> file({})", background, files.out()));
    REQUIRE(e);
    CHECK(std::string(e->what()).find("mark must be 0..255") != std::string::npos);
    check_caret(*e, Located{"", 1, static_cast<int>(fmt::format("pcap({}) -> test_every_other(mark=", background).size()) + 1});
  }

  const auto input = test::read_raw(background);
  REQUIRE(input.records.size() == 179);
  for (const bool odd : {false, true}) {
    CAPTURE(odd);
    const Files files;
    const int mark_value = odd ? 0 : 0xa5;
    const std::string description = fmt::format("pcap({}) -> test_every_other({}, mark={}) -> file({})", background,
                                                odd ? "odd" : "even", mark_value, files.out());
    auto engine = Engine::from_description("<test>", description, true);
    engine.start();
    REQUIRE(engine.wait() == exit_ok);

    // What the stage says: the records of even (odd) index, each with its last byte set.
    std::vector<test::RawRecord> expected;
    uint64_t changed = 0;
    for (size_t i = odd ? 1 : 0; i < input.records.size(); i += 2) {
      test::RawRecord r = input.records[i];
      if (!r.bytes.empty() && r.bytes.back() != mark_value) {
        r.bytes.back() = static_cast<unsigned char>(mark_value);
        ++changed;
      }
      expected.push_back(std::move(r));
    }
    const auto output = test::read_raw(files.out());
    CHECK(output.linktype == input.linktype);
    CHECK(output.nanos == input.nanos);
    REQUIRE(output.records.size() == expected.size());
    for (size_t i = 0; i < expected.size(); ++i) {
      CAPTURE(i);
      CHECK(output.records[i].sec == expected[i].sec);
      CHECK(output.records[i].frac == expected[i].frac);
      CHECK(output.records[i].caplen == expected[i].caplen);
      CHECK(output.records[i].len == expected[i].len);
      CHECK(output.records[i].bytes == expected[i].bytes);
    }
    CHECK(changed > 0);

    const Stats stats = engine.stats();
    CHECK(stats.packets == expected.size());
    REQUIRE(stats.transforms.size() == 1);
    CHECK(stats.transforms[0].name == fmt::format("test_every_other at 1:{}", fmt::format("pcap({}) -> ", background).size() + 1));
    CHECK(stats.transforms[0].dropped == input.records.size() - expected.size());
    CHECK(stats.transforms[0].changed == changed);
  }
}
