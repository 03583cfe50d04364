#include <doctest/doctest.h>
#include <fmt/format.h>

#include "pipeline/description.h"
#include "pipeline/stage.h"
#include "description_util.h"

using namespace vei;

using namespace vei::test::description;

// ---- syntax ------------------------------------------------------------------------------------

TEST_CASE("syntax: the design example's shape and spans") {
  const auto syntax = parse_syntax("t",
                                   "pcap(campus.pcap) -> m: merge -> file(eval.pcap, labels=eval.csv)\n"
                                   "pcap(exploit.pcap, at=+90s) -> m\n");
  REQUIRE(syntax.chains.size() == 2);
  const auto& first = syntax.chains[0].elements;
  REQUIRE(first.size() == 3);

  CHECK(first[0].label.empty());
  CHECK_FALSE(first[0].is_reference);
  CHECK(first[0].call.name == "pcap");
  check_span(first[0].call.name_span, 1, 1, 4);
  REQUIRE(first[0].call.args.size() == 1);
  CHECK(first[0].call.args[0].key.empty());
  CHECK(first[0].call.args[0].value == "campus.pcap");
  check_span(first[0].call.args[0].value_span, 1, 6, 11);

  CHECK(first[1].label == "m");
  check_span(first[1].label_span, 1, 22, 1);
  CHECK_FALSE(first[1].is_reference);
  CHECK(first[1].call.name == "merge");
  check_span(first[1].call.name_span, 1, 25, 5);
  CHECK(first[1].call.args.empty());

  CHECK(first[2].call.name == "file");
  REQUIRE(first[2].call.args.size() == 2);
  CHECK(first[2].call.args[1].key == "labels");
  check_span(first[2].call.args[1].key_span, 1, 50, 6);
  CHECK(first[2].call.args[1].value == "eval.csv");
  check_span(first[2].call.args[1].value_span, 1, 57, 8);

  const auto& second = syntax.chains[1].elements;
  REQUIRE(second.size() == 2);
  REQUIRE(second[0].call.args.size() == 2);
  CHECK(second[0].call.args[1].key == "at");
  CHECK(second[0].call.args[1].value == "+90s");
  check_span(second[0].call.args[1].value_span, 2, 23, 4);
  CHECK(second[1].is_reference);
  CHECK(second[1].label == "m");
  check_span(second[1].label_span, 2, 32, 1);
}

TEST_CASE("syntax: bare names are references to labels declared anywhere, else stage calls") {
  const auto syntax = parse_syntax("t", "m -> file(o); merge -> file(p); merge: merge(); pcap(a) -> merge; x");
  REQUIRE(syntax.chains.size() == 5);
  CHECK(syntax.chains[0].elements[0].is_reference);  // m: no such label, no such stage
  CHECK(syntax.chains[0].elements[0].label == "m");
  // `merge` is declared as a label, so the label wins over the stage of the same name.
  CHECK(syntax.chains[1].elements[0].is_reference);
  CHECK(syntax.chains[3].elements[1].is_reference);
  CHECK(syntax.chains[4].elements[0].is_reference);

  const auto plain = parse_syntax("t", "pcap(a) -> merge -> file(o)");
  const auto& merge = plain.chains[0].elements[1];
  CHECK_FALSE(merge.is_reference);
  CHECK(merge.label.empty());
  CHECK(merge.call.name == "merge");
  check_span(merge.call.name_span, 1, 12, 5);
}

