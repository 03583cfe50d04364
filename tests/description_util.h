// What the description tests share (tests/test_description.cpp, tests/test_description_errors.cpp).
#pragma once

#include <doctest/doctest.h>
#include <fmt/format.h>
#include "pipeline/description.h"
#include "pipeline/stage.h"

namespace vei::test::description {


// The formatted error of a description that must not parse.
inline std::string error_of(std::string_view text) {
  try {
    parse_pipeline("t", text);
  } catch (const DescriptionError& e) {
    return e.what();
  }
  return "<no error>";
}

inline std::vector<Diagnostic> diagnostics_of(std::string_view text) {
  try {
    parse_pipeline("t", text);
  } catch (const DescriptionError& e) {
    return e.diagnostics();
  }
  return {};
}

// The one diagnostic of a description with exactly one problem.
inline Diagnostic diagnostic_of(std::string_view text) {
  const auto diagnostics = diagnostics_of(text);
  REQUIRE_MESSAGE(diagnostics.size() == 1, error_of(text));
  return diagnostics[0];
}

inline std::vector<Diagnostic> syntax_errors(std::string_view text) {
  try {
    parse_syntax("t", text);
  } catch (const DescriptionError& e) {
    return e.diagnostics();
  }
  return {};
}

inline Diagnostic syntax_error(std::string_view text) {
  const auto diagnostics = syntax_errors(text);
  REQUIRE(diagnostics.size() == 1);
  return diagnostics[0];
}

inline void check_span(Span span, int line, int col, int length) {
  CHECK(span.line == line);
  CHECK(span.col == col);
  CHECK(span.length == length);
}

inline Value value_of(ParamType type, std::string_view text) {
  const ParamSpec spec{"p", type, "", ""};
  Value value;
  std::string error;
  REQUIRE_MESSAGE(parse_value(spec, text, value, error), error);
  CHECK(value.type == type);
  CHECK(value.text == text);
  return value;
}

inline std::string value_error(ParamType type, std::string_view text) {
  const ParamSpec spec{"p", type, "", "", {"first", "none"}};
  Value value;
  std::string error;
  return parse_value(spec, text, value, error) ? "<no error>" : error;
}

inline int64_t duration(std::string_view text) { return value_of(ParamType::duration, text).integer; }
inline int64_t size(std::string_view text) { return value_of(ParamType::size, text).integer; }
inline double real(ParamType type, std::string_view text) { return value_of(type, text).real; }

inline std::vector<std::string_view> all_stage_names() {
  std::vector<std::string_view> names;
  for (const Stage* s : stages()) names.push_back(s->name());
  return names;
}

constexpr std::string_view example =
    "pcap(campus.pcap) -> m: merge -> file(eval.pcap)\n"
    "pcap(exploit.pcap, at=+90s) -> m\n";


}  // namespace vei::test::description
