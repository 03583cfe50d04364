// Description errors as users see them: formatting, carets, every problem at once, unknown names,
// labels and ports.

#include <doctest/doctest.h>
#include <fmt/format.h>
#include "core/timeline_source.h"
#include "pipeline/description.h"
#include "pipeline/plan.h"
#include "pipeline/stage.h"
#include "description_util.h"

using namespace vei;
using namespace vei::test::description;

TEST_CASE("errors: formatted like a compiler's") {
  CHECK(error_of("m: merge -> file(eval.pcap)\n"
                 "pcap(exploit.pcap, att=+90s) -> m\n") ==
        "t:2:20: error: unknown parameter 'att' for stage 'pcap'\n"
        "    2 | pcap(exploit.pcap, att=+90s) -> m\n"
        "      |                    ^~~\n"
        "note: did you mean 'at'?\n");

  CHECK(error_of("pcap(exploit.pcap, at=90q) -> m: merge -> file(o)") ==
        "t:1:23: error: invalid duration '90q' for 'at': unknown unit 'q'\n"
        "    1 | pcap(exploit.pcap, at=90q) -> m: merge -> file(o)\n"
        "      |                       ^~~\n"
        "note: valid units: ns, us, \u00b5s, ms, s, m, h (default s)\n");

  CHECK(error_of("pcap(a) -> m: merge(end=al) -> file(o)") ==
        "t:1:25: error: invalid choice 'al' for 'end': unknown choice\n"
        "    1 | pcap(a) -> m: merge(end=al) -> file(o)\n"
        "      |                         ^~\n"
        "note: did you mean 'all'? valid choices: first, all\n");

  CHECK(error_of("pcap(a) -> file(o, snaplen=1.5)") ==
        "t:1:28: error: invalid size '1.5' for 'snaplen': not a whole number of bytes\n"
        "    1 | pcap(a) -> file(o, snaplen=1.5)\n"
        "      |                            ^~~\n");
}

TEST_CASE("errors: tabs in the line keep the caret aligned; wide line numbers widen the gutter") {
  const std::string_view text = "\tpcap(a,\tatt=1s)";
  CHECK(format_diagnostics("f", text, {{{1, 10, 3}, "bad", ""}}) ==
        "f:1:10: error: bad\n"
        "    1 | \tpcap(a,\tatt=1s)\n"
        "      | \t       \t^~~\n");
  CHECK(format_diagnostics("f", "x", {{{123456, 1, 1}, "far", "n"}}) ==
        "f:123456:1: error: far\n"
        "123456 | \n"
        "       | ^\n"
        "note: n\n");
}

TEST_CASE("errors: all of them at once, sorted by position") {
  const std::string_view text =
      "pcap(campus.pcap, att=90s) -> m: mrge -> file(eval.pcap)\n"
      "pcap(exploit.pcap, at=90q) -> m\n";
  const auto diagnostics = diagnostics_of(text);
  CHECK(diagnostics.size() == 3);
  CHECK(error_of(text) ==
        "t:1:19: error: unknown parameter 'att' for stage 'pcap'\n"
        "    1 | pcap(campus.pcap, att=90s) -> m: mrge -> file(eval.pcap)\n"
        "      |                   ^~~\n"
        "note: did you mean 'at'?\n"
        "t:1:34: error: unknown stage 'mrge'\n"
        "    1 | pcap(campus.pcap, att=90s) -> m: mrge -> file(eval.pcap)\n"
        "      |                                  ^~~~\n"
        "note: did you mean 'merge'?\n"
        "t:2:23: error: invalid duration '90q' for 'at': unknown unit 'q'\n"
        "    2 | pcap(exploit.pcap, at=90q) -> m\n"
        "      |                       ^~~\n"
        "note: valid units: ns, us, \u00b5s, ms, s, m, h (default s)\n");

  // Errors found in different passes (labels, parameters, ports) still come out in text order.
  const auto mixed = diagnostics_of("o: file(x) -> pcap(a, zzz=1)\nm: merge; m: merge");
  REQUIRE(mixed.size() == 4);
  CHECK(mixed[0].message == "'o' (file) is a sink and has no output");
  CHECK(mixed[1].message == "'pcap' is a timeline source and takes no input");
  CHECK(mixed[2].message == "unknown parameter 'zzz' for stage 'pcap'");
  CHECK(mixed[3].message == "duplicate label 'm'");
}