TEST_CASE("syntax: statements, comments and continuation lines") {
  SUBCASE("semicolons separate statements") {
    const auto syntax = parse_syntax("t", "pcap(a) -> m;pcap(b) -> m ; m: merge -> file(o);;");
    REQUIRE(syntax.chains.size() == 3);
    CHECK(syntax.chains[1].elements[0].call.args[0].value == "b");
    check_span(syntax.chains[2].elements[0].label_span, 1, 29, 1);
  }
  SUBCASE("comments run to the end of the line") {
    const auto syntax = parse_syntax("t",
                                     "# a header\n"
                                     "pcap(a) -> file(o) # pcap(b) -> file(p)\n"
                                     "   # indented\n"
                                     "\n");
    REQUIRE(syntax.chains.size() == 1);
    CHECK(syntax.chains[0].elements.size() == 2);
    check_span(syntax.chains[0].elements[0].call.name_span, 2, 1, 4);
  }
  SUBCASE("a line ending with -> continues on the next one") {
    const auto syntax = parse_syntax("t",
                                     "pcap(a) ->   # the background\n"
                                     "\n"
                                     "  m: merge ->\n"
                                     "  file(o)\r\n"
                                     "pcap(b) -> m");
    REQUIRE(syntax.chains.size() == 2);
    const auto& chain = syntax.chains[0].elements;
    REQUIRE(chain.size() == 3);
    check_span(chain[1].label_span, 3, 3, 1);
    check_span(chain[2].call.name_span, 4, 3, 4);
    CHECK(chain[2].call.args[0].value == "o");
  }
  SUBCASE("a stage without arguments, with or without parentheses") {
    const auto syntax = parse_syntax("t", "m: merge() -> file(o); n: merge ( ) -> file(p)");
    CHECK(syntax.chains[0].elements[0].call.args.empty());
    CHECK(syntax.chains[1].elements[0].call.name == "merge");
    CHECK(syntax.chains[1].elements[0].call.args.empty());
  }
  SUBCASE("an empty description has no chains") {
    CHECK(parse_syntax("t", "").chains.empty());
    CHECK(parse_syntax("t", " ;\n# nothing\n").chains.empty());
  }
}

TEST_CASE("syntax: bare values run to the next top-level comma or parenthesis") {
  const auto syntax = parse_syntax(
      "t", "pcap(file = /tmp/a b.pcap , filter=(tcp or udp) and port 80, C:\\x.pcap, 10.0.0.1:80)");
  const auto& args = syntax.chains[0].elements[0].call.args;
  REQUIRE(args.size() == 4);
  CHECK(args[0].key == "file");
  check_span(args[0].key_span, 1, 6, 4);
  CHECK(args[0].value == "/tmp/a b.pcap");
  check_span(args[0].value_span, 1, 13, 13);
  CHECK(args[1].key == "filter");
  CHECK(args[1].value == "(tcp or udp) and port 80");
  CHECK(args[2].key.empty());
  CHECK(args[2].value == "C:\\x.pcap");
  CHECK(args[3].value == "10.0.0.1:80");
}

TEST_CASE("syntax: quoted strings with escapes") {
  const auto syntax = parse_syntax("t", R"(pcap("a, b) \"c\" \\d.pcap", filter = "", "#not a comment"))");
  const auto& args = syntax.chains[0].elements[0].call.args;
  REQUIRE(args.size() == 3);
  CHECK(args[0].value == R"(a, b) "c" \d.pcap)");
  check_span(args[0].value_span, 1, 6, 22);
  CHECK(args[1].key == "filter");
  CHECK(args[1].value.empty());
  check_span(args[1].value_span, 1, 39, 2);
  CHECK(args[2].value == "#not a comment");
}

TEST_CASE("syntax errors: message and span") {
  struct Case {
    std::string_view text;
    std::string_view message;
    int col;
    int length = 1;
  };
  const Case cases[] = {
      {"5x -> file(o)", "expected a stage or label", 1},
      {"-> file(o)", "expected a stage or label", 1},
      {"pcap(a) -> -> file(o)", "expected a stage or label after '->'", 12},
      {"pcap(a) ->", "expected a stage or label after '->'", 11},
      {"pcap(a) ->\n\n", "expected a stage or label after '->'", 11},  // not on a phantom line 3
      {"pcap(a) merge", "expected '->' or the end of the statement", 9},
      {"m: -> file(o)", "expected a stage name after 'm:'", 4},
      {"pcap(a", "expected ',' or ')'", 7},
      {"pcap(\"a\" b)", "expected ',' or ')'", 10},
      {"pcap(a # comment)", "expected ',' or ')'", 18},
      {"pcap(a,)", "expected an argument", 8},
      {"pcap(, a)", "expected an argument", 6},
      {"pcap(at= )", "missing value for 'at'", 10},
      {"pcap(filter=((tcp) or udp", "unbalanced '(' in value", 13, 13},
      {"pcap(\"a.pcap)", "unterminated string", 6},
      {"pcap(\"a\\", "unterminated string", 6},
  };
  for (const auto& c : cases) {
    CAPTURE(c.text);
    const auto d = syntax_error(c.text);
    CHECK(d.message == c.message);
    check_span(d.span, 1, c.col, c.length);
  }
}

