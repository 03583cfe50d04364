// Builds a whole TCP connection as a capture in the middle of the path would see it: the three-way
// handshake with the options the chosen operating systems send, the messages of both parties in
// MSS-sized segments within the congestion and receive windows, delayed cumulative ACKs (one per
// two segments, else after the stack's delayed-ACK timeout, or riding on the receiver's next
// segment), and a FIN/ACK (or RST) teardown. IPv4 or IPv6, every checksum valid.
//
// The timing model: each frame is captured a quarter of `rtt` after its sender sent it and reaches
// the other party a quarter later; a sender spaces back-to-back segments by their time on a link
// of `bandwidth`. A message starts `think` after the previous one was wholly received (or, when the
// same party spoke last, wholly sent). Nothing is lost or reordered: an independent decoder finds
// no TCP analysis flag (no retransmission, no window full, no unseen segment ACKed).
//
// Threads: pure functions of their arguments.
#pragma once

#include <cstdint>
#include <span>
#include <string_view>
#include <vector>

#include "core/conversation.h"
#include "core/packet_builder.h"

namespace vei::tcp {

// What an operating system's TCP stack puts in its SYN and segments.
struct Stack {
  std::string_view name;  // linux, windows, macos
  uint8_t ttl;
  uint16_t syn_window;  // the window of a SYN (never scaled)
  uint8_t wscale;
  uint32_t receive_window;  // bytes advertised once the connection is up
  bool timestamps;          // offers RFC 7323 timestamps
  uint32_t ts_hz;           // TSval ticks per second
  int64_t delayed_ack_ns;
  std::string_view syn_options;  // option kinds in the order the stack writes them: M S T W N E
};

// `linux` (the default), `windows`, `macos`; nullptr for another name.
const Stack* find_stack(std::string_view name);
inline constexpr std::string_view stack_names = "linux, windows, macos";

struct Party {
  packets::Host host;
  uint16_t port = 0;
  const Stack* stack = nullptr;  // null: linux
};

struct Message {
  bool from_client = true;
  std::span<const std::byte> bytes;
  int64_t think_ns = 0;  // from the previous message (or the handshake) to this one's first byte
};

enum class Close {
  client_fin,  // the client closes first: FIN/ACK, FIN/ACK, ACK
  server_fin,
  client_rst,  // the client aborts: RST/ACK
  server_rst,
};

struct Options {
  int64_t rtt_ns = 10'000'000;
  double bandwidth_bps = 100e6;
  uint16_t mss = 1460;  // each party's, before options (1440 for IPv6 unless set)
  Close close = Close::client_fin;
  int64_t close_think_ns = 0;  // from the last message to the first FIN (or RST)
  uint64_t seed = 0;  // initial sequence numbers, timestamp clocks, IP ids and flow labels
};

// Appends the connection's frames to `out` (after what it holds, offsets from the SYN at 0) and
// sorts them by time. Both parties must have addresses of one IP version. Throws
// std::runtime_error when the link type cannot carry that version.
void build(Conversation& out, uint32_t linktype, const Party& client, const Party& server,
           std::span<const Message> messages, const Options& options);

}  // namespace vei::tcp
