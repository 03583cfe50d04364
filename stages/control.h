// A Unix-stream-socket line server, and its client: each line a client sends is answered with one
// line. It knows nothing of the pipeline; the `control` source gives it a handler that injects.
//
// One thread polls the listening socket, an eventfd for shutdown and up to 64 connections (see
// ControlLimits); it alone owns the connections and their clocks, and the limits are copied at
// construction. Sockets are non-blocking and every connection has its own output buffer, so a client
// that sends garbage, disconnects mid-line or never reads its replies costs only its own
// connection, never the run. At the limit the thread stops accepting: clients beyond wait in the
// kernel's listen backlog (they can connect and send at once) until a connection ends, rather than
// being refused. So that silent clients cannot hold every place for ever, a connection that leaves
// a line unfinished, or says nothing at all, for too long is closed.
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

// The server's limits; a test may shorten them.
struct ControlLimits {
  // Connections served at once; more clients wait in the listen backlog.
  size_t max_connections = 64;
  // A line must be complete this long after its first byte came: a local client writes a line in
  // one go, so a line still open means a client stuck or hostile, and a client trickling a byte
  // now and then must not keep its place either. Answered "error: line not finished within ...".
  std::chrono::milliseconds line_timeout{5000};
  // A connection with no line open is closed after this long without a byte in either direction.
  // Longer than line_timeout, for a person typing at `nc -U` or a script keeping its connection
  // between injections (either can reconnect); shorter than the 30 s `veipipe inject` waits, so that
  // even with every place held by silent connections a waiting client is served before it gives up.
  std::chrono::milliseconds idle_timeout{20000};
};

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
  ControlSocket(std::string path, Handler handler, ControlLimits limits = {});
  // Stops the thread, closes every connection and removes the socket file (if it is still ours).
  ~ControlSocket();
  ControlSocket(const ControlSocket&) = delete;
  ControlSocket& operator=(const ControlSocket&) = delete;

  const std::string& path() const { return path_; }
  // Complete lines answered (by the handler or with an error), overlong ones aside.
  uint64_t lines() const { return lines_.load(std::memory_order_relaxed); }
  // Connections the server cut: a line too long, too much unread output, a line unfinished or a
  // connection silent past its timeout.
  uint64_t dropped_connections() const { return dropped_.load(std::memory_order_relaxed); }

 private:
  struct Connection;

  void run();
  // Handles poll events on `c`; false when the connection is to be closed.
  bool serve(Connection& c, short revents, std::chrono::steady_clock::time_point now);
  // When `c` is to be closed if nothing happens before.
  std::chrono::steady_clock::time_point deadline(const Connection& c) const;
  // Answers the complete lines in `data`; false when the connection is to be dropped.
  bool take(Connection& c, std::string_view data, std::chrono::steady_clock::time_point now);

  std::string path_;
  Handler handler_;
  ControlLimits limits_;
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
// contain a newline) and returns the reply line. A server whose backlog is full is tried again
// until `timeout`. Throws std::runtime_error naming the path on failure: no such socket, refused,
// no connection or no reply within `timeout`.
std::string control_request(const std::string& path, std::string_view line, std::chrono::milliseconds timeout);

class ControlStage final : public EventStage {
 public:
  ControlStage();
  void check(const Node& node) const override;
  void verify(const Node& node) const override;
  std::string source_name(const Node& node) const override;
  std::unique_ptr<EventSource> open(const Node& node, const EventContext& context) const override;
};

}  // namespace vei