TEST_CASE("syntax errors: an unknown escape is reported and parsing goes on") {
  const auto diagnostics = syntax_errors(R"(pcap("a\qb", "\n") -> file(o))");
  REQUIRE(diagnostics.size() == 2);
  CHECK(diagnostics[0].message == "unknown escape sequence '\\q'");
  CHECK(diagnostics[0].note == R"(the escapes are \", \\ and \$)");
  check_span(diagnostics[0].span, 1, 8, 2);
  check_span(diagnostics[1].span, 1, 15, 2);
}

TEST_CASE("syntax errors: every broken statement is reported, in order") {
  const std::string_view text =
      "pcap(a\n"
      "pcap(b) -> m: merge -> -> file(o)\n"
      "m -> file(o) x\n";
  try {
    parse_syntax("<command line>", text);
    FAIL("no error");
  } catch (const DescriptionError& e) {
    CHECK(e.diagnostics().size() == 3);
    CHECK(std::string(e.what()) ==
          "<command line>:1:7: error: expected ',' or ')'\n"
          "    1 | pcap(a\n"
          "      |       ^\n"
          "<command line>:2:24: error: expected a stage or label after '->'\n"
          "    2 | pcap(b) -> m: merge -> -> file(o)\n"
          "      |                        ^\n"
          "<command line>:3:14: error: expected '->' or the end of the statement\n"
          "    3 | m -> file(o) x\n"
          "      |              ^\n");
  }
}

// ---- resolution --------------------------------------------------------------------------------

