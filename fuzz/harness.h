// What each fuzz target does with one input, in plain C++ so that the libFuzzer targets (fuzz/*.cpp,
// clang only) and the unit tests (tests/test_fuzz_regressions.cpp, any compiler) run the same code:
// the unit tests replay every input kept in tests/fuzz_regressions/<target>/.
//
// An expected outcome returns normally: a DescriptionError for a bad description, a runtime_error
// naming the file for a capture that cannot be opened, an "error: ..." reply on the control socket.
// Anything else is a bug and aborts: a crash, a sanitizer report, another exception escaping, a leaked
// descriptor, or a broken invariant of what the code hands on (checked here with FUZZ_CHECK).
#pragma once

#include <fcntl.h>
#include <sys/mman.h>
#include <unistd.h>

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <limits>
#include <memory>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

#include "pipeline/description.h"
#include "pipeline/plan.h"
#include "pipeline/stage.h"
#include "stages/rewrite.h"
#include "core/batch.h"
#include "core/flow_id.h"
#include "stages/control.h"
#include "core/pcap_format.h"
#include "core/report.h"
#include "stages/script.h"
#include "stages/snaplen.h"
#include "core/timeline_source.h"

namespace vei::fuzz {

[[noreturn]] inline void broken(const char* what, const char* file, int line) {
  std::fprintf(stderr, "%s:%d: fuzz invariant broken: %s\n", file, line, what);
  std::abort();
}

#define FUZZ_CHECK(cond) ((cond) ? void(0) : ::vei::fuzz::broken(#cond, __FILE__, __LINE__))

// The lowest free descriptor: it grows when a run leaks one.
inline int lowest_free_fd() {
  const int fd = ::open("/dev/null", O_RDONLY | O_CLOEXEC);
  FUZZ_CHECK(fd >= 0);
  ::close(fd);
  return fd;
}

// ---- the description parser --------------------------------------------------------------------

inline void check_diagnostics(const DescriptionError& e, std::string_view text) {
  FUZZ_CHECK(!e.diagnostics().empty());
  FUZZ_CHECK(std::string_view(e.what()).find("error: ") != std::string_view::npos);
  const auto lines = static_cast<int>(std::count(text.begin(), text.end(), '\n')) + 1;
  for (const auto& d : e.diagnostics()) {
    FUZZ_CHECK(d.span.length >= 1);
    // Line 0 is about the text as a whole (not UTF-8, too long): no position to show.
    if (d.span.line != 0) FUZZ_CHECK(d.span.line >= 1 && d.span.line <= lines && d.span.col >= 1);
    FUZZ_CHECK(!d.message.empty());
  }
}

// parse_pipeline, then make_plan and describe_plan on what parses: a DescriptionError is the only
// failure allowed.
inline void description(std::string_view text) {
  try {
    const Pipeline pipeline = parse_pipeline("<fuzz>", text);
    FUZZ_CHECK(!pipeline.nodes.empty());
    for (const auto& node : pipeline.nodes) {
      FUZZ_CHECK(node.stage != nullptr);
      for (int id : node.inputs) FUZZ_CHECK(id >= 0 && static_cast<size_t>(id) < pipeline.nodes.size());
      for (int id : node.outputs) FUZZ_CHECK(id >= 0 && static_cast<size_t>(id) < pipeline.nodes.size());
    }
    try {
      const Plan plan = make_plan(pipeline);
      FUZZ_CHECK(plan.sink >= 0 && !plan.sources.empty());
      FUZZ_CHECK(!describe_plan(plan, false).empty());
      FUZZ_CHECK(!describe_plan(plan, true).empty());
    } catch (const DescriptionError& e) {
      check_diagnostics(e, text);
    }
  } catch (const DescriptionError& e) {
    check_diagnostics(e, text);
  }
}

// ---- capture readers ---------------------------------------------------------------------------

struct CaptureRun {
  bool pipe = false;           // a pipe (the reader's streaming mode) rather than a regular file
  size_t arena = 64 * 1024;    // the batch's arena: small ones exercise records cut at its end
  bool clamp_disorder = true;  // disorder=clamp or keep
  bool rebase = false;         // map the first record to 1 s, in ns, as `at=` does
  const char* filter = nullptr;
  // Run every batch through rewrite (every IPv4 and IPv6 address's top bit flipped, the MACs set) and
  // snaplen(64), as a chain after the source would.
  bool transforms = false;
};

// The transforms a chain would apply to this source's packets: the rewriter only where its link
// type carries addresses.
inline std::vector<std::unique_ptr<Transform>> fuzz_chain(uint32_t linktype) {
  std::vector<std::unique_ptr<Transform>> chain;
  RewriteOptions rewrite;
  rewrite.src_ip = {parse_address_map("0.0.0.0/1:128.0.0.0/1"), parse_address_map("128.0.0.0/1:0.0.0.0/1")};
  if (linktype != 228)  // IPV4: no IPv6 to find (the rewriter refuses the maps)
    for (const char* map : {"[::/1]:[8000::/1]", "[8000::/1]:[::/1]"}) rewrite.src_ip.push_back(parse_address_map(map));
  rewrite.dst_ip = rewrite.both_ip = rewrite.src_ip;  // both_ip: ARP's too
  if (linktype == 1) rewrite.src_mac = rewrite.dst_mac = packets::Mac{2, 0, 0, 0, 0, 1};
  try {
    chain.push_back(std::make_unique<AddressRewriter>(std::move(rewrite), linktype));
  } catch (const std::invalid_argument&) {  // a link type without IP addresses to find
  }
  chain.push_back(std::make_unique<SnaplenCutter>(64));
  return chain;
}

// A descriptor reading `bytes`: a memfd (a regular file) or a pipe holding them all.
inline int input_fd(std::string_view bytes, bool pipe) {
  int fds[2];
  int write_fd;
  int read_fd;
  if (pipe) {
    FUZZ_CHECK(::pipe2(fds, O_CLOEXEC) == 0);
    read_fd = fds[0];
    write_fd = fds[1];
    // All of it must fit before the reader starts: 1 MiB is the default pipe-max-size.
    if (bytes.size() > 65536 && ::fcntl(write_fd, F_SETPIPE_SZ, static_cast<int>(bytes.size())) < 0) {
      ::close(read_fd);
      ::close(write_fd);
      return -1;
    }
  } else {
    read_fd = write_fd = ::memfd_create("fuzz", MFD_CLOEXEC);
    FUZZ_CHECK(read_fd >= 0);
  }
  for (std::string_view rest = bytes; !rest.empty();) {
    const ssize_t n = ::write(write_fd, rest.data(), rest.size());
    FUZZ_CHECK(n > 0);
    rest.remove_prefix(static_cast<size_t>(n));
  }
  if (pipe) ::close(write_fd);
  return read_fd;
}

// Opens `bytes` as a capture through open_capture("/proc/self/fd/N") and reads it to its end.
inline void capture(std::string_view bytes, const CaptureRun& run) {
  const int fd = input_fd(bytes, run.pipe);
  if (fd < 0) return;
  Report report;
  report.set_quiet(true);
  SourceOptions options;
  options.name = "fuzz";
  options.report = &report;
  options.clamp_disorder = run.clamp_disorder;
  if (run.filter) options.filter = run.filter;
  std::unique_ptr<TimelineSource> source;
  try {
    source = open_capture("/proc/self/fd/" + std::to_string(fd), options);
  } catch (const std::runtime_error& e) {
    FUZZ_CHECK(std::string_view(e.what()).starts_with("fuzz: "));
    ::close(fd);
    return;
  }
  ::close(fd);  // the reader opened its own

  if (run.filter) {
    try {
      source->compile_filter();
    } catch (const std::runtime_error&) {  // a link type libpcap cannot compile filters for
    }
  }
  const auto precision = run.rebase ? pcap::Precision::ns : pcap::Precision::us;
  int64_t offset = 0;
  if (run.rebase) {
    // The engine's `at=1s`: the first record goes to 1 s. Saturated: the first time may be anything.
    const int64_t first = source->info().first_ts_ns.value_or(0);
    if (__builtin_sub_overflow(pcap::ns_per_s, first, &offset)) offset = first < 0 ? INT64_MAX : INT64_MIN;
  }
  source->set_mapping(offset, precision);

  const auto chain = run.transforms ? fuzz_chain(source->info().linktype) : decltype(fuzz_chain(0)){};
  Batch batch;
  batch.reserve_arena(run.arena);
  int64_t last_ts = INT64_MIN;
  uint64_t delivered = 0;
  // Every fill but the last makes progress through the input (a whole record at least).
  const size_t max_fills = bytes.size() / record_header_size + 3;
  for (size_t fills = 0;; ++fills) {
    FUZZ_CHECK(fills < max_fills);
    source->fill(batch);
    const size_t filled = batch.records.size();
    for (const auto& transform : chain) {
      const TransformStats done = transform->apply(batch);
      FUZZ_CHECK(done.changed + done.dropped <= filled);
    }
    FUZZ_CHECK(batch.used <= batch.capacity());
    uint64_t sum = 0;
    // A reader's records start after its arena's headroom (core/input_fd.h); transforms move them down.
    size_t next = batch.records.empty() ? batch.used : batch.records.front().offset;
    for (const Record& r : batch.records) {
      FUZZ_CHECK(r.offset + record_header_size + r.caplen <= batch.used);
      FUZZ_CHECK(!run.transforms || r.caplen <= 64);
      FUZZ_CHECK(pcap::representable(r.ts_ns));
      if (run.clamp_disorder) FUZZ_CHECK(r.ts_ns >= last_ts);
      last_ts = std::max(last_ts, r.ts_ns);
      if (batch.raw_is_output) {
        // Back to back, and the header in the arena is the one the output wants.
        FUZZ_CHECK(r.offset == next);
        const std::byte* h = batch.data() + r.offset;
        FUZZ_CHECK(pcap::load32(h + 8, false) == r.caplen && pcap::load32(h + 12, false) == r.len);
        const int64_t sec = pcap::load32(h, false);
        const int64_t frac = pcap::load32(h + 4, false);
        FUZZ_CHECK(sec == r.ts_ns / pcap::ns_per_s &&
                   frac == (precision == pcap::Precision::ns ? r.ts_ns % pcap::ns_per_s
                                                             : r.ts_ns % pcap::ns_per_s / 1000));
        next = r.offset + record_header_size + r.caplen;
      }
      // Reads every byte handed on, so that ASan checks them.
      const std::byte* p = batch.data() + r.offset + record_header_size;
      for (uint32_t i = 0; i < r.caplen; ++i) sum += static_cast<uint8_t>(p[i]);
    }
    if (batch.raw_is_output) FUZZ_CHECK(next == batch.used);
    volatile uint64_t sink = sum;
    (void)sink;
    delivered += filled;
    if (batch.last) break;
  }
  FUZZ_CHECK(source->stats().packets == delivered);
  // A finished source stays finished.
  source->fill(batch);
  FUZZ_CHECK(batch.last && batch.records.empty());
}

// Each input is read twice: from a regular file with the engine's usual settings and a chain of
// transforms, and from a pipe through a small arena with the other options.
inline void captures(std::string_view bytes) {
  const int fd = lowest_free_fd();
  capture(bytes, {.transforms = true});
  capture(bytes, {.pipe = true, .arena = 256, .clamp_disorder = false, .rebase = true, .filter = "len >= 60"});
  FUZZ_CHECK(lowest_free_fd() == fd);  // every descriptor closed, on every path
}

// The pcapng path: the input always starts with a Section Header Block's type, so that every input
// reaches libpcap's pcapng reader through the prefix cookie.
inline void pcapng_captures(std::string_view bytes) {
  std::string data(bytes);
  const uint32_t magic = pcap::magic_pcapng;
  if (data.size() < 4) data.resize(4);
  std::memcpy(data.data(), &magic, 4);
  captures(data);
}

// ---- the control socket's line handling ---------------------------------------------------------

// What the engine's control handler does with a line (Engine::Impl::inject_stage), short of
// injecting: parse it as one source stage and its transforms, and build them. Only sources that read no file are built: `pcap(...)` would
// open whatever path the input names. Errors are answered like the engine's.
inline std::string control_handler(std::string_view line) {
  try {
    const auto description = parse_pipeline("<inject>", line);
    if (!is_source_chain(description)) return "error: inject takes one source stage, optionally followed by transforms";
    const auto chain = make_line_transforms(description, {1, pcap::max_snaplen});
    const Node& node = description.nodes[0];
    if (!paths(node, ParamType::input).empty()) return "ok 0";
    Report report;
    report.set_quiet(true);
    SourceOptions options;
    options.report = &report;
    options.rank = 1;
    auto source = open_line_source(description, std::move(options), SourceContext{});
    source->set_mapping(-source->info().first_ts_ns.value_or(0), pcap::Precision::ns);
    // The first few batches: enough to build the packets, bounded whatever the count.
    Batch batch;
    batch.reserve_arena(16 * 1024);
    size_t packets = 0;
    for (int i = 0; i < 4; ++i) {
      source->fill(batch);
      for (const auto& transform : chain) transform->apply(batch);
      packets += batch.records.size();
      for (const Record& r : batch.records) FUZZ_CHECK(r.offset + record_header_size + r.caplen <= batch.used);
      if (batch.last) break;
    }
    return "ok " + std::to_string(packets);
  } catch (const DescriptionError& e) {
    std::string message;
    for (const auto& d : e.diagnostics()) message += (message.empty() ? "col " : "; col ") + std::to_string(d.span.col) + ": " + d.message;
    return "error: " + message;
  } catch (const std::logic_error& e) {
    std::fprintf(stderr, "logic_error: %s\n", e.what());
    broken("a logic_error escaped", __FILE__, __LINE__);
  } catch (const std::runtime_error& e) {
    return std::string("error: ") + e.what();
  }
  return {};
}

struct ControlResult {
  std::string out;
  size_t answered = 0;
  bool overlong = false;
};

// Feeds `bytes` to control::take_lines in chunks of `chunk` bytes, as recv() would hand them over,
// until the end or until the connection is dropped.
inline ControlResult control_lines(std::string_view bytes, size_t chunk, const ControlSocket::Handler& handler,
                                   size_t limit) {
  ControlResult result;
  std::string pending;
  for (size_t at = 0; at < bytes.size() && !result.overlong; at += chunk) {
    const auto taken = control::take_lines(pending, bytes.substr(at, chunk), handler, result.out, limit);
    result.answered += taken.answered;
    result.overlong = taken.overlong;
    FUZZ_CHECK(pending.size() <= limit || taken.overlong);
  }
  const auto replies = static_cast<size_t>(std::count(result.out.begin(), result.out.end(), '\n'));
  FUZZ_CHECK(replies == result.answered + (result.overlong ? 1 : 0));
  FUZZ_CHECK(result.out.empty() || result.out.back() == '\n');
  return result;
}

// The same bytes cut into the server's 16 KiB reads and into small pieces give the same replies:
// one line each, in order. Twice: with the engine-like handler and the server's line limit, then
// with a cheap echoing handler and a small limit (16 to 271 bytes, from the first byte), so that
// small inputs reach the overlong-line case.
inline void control(std::string_view bytes) {
  const auto first = bytes.empty() ? 0 : static_cast<uint8_t>(bytes[0]);
  const size_t small = 1 + first % 13;
  const ControlSocket::Handler handler = control_handler;
  const ControlResult whole = control_lines(bytes, 16 * 1024, handler, control::max_line);
  const ControlResult pieces = control_lines(bytes, small, handler, control::max_line);
  FUZZ_CHECK(whole.out == pieces.out);
  FUZZ_CHECK(whole.answered == pieces.answered && whole.overlong == pieces.overlong);

  const size_t limit = 16 + first;
  const ControlSocket::Handler echo = [limit](std::string_view line) {
    FUZZ_CHECK(line.size() <= limit && line.find('\0') == std::string_view::npos);
    return std::to_string(line.size()) + " " + std::string(line);
  };
  const ControlResult limited_whole = control_lines(bytes, 16 * 1024, echo, limit);
  const ControlResult limited_pieces = control_lines(bytes, small, echo, limit);
  FUZZ_CHECK(limited_whole.out == limited_pieces.out);
  FUZZ_CHECK(limited_whole.answered == limited_pieces.answered && limited_whole.overlong == limited_pieces.overlong);
}

// ---- flow ids (the labels' conversation column) -----------------------------------------------

// The link types flow_id decodes, and one it does not; the input's first byte picks one.
inline constexpr uint32_t flow_linktypes[] = {1, 101, 113, 228, 229, 276, 147};

// The first byte picks the link type, the rest is the frame. The id must be empty or of a form the
// labels document, and need no quoting in a CSV field or JSON string.
inline void flow(std::string_view bytes) {
  if (bytes.empty()) return;
  const uint32_t linktype = flow_linktypes[static_cast<uint8_t>(bytes[0]) % std::size(flow_linktypes)];
  const std::string_view frame = bytes.substr(1);
  const std::string id = flow_id(linktype, {reinterpret_cast<const std::byte*>(frame.data()), frame.size()});
  if (id.empty()) return;
  FUZZ_CHECK(id.starts_with("tcp ") || id.starts_with("udp ") || id.starts_with("icmp ") || id.starts_with("ip "));
  FUZZ_CHECK(std::ranges::none_of(id, [](char c) { return c == ',' || c == '"' || c == '\\' || c < 0x20; }));
}

// ---- script(FILE)'s parser ----------------------------------------------------------------------

// Every diagnostic lies in the text and formats like a description's; without one, the actions are
// in time order, each names an event and an actor of the script.
inline void script(std::string_view text) {
  std::vector<Diagnostic> errors;
  const Script s = parse_script("fuzz.vei", std::string(text), errors);
  const auto lines = static_cast<int>(std::count(text.begin(), text.end(), '\n')) + 1;
  for (const auto& d : errors) {
    FUZZ_CHECK(d.span.line >= 1 && d.span.line <= lines);
    FUZZ_CHECK(d.span.col >= 1 && d.span.length >= 1);
  }
  if (!errors.empty()) {
    const DescriptionError e(s.path, s.text, errors);
    FUZZ_CHECK(std::string_view(e.what()).find("error: ") != std::string_view::npos);
    return;
  }
  for (size_t i = 0; i < s.actions.size(); ++i) {
    FUZZ_CHECK(s.actions[i].event != nullptr);
    FUZZ_CHECK(s.actions[i].actor < s.actors.size());
    FUZZ_CHECK(i == 0 || s.actions[i - 1].at_ns <= s.actions[i].at_ns);
  }
}

}  // namespace vei::fuzz
