// define(NAME value), $NAME and the command line's -D (pipeline/description.h): what is substituted
// where, and the caret errors of an undefined name, a redefinition and an unused -D.

#include <doctest/doctest.h>
#include <fmt/format.h>
#include "pipeline/description.h"
#include "description_util.h"

using namespace vei;
using namespace vei::test::description;

namespace {

std::string error_with(std::string_view text, const Defines& defines) {
  try {
    parse_pipeline("t", text, defines);
  } catch (const DescriptionError& e) {
    return e.what();
  }
  return "<no error>";
}

}  // namespace

TEST_CASE("defines: $NAME and ${NAME} in bare and quoted values, defined anywhere") {
  const auto syntax = parse_syntax("t",
                                   "pcap($dir/${bg}2.pcap, at=+$gap) -> m: merge -> file(\"$dir/o $$\\$x.pcap\")\n"
                                   "define(dir /data, $bg \"campus\") # Click's spelling of the name too\n"
                                   "define(gap 90s)\n");
  REQUIRE(syntax.definitions.size() == 3);
  CHECK(syntax.definitions[1].name == "bg");
  CHECK(syntax.definitions[1].value == "campus");
  check_span(syntax.definitions[1].name_span, 2, 20, 2);
  check_span(syntax.definitions[1].value_span, 2, 23, 8);
  const auto& pcap = syntax.chains[0].elements[0].call.args;
  CHECK(pcap[0].value == "/data/campus2.pcap");
  check_span(pcap[0].value_span, 1, 6, 16);  // the value as written
  REQUIRE(pcap[0].references.size() == 2);
  check_span(pcap[0].references[1].span, 1, 11, 5);
  CHECK(pcap[1].value == "+90s");
  // `$` before no name is itself; `\$` in quotes is a `$`.
  CHECK(syntax.chains[0].elements[2].call.args[0].value == "/data/o $$$x.pcap");
}

TEST_CASE("defines: the command line's override the text's and stand for missing ones") {
  const auto pipeline =
      parse_pipeline("t", "define(bg a.pcap)\npcap($bg) -> file($out)", {{"bg", "b.pcap"}, {"out", "o.pcap"}});
  REQUIRE(pipeline.nodes.size() == 2);
  CHECK(pipeline.nodes[0].find("file")->text == "b.pcap");
  CHECK(pipeline.nodes[1].find("file")->text == "o.pcap");
  // Substituted values are checked like written ones, the caret under what was written.
  CHECK(error_with("pcap(a, at=$gap) -> file(o)", {{"gap", "9q"}}) ==
        "t:1:12: error: invalid duration '9q' for 'at': unknown unit 'q'\n"
        "    1 | pcap(a, at=$gap) -> file(o)\n"
        "      |            ^~~~\n"
        "note: valid units: ns, us, \u00b5s, ms, s, m, h (default s)\n");
}

TEST_CASE("defines: errors") {
  CHECK(error_of("define(bg a, gap 1s)\npcap($gb) -> file(o)") ==
        "t:2:6: error: undefined '$gb'\n"
        "    2 | pcap($gb) -> file(o)\n"
        "      |      ^~~\n"
        "note: did you mean '$bg'? names: bg, gap\n");
  CHECK(error_of("pcap(${bg}) -> file(o)") ==
        "t:1:6: error: undefined '$bg'\n"
        "    1 | pcap(${bg}) -> file(o)\n"
        "      |      ^~~~~\n"
        "note: define it: define(bg value), or -D bg=value on the command line\n");
  CHECK(error_of("define(bg a)\ndefine(x 1, bg b)\npcap($bg) -> file(o)") ==
        "t:2:13: error: 'bg' is already defined\n"
        "    2 | define(x 1, bg b)\n"
        "      |             ^~\n"
        "note: first defined at 1:8\n");
  CHECK(error_with("define(bg a)\npcap($bg) -> file(o)", {{"gb", "x"}}) ==
        "t: error: -D gb: the description never uses $gb\n"
        "note: did you mean '$bg'? names: bg\n");
  CHECK(error_with("pcap(a) -> file(o)", {{"bg", "x"}}) ==
        "t: error: -D bg: the description never uses $bg\n"
        "note: it uses no $NAME\n");

  // 2,200 characters of references to a 1,000-byte value: refused past max_description_size, at
  // the reference that crosses it.
  std::string many = fmt::format("define(a {})\npcap(", std::string(1000, 'x'));
  for (int i = 0; i < 1100; ++i) many += "$a";
  const auto too_long = diagnostic_of(many + ") -> file(o)");
  CHECK(too_long.message ==
        fmt::format("the values of the $NAMEs make the description longer than the {} bytes accepted",
                    max_description_size));
  check_span(too_long.span, 2, 6 + 2 * 1048, 2);

  struct Case {
    std::string_view text;
    std::string_view message;
    int col;
  };
  for (const auto& c : {
           Case{"define(bg)", "expected a space, then the value of 'bg'", 10},
           Case{"define(bg=a)", "expected a space, then the value of 'bg'", 10},
           Case{"define(1 a)", "expected a name to define", 8},
           Case{"define(a $b)", "'$b' in a define: its values are taken as written", 10},
           Case{"define(a b) -> file(o)", "expected the end of the statement: define(...) stands alone", 13},
           Case{"pcap(${bg) -> file(o)", "expected a name and '}' after '${'", 6},
       }) {
    CAPTURE(c.text);
    const auto d = syntax_error(c.text);
    CHECK(d.message == c.message);
    CHECK(d.span.col == c.col);
  }
}

TEST_CASE("defines: a shebang line is a comment") {
  const auto pipeline =
      parse_pipeline("t", "#!/usr/bin/env -S veipipe run\ndefine(bg a.pcap)\npcap($bg) -> file(o.pcap)\n");
  CHECK(pipeline.nodes.size() == 2);
}
