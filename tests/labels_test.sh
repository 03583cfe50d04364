#!/usr/bin/env bash
# The labels match the packets one to one (issue 12, item 4): `stream` (IPv4 and IPv6) and `icmp`
# woven into a background, labels=; then for every labelled index tshark reads the packet at that
# index and finds the flow the label names (protocol, and the two endpoints in either order; for
# IPv4 the lower address:port first), one label per packet not from the background, each stream
# repetition its own conversation id shared by both directions, and the JSON lines saying the same
# as the CSV. Over a veigen Ethernet background, and corpus backgrounds in raw IPv4 (101), IPv6
# (229) and Linux cooked (113) framing.
#
# Usage: tests/labels_test.sh path/to/veipipe path/to/veigen path/to/corpus
tests_dir=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
set -uo pipefail
# shellcheck source=checks.sh
source "$tests_dir/checks.sh"

usage="usage: $0 path/to/veipipe path/to/veigen path/to/corpus"
veipipe=$(realpath "${1:?$usage}") || exit 2
veigen=$(realpath "${2:?$usage}") || exit 2
corpus=$(realpath "${3:?$usage}") || exit 2
require labels_test tshark timeout awk sed "$veipipe" "$veigen"

dir=$(mktemp -d "${TMPDIR:-/tmp}/labels_test.XXXXXX") || exit 1
trap 'rm -rf "$dir"' EXIT
trap 'exit 130' INT
trap 'exit 143' TERM
cd "$dir" || exit 1

limit=120 # seconds for any one command: a hang fails instead of blocking
expect_eq() { # expect_eq WHAT EXPECTED ACTUAL
  if [[ $2 == "$3" ]]; then pass; else fail "$1" "expected: $2" "actual:   $3"; fi
}
head -c 300 /dev/zero | tr '\0' q >request.bin
head -c 5000 /dev/zero | tr '\0' r >response.bin
timeout "$limit" "$veigen" -o veigen.pcap --count 300 --rate 1kpps --start 1700000000 >/dev/null 2>gen.err ||
  fail "veigen background" "$(cat gen.err)"

# Every labelled packet's flow as tshark reads it, checked against its label: "BAD index why" lines.
# tshark prints frame numbers from 1, the labels output indexes from 0.
mismatches() { # mismatches OUT LABELS
  timeout "$limit" tshark -n -r "$1" -T fields -E occurrence=f -e frame.number -e ip.src -e ip.dst -e ipv6.src \
    -e ipv6.dst -e tcp.srcport -e tcp.dstport -e udp.srcport -e udp.dstport -e icmp.type -e icmpv6.type 2>/dev/null |
    awk -F'\t' '
      function endpoint(a, p) { return a ~ /:/ ? "[" a "]:" p : a ":" p }
      function v4(e,   f) { split(e, f, /[.:]/); return ((f[1] * 256 + f[2]) * 256 + f[3]) * 256 + f[4] + f[5] / 65536 }
      NR == FNR {
        src = $2 != "" ? $2 : $4; dst = $3 != "" ? $3 : $5
        if ($6 != "") flow[$1 - 1] = "tcp " endpoint(src, $6) " " endpoint(dst, $7)
        else if ($8 != "") flow[$1 - 1] = "udp " endpoint(src, $8) " " endpoint(dst, $9)
        else if ($10 != "" || $11 != "") flow[$1 - 1] = "icmp " src " " dst
        else flow[$1 - 1] = "other"
        next
      }
      FNR == 1 { FS = ","; next }  # the labels: CSV from their second line on
      {
        i = $1
        if (!(i in flow)) { print "BAD", i, "no such packet"; next }
        split($7, l, " "); split(flow[i], f, " ")
        if (l[1] != f[1] || !((l[2] == f[2] && l[3] == f[3]) || (l[2] == f[3] && l[3] == f[2])))
          print "BAD", i, "label \"" $7 "\", packet \"" flow[i] "\""
        else if (l[2] ~ /^[0-9.:]*$/ && v4(l[2]) > v4(l[3]))
          print "BAD", i, "label \"" $7 "\": the higher endpoint first"
      }' - "$2"
}

# weave NAME BACKGROUND STREAMS STAGES SOURCES...: runs the weave twice (CSV, then JSON lines) and
# checks both; STREAMS is how many stream repetitions it holds, STAGES the stages labelled, sorted.
weave() {
  local name=$1 bg=$2 want_streams=$3 want_stages=$4 description streams bg_count total
  shift 4
  description="pcap($bg) -> m: merge(end=all) -> file($name.pcap, labels=LABELS)"
  for source in "$@"; do description+="; $source -> m"; done
  for labels in "$name.csv" "$name.jsonl"; do
    timeout "$limit" "$veipipe" run -q -e "${description/LABELS/$labels}" 2>"$name.err" ||
      { fail "$name: veipipe run ($labels)" "$(head -n 3 "$name.err")"; return; }
  done
  bg_count=$(timeout "$limit" tshark -r "$bg" 2>/dev/null | wc -l)
  total=$(timeout "$limit" tshark -r "$name.pcap" 2>/dev/null | wc -l)
  expect_eq "$name: one label per packet not from the background" "$((total - bg_count))" \
    "$(($(wc -l <"$name.csv") - 1))"
  expect_eq "$name: every label names its packet's flow" "" "$(mismatches "$name.pcap" "$name.csv" | head -n 5)"
  streams=$(awk -F, '$6 == "stream" { seen[$7] } END { print length(seen) }' "$name.csv")
  expect_eq "$name: a conversation id per stream repetition, both directions" "$want_streams" "$streams"
  expect_eq "$name: stages" "$want_stages" "$(awk -F, 'NR > 1 { seen[$6] } END { for (s in seen) print s }' "$name.csv" | sort | xargs)"
  expect_eq "$name: the JSON lines say what the CSV says" "" "$(diff <(tail -n +2 "$name.csv") <(sed -E \
    's/^\{"index":([0-9]+),"timestamp_[un]s":"([^"]*)","source":"([^"]*)","origin":"([^"]*)","record":([0-9]+),"stage":"([^"]*)","conversation":"([^"]*)"\}$/\1,\2,\3,\4,\5,\6,\7/' \
    "$name.jsonl") | head -n 5)"
}

# Repetition i has client port sport.first + i mod |sport|: as many ports as repetitions, so that each
# has an id of its own.
stream4="stream(request.bin, response=response.bin, count=6, rate=50pps, sport=40000-40005)"
stream6="stream(request.bin, response=response.bin, count=3, rate=40pps, src=2001:db8::1-2001:db8::2, dst=2001:db8::9)"
icmp="icmp(dst=10.0.0.9, count=20, rate=100pps, replies=true)"
weave ethernet veigen.pcap 9 "icmp stream" "$stream4" "$stream6" "$icmp"
weave raw-ipv4 "$corpus/tcpdump-babel_rtt.pcap" 6 "icmp stream" "$stream4" "$icmp"
weave raw-ipv6 "$corpus/tcpdump-ipv6_mobility_1.pcap" 3 stream "$stream6"
weave cooked "$corpus/tcpdump-bgp-role.pcapng" 9 "icmp stream" "$stream4" "$stream6" "$icmp"

summary labels_test
