// A Unix-stream-socket line server, and its client: each line a client sends is answered with one
// line. It knows nothing of the pipeline; the `control` source gives it a handler that injects.
//
// One thread polls the listening socket, an eventfd for shutdown and up to 64 connections. Sockets
// are non-blocking and every connection has its own output buffer, so a client that sends garbage,
// disconnects mid-line or never reads its replies costs only its own connection, never the run.
#pragma once

#include <atomic>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <string>
#include <string_view>
#include <thread>
#include "pipeline/stage.h"

namespace vei {

class ControlSocket {
 public:
  // Answers one line (without its newline, nor a CR before it) with the reply to send back
  // (without newline), e.g. "ok 3" or "error: unknown stage 'icmpp'". Called on the socket's own
  // thread, one line at a time. An exception is answered "error: <what>"; newlines in a reply are
  // sent as spaces so that every line gets exactly one reply line.
  using Handler = std::function<std::string(std::string_view line)>;

  // Creates the socket at `path` with mode 0600, replacing a stale socket file left by a dead
  // process; throws std::runtime_error naming the path if it cannot, or if the path is something
  // else than a socket or a socket someone is listening on. Starts the thread.
  ControlSocket(std::string path, Handler handler);
  // Stops the thread, closes every connection and removes the socket file (if it is still ours).
  ~ControlSocket();
  ControlSocket(const ControlSocket&) = delete;
  ControlSocket& operator=(const ControlSocket&) = delete;

  const std::string& path() const { return path_; }
  // Complete lines answered (by the handler or with an error), overlong ones aside.
  uint64_t lines() const { return lines_.load(std::memory_order_relaxed); }
  // Connections the server cut: over the connection limit, a line too long, too much unread output.
  uint64_t dropped_connections() const { return dropped_.load(std::memory_order_relaxed); }

 private:
  struct Connection;

  void run();
  // Handles poll events on `c`; false when the connection is to be closed.
  bool serve(Connection& c, short revents);
  // Answers the complete lines in `data`; false when the connection is to be dropped.
  bool take(Connection& c, std::string_view data);

  std::string path_;
  Handler handler_;
  uint64_t device_ = 0, inode_ = 0;  // of the socket file, so that only ours is removed
  int wake_ = -1;
  int listener_ = -1;
  std::atomic<uint64_t> lines_{0};
  std::atomic<uint64_t> dropped_{0};
  std::thread thread_;
};

// What a connection does with the bytes it receives, apart from any socket, so that the unit
// tests and the fuzzer (fuzz/) drive exactly what the server runs.
namespace control {

// A line longer than this (without its newline) is not answered: the connection is dropped.
inline constexpr size_t max_line = 64 * 1024;

struct Taken {
  size_t answered = 0;    // complete lines answered, each with one reply line
  bool overlong = false;  // a line is longer than max_line: "error: line too long" was appended
                          // to `out` and the connection is to be dropped
};

// Appends `data` to `pending` (the start of a line whose newline has not come yet), answers each
// complete line in it through answer_line(), appending the replies to `out` with a newline each,
// and keeps the rest in `pending`. `limit` stands for max_line (the server's); a test or a fuzzer
// may pass a smaller one to reach the overlong case with small inputs.
Taken take_lines(std::string& pending, std::string_view data, const ControlSocket::Handler& handler,
                 std::string& out, size_t limit = max_line);

// The reply to one line (without its newline): a CR ending the line is dropped, a line with a NUL
// byte is refused, an exception from `handler` becomes "error: <what>", newlines become spaces.
std::string answer_line(const ControlSocket::Handler& handler, std::string_view line);

}  // namespace control

// The client side, used by `veipipe inject SOCKET 'stage'`: connects, sends `line` (which must not
// contain a newline) and returns the reply line. Throws std::runtime_error naming the path on
// failure: no such socket, refused, or no reply within `timeout`.
std::string control_request(const std::string& path, std::string_view line, std::chrono::milliseconds timeout);

class ControlStage final : public EventStage {
 public:
  ControlStage();
  std::string source_name(const Node& node) const override;
  std::unique_ptr<EventSource> open(const Node& node, const EventContext& context) const override;
};

}  // namespace vei
