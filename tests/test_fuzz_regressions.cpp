// What the fuzzers (fuzz/) found, kept: every input in tests/fuzz_regressions/<target>/ goes through
// the same harness as the fuzz target (fuzz/harness.h), which aborts on a crash, an escaping
// exception, a leaked descriptor or a broken invariant. Plus the resource limits of issue 5
// (a 100 MB description, a record with caplen 0xFFFFFFFF, a pcapng block claiming 4 GiB), checked
// for the errors they give.
#include <doctest/doctest.h>
#include <fmt/format.h>

#include <algorithm>
#include <chrono>
#include <filesystem>
#include <fstream>
#include <iterator>

#include "fuzz/harness.h"

namespace fs = std::filesystem;
using namespace vei;

namespace {

// Not __FILE__: ccache's base_dir and -ffile-prefix-map make it relative to wherever the compiler ran.
const fs::path regressions = fs::path(VEIPIPE_TESTS_DIR) / "fuzz_regressions";

std::string slurp(const fs::path& p) {
  std::ifstream in(p, std::ios::binary);
  return {std::istreambuf_iterator<char>(in), {}};
}

std::vector<fs::path> inputs(const std::string& target) {
  std::vector<fs::path> files;
  if (fs::is_directory(regressions / target))
    for (const auto& e : fs::directory_iterator(regressions / target))
      if (e.is_regular_file()) files.push_back(e.path());
  std::sort(files.begin(), files.end());
  return files;
}

template <class Harness>
void replay(const std::string& target, Harness harness) {
  for (const auto& file : inputs(target)) {
    INFO(file.string());
    harness(slurp(file));
  }
}

// Reads a capture to its end the way the engine does; returns the report's messages.
struct Read {
  std::vector<std::string> messages;
  uint64_t packets = 0;
  uint64_t dropped = 0;
};

Read read_capture(const fs::path& path) {
  Report report;
  report.set_quiet(true);
  SourceOptions options;
  options.report = &report;
  auto source = open_capture(path.string(), options);
  Batch batch;
  batch.reserve_arena(default_arena_size);
  do source->fill(batch);
  while (!batch.last);
  return {report.messages(), source->stats().packets, source->stats().dropped};
}

bool any_contains(const std::vector<std::string>& messages, std::string_view what) {
  return std::ranges::any_of(messages, [&](const std::string& m) { return m.find(what) != std::string::npos; });
}

}  // namespace

TEST_CASE("fuzz regressions: kept inputs go through the fuzz harnesses unharmed") {
  replay("description", [](std::string_view s) { fuzz::description(s); });
  replay("control", [](std::string_view s) { fuzz::control(s); });
  replay("pcap", [](std::string_view s) { fuzz::captures(s); });
  replay("pcapng", [](std::string_view s) { fuzz::pcapng_captures(s); });
  replay("flow_id", [](std::string_view s) { fuzz::flow(s); });
  replay("script", [](std::string_view s) { fuzz::script(s); });
  CHECK(inputs("pcap").size() + inputs("pcapng").size() > 0);
}

TEST_CASE("fuzz regressions: pcapng times beyond int64 nanoseconds are dropped, not wrapped") {
  const auto read = read_capture(regressions / "pcapng" / "tsresol-seconds-beyond-int64-ns.pcapng");
  CHECK(read.packets == 1);
  CHECK(read.dropped == 2);
  CHECK(any_contains(read.messages, "record 0: timestamp out of range"));
}

TEST_CASE("limits: a record with caplen 0xFFFFFFFF ends the file with a clear warning") {
  for (const auto* name : {"item7-caplen-ffffffff.pcap", "item7-caplen-ffffffff-snaplen-ffffffff.pcap"}) {
    INFO(name);
    const auto read = read_capture(regressions / "pcap" / name);
    CHECK(read.packets == 1);
    CHECK(any_contains(read.messages, "corrupt record header (caplen 4294967295 exceeds the limit 262144"));
  }
}

