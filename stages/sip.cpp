#include "stages/sip.h"

#include <arpa/inet.h>

#include <algorithm>
#include <array>
#include <cctype>
#include <fmt/compile.h>
#include <fmt/format.h>
#include <iterator>
#include <memory>
#include <string>

#include "core/ip.h"
#include "core/random.h"

namespace vei {

namespace {

// A party as from= or to= names it; without a host, its URI takes the party's address.
struct Party {
  std::string user, host;
};

// Keeps every message well under the 1300 bytes RFC 3261 (18.1.1) allows a request over UDP.
constexpr size_t max_party = 64;

bool hostname(std::string_view h) {
  for (size_t begin = 0; begin <= h.size();) {
    const size_t end = std::min(h.find('.', begin), h.size());
    const std::string_view label = h.substr(begin, end - begin);
    if (label.empty() || label.front() == '-' || label.back() == '-' ||
        !std::ranges::all_of(label, [](char c) { return std::isalnum(static_cast<unsigned char>(c)) || c == '-'; }))
      return false;
    begin = end + 1;
  }
  return true;
}

Party parse_party(const Value& v) {
  const std::string_view text = v.text;
  constexpr std::string_view form = "a party is `user` or `user@host`: alice, alice@example.com, alice@[2001:db8::1]";
  if (text.size() > max_party)
    throw ParamError(
        v, fmt::format("{} bytes: at most {} keep a call's messages within a UDP datagram", text.size(), max_party));
  const size_t at = text.find('@');
  const std::string_view user = text.substr(0, at);
  // RFC 3261 25.1's user characters, without escapes and without `;,?/`, which readers take for URI parameters.
  constexpr std::string_view marks = "-_.!~*'()&=+$";
  if (user.empty() || !std::ranges::all_of(user, [&](char c) {
        return std::isalnum(static_cast<unsigned char>(c)) || marks.find(c) != std::string_view::npos;
      }))
    throw ParamError(v, "a SIP user is letters, digits and -_.!~*'()&=+$", std::string(form));
  if (at == std::string_view::npos) return {std::string(user), {}};
  const std::string_view host = text.substr(at + 1);
  IpAddr ip;
  const bool bracketed = host.starts_with('[') && host.ends_with(']');
  if (bracketed ? !(parse_ip(host.substr(1, host.size() - 2), ip) && ip.v6)
                : host.find(':') != std::string_view::npos || !(parse_ip(host, ip) || hostname(host)))
    throw ParamError(v, fmt::format("'{}' is not a host: a name, an IPv4 address or an IPv6 one in brackets", host),
                     std::string(form));
  return {std::string(user), std::string(host)};
}

// An address as a SIP URI or Via writes it (IPv6 in brackets, RFC 3261 25.1) and as SDP does (bare).
class HostText {
 public:
  explicit HostText(const IpAddr& ip) : v6_(ip.v6) {
    inet_ntop(ip.v6 ? AF_INET6 : AF_INET, ip.data(), text_.data() + 1, INET6_ADDRSTRLEN);
    size_ = std::char_traits<char>::length(text_.data() + 1);
    if (v6_) {
      text_[0] = '[';
      text_[size_ + 1] = ']';
    }
  }
  std::string_view uri() const { return v6_ ? std::string_view(text_.data(), size_ + 2) : bare(); }
  std::string_view bare() const { return {text_.data() + 1, size_}; }
  char version() const { return v6_ ? '6' : '4'; }

