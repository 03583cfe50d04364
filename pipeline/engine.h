// The public C++ API: a pipeline built from a description, run on a oneTBB flow graph.
//
//   auto engine = vei::Engine::from_description("<inline>", "pcap(a.pcap) -> file(b.pcap)");
//   engine.start();
//   int status = engine.wait();  // 0 ok, 1 runtime failure, 3 finished with damaged input
#pragma once

#include <atomic>
#include <memory>
#include <optional>
#include <span>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

#include "pipeline/description.h"
#include "core/report.h"
#include "core/stats.h"

namespace vei {

// A frame to inject: stamped at the output timeline's "now" (or at the time the caller gives)
// plus `offset_ns`.
struct InjectedFrame {
  std::span<const std::byte> bytes;
  int64_t offset_ns = 0;
  uint32_t wire_length = 0;  // of a frame captured shorter than it was sent; 0: its size
};

// Injection refused: a finished pipeline, an empty frame, one longer than the output's snaplen.
class InjectError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

enum ExitStatus { exit_ok = 0, exit_failure = 1, exit_bad_description = 2, exit_damaged = 3 };

class Engine {
 public:
  // Parses, plans and opens every input (reading its header); throws DescriptionError for a bad
  // description or incompatible inputs, std::runtime_error for an input that cannot be opened.
  // `defines` give or override the description's `$NAME`s (pipeline/description.h).
  static Engine from_description(std::string_view where, std::string_view text, bool quiet = false,
                                 const Defines& defines = {});
  Engine(Engine&&) noexcept;
  Engine& operator=(Engine&&) noexcept;
  ~Engine();

  // Opens the event sources (interfaces, sockets), then the output, and starts the run. Throws
  // DescriptionError for a parameter refused only now (a live filter the interface's link type
  // cannot take), std::runtime_error for an interface, socket or output that cannot be opened;
  // nothing is written then.
  void start();
  int wait();  // blocks until the run ends; returns an ExitStatus (a failure's message: stats().error)
  // Stops reading; everything already merged is still written. Safe from any thread or a signal
  // handler's helper thread.
  void stop();
  // Waits until no write to the sink is under way and keeps any more from starting, for good: the
  // caller is about to exit at once (a second Ctrl-C) and the output must end on a whole record.
  void freeze_output();

  // Injects frames as events of the `api` source, from any thread, before or during the run: each
  // is stamped at the output timeline's now (the last time written; before the run, the
  // background's first packet) or at `at_ns`, plus its offset (offsets must not decrease). A time
  // already past is written at now and counted late. Returns how many were accepted; throws
  // InjectError when refused. Every accepted frame is written.
  size_t inject(std::span<const InjectedFrame> frames, std::optional<int64_t> at_ns = {});
  size_t inject(std::span<const std::byte> frame, std::optional<int64_t> at_ns = {});
  // Injects the packets of one source stage, optionally followed by transforms, e.g.
  // `icmp(dst=10.0.0.9, count=3)` or `pcap(attack.pcap) -> snaplen(96)`: its first packet at now
  // (plus its `at=`), its own spacing kept. Throws DescriptionError for a bad stage, InjectError
  // when refused.
  size_t inject(std::string_view stage);

  // The output's link type (LINKTYPE_ value), the background's.
  uint32_t linktype() const;
  // From any thread. Complete and exact after wait(); during the run, a progress snapshot of what
  // was written and injected (the sources', merger's, pacer's and sink's counters stay zero until
  // wait() returns).
  Stats stats() const;
  // A progress line (packets, bytes, rate) for a terminal; callable while running.
  std::string progress() const;

 private:
  struct Impl;
  explicit Engine(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace vei