TEST_CASE("errors: unknown stages") {
  const auto typo = diagnostic_of("pcab(a) -> file(o)");
  CHECK(typo.message == "unknown stage 'pcab'");
  CHECK(typo.note == "did you mean 'pcap'?");
  check_span(typo.span, 1, 1, 4);

  const auto far = diagnostic_of("frobnicate(x) -> file(o)");
  CHECK(far.message == "unknown stage 'frobnicate'");
  CHECK(far.note == fmt::format("valid stages: {}", fmt::join(all_stage_names(), ", ")));
}

TEST_CASE("errors: unknown, duplicate and extra parameters") {
  const auto unknown = diagnostic_of("pcap(a) -> merge(ends=all) -> file(o)");
  CHECK(unknown.message == "unknown parameter 'ends' for stage 'merge'");
  CHECK(unknown.note == "did you mean 'end'?");
  check_span(unknown.span, 1, 18, 4);

  const auto listed = diagnostic_of("pcap(a) -> merge(zzzzzz=all) -> file(o)");
  std::vector<std::string_view> names;
  for (const auto& p : find_stage("merge")->spec().params) names.push_back(p.name);
  CHECK(listed.note == fmt::format("valid parameters: {}", fmt::join(names, ", ")));

  CHECK(error_of("pcap(a, file=b) -> file(o)") ==
        "t:1:9: error: duplicate parameter 'file' for stage 'pcap'\n"
        "    1 | pcap(a, file=b) -> file(o)\n"
        "      |         ^~~~\n"
        "note: first given at 1:6\n");
  const auto positional_twice = diagnostic_of("pcap(file=a, b) -> file(o)");
  CHECK(positional_twice.message == "duplicate parameter 'file' for stage 'pcap'");
  check_span(positional_twice.span, 1, 14, 1);

  CHECK(error_of("pcap(a, b) -> file(o)") ==
        "t:1:9: error: too many positional arguments for stage 'pcap'\n"
        "    1 | pcap(a, b) -> file(o)\n"
        "      |         ^\n"
        "note: 'pcap' takes 1 positional argument: file\n");
  const auto none = diagnostic_of("pcap(a) -> merge(all) -> file(o)");
  CHECK(none.message == "too many positional arguments for stage 'merge'");
  CHECK(none.note == "'merge' takes no positional arguments");
}

TEST_CASE("errors: missing required parameters") {
  const auto d = diagnostic_of("pcap(at=1s) -> file(o)");
  CHECK(d.message == "missing required parameter 'file' for stage 'pcap'");
  CHECK(d.note == fmt::format("file: {}", find_stage("pcap")->spec().params[0].doc));
  check_span(d.span, 1, 1, 4);
  // A bad value is one error, not also a missing parameter.
  CHECK(diagnostic_of("pcap(\"\") -> file(o)").message == "invalid path '' for 'file': must not be empty");
}

TEST_CASE("errors: labels") {
  CHECK(error_of("pcap(a) -> m: merge -> file(o)\npcap(b) -> m: merge") ==
        "t:2:12: error: duplicate label 'm'\n"
        "    2 | pcap(b) -> m: merge\n"
        "      |            ^\n"
        "note: first defined at 1:12\n");

  const auto typo = diagnostic_of("pcap(a) -> m: merge -> file(o); pcap(b) -> mm");
  CHECK(typo.message == "unknown label or stage 'mm'");
  CHECK(typo.note == "did you mean 'm'?");
  check_span(typo.span, 1, 44, 2);

  const auto undefined = diagnostic_of("pcap(a) -> zzzzzz -> file(o)");
  CHECK(undefined.message == "unknown label or stage 'zzzzzz'");
  CHECK(undefined.note == fmt::format("valid labels and stages: {}", fmt::join(all_stage_names(), ", ")));
}