 private:
  std::array<char, INET6_ADDRSTRLEN + 2> text_{};
  size_t size_ = 0;
  bool v6_;
};

// The messages of a call, in the order they are sent. A request's transaction is its branch: the
// ACK of a 2xx is a transaction of its own (RFC 3261 17.1.1.3), the BYE another.
struct Step {
  bool from_client;
  std::string_view start;  // a request's method, or a response's status and reason
  unsigned cseq;
  std::string_view method;  // of the CSeq
  unsigned branch;
  bool to_tag;   // the dialog exists: the callee has tagged its To (from 180 on)
  bool contact;  // the sender's Contact: INVITE, 180, 200 to INVITE
  bool sdp;      // the offer (INVITE) or the answer (200 to INVITE)
};
constexpr std::array<Step, 7> steps{{
    {true, "INVITE", 1, "INVITE", 0, false, true, true},
    {false, "100 Trying", 1, "INVITE", 0, false, false, false},
    {false, "180 Ringing", 1, "INVITE", 0, true, true, false},
    {false, "200 OK", 1, "INVITE", 0, true, true, true},
    {true, "ACK", 1, "ACK", 1, true, false, false},
    {true, "BYE", 2, "BYE", 2, true, false, false},
    {false, "200 OK", 2, "BYE", 2, true, false, false},
}};

using Buffer = fmt::basic_memory_buffer<char, 2048>;

struct Setup {
  Party from, to;
  int64_t duration_ns = 0;
};

// One repetition's identifiers and addresses, drawn from its seed.
class Call {
 public:
  Call(const Setup& s, const Flow& f) : s_(s), f_(f), client_(f.client.ip), server_(f.server.ip) {
    Rng rng(f.seed);
    for (auto& t : tags_) t = static_cast<uint32_t>(rng.next());
    call_id_ = rng.next();
    for (auto& b : branches_) b = rng.next() >> 16;
    for (auto& v : sessions_) v = 1'000'000'000 + rng.below(3'000'000'000);
    for (auto& p : rtp_ports_) p = static_cast<uint16_t>(16384 + 2 * rng.below(8192));  // even, as RTP's (RFC 3550 11)
    // When the capture, halfway between the parties, sees each step: a response one round trip
    // after its request, but for the callee's ringing and answering; the BYE the call's duration
    // after the ACK.
    const int64_t rtt = f.rtt_ns, ring = 100'000'000 + static_cast<int64_t>(rng.below(300'000'000));
    const int64_t answer = ring + 1'000'000'000 + static_cast<int64_t>(rng.below(3'000'000'000));
    const int64_t acked = 2 * rtt + answer, bye = acked + s.duration_ns;
    offsets_ = {0, rtt, rtt + ring, rtt + answer, acked, bye, bye + rtt};
    ip_ids_[0] = static_cast<uint16_t>(rng.next());
    ip_ids_[1] = static_cast<uint16_t>(rng.next());
    flow_labels_[0] = static_cast<uint32_t>(rng.next()) & 0xfffff;
    flow_labels_[1] = static_cast<uint32_t>(rng.next()) & 0xfffff;
  }

  int64_t offset(size_t step) const { return offsets_[step]; }

  void format(Buffer& out, Buffer& body, const Step& m) const {
    const uint16_t cport = f_.client_port, sport = f_.server_port;
    const std::string_view to_host = s_.to.host.empty() ? server_.uri() : s_.to.host;
    const auto o = fmt::appender(out);
    if (m.from_client && m.method == "INVITE")
      fmt::format_to(o, FMT_COMPILE("INVITE sip:{}@{} SIP/2.0\r\n"), s_.to.user, to_host);
    else if (m.from_client)  // in the dialog: to the callee's Contact
      fmt::format_to(o, FMT_COMPILE("{} sip:{}@{}:{} SIP/2.0\r\n"), m.start, s_.to.user, server_.uri(), sport);
    else
      fmt::format_to(o, FMT_COMPILE("SIP/2.0 {}\r\n"), m.start);
    // A response's Via is its request's, with where the request came from (RFC 3581 4).
    if (m.from_client)
      fmt::format_to(o, FMT_COMPILE("Via: SIP/2.0/UDP {}:{};rport;branch=z9hG4bK{:012x}\r\nMax-Forwards: 70\r\n"),
                     client_.uri(), cport, branches_[m.branch]);
    else
      fmt::format_to(o, FMT_COMPILE("Via: SIP/2.0/UDP {}:{};rport={};received={};branch=z9hG4bK{:012x}\r\n"),
                     client_.uri(), cport, cport, client_.bare(), branches_[m.branch]);
    fmt::format_to(o, FMT_COMPILE("From: <sip:{}@{}>;tag={:08x}\r\n"), s_.from.user,
                   s_.from.host.empty() ? client_.uri() : s_.from.host, tags_[0]);
    fmt::format_to(o, FMT_COMPILE("To: <sip:{}@{}>"), s_.to.user, to_host);
    if (m.to_tag) fmt::format_to(o, FMT_COMPILE(";tag={:08x}"), tags_[1]);
    fmt::format_to(o, FMT_COMPILE("\r\nCall-ID: {:016x}@{}\r\nCSeq: {} {}\r\n"), call_id_, client_.uri(), m.cseq,
                   m.method);
    if (m.contact && m.from_client)
      fmt::format_to(o, FMT_COMPILE("Contact: <sip:{}@{}:{}>\r\n"), s_.from.user, client_.uri(), cport);
    if (m.contact && !m.from_client)
      fmt::format_to(o, FMT_COMPILE("Contact: <sip:{}@{}:{}>\r\n"), s_.to.user, server_.uri(), sport);
    body.clear();
    if (m.sdp) {
      sdp(body, m.from_client);
      fmt::format_to(o, FMT_COMPILE("Content-Type: application/sdp\r\n"));
    }
    fmt::format_to(o, FMT_COMPILE("Content-Length: {}\r\n\r\n"), body.size());
    out.append(body);
  }

  packets::IpFields ip(bool from_client) {
    const tcp::Stack& stack = from_client ? *f_.client_stack : *f_.server_stack;
    return {packets::proto_udp, stack.ttl, ip_ids_[!from_client]++, true, flow_labels_[!from_client]};
  }

 private:
  // The caller offers both G.711 laws; the callee answers with the first (RFC 3264 6.1).
  void sdp(Buffer& out, bool offer) const {
    const HostText& host = offer ? client_ : server_;
    fmt::format_to(
        fmt::appender(out),
        FMT_COMPILE("v=0\r\no={0} {1} {1} IN IP{2} {3}\r\ns=-\r\nc=IN IP{2} {3}\r\nt=0 0\r\nm=audio {4} RTP/AVP {5}\r\n"
                    "a=rtpmap:0 PCMU/8000\r\n{6}a=sendrecv\r\n"),
        offer ? s_.from.user : s_.to.user, sessions_[!offer], host.version(), host.bare(), rtp_ports_[!offer],
        offer ? "0 8" : "0", offer ? "a=rtpmap:8 PCMA/8000\r\n" : "");
  }

  const Setup& s_;
  const Flow& f_;
  HostText client_, server_;
  std::array<uint32_t, 2> tags_{};  // From's, To's
  uint64_t call_id_ = 0;
  std::array<uint64_t, 3> branches_{};
  std::array<uint64_t, 2> sessions_{};  // SDP session ids: caller's, callee's
  std::array<uint16_t, 2> rtp_ports_{};
  std::array<int64_t, steps.size()> offsets_{};
  std::array<uint16_t, 2> ip_ids_{};  // client's, server's
  std::array<uint32_t, 2> flow_labels_{};
};

