#include "core/stage.h"

#include <array>

namespace vei {

std::string_view to_string(StageKind kind) {
  switch (kind) {
    case StageKind::timeline_source: return "timeline source";
    case StageKind::event_source: return "event source";
    case StageKind::transform: return "transform";
    case StageKind::merger: return "merger";
    case StageKind::pacer: return "pacer";
    case StageKind::sink: return "sink";
  }
  return "?";
}

std::string_view to_string(ParamType type) {
  switch (type) {
    case ParamType::path: return "path";
    case ParamType::string: return "string";
    case ParamType::choice: return "choice";
    case ParamType::duration: return "duration";
    case ParamType::integer: return "integer";
    case ParamType::size: return "size";
    case ParamType::rate: return "rate";
    case ParamType::bitrate: return "bitrate";
    case ParamType::multiplier: return "multiplier";
    case ParamType::boolean: return "boolean";
    case ParamType::speed: return "speed";
  }
  return "?";
}

// One explicit list: adding a stage means adding its declaration here and its builder in
// pipeline/graph.cpp, nothing else.
std::span<const StageSpec> builtin_stages() {
  static const std::array stages{
      StageSpec{
          "pcap", StageKind::timeline_source,
          "Reads a capture file: classic pcap (little or big endian, micro- or nanosecond) through a "
          "fast in-place reader, pcapng through libpcap; `-` reads standard input. Its packets are "
          "mapped onto the output timeline: `at=` places its first packet relative to the first "
          "source's first packet, `shift=` adds a constant, `rebase=none` keeps original times.",
          {
              {"file", ParamType::path, "", "capture to read (`-` for standard input)", {}, true, true},
              {"at", ParamType::duration, "",
               "place the first packet this long after the first source's first packet (implies rebase=first)"},
              {"shift", ParamType::duration, "0s", "add this to every timestamp (after rebasing)"},
              {"rebase", ParamType::choice, "",
               "`first`: move the first packet to the first source's start (+at); `none`: keep original times. "
               "Default: first when `at` is given, else none",
               {"first", "none"}},
              {"filter", ParamType::string, "", "BPF expression (tcpdump syntax); packets not matching are dropped"},
              {"disorder", ParamType::choice, "clamp",
               "what to do with a packet older than the one before it in this file: `clamp` it to the "
               "previous timestamp (output time never decreases), or `keep` it as it is",
               {"clamp", "keep"}},
          }},
      StageSpec{
          "control", StageKind::event_source,
          "A Unix stream socket (created mode 0600, removed at the end) whose lines are source stages to "
          "inject now, each optionally followed by transforms, e.g. `icmp(dst=10.0.0.9, count=3)` or "
          "`pcap(attack.pcap) -> rewrite(ip=\"10.0.0.5:192.168.1.66\")`: the first packet at the "
          "output timeline's now, the stage's own spacing kept. Each line is answered `ok <packets>` or "
          "`error: <message>`; `veipipe inject SOCKET '<stage>'` is its client.",
          {
              {"path", ParamType::path, "", "where to create the socket", {}, true, true},
          }},
      StageSpec{
          "live", StageKind::event_source,
          "Captures from a network interface (libpcap, TPACKET_V3 with a 1 ms timeout, nanosecond timestamps) on its own "
          "thread. Its packets are events: each is stamped on the output timeline at the moment it was "
          "captured (while pacing in real time, the background time matching the wall clock; at top speed, "
          "the time of the last packet written) and merged within the merge's `lateness`.",
          {
              {"interface", ParamType::string, "", "interface to capture on, e.g. `eth1`", {}, true, true},
              {"filter", ParamType::string, "", "BPF expression (tcpdump syntax); only matching packets are taken"},
              {"snaplen", ParamType::size, "262144", "bytes kept of each packet"},
              {"promisc", ParamType::boolean, "false", "put the interface in promiscuous mode"},
          }},
      StageSpec{
          "icmp", StageKind::timeline_source,
          "Generates ICMP echo requests (and, with `replies=true`, the echo replies) with valid IPv4 and ICMP "
          "checksums, framed for the output's link type (Ethernet, raw IPv4 or Linux cooked). Request i is "
          "at start + i/rate exactly, start being the first source's first packet (+`at`, +`shift`); requests "
          "cycle through the src × dst pairs of the address ranges, sequence numbers count up from 1. Ethernet "
          "addresses not given are those the background capture shows for the IPs, else locally administered.",
          {
              {"src", ParamType::string, "10.255.0.1", "source IPv4 address, or a range `10.0.0.1-10.0.0.9`"},
              {"dst", ParamType::string, "", "destination IPv4 address, or a range `10.0.0.1-10.0.0.9`", {}, false,
               true},
              {"rate", ParamType::rate, "1pps", "echo requests per second"},
              {"count", ParamType::integer, "10", "number of echo requests"},
              {"size", ParamType::size, "56", "ICMP payload bytes of each packet"},
              {"ttl", ParamType::integer, "64", "IPv4 time to live (1..255)"},
              {"id", ParamType::integer, "30309", "ICMP identifier, 0..65535 (30309 is 0x7665, \"ve\")"},
              {"at", ParamType::duration, "", "place the first request this long after the first source's first packet"},
              {"shift", ParamType::duration, "0s", "add this to every timestamp (after rebasing)"},
              {"rebase", ParamType::choice, "first",
               "`first`: start at the first source's first packet (+at); `none`: start at the epoch (+shift)",
               {"first", "none"}},
              {"replies", ParamType::boolean, "false", "also generate each request's echo reply, from dst to src"},
              {"rtt", ParamType::duration, "1ms", "time from a request to its reply"},
              {"srcmac", ParamType::string, "",
               "source Ethernet address `aa:bb:cc:dd:ee:ff` (default: the background's for that IP, else "
               "02:00 + the IP)"},
              {"dstmac", ParamType::string, "", "destination Ethernet address (default: as for srcmac)"},
          }},
      StageSpec{
          "filter", StageKind::transform,
          "Keeps only the packets a BPF expression matches. Placed after a source, it sees that source's "
          "packets; after the merge, every packet, events included (a source's own `filter=` is the same "
          "for that source alone).",
          {
              {"expression", ParamType::string, "", "BPF expression (tcpdump syntax), e.g. `tcp port 80`", {}, true, true},
          }},
      StageSpec{
          "snaplen", StageKind::transform,
          "Keeps at most this many captured bytes of each packet, as `editcap -s` does; the original length "
          "stays in the record.",
          {
              {"length", ParamType::size, "", "captured bytes kept, at least 1, e.g. `96`", {}, true, true},
          }},
      StageSpec{
          "rewrite", StageKind::transform,
          "Rewrites addresses as tcprewrite does: IPv4 networks mapped onto others of the same prefix length "
          "(host bits kept), Ethernet addresses set. The IPv4 header checksum and, in a first fragment, the "
          "TCP or UDP checksum are updated for the new addresses (RFC 1624), so a packet valid before stays "
          "valid; other protocols, IPv6 and bytes beyond the capture are left alone.",
          {
              {"ip", ParamType::string, "",
               "`OLD:NEW` maps, space-separated, for source and destination addresses: `10.0.0.0/8:172.16.0.0/8` "
               "or `10.0.0.1:192.168.1.1`; the first that matches applies"},
              {"srcip", ParamType::string, "", "the same, for source addresses only (tried before `ip`)"},
              {"dstip", ParamType::string, "", "the same, for destination addresses only (tried before `ip`)"},
              {"srcmac", ParamType::string, "", "set the Ethernet source address, `aa:bb:cc:dd:ee:ff`"},
              {"dstmac", ParamType::string, "", "set the Ethernet destination address"},
          }},
      StageSpec{
          "merge", StageKind::merger,
          "Merges its inputs into one stream by timestamp. Exact for timeline sources: equal timestamps "
          "are ordered by input declaration order, then record order, so the same inputs always give "
          "the same bytes.",
          {
              {"end", ParamType::choice, "first",
               "stop with the first input (`first`, the background: what other inputs hold past its last "
               "packet's time is not written) or when all inputs end (`all`)",
               {"first", "all"}},
              {"lateness", ParamType::duration, "5ms",
               "how long event packets (live, api, control) may take to reach the merge while pacing: the output "
               "is held back this long so that an event is written in timestamp order; one later still is written "
               "at once and counted late"},
          }},
      StageSpec{
          "pace", StageKind::pacer,
          "Releases packets at their time on the output timeline: `realtime` keeps the capture's own "
          "timing, `4x` or `0.5x` scales it, `pps=` or `mbps=` sets a constant rate instead, `topspeed` does "
          "not wait. Deadlines are absolute (start + elapsed timeline / speed), so errors never add up; the "
          "run reports how late packets left (p50/p99/max). Runs on the output thread: sleep, then spin.",
          {
              {"speed", ParamType::speed, "realtime", "`realtime`, `topspeed`, or a factor `0.01x`..`1000x`", {}, true},
              {"pps", ParamType::rate, "", "a constant packet rate instead of the capture's timing, e.g. `10kpps`"},
              {"mbps", ParamType::bitrate, "", "a constant bit rate (wire bytes) instead of the capture's timing, e.g. `100mbps`"},
              {"loop", ParamType::integer, "1",
               "play the timeline sources this many times; the timeline continues (each pass starts one "
               "average packet gap after the previous pass's last packet of the first source; a source that "
               "lasts longer overlaps its next pass, whose records before the previous pass's last are clamped "
               "to its time, as disorder=clamp does)"},
          }},
      StageSpec{
          "file", StageKind::sink,
          "Writes a classic pcap file (`-` for standard output), one write() per batch. The link type "
          "is the first source's; the file is a valid pcap on every exit path.",
          {
              {"file", ParamType::path, "", "output file (`-` for standard output)", {}, true, true},
              {"precision", ParamType::choice, "auto",
               "timestamp precision: `us`, `ns`, or `auto` (ns when the first source is ns pcap or pcapng, else us)",
               {"auto", "us", "ns"}},
              {"snaplen", ParamType::size, "", "snapshot length written in the header (default: 262144, libpcap's maximum, or a larger one an input declares)"},
              {"labels", ParamType::path, "",
               "ground truth: a line for every packet not from the first source (output index, timestamp, source, "
               "origin file or `event`, record index or event id); CSV, or JSON lines when the name ends in .jsonl"},
          }},
      StageSpec{
          "nic", StageKind::sink,
          "Sends every packet onto a network interface, one frame per packet, in order (needs "
          "CAP_NET_RAW). Full socket buffers (ENOBUFS, EAGAIN) are retried, not dropped; a frame longer than "
          "the interface MTU plus its link header is an error naming the record, unless `truncate=true`. "
          "`method=` only changes the cost per frame: `ring` is the fastest at top speed.",
          {
              {"interface", ParamType::string, "", "interface to send on, e.g. `eth1`", {}, true, true},
              {"truncate", ParamType::boolean, "false", "cut frames over the MTU to fit instead of failing"},
              {"retries", ParamType::integer, "1000", "send attempts per frame while the socket buffer is full"},
              {"method", ParamType::choice, "inject",
               "how frames reach the kernel: `inject` (pcap_inject, a system call per frame), `mmsg` "
               "(sendmmsg on a packet socket, up to 1024 frames per call), `ring` (a PACKET_TX_RING: "
               "frames are copied into a ring shared with the kernel, one call sends them all). All keep "
               "the qdisc: shaping and captures on the interface see every frame",
               {"inject", "mmsg", "ring"}},
          }},
  };
  return stages;
}

const StageSpec* find_stage(std::string_view name) {
  for (const auto& s : builtin_stages())
    if (s.name == name) return &s;
  return nullptr;
}

}  // namespace vei
