#include "core/tcp_conversation.h"

#include <algorithm>
#include <cstring>
#include <deque>
#include <stdexcept>

#include "core/random.h"

namespace vei::tcp {

namespace {

// Option kinds as the letters of Stack::syn_options: MSS, SACK permitted, timestamps, window
// scale, NOP; the list is padded with EOL to a multiple of 4 bytes.
constexpr Stack stacks[] = {
    // Linux 5.x/6.x: initial window 64240, wscale 7, TS at 1 kHz, delayed ACK 40 ms.
    {"linux", 64, 64240, 7, 64256, true, 1000, 40'000'000, "MSTNW"},
    // Windows 10/11: no timestamps by default, wscale 8, delayed ACK 200 ms.
    {"windows", 128, 64240, 8, 262144, false, 0, 200'000'000, "MNWNNS"},
    // macOS 13+: window 65535, wscale 6, TS at 1 kHz, delayed ACK 100 ms.
    {"macos", 64, 65535, 6, 131072, true, 1000, 100'000'000, "MNWNNTS"},
};

namespace flag {
constexpr uint8_t fin = 0x01, syn = 0x02, rst = 0x04, psh = 0x08, ack = 0x10;
}

struct Side {
  const Party* party;
  const Stack* stack;
  uint16_t mss;          // announced in the SYN
  uint32_t snd_nxt;      // next sequence number to send
  uint32_t snd_una;      // oldest unacknowledged
  uint32_t rcv_nxt = 0;  // next sequence number expected
  uint16_t ip_id;
  uint32_t flow_label;
  uint32_t ts_base;
  uint32_t recent_tsval = 0;  // the last TSval received: the next TSecr
  uint16_t window_field = 0;
  uint32_t window_bytes = 0;  // what the peer may have in flight towards this side
  uint32_t segment = 0;       // payload bytes of a full segment this side sends
  double cwnd = 0;            // bytes
  int64_t link_free = 0;      // when the next back-to-back segment may leave
  struct Ack {
    int64_t arrival;
    uint32_t ack;
    uint32_t tsval;
  };
  std::deque<Ack> acks;  // segments with an ACK on their way here
  // A segment received but not acknowledged yet (delayed ACK), and since when.
  int unacked = 0;
  bool pending = false;
  int64_t pending_since = 0;
  int64_t free_at = 0;  // when this side may begin its next message
};

class Builder {
 public:
  Builder(Conversation& out, uint32_t linktype, const Party& client, const Party& server, const Options& o)
      : out_(out), linktype_(linktype), options_(o), q_(o.rtt_ns / 4) {
    Rng rng(o.seed);
    init(c_, client, rng);
    init(s_, server, rng);
    ts_ = c_.stack->timestamps && s_.stack->timestamps;
  }

  void run(std::span<const Message> messages) {
    handshake();
    for (const Message& m : messages) {
      Side& from = m.from_client ? c_ : s_;
      Side& to = m.from_client ? s_ : c_;
      send(from, to, m.bytes, from.free_at + m.think_ns);
    }
    close();
    // Late pure ACKs (a delayed ACK that fired while a sender waited) are built after later frames.
    out_.sort();
  }

 private:
  void init(Side& side, const Party& party, Rng& rng) {
    side.party = &party;
    side.stack = party.stack ? party.stack : &stacks[0];
    const bool v6 = party.host.ip.v6;
    side.mss = static_cast<uint16_t>(options_.mss - (v6 && options_.mss == 1460 ? 20 : 0));
    side.snd_nxt = side.snd_una = static_cast<uint32_t>(rng.next());
    side.ip_id = static_cast<uint16_t>(rng.next());
    side.flow_label = static_cast<uint32_t>(rng.next()) & 0xfffff;
    side.ts_base = static_cast<uint32_t>(rng.next());
  }