TEST_CASE("limits: a pcapng block claiming 4 GiB is refused by the reader's bound, with its message") {
  const auto epb = read_capture(regressions / "pcapng" / "item7-epb-claims-4GiB.pcapng");
  CHECK(epb.packets == 1);
  CHECK(any_contains(epb.messages, "corrupt block length 4294967280"));
  try {
    read_capture(regressions / "pcapng" / "item7-idb-claims-4GiB.pcapng");
    FAIL("opened");
  } catch (const std::runtime_error& e) {
    CHECK(std::string(e.what()).find("corrupt block length 4294967280") != std::string::npos);
  }
  CHECK_THROWS_AS(read_capture(regressions / "pcapng" / "item7-shb-claims-4GiB.pcapng"), std::runtime_error);
}

TEST_CASE("limits: a 100 MB description is refused at once, naming the limit") {
  const std::string text(100 << 20, 'a');
  const auto start = std::chrono::steady_clock::now();
  try {
    parse_pipeline("big.vp", text);
    FAIL("parsed");
  } catch (const DescriptionError& e) {
    REQUIRE(e.diagnostics().size() == 1);
    CHECK(e.diagnostics()[0].message == "the description is longer than the 1048576 bytes accepted");
    CHECK(std::string_view(e.what()).size() < 1000);  // the line is shown as an excerpt
  }
  CHECK(std::chrono::steady_clock::now() - start < std::chrono::seconds(10));
}

TEST_CASE("limits: a description just under the limit costs little however it is wrong") {
  constexpr size_t size = max_description_size - 100;
  const auto check_quick = [](const std::string& text, size_t diagnostics, std::string_view first) {
    const auto start = std::chrono::steady_clock::now();
    try {
      make_plan(parse_pipeline("t", text));
      FAIL("accepted");
    } catch (const DescriptionError& e) {
      CHECK(e.diagnostics().size() == diagnostics);
      CHECK(e.diagnostics()[0].message == first);
      CHECK(std::string_view(e.what()).size() < 50'000);
    }
    CHECK(std::chrono::steady_clock::now() - start < std::chrono::seconds(30));  // minutes if quadratic
  };
  // One identifier a megabyte long: no edit-distance table of it, the name cut in the message.
  check_quick(std::string(size, 'a'), 1,
              fmt::format("unknown label or stage '{}...'", std::string(48, 'a')));
  // Half a million errors: the first max_diagnostics are kept, the rest counted.
  std::string semis;
  while (semis.size() < size) semis += "x;";
  check_quick(semis, max_diagnostics, "unknown label or stage 'x'");
  try {
    parse_pipeline("t", semis);
  } catch (const DescriptionError& e) {
    CHECK(std::string_view(e.what()).find(fmt::format("t: {} more errors not shown", semis.size() / 2 - max_diagnostics)) !=
          std::string_view::npos);
  }
  // Tens of thousands of sources that feed nothing: make_plan stays linear.
  std::string sources = "pcap(a) -> file(o)\n";
  while (sources.size() < size) sources += "pcap(b)\n";
  check_quick(sources, max_diagnostics, "this source feeds nothing");
}

TEST_CASE("limits: a long source line is shown as an excerpt around the error") {
  const std::string text = "pcap(" + std::string(1000, 'p') + ") -> file(o, zzz=1)";
  // The error is near the end of the line: its last 160 characters are shown.
  const size_t at = text.find("zzz");
  const size_t begin = text.size() - 160;
  try {
    parse_pipeline("t", text);
    FAIL("parsed");
  } catch (const DescriptionError& e) {
    CHECK(std::string(e.what()) == fmt::format("t:1:{}: error: unknown parameter 'zzz' for stage 'file'\n", at + 1) +
                                       "    1 | ..." + text.substr(begin) + "\n" +
                                       "      | " + std::string(3 + at - begin, ' ') + "^~~\n" +
                                       "note: valid parameters: file, format, comments, precision, snaplen, labels\n");
  }
  // At the start of a long line: cut after.
  const std::string start = "zzz(a) -> file(" + std::string(1000, 'p') + ")";
  try {
    parse_pipeline("t", start);
    FAIL("parsed");
  } catch (const DescriptionError& e) {
    CHECK(std::string(e.what()).starts_with("t:1:1: error: unknown stage 'zzz'\n"
                                            "    1 | " + start.substr(0, 160) + "...\n"
                                            "      | ^~~\n"));
  }
}
