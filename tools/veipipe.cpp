// The `veipipe` command: run, check, graph and document pipelines.
#include <CLI/CLI.hpp>
#include <fmt/format.h>
#include <fmt/ranges.h>
#include <fcntl.h>
#include <oneapi/tbb/version.h>
#include <pcap/pcap.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cmath>
#include <cerrno>
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <memory>
#include <mutex>
#include <optional>
#include <thread>

#include "docs/man/cli_man.h"
#include "docs/man/stages_man.h"
#include "pipeline/engine.h"
#include "pipeline/plan.h"
#include "pipeline/stage.h"
#include "core/paths.h"
#include "stages/control.h"

namespace {

struct Input {
  std::string where;
  std::string text;
  bool from_stdin = false;  // FILE was `-`: the description took standard input
  vei::Defines defines;     // -D NAME=value
};

vei::Defines parse_defines(const std::vector<std::string>& options) {
  vei::Defines defines;
  for (const auto& option : options) {
    const auto equals = option.find('=');
    if (equals == std::string::npos || equals == 0)
      throw CLI::ValidationError(fmt::format("-D {}: expected NAME=value", option));
    if (!defines.emplace(option.substr(0, equals), option.substr(equals + 1)).second)
      throw CLI::ValidationError(fmt::format("-D {}: '{}' is given twice", option, option.substr(0, equals)));
  }
  return defines;
}

// Bad arguments, an unreadable FILE included, are usage errors (exit 2) naming what was given.
Input read_description(const std::string& expression, bool expression_given, const std::string& file) {
  if (expression_given && !file.empty())
    throw CLI::ValidationError(fmt::format("give the description with -e or as FILE ('{}'), not both", file));
  if (expression_given) return {"<command line>", expression, false, {}};
  if (file.empty()) throw CLI::ValidationError("give a description with -e '<description>', a FILE, or - for standard input");
  const bool from_stdin = file == "-";
  const int fd = from_stdin ? STDIN_FILENO : ::open(file.c_str(), O_RDONLY | O_CLOEXEC);
  const auto refuse = [&file](int error) {
    return CLI::ValidationError(fmt::format("{}: cannot read the description: {}", file, std::strerror(error)));
  };
  if (fd < 0) throw refuse(errno);
  // One byte more than the parser accepts is enough for it to refuse a huge file: memory stays
  // bounded whatever was passed as FILE.
  std::string text(vei::max_description_size + 1, '\0');
  size_t size = 0;
  int error = 0;
  while (size < text.size()) {
    const ssize_t n = ::read(fd, text.data() + size, text.size() - size);
    if (n > 0) size += static_cast<size_t>(n);
    else if (n == 0) break;
    else if (errno != EINTR) {
      error = errno;
      break;
    }
  }
  if (!from_stdin) ::close(fd);
  if (error) throw refuse(error);
  text.resize(size);
  return {from_stdin ? "<stdin>" : file, std::move(text), from_stdin, {}};
}

std::string json_escape(std::string_view s) {
  std::string out;
  for (char c : s) {
    if (c == '"' || c == '\\') out += fmt::format("\\{}", c);
    else if (static_cast<unsigned char>(c) < 0x20) out += fmt::format("\\u{:04x}", c);
    else out += c;
  }
  return out;
}

// Nanoseconds in a larger unit (1000: us, 10^9: s), every digit from the integer: a double would
// round large values.
std::string exact_decimal(int64_t ns, uint64_t per_unit, std::string_view plus = "") {
  const uint64_t magnitude = ns < 0 ? 0 - static_cast<uint64_t>(ns) : static_cast<uint64_t>(ns);
  const int digits = per_unit == 1000 ? 3 : 9;
  return fmt::format("{}{}.{:0{}}", ns < 0 ? "-" : plus, magnitude / per_unit, magnitude % per_unit, digits);
}

void print_stats(const vei::Stats& s) {
  const double secs = std::max(s.seconds, 1e-9);
  fmt::print(stderr, "veipipe: {} packets, {} bytes written in {:.3f} s ({:.2f} GB/s, {:.2f} Mpps)\n", s.packets,
             s.bytes, s.seconds, static_cast<double>(s.bytes) / secs / 1e9, static_cast<double>(s.packets) / secs / 1e6);
  for (size_t i = 0; i < s.sources.size(); ++i) {
    const auto& src = s.sources[i];
    fmt::print(stderr, "  source {} {}: {} packets, {} captured bytes, time offset {} s", i, src.name, src.packets,
               src.bytes, exact_decimal(src.offset_ns, 1'000'000'000, "+"));
    if (src.skipped) fmt::print(stderr, ", {} skipped (outside from/until)", src.skipped);
    if (src.filtered) fmt::print(stderr, ", {} filtered out", src.filtered);
    if (src.disordered) fmt::print(stderr, ", {} out of order", src.disordered);
    if (src.dropped) fmt::print(stderr, ", {} dropped", src.dropped);
    fmt::print(stderr, "\n");
  }
  if (s.events) fmt::print(stderr, "  {} injected packets written ({} asked for a time already past)\n", s.events, s.late_events);
  if (s.dropped_after_end) fmt::print(stderr, "  {} packets after the background's end not written\n", s.dropped_after_end);
  if (s.refused_events)
    fmt::print(stderr, "  {} event packets arrived after the output closed, not written\n", s.refused_events);
  for (const auto& l : s.live)
    fmt::print(stderr, "  {}: {} packets captured, {} dropped by the kernel, {} by the interface\n", l.name, l.packets,
               l.kernel_dropped, l.if_dropped);
  for (const auto& t : s.transforms)
    fmt::print(stderr, "  {}: {} packets changed, {} dropped\n", t.name, t.changed, t.dropped);
  if (s.pace)
    fmt::print(stderr, "  pacing lateness: p50 {} us, p99 {} us, max {} us over {} packets\n",
               exact_decimal(s.pace->p50, 1000), exact_decimal(s.pace->p99, 1000), exact_decimal(s.pace->max, 1000),
               s.pace->samples);
  if (s.nic)
    fmt::print(stderr, "  nic: {} sent, {} failed, {} retried\n", s.nic->sent, s.nic->failed, s.nic->retried);
}

// The picture of the run (tools/veipipe-plot draws it): the series per source rank and the
// injections, times in ns on the output timeline.
std::string series_json(const vei::Stats& s) {
  std::string sources;
  for (const auto& src : s.series.sources)
    sources += fmt::format("{}{{\"rank\":{},\"name\":\"{}\",\"packets\":[{}],\"bytes\":[{}]}}", sources.empty() ? "" : ",",
                           src.rank, json_escape(src.name), fmt::join(src.packets, ","), fmt::join(src.bytes, ","));
  std::string injections;
  for (const auto& i : s.injections)
    injections += fmt::format("{}{{\"source\":\"{}\",\"stage\":\"{}\",\"packets\":{},\"ts_ns\":{}}}",
                              injections.empty() ? "" : ",", json_escape(i.source), json_escape(i.stage), i.packets,
                              i.ts_ns ? std::to_string(*i.ts_ns) : "null");
  return fmt::format(
      "\"series\":{{\"start_ns\":{},\"bucket_ns\":{},\"sources\":[{}]}},\"injections\":[{}],\"unlisted_injections\":{}",
      s.series.start_ns, s.series.bucket_ns, sources, injections, s.unlisted_injections);
}

void write_stats_json(const std::string& path, const vei::Stats& s, int status) {
  std::string sources;
  for (const auto& src : s.sources)
    sources += fmt::format(
        "{}{{\"name\":\"{}\",\"packets\":{},\"bytes\":{},\"skipped\":{},\"filtered\":{},\"disordered\":{},"
        "\"dropped\":{},\"offset_ns\":{}}}",
        sources.empty() ? "" : ",", json_escape(src.name), src.packets, src.bytes, src.skipped, src.filtered,
        src.disordered, src.dropped, src.offset_ns);
  std::string live;
  for (const auto& l : s.live)
    live += fmt::format("{}{{\"name\":\"{}\",\"packets\":{},\"bytes\":{},\"kernel_dropped\":{},\"if_dropped\":{}}}",
                        live.empty() ? "" : ",", json_escape(l.name), l.packets, l.bytes, l.kernel_dropped, l.if_dropped);
  std::string transforms;
  for (const auto& t : s.transforms)
    transforms += fmt::format("{}{{\"name\":\"{}\",\"changed\":{},\"dropped\":{}}}", transforms.empty() ? "" : ",",
                              json_escape(t.name), t.changed, t.dropped);
  std::string extra;
  if (s.pace)
    extra += fmt::format(",\"pace\":{{\"p50_ns\":{},\"p99_ns\":{},\"max_ns\":{},\"samples\":{}}}", s.pace->p50,
                         s.pace->p99, s.pace->max, s.pace->samples);
  if (s.nic)
    extra += fmt::format(",\"nic\":{{\"sent\":{},\"failed\":{},\"retried\":{}}}", s.nic->sent, s.nic->failed,
                         s.nic->retried);
  std::string warnings;
  for (const auto& w : s.warnings) warnings += fmt::format("{}\"{}\"", warnings.empty() ? "" : ",", json_escape(w));
  const std::string text = fmt::format(
      "{{\"status\":{},\"packets\":{},\"bytes\":{},\"captured_bytes\":{},\"seconds\":{:.6f},"
      "\"dropped_after_end\":{},\"packets_in_place\":{},\"packets_copied\":{},\"accepted_events\":{},"
      "\"refused_events\":{},\"events\":{},\"late_events\":{},\"sources\":[{}],\"live\":[{}],\"transforms\":[{}]{},"
      "\"warnings\":[{}],\"error\":\"{}\",{}}}\n",
      status, s.packets, s.bytes, s.captured_bytes, s.seconds, s.dropped_after_end, s.packets_in_place,
      s.packets_copied, s.accepted_events, s.refused_events, s.events, s.late_events, sources, live, transforms, extra, warnings, json_escape(s.error),
      series_json(s));
  // Every step can fail (a full disk shows only at the flush): each is checked, and errno is kept
  // before the next call can change it.
  const auto failed = [&path](int error) {
    return std::runtime_error(fmt::format("--stats-json {}: {}", path, std::strerror(error)));
  };
  std::FILE* out = std::fopen(path.c_str(), "w");
  if (!out) throw failed(errno);
  const bool written = std::fwrite(text.data(), 1, text.size(), out) == text.size() && std::fflush(out) == 0;
  const int error = errno;
  if (std::fclose(out) != 0 && written) throw failed(errno);
  if (!written) throw failed(error);
}

// SIGINT/SIGTERM are taken by one thread with sigwait, so the engine is stopped from ordinary code.
// The first stops reading (everything merged is still written); a second one exits at once, as
// soon as no write to the output is under way. The engine is reached only under a mutex, and only
// while run() watches it: a signal that arrives as the run ends must not touch a destroyed engine.
class SignalGuard {
 public:
  SignalGuard() {
    sigemptyset(&set_);
    sigaddset(&set_, SIGINT);
    sigaddset(&set_, SIGTERM);
    pthread_sigmask(SIG_BLOCK, &set_, nullptr);
    std::thread([this] { take_signals(); }).detach();
  }

  // Stops the engine on the first signal (at once, if one came already) until the result is destroyed.
  [[nodiscard]] auto watch(vei::Engine& engine) {
    set_engine(&engine);
    auto unwatch = [this](SignalGuard*) {
      std::lock_guard lock(mutex_);
      engine_ = nullptr;
      ran_ = true;
    };
    return std::unique_ptr<SignalGuard, decltype(unwatch)>(this, unwatch);
  }
  int received() const { return received_; }

 private:
  void set_engine(vei::Engine* engine) {
    std::lock_guard lock(mutex_);
    engine_ = engine;
    if (engine_ && received_) engine_->stop();
  }
  void take_signals() {
    int sig = 0;
    sigwait(&set_, &sig);
    {
      std::lock_guard lock(mutex_);
      received_ = sig;
      if (engine_) engine_->stop();
      // Before a run starts nothing is written yet, and an open or a read may wait for a writer
      // that never comes (a FIFO, a stalled pipe): leave at once.
      else if (!ran_) {
        fmt::print(stderr, "veipipe: {} before the run started; nothing written\n", strsignal(sig));
        _exit(128 + sig);
      }
    }
    sigwait(&set_, &sig);
    std::lock_guard lock(mutex_);
    // A write cut by the exit would leave half a record: wait for the one in progress, if any.
    if (engine_) engine_->freeze_output();
    _exit(128 + sig);
  }

  sigset_t set_{};
  std::mutex mutex_;
  vei::Engine* engine_ = nullptr;  // under mutex_
  bool ran_ = false;               // under mutex_: the run is over, its statistics are being written
  std::atomic<int> received_{0};
};

// The paths the command itself adds to the description's: the description read from standard
// input (then no source can read it), the statistics written after the run (a file the
// description reads or writes would be lost).
void check_command_paths(const Input& input, const std::string& stats_json) {
  std::vector<vei::CommandPath> extra;
  if (input.from_stdin) extra.push_back({{"-", false}, "the description, read from standard input"});
  if (!stats_json.empty()) extra.push_back({{stats_json, true}, fmt::format("--stats-json '{}'", stats_json)});
  if (extra.empty()) return;
  const auto pipeline = vei::parse_pipeline(input.where, input.text, input.defines);
  auto errors = vei::path_clashes(pipeline, extra);
  if (!errors.empty()) throw vei::DescriptionError(input.where, input.text, std::move(errors));
}

int run(const Input& input, bool quiet, const std::string& stats_json, SignalGuard& signals) {
  check_command_paths(input, stats_json);
  // Warnings about the inputs are printed even with -q: quiet is for progress and statistics.
  auto engine = vei::Engine::from_description(input.where, input.text, false, input.defines);
  const auto watching = signals.watch(engine);
  engine.start();
  std::atomic<bool> done{false};
  std::optional<std::thread> progress;
  if (!quiet && isatty(STDERR_FILENO))
    progress.emplace([&] {
      while (!done) {
        std::this_thread::sleep_for(std::chrono::milliseconds(250));
        if (!done) fmt::print(stderr, "\r\x1b[K{}", engine.progress());
      }
      fmt::print(stderr, "\r\x1b[K");
    });
  int status = engine.wait();
  done = true;
  if (progress) progress->join();
  const auto stats = engine.stats();
  if (!stats.error.empty()) fmt::print(stderr, "veipipe: error: {}\n", stats.error);
  if (signals.received()) status = 128 + signals.received();
  if (!quiet) print_stats(stats);
  if (!stats_json.empty()) {
    // The run's outcome stands (its output is written); a run that succeeded fails for this.
    try {
      write_stats_json(stats_json, stats, status);
    } catch (const std::exception& e) {
      fmt::print(stderr, "veipipe: error: {}\n", e.what());
      if (status == vei::exit_ok) status = vei::exit_failure;
    }
  }
  return status;
}

// The server opens the files a line names in its own working directory: each relative input path
// is made absolute here, in the client's, and one that cannot be reached is reported before
// anything is sent (issue 11, item 17). A line that does not parse goes as it is: the server, whose
// stages may differ, answers it.
std::string resolve_inject_paths(const std::string& line) {
  std::optional<vei::Pipeline> parsed;
  try {
    parsed = vei::parse_pipeline("<inject>", line);
  } catch (const vei::DescriptionError&) {
    return line;
  }
  const auto& pipeline = *parsed;
  std::vector<const vei::Value*> files;
  for (const auto& n : pipeline.nodes)
    for (const vei::Value* v : vei::paths(n, vei::ParamType::input))
      if (v->text != "-") files.push_back(v);  // the server refuses it, with its reason
  // Replaced from the end of the line, so that the columns of the others stay right.
  std::ranges::sort(files, std::greater{}, [](const vei::Value* v) { return v->span.col; });
  std::string resolved = line;
  for (const vei::Value* v : files) {
    if (struct stat st {}; ::stat(v->text.c_str(), &st) != 0)
      throw std::runtime_error(fmt::format("{}: {}", v->text, std::strerror(errno)));
    if (std::filesystem::path(v->text).is_absolute()) continue;
    std::string quoted = "\"";
    for (const char c : std::filesystem::absolute(v->text).string()) {
      if (c == '"' || c == '\\') quoted += '\\';
      quoted += c;
    }
    quoted += '"';
    resolved.replace(static_cast<size_t>(v->span.col - 1), static_cast<size_t>(v->span.length), quoted);
  }
  return resolved;
}

// `veipipe plot` runs tools/veipipe-plot, found next to this binary (a build folder) or in the
// installed share folder.
[[noreturn]] void plot(const std::string& json, const std::string& png) {
  const auto here = std::filesystem::read_symlink("/proc/self/exe").parent_path();
  for (const auto& script : {here / "veipipe-plot", here / "../share/veipipe/veipipe-plot"}) {
    if (::access(script.c_str(), X_OK) != 0) continue;
    // SignalGuard blocked SIGINT and SIGTERM, and exec keeps the mask: the script must take them.
    sigset_t none;
    sigemptyset(&none);
    pthread_sigmask(SIG_SETMASK, &none, nullptr);
    ::execl(script.c_str(), script.c_str(), json.c_str(), png.c_str(), static_cast<char*>(nullptr));
    throw std::runtime_error(fmt::format("{}: {}", script.string(), std::strerror(errno)));
  }
  throw std::runtime_error(fmt::format("veipipe-plot is neither in {} nor in {}", here.string(),
                                       (here / "../share/veipipe").lexically_normal().string()));
}

std::string describe_stage(const vei::StageSpec& spec) {
  std::string out = fmt::format("{} ({})\n  {}\n", spec.name, vei::to_string(spec.kind), spec.doc);
  for (const auto& p : spec.params) {
    std::string type{vei::to_string(p.type)};
    if (!p.choices.empty()) {
      type.clear();
      for (auto c : p.choices) type += fmt::format("{}{}", type.empty() ? "" : "|", c);
    }
    out += fmt::format("  {:<10} {:<12} {}{}{}\n", p.name, type, p.doc,
                       p.required ? " (required" : (p.default_value.empty() ? "" : " (default "),
                       p.required ? (p.positional ? ", positional)" : ")")
                                  : (p.default_value.empty() ? std::string{} : fmt::format("{})", p.default_value)));
  }
  return out;
}

// The libraries' versions are those it runs on (libpcap, oneTBB: their runtime calls); fmt has no
// runtime call, so it is the one it was built with.
std::string versions() {
  return fmt::format("veipipe {}\n{}\noneTBB {} (built with {})\nfmt {}.{}.{}", VEIPIPE_VERSION, pcap_lib_version(),
                     TBB_runtime_version(), TBB_VERSION_STRING, FMT_VERSION / 10000, FMT_VERSION / 100 % 100,
                     FMT_VERSION % 100);
}

// What cmake/man.cmake assembles veipipe(1), veipipe-stages(7), vei(3) and the completion from.
std::string generate(const CLI::App& app, std::string_view part) {
  if (part == "synopsis") return vei::man::synopsis(app);
  if (part == "options") return vei::man::options(app);
  if (part == "stages") return vei::man::stages_page();
  if (part == "events") return vei::man::vei_events_list();
  if (part == "completion") return vei::man::completion(app, "_veipipe") + vei::man::stages_completion("_veipipe");
  return {};
}

}  // namespace

int main(int argc, char** argv) {
  SignalGuard signals;
  CLI::App app{"veipipe: weave packets from several sources into one timeline"};
  app.require_subcommand(1);
  app.set_version_flag("--version", versions, "print the versions of veipipe and of the libraries it runs on");
  vei::man::add_generate_option(app, [&app](std::string_view part) { return generate(app, part); });
  std::string expression, file, stats_json, stage_name;
  std::vector<std::string> defines;
  bool quiet = false, dot = false;

  auto* run_cmd = app.add_subcommand("run", "run a pipeline");
  auto* check_cmd = app.add_subcommand("check", "validate a pipeline and open its inputs, without running it");
  auto* graph_cmd = app.add_subcommand("graph", "print the resolved graph");
  for (auto* cmd : {run_cmd, check_cmd, graph_cmd}) {
    cmd->add_option("-e,--expression", expression, "the pipeline description")->type_name("EXPRESSION");
    cmd->add_option("file", file, "a file holding the pipeline description, - for standard input")->type_name("FILE");
    cmd->add_option("-D,--define", defines, "NAME=value: the value of $NAME in the description, over its define()")
        ->type_name("NAME=VALUE");
  }
  run_cmd->add_flag("-q,--quiet", quiet, "no progress or statistics on stderr (warnings and errors still)");
  run_cmd->add_option("--stats-json", stats_json, "write the final statistics as JSON to this file")
      ->type_name("FILE");
  graph_cmd->add_flag("--dot", dot, "Graphviz DOT output");
  auto* stages_cmd = app.add_subcommand("stages", "document the stages and their parameters");
  std::string socket_path, stage_line;
  auto* inject_cmd = app.add_subcommand(
      "inject", fmt::format("send a stage to a running pipeline's control socket: one line of at most {} KiB, "
                            "bringing at most {} MiB of packets; relative paths are from this directory",
                            vei::control::max_line >> 10, vei::max_injection_bytes >> 20));
  inject_cmd->add_option("socket", socket_path, "the control socket")->required();
  inject_cmd->add_option("stage", stage_line, "a source stage, e.g. 'icmp(dst=10.0.0.9, count=3)'")->required();
  double inject_timeout = 30;
  inject_cmd->add_option("-t,--timeout", inject_timeout, "seconds to wait for the reply, a place in a full backlog included")
      ->default_val(30)
      ->check(CLI::Validator(
          [](const std::string& text) {
            const double seconds = std::strtod(text.c_str(), nullptr);
            return seconds > 0 && seconds <= 86400 ? std::string() : "seconds from more than 0 to 86400";
          },
          "", "timeout"))
      ->type_name("SECONDS");
  stages_cmd->add_option("name", stage_name, "one stage");
  std::string plot_json, plot_png;
  auto* plot_cmd = app.add_subcommand("plot", "draw a --stats-json file's packet rates and injections as a PNG");
  plot_cmd->add_option("json", plot_json, "statistics written by run --stats-json")->required();
  plot_cmd->add_option("png", plot_png, "the picture to write")->required();

  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return app.exit(e) == 0 ? 0 : vei::exit_bad_description;
  }

  try {
    if (*inject_cmd) {
      const auto reply = vei::control_request(socket_path, resolve_inject_paths(stage_line),
                                              std::chrono::milliseconds(std::llround(inject_timeout * 1000)));
      fmt::print("{}\n", reply);
      return reply.starts_with("ok") ? 0 : vei::exit_failure;
    }
    if (*plot_cmd) plot(plot_json, plot_png);
    if (*stages_cmd) {
      if (stage_name.empty()) {
        for (const auto* s : vei::stages()) fmt::print("{}\n", describe_stage(s->spec()));
        return 0;
      }
      const auto* stage = vei::find_stage(stage_name);
      if (!stage) {
        fmt::print(stderr, "veipipe: error: no stage '{}'\nnote: {}\n", stage_name,
                   vei::suggestion_or_list(stage_name, "stages", vei::stage_names()));
        return vei::exit_bad_description;
      }
      fmt::print("{}", describe_stage(stage->spec()));
      return 0;
    }
    const bool expression_given = run_cmd->count("-e") + check_cmd->count("-e") + graph_cmd->count("-e") > 0;
    Input input = read_description(expression, expression_given, file);
    input.defines = parse_defines(defines);
    if (*graph_cmd) {
      const auto pipeline = vei::parse_pipeline(input.where, input.text, input.defines);
      fmt::print("{}", vei::describe_plan(vei::make_plan(pipeline), dot));
      return 0;
    }
    if (*check_cmd) {
      check_command_paths(input, {});
      const auto engine = vei::Engine::from_description(input.where, input.text, true, input.defines);
      fmt::print("{}: ok\n", input.where);
      return 0;
    }
    return run(input, quiet, stats_json, signals);
  } catch (const vei::DescriptionError& e) {
    fmt::print(stderr, "{}", e.what());
    return vei::exit_bad_description;
  } catch (const CLI::ValidationError& e) {
    fmt::print(stderr, "veipipe: error: {}\n", e.what());
    return vei::exit_bad_description;
  } catch (const std::exception& e) {
    fmt::print(stderr, "veipipe: error: {}\n", e.what());
    return vei::exit_failure;
  }
}