TEST_CASE("pipeline: the design example resolves to nodes, edges and ordered inputs") {
  const auto pipeline = parse_pipeline("eval.vp", example);
  CHECK(pipeline.where == "eval.vp");
  CHECK(pipeline.text == example);
  REQUIRE(pipeline.nodes.size() == 4);
  const auto& [campus, merge, file, exploit] =
      std::tie(pipeline.nodes[0], pipeline.nodes[1], pipeline.nodes[2], pipeline.nodes[3]);
  for (int i = 0; i < 4; ++i) CHECK(pipeline.nodes[i].id == i);

  CHECK(campus.stage == find_stage("pcap"));
  CHECK(campus.label.empty());
  check_span(campus.span, 1, 1, 4);
  CHECK(campus.inputs.empty());
  CHECK(campus.outputs == std::vector{1});

  CHECK(merge.stage == find_stage("merge"));
  CHECK(merge.label == "m");
  check_span(merge.span, 1, 25, 5);
  CHECK(merge.inputs == std::vector{0, 3});  // declaration order: the background first
  CHECK(merge.outputs == std::vector{2});

  CHECK(file.stage == find_stage("file"));
  CHECK(file.inputs == std::vector{1});
  CHECK(file.outputs.empty());

  CHECK(exploit.inputs.empty());
  CHECK(exploit.outputs == std::vector{1});

  const Value* at = exploit.find("at");
  REQUIRE(at != nullptr);
  CHECK(at->type == ParamType::duration);
  CHECK(at->integer == 90'000'000'000);
  CHECK(at->explicit_sign);
  CHECK(at->given);
  CHECK(at->text == "+90s");
  check_span(at->span, 2, 23, 4);
  CHECK(campus.find("at") == nullptr);      // no default
  CHECK(campus.find("rebase") == nullptr);  // empty default
  CHECK(campus.find("nonsense") == nullptr);

  const Value* input = campus.find("file");
  REQUIRE(input != nullptr);
  CHECK(input->type == ParamType::input);
  CHECK(input->text == "campus.pcap");
  CHECK(input->given);
  check_span(input->span, 1, 6, 11);

  const Value* shift = campus.find("shift");
  REQUIRE(shift != nullptr);
  CHECK_FALSE(shift->given);
  CHECK(shift->integer == 0);
  CHECK(shift->text == "0s");
  CHECK(campus.find("disorder")->text == "clamp");
  CHECK(merge.find("end")->text == "first");
  CHECK(file.find("precision")->text == "auto");
  CHECK(file.find("file")->text == "eval.pcap");
  CHECK(file.find("snaplen") == nullptr);
}

TEST_CASE("pipeline: a label may be used before it is declared; nodes follow first appearance") {
  const auto pipeline = parse_pipeline("t",
                                       "pcap(a) -> m; pcap(b, rebase=none) -> m\n"
                                       "m: merge(end=all) -> out: file(o.pcap, snaplen=64KiB)");
  REQUIRE(pipeline.nodes.size() == 4);
  CHECK(pipeline.nodes[0].find("file")->text == "a");
  CHECK(pipeline.nodes[1].label == "m");
  check_span(pipeline.nodes[1].span, 2, 4, 5);  // the declaration, not the first reference
  CHECK(pipeline.nodes[1].inputs == std::vector{0, 2});
  CHECK(pipeline.nodes[1].find("end")->given);
  CHECK(pipeline.nodes[2].find("rebase")->text == "none");
  CHECK(pipeline.nodes[3].label == "out");
  CHECK(pipeline.nodes[3].find("snaplen")->integer == 65536);
}

TEST_CASE("pipeline: every builtin default is a valid value of its type") {
  for (const Stage* s : stages()) {
    const StageSpec& stage = s->spec();
    for (const auto& param : stage.params) {
      if (param.default_value.empty()) continue;
      CAPTURE(stage.name);
      CAPTURE(param.name);
      Value value;
      std::string error;
      CHECK_MESSAGE(parse_value(param, param.default_value, value, error), error);
    }
  }
}

// ---- values ------------------------------------------------------------------------------------

TEST_CASE("values: durations are signed nanoseconds") {
  CHECK(duration("100ns") == 100);
  CHECK(duration("3us") == 3'000);
  CHECK(duration("3\u00b5s") == 3'000);
  CHECK(duration("2ms") == 2'000'000);
  CHECK(duration("90s") == 90'000'000'000);
  CHECK(duration("1m") == 60'000'000'000);
  CHECK(duration("1h") == 3'600'000'000'000);
  CHECK(duration("90") == 90'000'000'000);  // a bare number is seconds
  CHECK(duration("2.5ms") == 2'500'000);
  CHECK(duration("0.1s") == 100'000'000);
  CHECK(duration(".5us") == 500);
  CHECK(duration("1.500000000000000000000s") == 1'500'000'000);
  CHECK(duration("1.5") == 1'500'000'000);
  CHECK(duration("-1us") == -1'000);
  CHECK(duration("-0.25s") == -250'000'000);
  CHECK(duration(" 2 ms ") == 2'000'000);
  CHECK(duration("9223372036854775807ns") == INT64_MAX);

  CHECK(value_of(ParamType::duration, "+2.5ms").explicit_sign);
  CHECK(value_of(ParamType::duration, "-1us").explicit_sign);
  CHECK_FALSE(value_of(ParamType::duration, "2.5ms").explicit_sign);

  CHECK(value_error(ParamType::duration, "90q") == "unknown unit 'q'");
  CHECK(value_error(ParamType::duration, "1S") == "unknown unit 'S'");
  CHECK(value_error(ParamType::duration, "1e3s") == "unknown unit 'e3s'");
  CHECK(value_error(ParamType::duration, "s") == "expected a number");
  CHECK(value_error(ParamType::duration, "") == "expected a number");
  CHECK(value_error(ParamType::duration, "--1s") == "expected a number");
  CHECK(value_error(ParamType::duration, "1.5ns") == "not a whole number of nanoseconds");
  CHECK(value_error(ParamType::duration, "9223372036854775808ns") == "out of range: at most 9223372036854775807 nanoseconds");
  CHECK(value_error(ParamType::duration, "3000000h") == "out of range: at most 9223372036854775807 nanoseconds");
}

TEST_CASE("values: sizes are whole, non-negative bytes") {
  CHECK(size("1500") == 1500);
  CHECK(size("64B") == 64);
  CHECK(size("1KiB") == 1024);
  CHECK(size("1MiB") == 1 << 20);
  CHECK(size("1GiB") == int64_t{1} << 30);
  CHECK(size("2TiB") == int64_t{2} << 40);
  CHECK(size("1kB") == 1'000);
  CHECK(size("1KB") == 1'000);
  CHECK(size("1MB") == 1'000'000);
  CHECK(size("1GB") == 1'000'000'000);
  CHECK(size("1.5KiB") == 1536);
  CHECK(size("0.5MB") == 500'000);
  CHECK(size("0") == 0);

  CHECK(value_error(ParamType::size, "1.3KiB") == "not a whole number of bytes");
  CHECK(value_error(ParamType::size, "0.5") == "not a whole number of bytes");
  CHECK(value_error(ParamType::size, "-1KiB") == "must not be negative");
  CHECK(value_error(ParamType::size, "1kib") == "unknown unit 'kib'");
  CHECK(value_error(ParamType::size, "big") == "expected a number");
}

TEST_CASE("values: rates, bitrates and multipliers are positive reals") {
  CHECK(real(ParamType::rate, "50pps") == 50);
  CHECK(real(ParamType::rate, "10kpps") == 10'000);
  CHECK(real(ParamType::rate, "1Mpps") == 1'000'000);
  CHECK(real(ParamType::rate, "2.5") == 2.5);
  CHECK(real(ParamType::rate, "0.5kpps") == 500);
  CHECK(value_error(ParamType::rate, "0") == "must be positive");
  CHECK(value_error(ParamType::rate, "-5pps") == "must be positive");
  CHECK(value_error(ParamType::rate, "5mpps") == "unknown unit 'mpps'");

  CHECK(real(ParamType::bitrate, "1000bps") == 1'000);
  CHECK(real(ParamType::bitrate, "64kbps") == 64'000);
  CHECK(real(ParamType::bitrate, "900mbps") == 900e6);
  CHECK(real(ParamType::bitrate, "900Mbps") == 900e6);
  CHECK(real(ParamType::bitrate, "1gbps") == 1e9);
  CHECK(real(ParamType::bitrate, "2.5Gbps") == 2.5e9);
  CHECK(value_error(ParamType::bitrate, "900") == "missing unit");
  CHECK(value_error(ParamType::bitrate, "0gbps") == "must be positive");
  CHECK(value_error(ParamType::bitrate, "9MB") == "unknown unit 'MB'");

  CHECK(real(ParamType::multiplier, "4x") == 4);
  CHECK(real(ParamType::multiplier, "0.5x") == 0.5);
  CHECK(real(ParamType::multiplier, "2") == 2);
  CHECK(value_error(ParamType::multiplier, "0x") == "must be positive");
  CHECK(value_error(ParamType::multiplier, "4X") == "unknown unit 'X'");
}

TEST_CASE("values: integers, booleans, choices, paths and strings") {
  CHECK(value_of(ParamType::integer, "42").integer == 42);
  CHECK(value_of(ParamType::integer, "-7").integer == -7);
  CHECK(value_of(ParamType::integer, "+3").integer == 3);
  CHECK(value_of(ParamType::integer, "9223372036854775807").integer == INT64_MAX);
  CHECK(value_error(ParamType::integer, "9223372036854775808") == "out of range: -9223372036854775808..9223372036854775807");
  CHECK(value_error(ParamType::integer, "4.5") == "expected a whole number");
  CHECK(value_error(ParamType::integer, "+-4") == "expected a whole number");
  CHECK(value_error(ParamType::integer, "ten") == "expected a whole number");

  for (const auto* word : {"true", "yes", "on", "1", "TRUE", "On"})
    CHECK(value_of(ParamType::boolean, word).boolean);
  for (const auto* word : {"false", "no", "off", "0", "No"})
    CHECK_FALSE(value_of(ParamType::boolean, word).boolean);
  CHECK(value_error(ParamType::boolean, "maybe") == "unknown value");

  CHECK(value_error(ParamType::choice, "first") == "<no error>");
  CHECK(value_error(ParamType::choice, "First") == "unknown choice");

  CHECK(value_of(ParamType::input, "/tmp/a b.pcap").text == "/tmp/a b.pcap");
  CHECK(value_of(ParamType::string, "tcp port 80").text == "tcp port 80");
  CHECK(value_error(ParamType::input, "") == "must not be empty");
  CHECK(value_error(ParamType::string, "") == "must not be empty");
}

TEST_CASE("closest_match: edit distance (a swap counts one) within a third of the word") {
  const std::vector<std::string_view> params{"file", "at", "shift", "rebase", "filter", "disorder"};
  CHECK(closest_match("att", params) == "at");
  CHECK(closest_match("fiter", params) == "filter");
  CHECK(closest_match("disordr", params) == "disorder");
  CHECK(closest_match("shfit", params) == "shift");  // a swap of neighbours is one edit
  CHECK(closest_match("mrege", {"pcap", "merge", "file"}) == "merge");
  CHECK(closest_match("zzz", params).empty());
  CHECK(closest_match("abcdef", {"abcdxy"}) == "abcdxy");  // 2 <= 6/3
  CHECK(closest_match("abcdef", {"abcxyz"}).empty());      // 3 > 6/3
  CHECK(closest_match("at", {"at"}).empty());              // an exact match is no suggestion
  CHECK(closest_match("ab", {"xb", "ax"}) == "xb");        // ties: the first candidate
  CHECK(closest_match("ab", {"xyz", "abc"}) == "abc");
  CHECK(closest_match("ab", {}).empty());
}

// ---- validation errors -------------------------------------------------------------------------