Setup prepare(const Node& node) {
  Setup s{parse_party(param(node, "from")), parse_party(param(node, "to")), param(node, "duration").integer};
  if (s.duration_ns < 0) throw ParamError(param(node, "duration"), "a call lasts no negative time");
  return s;
}

}  // namespace

SipStage::SipStage()
    : ConversationStage(
          "sip",
          "A SIP call over UDP (RFC 3261): the caller's INVITE with an SDP offer of G.711 audio, the callee's 100 "
          "Trying, 180 Ringing (a few hundred ms later) and 200 OK with its SDP answer (a few seconds later), the "
          "caller's ACK, and after the call's duration its BYE and the callee's 200 OK: 7 datagrams. Tags, Call-ID, "
          "branches, SDP sessions and RTP ports come from the seed; no RTP is sent.",
          {
              {"from", ParamType::string, "alice",
               "the caller: `user` or `user@host` (host: a name, an IPv4 address or `[IPv6]`; default: the client's "
               "address)"},
              {"to", ParamType::string, "bob", "the callee, as for from (default host: the server's address)"},
              {"duration", ParamType::duration, "5s", "from the caller's ACK to its BYE"},
          },
          {"5060"}) {}

void SipStage::check_own(const Node& node) const { (void)prepare(node); }

ConversationStage::Generate SipStage::generator(const Node& node) const {
  auto setup = std::make_shared<const Setup>(prepare(node));
  return [setup](Conversation& c, const Flow& f) {
    Call call(*setup, f);
    Buffer message, body;
    for (size_t i = 0; i < steps.size(); ++i) {
      const Step& m = steps[i];
      message.clear();
      call.format(message, body, m);
      const auto payload = as_bytes({message.data(), message.size()});
      c.add(call.offset(i), m.from_client
                                ? packets::add_udp_frame(c.bytes, f.linktype, f.client, f.server, call.ip(true),
                                                         f.client_port, f.server_port, payload)
                                : packets::add_udp_frame(c.bytes, f.linktype, f.server, f.client, call.ip(false),
                                                         f.server_port, f.client_port, payload));
    }
  };
}

}  // namespace vei

VEI_STAGE(sip, vei::SipStage)