TEST_CASE("errors: ports") {
  CHECK(error_of("pcap(a) -> pcap(b) -> file(o)") ==
        "t:1:12: error: 'pcap' is a timeline source and takes no input\n"
        "    1 | pcap(a) -> pcap(b) -> file(o)\n"
        "      |            ^~~~\n");

  const auto sink = diagnostic_of("pcap(a) -> out: file(o)\nout -> m: merge");
  CHECK(sink.message == "'out' (file) is a sink and has no output");
  check_span(sink.span, 2, 1, 3);

  CHECK(error_of("out: file(o); pcap(a) -> out; pcap(b) -> out") ==
        "t:1:42: error: 'out' (file) already has an input\n"
        "    1 | out: file(o); pcap(a) -> out; pcap(b) -> out\n"
        "      |                                          ^~~\n"
        "note: only a merger takes several inputs\n");

  // Unlabelled calls are distinct nodes, so two sinks of the same stage are no port error here.
  CHECK(parse_pipeline("t", "pcap(a) -> file(o); pcap(b) -> file(p)").nodes.size() == 4);
}

TEST_CASE("errors: an empty description") {
  const std::string expected =
      "t:1:1: error: no stages\n"
      "    1 | \n"
      "      | ^\n"
      "note: e.g. pcap(in.pcap) -> file(out.pcap)\n";
  CHECK(error_of("") == expected);
  CHECK(error_of("\n;  \n") == expected);
  CHECK(diagnostic_of("# only a comment\n").message == "no stages");
}

TEST_CASE("errors: syntax errors come from parse_pipeline too") {
  try {
    parse_pipeline("<command line>", "pcap(a -> file(o)");
    FAIL("no error");
  } catch (const DescriptionError& e) {
    REQUIRE(e.diagnostics().size() == 1);
    CHECK(e.diagnostics()[0].message == "expected ',' or ')'");
    CHECK(std::string_view(e.what()).starts_with("<command line>:1:18: error: "));
  }
}

// Issue 11, item 18: parameters that were accepted and then ignored.
TEST_CASE("errors: at= with rebase=none is refused, under rebase; either alone is fine") {
  CHECK(error_of("pcap(a) -> m: merge -> file(o); pcap(b, at=2s, rebase=none) -> m") ==
        "t:1:55: error: at= places the first packet, rebase=none keeps the original times: give one\n"
        "    1 | pcap(a) -> m: merge -> file(o); pcap(b, at=2s, rebase=none) -> m\n"
        "      |                                                       ^~~~\n"
        "note: shift= moves the original times by a constant\n");
  // The background and generated sources too: at= would be dropped or meant a shift.
  CHECK(diagnostic_of("pcap(a, rebase=none, at=1s) -> file(o)").span.col == 16);
  CHECK(diagnostic_of("pcap(a) -> m: merge -> file(o); icmp(dst=10.0.0.1, at=1s, rebase=none) -> m").span.col == 66);
  CHECK(parse_pipeline("t", "pcap(a) -> m: merge -> file(o); pcap(b, at=2s, rebase=first) -> m; pcap(c, rebase=none, shift=1s) -> m")
            .nodes.size() == 5);
}

TEST_CASE("errors: an injected source with rebase=none is refused, under rebase") {
  const auto line = parse_pipeline("<inject>", "icmp(dst=10.0.0.9, count=1, rebase=none)");
  REQUIRE(is_source_chain(line));
  try {
    open_line_source(line, SourceOptions{}, SourceContext{});
    FAIL("no error");
  } catch (const DescriptionError& e) {
    REQUIRE(e.diagnostics().size() == 1);
    CHECK(e.diagnostics()[0].message == "an injected source starts at the output's now: rebase=none cannot keep its times");
    CHECK(e.diagnostics()[0].span.col == 36);
  }
  CHECK(open_line_source(parse_pipeline("<inject>", "icmp(dst=10.0.0.9, count=1, rebase=first)"), SourceOptions{}, SourceContext{}));
}