  uint32_t tsval(const Side& side, int64_t t) const {
    return side.ts_base + static_cast<uint32_t>(t / (1'000'000'000 / side.stack->ts_hz));
  }

  // The SYN options of `side`: its stack's list, less what the peer did not offer (in a SYN/ACK).
  size_t syn_options(const Side& side, const Side* peer_syn, std::byte* p, int64_t t) const {
    size_t n = 0;
    for (const char kind : side.stack->syn_options) {
      switch (kind) {
        case 'M':
          p[n] = std::byte{2}, p[n + 1] = std::byte{4};
          packets::put16(p + n + 2, side.mss);
          n += 4;
          break;
        case 'S':
          p[n] = std::byte{4}, p[n + 1] = std::byte{2};
          n += 2;
          break;
        case 'T':
          if (!side.stack->timestamps || (peer_syn && !ts_)) break;
          p[n] = std::byte{8}, p[n + 1] = std::byte{10};
          packets::put32(p + n + 2, tsval(side, t));
          packets::put32(p + n + 6, peer_syn ? side.recent_tsval : 0);
          n += 10;
          break;
        case 'W':
          p[n] = std::byte{3}, p[n + 1] = std::byte{3}, p[n + 2] = std::byte{side.stack->wscale};
          n += 3;
          break;
        case 'N': p[n++] = std::byte{1}; break;
      }
    }
    while (n % 4) p[n++] = std::byte{0};
    return n;
  }

  // Builds a segment `from` sends at `t`, and records its arrival at `to`.
  void emit(Side& from, Side& to, int64_t t, uint8_t flags, std::span<const std::byte> payload = {}) {
    absorb(from, t);
    std::byte options[40]{};
    size_t options_size = 0;
    if (flags & flag::syn) {
      options_size = syn_options(from, flags & flag::ack ? &to : nullptr, options, t);
    } else if (ts_) {
      options[0] = options[1] = std::byte{1};
      options[2] = std::byte{8}, options[3] = std::byte{10};
      packets::put32(options + 4, tsval(from, t));
      packets::put32(options + 8, from.recent_tsval);
      options_size = 12;
    }
    const size_t header = 20 + options_size;
    const packets::FrameAt at =
        packets::add_ip_frame(out_.bytes, linktype_, from.party->host, to.party->host,
                              {packets::proto_tcp, from.stack->ttl, from.ip_id++, true, from.flow_label},
                              header + payload.size());
    std::byte* p = out_.bytes.data() + at.l4;
    packets::put16(p, from.party->port);
    packets::put16(p + 2, to.party->port);
    packets::put32(p + 4, from.snd_nxt);
    packets::put32(p + 8, flags & flag::ack ? from.rcv_nxt : 0);
    p[12] = std::byte(header / 4 << 4);
    p[13] = std::byte{flags};
    packets::put16(p + 14, flags & flag::syn ? from.stack->syn_window : from.window_field);
    std::copy_n(options, options_size, p + 20);
    if (!payload.empty()) std::memcpy(p + header, payload.data(), payload.size());  // ranges::copy went byte by byte
    packets::seal(out_.bytes, at);
    out_.add(t + q_, at);

    from.snd_nxt += static_cast<uint32_t>(payload.size()) + (flags & flag::syn ? 1 : 0) + (flags & flag::fin ? 1 : 0);
    if (flags & flag::rst) return;
    to.rcv_nxt = from.snd_nxt;
    // A segment with data (or SYN, FIN) is answered at its arrival: its TSval is the one to echo
    // from then on. A pure ACK's is echoed once it arrives (absorb).
    const bool pure_ack = payload.empty() && !(flags & (flag::syn | flag::fin));
    if (from.stack->timestamps && !pure_ack) to.recent_tsval = tsval(from, t);
    if (flags & flag::ack) {
      // Whatever `from` sends acknowledges all it has received: a pending delayed ACK rides on it.
      to.acks.push_back({t + 2 * q_, from.rcv_nxt, from.stack->timestamps ? tsval(from, t) : 0});
      from.pending = false;
      from.unacked = 0;
    }
  }

  // Fires `side`'s delayed ACK when its timer expires by `t`.
  void settle(Side& side, Side& peer, int64_t t) {
    if (side.pending && side.pending_since + side.stack->delayed_ack_ns <= t)
      emit(side, peer, side.pending_since + side.stack->delayed_ack_ns, flag::ack);
  }

  // ACKs that reached `side` by `t` free its window and grow its congestion window (slow start).
  void absorb(Side& side, int64_t t) {
    while (!side.acks.empty() && side.acks.front().arrival <= t) {
      const uint32_t ack = side.acks.front().ack;
      if (ts_) side.recent_tsval = side.acks.front().tsval;
      side.acks.pop_front();
      const auto newly = static_cast<int32_t>(ack - side.snd_una);
      if (newly <= 0) continue;
      side.snd_una = ack;
      side.cwnd = std::min<double>(side.cwnd + newly, 1 << 30);
    }
  }

  void handshake() {
    emit(c_, s_, 0, flag::syn);
    emit(s_, c_, 2 * q_, flag::syn | flag::ack);
    for (Side* side : {&c_, &s_}) {
      Side& peer = side == &c_ ? s_ : c_;
      // Every stack here offers window scaling, so both use it.
      side->window_field = static_cast<uint16_t>(side->stack->receive_window >> side->stack->wscale);
      side->window_bytes = uint32_t{side->window_field} << side->stack->wscale;
      side->segment = static_cast<uint32_t>(std::min(side->mss, peer.mss)) - (ts_ ? 12 : 0);
      side->cwnd = 10.0 * side->segment;  // RFC 6928's initial window
    }
    emit(c_, s_, 4 * q_, flag::ack);
    c_.free_at = 4 * q_;
    s_.free_at = 6 * q_;
    s_.acks.clear();  // the handshake's ACKs carry no data
    c_.acks.clear();
  }

  void send(Side& from, Side& to, std::span<const std::byte> bytes, int64_t t) {
    const double ns_per_byte = 8e9 / options_.bandwidth_bps;
    settle(from, to, t);
    from.link_free = std::max(from.link_free, t);
    for (size_t pos = 0; pos < bytes.size();) {
      absorb(from, t);
      const size_t size = std::min<size_t>(from.segment, bytes.size() - pos);
      const uint32_t in_flight = from.snd_nxt - from.snd_una;
      // Strictly below the receive window: a segment that fills it exactly is "window full".
      const double room = std::min<double>(from.cwnd, to.window_bytes - 1.0);
      if (static_cast<double>(in_flight + size) > room) {
        if (from.acks.empty()) settle(to, from, INT64_MAX);  // only the receiver's delayed ACK is left
        if (from.acks.empty()) throw std::logic_error("tcp: a sender waits for an ACK nobody sends");
        t = std::max(t, from.acks.front().arrival);
        continue;
      }
      const int64_t s = std::max(t, from.link_free);
      settle(to, from, s + 2 * q_);
      const bool last = pos + size == bytes.size();
      emit(from, to, s, last ? flag::ack | flag::psh : flag::ack, bytes.subspan(pos, size));
      from.link_free = s + static_cast<int64_t>(static_cast<double>(size + 54) * ns_per_byte);
      // The receiver acknowledges every second segment at once, else after its delayed-ACK timeout.
      if (++to.unacked >= 2) {
        emit(to, from, s + 2 * q_, flag::ack);
      } else {
        to.pending = true;
        to.pending_since = s + 2 * q_;
      }
      pos += size;
      t = s;
      from.free_at = s;
      to.free_at = s + 2 * q_;
    }
  }

  void close() {
    const bool by_client = options_.close == Close::client_fin || options_.close == Close::client_rst;
    const bool reset = options_.close == Close::client_rst || options_.close == Close::server_rst;
    Side& a = by_client ? c_ : s_;
    Side& b = by_client ? s_ : c_;
    const int64_t t = a.free_at + options_.close_think_ns;
    settle(a, b, t);
    if (reset) {
      emit(a, b, t, flag::rst | flag::ack);
      settle(b, a, t + 2 * q_);  // a delayed ACK the reset did not overtake
      return;
    }
    emit(a, b, t, flag::fin | flag::ack);
    settle(b, a, t + 2 * q_);
    emit(b, a, t + 2 * q_, flag::fin | flag::ack);
    emit(a, b, t + 4 * q_, flag::ack);
  }

  Conversation& out_;
  uint32_t linktype_;
  const Options& options_;
  int64_t q_;  // a quarter of the round trip: from a party to the capture point
  Side c_{}, s_{};
  bool ts_ = false;
};

}  // namespace

const Stack* find_stack(std::string_view name) {
  for (const Stack& s : stacks)
    if (s.name == name) return &s;
  return nullptr;
}

void build(Conversation& out, uint32_t linktype, const Party& client, const Party& server,
           std::span<const Message> messages, const Options& options) {
  Builder(out, linktype, client, server, options).run(messages);
}

}  // namespace vei::tcp
