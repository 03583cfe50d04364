# Counting checks for the shell tests; source it, call pass/fail, end with `summary NAME`.
# shellcheck shell=bash
passed=0 failed=0
pass() { passed=$((passed + 1)); }
fail() { # fail WHAT [CONTEXT-LINE...]
  failed=$((failed + 1))
  printf 'FAIL: %s\n' "$1" >&2
  shift
  local line
  for line in "$@"; do printf '    %s\n' "$line" >&2; done
}
# The closing line CI reads (`N passed, M failed`), and the status: non-zero when anything failed.
summary() {
  echo "$1: $passed passed, $failed failed"
  ((failed == 0))
}
# require NAME TOOL...: every tool is a command on PATH or an executable path, else exit 1 naming it.
require() {
  local name=$1 tool
  shift
  for tool in "$@"; do
    command -v "$tool" >/dev/null || { echo "$name: $tool not found or not executable (scripts/setup.sh installs the tools)" >&2; exit 1; }
  done
}

# The transform tests' comparisons of captures.
records() { tail -c +25 "$1"; }  # a classic pcap's records, without the file header
# Same records but for UDP checksums tcprewrite writes as 0 ("none") when its update brings them
# to 0; RFC 768 says 0xffff, and veipipe writes that.
same_but_udp_zero() {
  { cmp -l <(records "$1") <(records "$2") || true; } | awk '$2 != 377 || $3 != 0 { bad++ } END { exit bad > 0 || NR % 2 }'
}
# How many packets of a capture tshark finds with a bad IPv4, TCP or UDP checksum.
checksums_bad() {
  tshark -r "$1" -o ip.check_checksum:TRUE -o tcp.check_checksum:TRUE -o udp.check_checksum:TRUE \
    -Y 'ip.checksum.status == "Bad" || tcp.checksum.status == "Bad" || udp.checksum.status == "Bad"' 2>/dev/null | wc -l
}

# The generators' independent check (issue 12): the frames of a capture tshark finds malformed,
# with an expert warning or error, with a TCP analysis flag, or with a bad IPv4/TCP/UDP/ICMP/ICMPv6
# checksum (validation on), one line each: "frame: why". `allowed` (a display filter, optional)
# excuses TCP analysis flags the protocol means (a scan's resets); `excused` (optional) the expert
# warnings of frames it matches, for a dissector's known bug. Empty output: all valid.
#   protocol_problems FILE [ALLOWED-FILTER [EXCUSED-FILTER]]
protocol_problems() {
  local allowed=${2:-} excused=${3:-}
  local analysis='tcp.analysis.flags' expert='_ws.expert.severity >= 0x00600000'
  [[ -n $allowed ]] && analysis="tcp.analysis.flags && !($allowed)"
  [[ -n $excused ]] && expert="$expert && !($excused)"
  tshark -n -r "$1" -o ip.check_checksum:TRUE -o tcp.check_checksum:TRUE -o udp.check_checksum:TRUE \
    -Y "_ws.malformed || ($expert) || ($analysis) || ip.checksum.status == \"Bad\" ||
        tcp.checksum.status == \"Bad\" || udp.checksum.status == \"Bad\" || icmp.checksum.status == \"Bad\" ||
        icmpv6.checksum.status == \"Bad\"" \
    -T fields -E separator=' ' -e frame.number -e _ws.expert.message -e _ws.malformed 2>/dev/null | head -20
}
# The frames carrying TCP or UDP payload that tshark does not dissect as `proto` (a display
# filter: http, dns, smtp...), nor as a segment reassembled into it. Prints their count.
#   undissected FILE PROTO-FILTER
undissected() {
  tshark -n -r "$1" -Y "(tcp.len > 0 || udp.length > 8) && !($2) && !tcp.reassembled_in" 2>/dev/null | wc -l
}
