#include "stages/synscan.h"

#include <algorithm>
#include <bitset>
#include <memory>
#include <fmt/format.h>

#include "core/random.h"

namespace vei {

namespace {

using packets::put16;
using packets::put32;

namespace flag {
constexpr uint8_t syn = 0x02, rst = 0x04, ack = 0x10;
}

// nmap's raw SYN: window 1024, one option (MSS 1460, whatever the IP version), no DF, a TTL drawn
// per packet from 37..59 (nmap's build_ip_raw), so that it looks like no operating system's.
constexpr uint16_t nmap_window = 1024, nmap_mss = 1460;
constexpr uint8_t nmap_ttl_min = 37, nmap_ttl_span = 23;
// The scanner's kernel resets a SYN-ACK it has no socket for at once: this long after it arrives.
constexpr int64_t kernel_reset_ns = 10'000;
// A whole scan lasts less than pcap's 32-bit seconds can count.
constexpr int64_t max_scan_ns = (int64_t{1} << 32) * 1'000'000'000;

using PortBits = std::bitset<65536>;

struct Scan {
  std::vector<uint16_t> ports;  // ascending, each once
  PortBits open;
  int64_t delay_ns = 0;
};

// The part [pos, pos + len) of a list value, as a value of its own: errors point at the item. The
// span maps onto the text when the value was written bare or quoted without escapes; otherwise
// the whole value is shown.
Value item_of(const Value& list, size_t pos, size_t len) {
  Value v = list;
  v.text = list.text.substr(pos, len);
  const auto written = static_cast<size_t>(list.span.length);
  if (written == list.text.size() || written == list.text.size() + 2) {
    v.span.col += static_cast<int>(pos + (written - list.text.size()) / 2);
    v.span.length = static_cast<int>(std::max<size_t>(len, 1));
  }
  return v;
}

// Calls f(item, range) for each item of a port list `22,80,8000-8100` (spaces around items allowed).
template <typename F>
void for_each_range(const Value& list, F f) {
  const std::string_view text = list.text;
  if (text.find_first_not_of(' ') == std::string_view::npos)
    throw ParamError(list, "no port listed: expected ports and ranges such as `22,80,8000-8100`");
  for (size_t pos = 0;;) {
    const size_t comma = std::min(text.find(',', pos), text.size());
    size_t begin = pos, end = comma;
    while (begin < end && text[begin] == ' ') ++begin;
    while (end > begin && text[end - 1] == ' ') --end;
    const Value item = item_of(list, begin, end - begin);
    if (begin == end) throw ParamError(item, "an empty item in the port list (a stray comma?)");
    f(item, parse_port_range(item));
    if (comma == text.size()) return;
    pos = comma + 1;
  }
}

Scan scan_of(const Node& node) {
  Scan scan;
  PortBits scanned;
  for_each_range(param(node, "ports"), [&](const Value&, PortRange r) {
    for (uint32_t p = r.first; p <= r.last; ++p) scanned.set(p);
  });
  for (uint32_t p = 0; p < scanned.size(); ++p)
    if (scanned[p]) scan.ports.push_back(static_cast<uint16_t>(p));
  const Value& open = param(node, "open");
  if (open.text != "none") {
    for_each_range(open, [&](const Value& item, PortRange r) {
      for (uint32_t p = r.first; p <= r.last; ++p) {
        // The default names common ports: those a narrower scan leaves out are simply not open.
        if (!scanned[p] && open.given)
          throw ParamError(item, fmt::format("port {} is open but not scanned: ports= does not list it", p));
        scan.open[p] = scanned[p];
      }
    });
  }
  const Value& delay = param(node, "delay");
  if (delay.integer < 0) throw ParamError(delay, "probes cannot go out before the previous one");
  if (delay.integer > 0 && static_cast<int64_t>(scan.ports.size() - 1) > max_scan_ns / delay.integer)
    throw ParamError(delay, fmt::format("{} probes this far apart last longer than a pcap timestamp can count (136 years)",
                                        scan.ports.size()));
  scan.delay_ns = delay.integer;
  return scan;
}

struct Segment {
  uint16_t sport, dport;
  uint32_t seq, ack;
  uint8_t flags;
  uint16_t window;
  uint16_t mss;  // 0: no option
};

void add_segment(Conversation& c, const Flow& f, bool from_client, const packets::IpFields& ip, const Segment& s,
                 int64_t t) {
  const size_t header = s.mss ? 24 : 20;
  const packets::FrameAt at = packets::add_ip_frame(c.bytes, f.linktype, from_client ? f.client : f.server,
                                                    from_client ? f.server : f.client, ip, header);
  std::byte* p = c.bytes.data() + at.l4;
  put16(p, s.sport);
  put16(p + 2, s.dport);
  put32(p + 4, s.seq);
  put32(p + 8, s.ack);
  p[12] = std::byte(header / 4 << 4);
  p[13] = std::byte{s.flags};
  put16(p + 14, s.window);
  if (s.mss) {
    p[20] = std::byte{2}, p[21] = std::byte{4};
    put16(p + 22, s.mss);
  }
  packets::seal(c.bytes, at);
  c.add(t, at);
}

}  // namespace

SynscanStage::SynscanStage()
    : ConversationStage(
          "synscan",
          "An nmap-style SYN scan (`nmap -sS`) of the server, as the scanner captures it: one SYN per port in a "
          "shuffled order, `delay` apart from one fixed client port (the repetition's sport), each as nmap crafts it "
          "(window 1024, only an MSS option, a TTL of 37..59, no DF). An open port answers `rtt` later with a SYN-ACK "
          "of the server's stack (TTL, window; only MSS among the options, since the SYN offered no other), which the "
          "scanner's kernel resets (RST, seq = the SYN-ACK's ack); a closed port answers RST-ACK.",
          {
              {"ports", ParamType::string, "1-1024",
               "the ports to scan: ports and ranges `1-1024,3389,8080` (quoted in a description, where a comma "
               "separates parameters); a port listed twice is scanned once"},
              {"open", ParamType::string, "22,80,443",
               "the open ports, in the same form, each among those scanned (`none`: all closed); by default those of "
               "22, 80 and 443 the scan covers"},
              {"delay", ParamType::duration, "1ms", "between two SYNs"},
          },
          {""}) {}

void SynscanStage::check_own(const Node& node) const { scan_of(node); }

ConversationStage::Generate SynscanStage::generator(const Node& node) const {
  auto scan = std::make_shared<const Scan>(scan_of(node));
  return [scan](Conversation& c, const Flow& f) {
    const bool v6 = f.client.ip.v6;
    Rng rng(f.seed);
    std::vector<uint16_t> order = scan->ports;
    for (size_t i = order.size(); i > 1; --i) std::swap(order[i - 1], order[rng.below(i)]);
    const uint64_t probe_seed = rng.next();
    auto server_id = static_cast<uint16_t>(rng.next());
    auto client_id = static_cast<uint16_t>(rng.next());
    const auto server_label = static_cast<uint32_t>(rng.next() & 0xfffff);
    const auto client_label = static_cast<uint32_t>(rng.next() & 0xfffff);
    const uint16_t server_mss = v6 ? 1440 : 1460;
    const uint8_t server_ttl = f.server_stack->ttl, client_ttl = f.client_stack->ttl;
    // A probe's random fields, drawn again when its answer is built.
    struct Probe {
      uint32_t seq, isn;
      uint16_t id;
      uint8_t ttl;
    };
    auto probe = [&](size_t j) {
      Rng r(mix_seed(probe_seed, j));
      const uint64_t a = r.next(), b = r.next();
      return Probe{static_cast<uint32_t>(a), static_cast<uint32_t>(a >> 32), static_cast<uint16_t>(b),
                   static_cast<uint8_t>(nmap_ttl_min + (b >> 16) % nmap_ttl_span)};
    };
    auto syn_time = [&](size_t j) { return static_cast<int64_t>(j) * scan->delay_ns; };
    auto syn = [&](size_t j) {
      const Probe p = probe(j);
      add_segment(c, f, true, {packets::proto_tcp, p.ttl, p.id, false, 0},
                  {f.client_port, order[j], p.seq, 0, flag::syn, nmap_window, nmap_mss}, syn_time(j));
    };
    std::vector<size_t> opened;  // the probes answered SYN-ACK, in the order of their answers
    auto answer = [&](size_t j) {
      const uint16_t port = order[j];
      const Probe p = probe(j);
      const bool open = scan->open[port];
      add_segment(c, f, false, {packets::proto_tcp, server_ttl, server_id++, true, server_label},
                  open ? Segment{port, f.client_port, p.isn, p.seq + 1, flag::syn | flag::ack, f.server_stack->syn_window,
                                 server_mss}
                       : Segment{port, f.client_port, 0, p.seq + 1, flag::rst | flag::ack, 0, 0},
                  syn_time(j) + f.rtt_ns);
      if (open) opened.push_back(j);
    };
    auto reset = [&](size_t j) {
      add_segment(c, f, true, {packets::proto_tcp, client_ttl, client_id++, true, client_label},
                  {f.client_port, order[j], probe(j).seq + 1, 0, flag::rst, 0, 0},
                  syn_time(j) + f.rtt_ns + kernel_reset_ns);
    };
    // Three streams each in time order (SYNs, answers `rtt` after them, resets just after a
    // SYN-ACK) merged as they are built, so that no sort is needed however they interleave. At
    // equal times a reset goes before an answer, an answer before a SYN.
    constexpr int64_t never = INT64_MAX;
    const size_t n = order.size();
    size_t sent = 0, answered = 0, reset_count = 0;
    while (answered < n || reset_count < opened.size()) {
      const int64_t t_syn = sent < n ? syn_time(sent) : never;
      const int64_t t_answer = answered < sent ? syn_time(answered) + f.rtt_ns : never;
      const int64_t t_reset = reset_count < opened.size() ? syn_time(opened[reset_count]) + f.rtt_ns + kernel_reset_ns : never;
      if (t_reset <= t_answer && t_reset <= t_syn && t_reset != never)
        reset(opened[reset_count++]);
      else if (t_answer <= t_syn && t_answer != never)
        answer(answered++);
      else
        syn(sent++);
    }
  };
}

}  // namespace vei

VEI_STAGE(synscan, vei::SynscanStage)