// Issue 11, item 19: a value too large for its field names the range, never "at least 1".
TEST_CASE("errors: numbers beyond what a field holds say the range") {
  CHECK(diagnostic_of("pcap(a) -> snaplen(10GiB) -> file(o)").message == "snaplen must be 1..4294967295 bytes");
  CHECK(diagnostic_of("pcap(a) -> snaplen(0) -> file(o)").message == "snaplen must be 1..4294967295 bytes");
  CHECK(diagnostic_of("pcap(a) -> chop(4GiB) -> file(o)").message == "chop must be 1..4294967295 bytes");
  CHECK(diagnostic_of("pcap(a) -> file(o, snaplen=5GB)").message == "snaplen must be 1..4294967295 bytes");
  CHECK(diagnostic_of("live(eth0, snaplen=4294967296) -> m: merge -> file(o); pcap(a) -> m").message ==
        "snaplen must be 1..4294967295 bytes");
  CHECK(diagnostic_of("pcap(a) -> nic(eth0, retries=2147483648)").message == "retries must be 0..2147483647");
  // Beyond int64 itself: the parser's bound.
  CHECK(diagnostic_of("pcap(a) -> snaplen(9000000TiB) -> file(o)").message ==
        "invalid size '9000000TiB' for 'length': out of range: at most 9223372036854775807 bytes");
  CHECK(diagnostic_of("pcap(a) -> nic(eth0, retries=99999999999999999999)").message ==
        "invalid integer '99999999999999999999' for 'retries': out of range: -9223372036854775808..9223372036854775807");
}

TEST_CASE("errors: a misspelt name gets the nearest, or the list") {
  CHECK(suggestion_or_list("mrege", "stages", stage_names()) == "did you mean 'merge'?");
  const auto all = suggestion_or_list("nosuch", "stages", stage_names());
  CHECK(all.starts_with("valid stages: "));
  CHECK(all.find("pcap") != std::string::npos);
}

// Issue 11, item 20: a stage's arguments may span lines; positions stay those of the text.
TEST_CASE("syntax: arguments span lines, with comments; errors keep their line and column") {
  const auto pipeline = parse_pipeline("t",
                                       "pcap(a.pcap,   # the background\n"
                                       "     filter=tcp,\n"
                                       "\n"
                                       "     shift=1s\n"
                                       "    ) -> file(\n"
                                       "  o.pcap)\n");
  REQUIRE(pipeline.nodes.size() == 2);
  CHECK(pipeline.nodes[0].find("filter")->text == "tcp");
  CHECK(pipeline.nodes[0].find("filter")->span.line == 2);
  CHECK(pipeline.nodes[0].find("filter")->span.col == 13);
  CHECK(pipeline.nodes[0].find("shift")->integer == 1'000'000'000);
  CHECK(pipeline.nodes[1].find("file")->text == "o.pcap");
  CHECK(error_of("pcap(a.pcap,\n  filtr=tcp) -> file(o)") ==
        "t:2:3: error: unknown parameter 'filtr' for stage 'pcap'\n"
        "    2 |   filtr=tcp) -> file(o)\n"
        "      |   ^~~~~\n"
        "note: did you mean 'filter'?\n");
  // A `)` left out: reported at the end of its line, and the next statement still parsed.
  const auto errors = syntax_errors("pcap(a.pcap, at=1s\npcap(b) -> frob(\n");
  REQUIRE(errors.size() == 2);
  CHECK(errors[0].message == "expected ',' or ')'");
  CHECK(errors[0].span.line == 1);
  CHECK(errors[0].span.col == 19);
  CHECK(errors[1].span.line == 2);
}
